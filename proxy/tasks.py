from celery import shared_task

from proxy.services import sessions_flush


@shared_task(name="proxy.flush_sessions")
def flush_sessions() -> dict:
    """Every 2 minutes: write session counters to the database and close idle sessions."""
    return sessions_flush()
