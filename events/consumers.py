"""Apps above ``events`` (notifications, analytics) act on committed events without ``events`` importing them.

A consumer registers a name and a Celery task name in its ``AppConfig.ready``::

    consumers.register("notifications", "notifications.consume_event")

After each commit that recorded events, the task is published with the event
id. The task calls ``consume(name, event_id, handler)``: the handler runs in a
transaction with an ``EventConsumption`` row unique on (consumer, event), so an
event is handled once per consumer however often the task runs. Whatever a
lost task left behind, ``pending(name)`` finds again (the consumer's beat task
calls it): events of the last ``CONSUMER_LOOKBACK`` without a consumption row.
"""

import datetime as dt
import logging
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils import timezone

from events.models import Event, EventConsumption

logger = logging.getLogger(__name__)

_tasks: dict[str, str] = {}

CONSUMER_LOOKBACK = dt.timedelta(hours=24)
GRACE = dt.timedelta(seconds=60)


def register(name: str, task_name: str) -> None:
    _tasks[name] = task_name


def task_names() -> list[str]:
    return list(_tasks.values())


def consume(name: str, event_id: str, handler: Callable[[Event], None]) -> bool:
    """Run ``handler(event)`` once for this consumer, in one transaction with its consumption row."""
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return False
    try:
        with transaction.atomic():
            EventConsumption.objects.create(consumer=name, event=event)
            handler(event)
    except IntegrityError:
        if EventConsumption.objects.filter(consumer=name, event=event).exists():
            return False  # handled already
        raise
    return True


def pending(name: str, *, now: dt.datetime | None = None, limit: int = 500) -> list[str]:
    """Ids of recent events this consumer has not handled, older than a minute (their task had its chance)."""
    now = now or timezone.now()
    return list(
        Event.objects.filter(created_at__gte=now - CONSUMER_LOOKBACK, created_at__lt=now - GRACE)
        .exclude(consumptions__consumer=name)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
