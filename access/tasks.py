from celery import shared_task

from access.gifts import gifts_expire
from access.renewal import tokens_renew
from access.services import tokens_expire
from access.tiers import tiers_renew


@shared_task(name="access.expire_tokens")
def expire_tokens() -> int:
    """Every 5 minutes: mark tokens whose time is up and drop them from the cache."""
    return tokens_expire()


@shared_task(name="access.renew_tokens")
def renew_tokens() -> int:
    """Every 5 minutes: charge and extend the auto-renewing tokens that are within their lead time of expiry."""
    return tokens_renew()


@shared_task(name="access.expire_gifts")
def expire_gifts() -> int:
    """Every 10 minutes: gifts unclaimed past GIFT_CLAIM_DAYS go back to their senders."""
    return gifts_expire()


@shared_task(name="access.renew_tiers")
def renew_tiers() -> dict:
    """Every 5 minutes: charge the Premium tiers due within 24 h of their end; end the ones whose time is up."""
    return tiers_renew()
