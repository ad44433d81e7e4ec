from celery import shared_task

from accounts.services import audit_prune


@shared_task(name="accounts.prune_audit")
def prune_audit() -> int:
    """Daily: delete audit rows older than AUDIT_RETENTION_DAYS."""
    return audit_prune()
