"""Prometheus metrics: the reference's names (so its dashboards keep working), all of them moving, plus ours.

Counters are incremented where the thing happens (money and token counters
after the transaction commits). Gauges about the current state are computed
when ``/metrics`` is scraped. With several worker processes set
PROMETHEUS_MULTIPROC_DIR: every process writes its counters there and one
scrape of any worker returns the sum (prometheus_client's multiprocess mode).
What Celery counts (webhook deliveries, beat task runs) joins that sum when the
worker has its own PROMETHEUS_MULTIPROC_DIR and the web names it in
PROMETHEUS_WORKER_DIR.
"""

import glob
import os
from collections.abc import Callable

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from zenzefi.net import is_local_or_trusted

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# The reference's metrics (API.md §2.14).
PROXY_REQUESTS = Counter("proxy_requests_total", "Proxied requests", ["method", "status_code"])
PROXY_LATENCY = Histogram("proxy_latency_seconds", "Proxy request latency, end to end", buckets=LATENCY_BUCKETS)
TOKEN_PURCHASES = Counter("token_purchases_total", "Access tokens sold", ["duration_hours"])
TOKEN_REVOCATIONS = Counter("token_revocations_total", "Access tokens revoked (owner or admin)")
BALANCE_DEPOSITS = Counter("balance_deposits_total", "Deposits credited to balances")
AUTH_ATTEMPTS = Counter("auth_attempts_total", "Login attempts", ["result"])

# Ours.
PROXY_BY_CLASS = Counter(
    "proxy_responses_total", "Proxied requests by status class and scope", ["status_class", "scope"]
)
UPSTREAM_LATENCY = Histogram(
    "proxy_upstream_latency_seconds", "Time until the upstream's response headers", buckets=LATENCY_BUCKETS
)
PROXY_BYTES = Counter("proxy_bytes_total", "Bytes through the proxy", ["direction"])
ZNC = Counter("znc_total", "ZNC moved through the ledger, by kind", ["kind"])
PAYMENTS = Counter("payments_total", "Top-up payments by provider and outcome", ["provider", "status"])
RATE_LIMITED = Counter("rate_limit_rejections_total", "Requests refused by a rate limit", ["bucket"])
WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries_total",
    "Webhook delivery attempts: succeeded (2xx), failed (another status), error (no answer)",
    ["result"],
)
WEBHOOK_ENDPOINTS_DISABLED = Counter(
    "webhook_endpoints_disabled_total", "Webhook endpoints switched off, by cause: failing, owner, admin", ["cause"]
)
WEBHOOK_SECONDS = Histogram("webhook_delivery_seconds", "Time of one webhook POST", buckets=LATENCY_BUCKETS)
BEAT_TASKS = Counter("beat_task_runs_total", "Background task runs", ["task", "result"])


# Gauges of the database's current state (the reference's active_tokens, active_sessions, total_users), each
# registered by the app that owns its rows, in its AppConfig.ready(): zenzefi imports no app.
_STATE_GAUGES: dict[str, tuple[str, Callable[[], float]]] = {}


def state_gauge_register(name: str, doc: str, read: Callable[[], float]) -> None:
    """Export ``read()`` as the gauge ``name`` on every scrape. If any registered gauge's query fails, they all
    read 0 and database_connected is 0. Registering a name again replaces it."""
    _STATE_GAUGES[name] = (doc, read)


class StateCollector:
    """Gauges read at scrape time: the reference's five (three registered by the apps, plus the connections)."""

    def collect(self):
        database = redis = 1
        values: dict[str, float] = {}
        try:
            values = {name: read() for name, (_doc, read) in _STATE_GAUGES.items()}
        except Exception:
            database = 0
        if settings.REDIS_URL:
            try:
                from django_redis import get_redis_connection

                get_redis_connection("default").ping()
            except Exception:
                redis = 0
        for name, value, doc in (
            *((name, values.get(name, 0), doc) for name, (doc, _read) in _STATE_GAUGES.items()),
            ("redis_connected", redis, "1 when Redis answers"),
            ("database_connected", database, "1 when the database answers"),
        ):
            yield GaugeMetricFamily(name, doc, value=value)


class HealthCollector:
    """The beat's last health report as gauges (read from the cache, no check run at scrape time):
    health_check_up{check=database|redis|cache|zenzefi} is 1 or 0; health_report_age_seconds says how old it is.
    Nothing is exported while no report is cached (beat not running: its own alert fires)."""

    def collect(self):
        import time

        from django.core.cache import cache

        from zenzefi.health import HEALTH_KEY

        try:
            report = cache.get(HEALTH_KEY)
        except Exception:
            report = None
        if not report:
            return
        up = GaugeMetricFamily("health_check_up", "1 when it was up at the last health check", labels=["check"])
        for name, check in sorted(report.get("checks", {}).items()):
            up.add_metric([name], 1 if check.get("status") == "up" else 0)
        yield up
        age = time.time() - report.get("checked_at", 0)
        yield GaugeMetricFamily("health_report_age_seconds", "Seconds since the last health check ran", value=age)


class _FilesCollector:
    """prometheus_client's multiprocess collector over several directories: this host's web processes' and,
    with PROMETHEUS_WORKER_DIR, its Celery worker's (webhook deliveries and beat tasks are counted there)."""

    def __init__(self, directories: list[str]):
        self.directories = [d for d in directories if d]

    def collect(self):
        files = [path for d in self.directories for path in sorted(glob.glob(os.path.join(d, "*.db")))]
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)


def on_commit(callback) -> None:
    """Count only what committed."""
    from django.db import transaction

    transaction.on_commit(callback)


def metrics_view(request):
    """With METRICS_TOKEN: for whoever sends it. Without: for loopback and TRUSTED_PROXY_IPS only."""
    token = settings.METRICS_TOKEN
    if token and request.headers.get("Authorization", "") != f"Bearer {token}":
        return HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
    if not token and not is_local_or_trusted(request):
        return HttpResponse(
            "Forbidden: set METRICS_TOKEN to scrape from another host\n", status=403, content_type="text/plain"
        )
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        registry.register(_FilesCollector([os.environ["PROMETHEUS_MULTIPROC_DIR"], settings.PROMETHEUS_WORKER_DIR]))
    else:
        registry = REGISTRY
    state = CollectorRegistry()
    state.register(StateCollector())
    state.register(HealthCollector())
    return HttpResponse(generate_latest(registry) + generate_latest(state), content_type=CONTENT_TYPE_LATEST)
