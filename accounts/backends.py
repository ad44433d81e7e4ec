from django.contrib.auth.backends import ModelBackend
from django.db.models import Q

from accounts.models import User
from accounts.validators import username_normalise


class EmailOrUsernameBackend(ModelBackend):
    """Signs in with the e-mail or the username, both case-insensitive."""

    def authenticate(self, request, username=None, password=None, email=None, **kwargs):
        identifier = (email or username or "").strip()
        if not identifier or password is None:
            return None
        # Usernames are stored NFKC-normalised (accounts.validators): a full-width spelling signs in too.
        username = username_normalise(identifier)
        user = User.objects.filter(Q(email__iexact=identifier) | Q(username__iexact=username)).first()
        if user is None:
            # Spend the same time as a real check, so timing does not reveal accounts.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
