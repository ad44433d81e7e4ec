from celery import shared_task

from accounts.services import audit_prune, cache_repairs_replay


@shared_task(name="accounts.prune_audit")
def prune_audit() -> int:
    """Daily: delete audit rows older than AUDIT_RETENTION_DAYS."""
    return audit_prune()


@shared_task(name="accounts.replay_cache_repairs")
def replay_cache_repairs() -> int:
    """Every 30 s: cache changes kept while the cache was down (revokes, deactivations) are made."""
    return cache_repairs_replay()
