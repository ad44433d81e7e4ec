from celery import shared_task

from zenzefi import health


@shared_task(name="zenzefi.health_check")
def health_check() -> str:
    """Every HEALTH_CHECK_INTERVAL seconds: refresh the cached health report."""
    return health.refresh()["status"]
