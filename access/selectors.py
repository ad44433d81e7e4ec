from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from access.models import AccessToken


def usable_tokens(queryset: QuerySet[AccessToken] | None = None) -> QuerySet[AccessToken]:
    """Not revoked, and not activated or not yet expired.

    Expiry is ``activated_at + duration``; the durations are few, so one
    condition per duration keeps it a plain indexed query.
    """
    queryset = AccessToken.objects.all() if queryset is None else queryset
    now = timezone.now()
    alive = Q(activated_at__isnull=True)
    for hours in queryset.order_by().values_list("duration_hours", flat=True).distinct():
        alive |= Q(duration_hours=hours, activated_at__gt=now - timedelta(hours=hours))
    return queryset.filter(alive, revoked_at__isnull=True)
