"""Bearer-JWT authentication answering with the reference's messages."""

import uuid

from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from accounts.tokens import issued_before_password_change


class CredentialsInvalid(exceptions.AuthenticationFailed):
    default_detail = "Could not validate credentials"


class InactiveUser(exceptions.PermissionDenied):
    default_detail = "Inactive user"


class BearerJWTAuthentication(JWTAuthentication):
    www_authenticate_realm = None

    def authenticate_header(self, request):
        return "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _sep, raw = header.partition(" ")
        if scheme.lower() != "bearer":
            raise exceptions.PermissionDenied("Invalid authentication credentials")
        raw = raw.strip()
        if not raw or " " in raw:
            raise CredentialsInvalid()
        try:
            token = AccessToken(raw)
        except (TokenError, InvalidToken):
            raise CredentialsInvalid() from None
        user_id = token.get("sub")
        if not user_id:
            raise CredentialsInvalid()
        try:
            user_id = uuid.UUID(str(user_id))
        except ValueError:
            raise CredentialsInvalid("Invalid user ID in token") from None
        user = User.objects.filter(pk=user_id).first()
        if user is None:
            raise CredentialsInvalid("User not found")
        if not user.is_active:
            raise InactiveUser()
        if issued_before_password_change(token.payload, user):
            raise CredentialsInvalid()
        return user, token
