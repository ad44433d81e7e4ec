from celery import shared_task

from access.services import tokens_expire


@shared_task(name="access.expire_tokens")
def expire_tokens() -> int:
    """Every 5 minutes: mark tokens whose time is up and drop them from the cache."""
    return tokens_expire()
