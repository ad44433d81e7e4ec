"""JWTs as the reference issues them: HS256, ``sub`` = user id, ``username``, no e-mail."""

from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User


def jwt_pair(user: User) -> dict:
    """The login response: the reference's fields plus a refresh token."""
    refresh = RefreshToken.for_user(user)
    refresh["username"] = user.username
    access = refresh.access_token
    return {
        "access_token": str(access),
        "token_type": "bearer",
        "expires_in": settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60,
        "refresh_token": str(refresh),
    }


def issued_before_password_change(payload, user: User) -> bool:
    iat = payload.get("iat")
    if iat is None:
        return True
    # ``iat`` has whole seconds: compare on whole seconds so a token issued
    # right after the change still counts as newer.
    return int(iat) < int(user.password_changed_at.timestamp())
