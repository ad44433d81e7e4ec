import smtplib

from celery import shared_task

from notifications import services


@shared_task(name="notifications.consume_event")
def consume_event(event_id: str) -> bool:
    """A committed event, handled once (``events.consumers``)."""
    return services.event_consume(event_id=event_id)


# SMTP refusals and a server that is down or unreachable (OSError) are worth retrying; a bad template is not.
@shared_task(
    name="notifications.send_email",
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=8,
)
def send_email(notification_id: int) -> str:
    return services.email_send(notification_id=notification_id)


@shared_task(name="notifications.scan")
def scan() -> dict:
    """Every minute: events whose task was lost, tokens entering a notice window, mails never sent."""
    return services.scan()
