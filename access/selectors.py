from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from access.models import AccessToken


def usable_tokens(queryset: QuerySet[AccessToken] | None = None) -> QuerySet[AccessToken]:
    """Not revoked, and not activated or not yet expired (``expires_at``, moved on by renewals)."""
    queryset = AccessToken.objects.all() if queryset is None else queryset
    alive = Q(activated_at__isnull=True) | Q(expires_at__gt=timezone.now())
    return queryset.filter(alive, revoked_at__isnull=True)


def tokens_shown(queryset: QuerySet[AccessToken]) -> QuerySet[AccessToken]:
    """Tokens as the API and pages show them: with the owner (renewal switches) and the renewal count, no N+1."""
    return queryset.select_related("user").annotate(renewal_count=Count("renewals"))
