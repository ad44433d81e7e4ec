from celery import shared_task

from events import services


@shared_task(name="events.deliver")
def deliver(delivery_id: str, number: int) -> str:
    """The ``number``-th attempt on one delivery's retry schedule (sent once however often this runs)."""
    return services.delivery_run(delivery_id=delivery_id, number=number)


@shared_task(name="events.send_attempt")
def send_attempt(attempt_id: str) -> str:
    """A claimed attempt (a redelivery, or one the scan found unsent)."""
    return services.attempt_send(attempt_id=attempt_id)


@shared_task(name="events.outbox_scan")
def outbox_scan() -> dict:
    """Every 15 s: due retries, and deliveries whose task was lost."""
    return services.outbox_scan()


@shared_task(name="events.prune")
def prune() -> int:
    """Daily: attempt rows past WEBHOOKS_RETENTION_DAYS."""
    return services.attempts_prune()


@shared_task(name="events.dispatch")
def dispatch(event_ids: list[str]) -> dict:
    """After a commit: the first attempts of its events' deliveries, and the consumers' tasks."""
    return services.events_dispatch(event_ids=event_ids)
