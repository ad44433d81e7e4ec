from celery import shared_task

from access.renewal import tokens_renew
from access.services import tokens_expire


@shared_task(name="access.expire_tokens")
def expire_tokens() -> int:
    """Every 5 minutes: mark tokens whose time is up and drop them from the cache."""
    return tokens_expire()


@shared_task(name="access.renew_tokens")
def renew_tokens() -> int:
    """Every 5 minutes: charge and extend the auto-renewing tokens that are within their lead time of expiry."""
    return tokens_renew()
