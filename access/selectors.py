from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from access.models import AccessToken, Gift, GiftStatus
from accounts.models import User


def usable_tokens(queryset: QuerySet[AccessToken] | None = None) -> QuerySet[AccessToken]:
    """Not revoked, and not activated or not yet expired (``expires_at``, moved on by renewals)."""
    queryset = AccessToken.objects.all() if queryset is None else queryset
    alive = Q(activated_at__isnull=True) | Q(expires_at__gt=timezone.now())
    return queryset.filter(alive, revoked_at__isnull=True)


def tokens_shown(queryset: QuerySet[AccessToken]) -> QuerySet[AccessToken]:
    """Tokens as the API and pages show them: with the owner (renewal switches), who gave it, the renewal count
    and whether it is a pending gift, no N+1."""
    pending = Gift.objects.filter(token=OuterRef("pk"), status=GiftStatus.PENDING)
    return queryset.select_related("user", "gifted_by").annotate(
        renewal_count=Count("renewals"), gift_pending=Exists(pending)
    )


def gifts_of(user: User, *, direction: str = "sent") -> QuerySet[Gift]:
    """The gifts ``user`` sent (any status) or received (the ones they accepted), newest first.

    A gift they declined was never theirs: its sender sees it as declined.
    """
    if direction == "sent":
        gifts = Gift.objects.filter(sender=user)
    else:
        gifts = Gift.objects.filter(recipient=user, status=GiftStatus.CLAIMED)
    return gifts.select_related("token", "sender", "recipient").order_by("-created_at", "-pk")
