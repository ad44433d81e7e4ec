from django.conf import settings
from django.db.models import QuerySet

from notifications.models import Kind, Notification, Preference


def notifications_of(user, *, unread_only: bool = False) -> QuerySet[Notification]:
    rows = Notification.objects.filter(user=user)
    return rows.filter(read_at__isnull=True) if unread_only else rows


def unread_count(user) -> int:
    """One COUNT over the partial index of unread rows."""
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def preferences_of(user) -> dict[str, dict[str, bool]]:
    """``{kind: {"email": bool}}`` for every kind; e-mail is on unless turned off."""
    off = set(Preference.objects.filter(user=user, email=False).values_list("kind", flat=True))
    return {kind: {"email": kind not in off} for kind in Kind.values}


def email_enabled(user_id, kind: str) -> bool:
    return not Preference.objects.filter(user_id=user_id, kind=kind, email=False).exists()


def language_of(user) -> str:
    """The language the user last chose in the portal, else the site's."""
    return user.language if user.language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE
