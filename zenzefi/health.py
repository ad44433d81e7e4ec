"""Health of the service and what it depends on: database, Redis, the upstream Zenzefi.

Without Redis (the embedded default) the second check is ``cache``: the shared
database cache the processes meet in, written and read back
(``{"status": "up", "backend": "database"}``), so a missing cache table shows.

Celery beat refreshes the report every HEALTH_CHECK_INTERVAL seconds into the
cache (``health:status``); ``/health`` answers from there and runs the checks
itself, with short timeouts, only when the report is missing or stale.
Overall: ``unhealthy`` when the database is down (nothing works), ``degraded``
when Redis (or the shared cache) or Zenzefi is down, else ``healthy``.

``/health/ready`` does not read the report: it asks this process's own
database (``readiness``), so a load balancer takes out of rotation exactly the
instance that lost its database.
"""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections

from zenzefi import database
from zenzefi.net import upstream_tls_verify

logger = logging.getLogger(__name__)

HEALTH_KEY = "health:status"


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        result = check() or {}
        status, error = "up", None
    except Exception as exc:  # any failure means "down"; the type is enough to diagnose, no secrets
        result, status, error = {}, "down", type(exc).__name__
    return {
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "error": error,
        **result,
    }


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # checks run in worker threads: leave no connection behind


def _redis() -> None:
    from django_redis import get_redis_connection

    get_redis_connection("default").ping()
    return None


CACHE_PROBE_KEY = "health:probe"
# How the report names the shared cache's backend (settings.CACHES).
CACHE_BACKENDS = {
    "django.core.cache.backends.db.DatabaseCache": "database",
    "django.core.cache.backends.filebased.FileBasedCache": "file",
    "django.core.cache.backends.locmem.LocMemCache": "local-memory",
}


def _shared_cache() -> dict:
    """The embedded default's cache table answers a write and a read."""
    try:
        probe = time.time()
        cache.set(CACHE_PROBE_KEY, probe, timeout=60)
        if cache.get(CACHE_PROBE_KEY) != probe:
            raise RuntimeError("the cache did not keep a value")
    finally:
        connections.close_all()  # checks run in worker threads: leave no connection behind
    backend = settings.CACHES["default"]["BACKEND"]
    return {"backend": CACHE_BACKENDS.get(backend, backend.rsplit(".", 1)[-1])}


def _zenzefi(timeout: float) -> dict:
    url = settings.ZENZEFI_TARGET_URL
    with httpx.Client(verify=upstream_tls_verify(), timeout=timeout, follow_redirects=False, trust_env=False) as client:
        response = client.head(url + "/")
    if response.status_code >= 500:
        raise RuntimeError(f"HTTP {response.status_code}")
    return {"url": url}


def run_checks(*, timeout: float | None = None) -> dict:
    """Run the three checks concurrently and build the report (the reference's shape, plus details)."""
    timeout = timeout or settings.HEALTH_CHECK_TIMEOUT
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            "database": pool.submit(_timed, _database),
            **(
                {"redis": pool.submit(_timed, _redis)}
                if settings.REDIS_URL
                else {"cache": pool.submit(_timed, _shared_cache)}
            ),
            "zenzefi": pool.submit(_timed, lambda: _zenzefi(timeout)),
        }
        checks = {name: future.result() for name, future in futures.items()}
    checks["zenzefi"].setdefault("url", settings.ZENZEFI_TARGET_URL)
    if checks["database"]["status"] != "up":
        status = "unhealthy"
    elif any(check["status"] != "up" for check in checks.values()):
        status = "degraded"
    else:
        status = "healthy"
    healthy = sum(check["status"] == "up" for check in checks.values())
    return {
        "status": status,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "checked_at": time.time(),
        "checks": checks,
        "overall": {"healthy_count": healthy, "total_count": len(checks)},
    }


def refresh() -> dict:
    """Run the checks and store the report for ``/health`` (the beat task)."""
    report = run_checks()
    try:
        cache.set(HEALTH_KEY, report, timeout=settings.HEALTH_CHECK_INTERVAL * 3)
    except Exception:  # the cache is down: the report says so; /health will check inline
        logger.warning("could not store the health report")
    return report


def current() -> dict:
    """The cached report if fresh enough, else a new one (short timeouts, stored again)."""
    try:
        report = cache.get(HEALTH_KEY)
    except Exception:
        report = None
    max_age = settings.HEALTH_CHECK_INTERVAL * 2.4  # 120 s with the default interval
    if report and time.time() - report.get("checked_at", 0) < max_age:
        return report
    report = run_checks(timeout=min(2.0, settings.HEALTH_CHECK_TIMEOUT))
    try:
        cache.set(HEALTH_KEY, report, timeout=settings.HEALTH_CHECK_INTERVAL * 3)
    except Exception:
        logger.warning("could not store the health report")
    return report


async def current_async() -> dict:
    """``current`` for the ASGI fast path: the cached report straight from Redis, else the sync checks."""
    import json as _json

    from asgiref.sync import sync_to_async

    from zenzefi import aioredis

    redis = aioredis.client()
    if redis is not None:
        try:
            raw = await redis.get(aioredis.cache_key(HEALTH_KEY))
        except Exception:
            raw = None
        if raw is not None:
            report = _json.loads(raw)
            if time.time() - report.get("checked_at", 0) < settings.HEALTH_CHECK_INTERVAL * 2.4:
                return report
    return await sync_to_async(current, thread_sensitive=False)()


# Readiness is this process's own view, not the shared report: an instance whose database is out of
# reach must leave the load balancer's rotation even while the others (and the report) are fine.
# The answer is kept this long in process memory, so a storm of probes costs one query.
READY_CACHE_SECONDS = 1.5
_ready_lock = threading.Lock()
_ready: dict = {"at": float("-inf"), "check": None}


def _ready_fresh() -> dict | None:
    check = _ready["check"]
    return check if check is not None and time.monotonic() - _ready["at"] < READY_CACHE_SECONDS else None


def _ready_check() -> dict:
    """``SELECT 1`` on this process's database (connect timeout DB_CONNECT_TIMEOUT), at most once per
    READY_CACHE_SECONDS. While one thread asks, the others answer the previous result instead of waiting."""
    if (check := _ready_fresh()) is not None:
        return check
    if not _ready_lock.acquire(blocking=_ready["check"] is None):
        return _ready["check"]
    try:
        if (check := _ready_fresh()) is None:
            check = _timed(_database)
            _ready.update(at=time.monotonic(), check=check)
        return check
    finally:
        _ready_lock.release()


def _ready_answer(check: dict) -> tuple[int, dict]:
    if check["status"] == "up":
        return 200, {"status": "ready", "checks": {"database": check}}
    return 503, {
        "status": "unavailable",
        "detail": database.DETAIL,
        "down": ["database"],
        "checks": {"database": check},
    }


def readiness() -> tuple[int, dict]:
    """``/health/ready``: 200 when this process reaches its database, else 503 naming what is down.

    Asked from a thread of its own: the check closes its connection, never the caller's."""
    check = _ready_fresh()
    if check is None:
        with ThreadPoolExecutor(max_workers=1) as pool:
            check = pool.submit(_ready_check).result()
    return _ready_answer(check)


async def readiness_async() -> tuple[int, dict]:
    """``readiness`` for the event loop: the remembered answer, else the query in a worker thread."""
    from asgiref.sync import sync_to_async

    check = _ready_fresh() or await sync_to_async(_ready_check, thread_sensitive=False)()
    return _ready_answer(check)


HEALTH_PATHS = ("/health", "/health/", "/health/live", "/health/ready")


async def asgi_health(scope, receive, send) -> None:
    """``/health``, ``/health/live`` and ``/health/ready`` without Django's request machinery (about 1 ms)."""
    import json as _json

    path = scope["path"].rstrip("/")
    if path == "/health/live":
        status, body = 200, {"status": "alive"}
    elif path == "/health/ready":
        status, body = await readiness_async()
    else:
        report = await current_async()
        status, body = 200, {k: v for k, v in report.items() if k != "checked_at"}
    payload = _json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
