import os
import subprocess
import sys
import time

import pytest
from django.core.cache import cache

from tests.servers import ROOT, free_port, wait_port
from zenzefi import health, tasks


@pytest.fixture
def spare_redis(settings):
    """A Redis of our own on a spare port, so a test can stop it without touching the shared one."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    url = f"redis://127.0.0.1:{port}/0"
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": url,
            "OPTIONS": {**settings.CACHES["default"]["OPTIONS"], "SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    yield process
    process.kill()
    process.wait(timeout=5)


@pytest.mark.django_db
def test_healthy_when_everything_answers(client, upstream):
    cache.delete(health.HEALTH_KEY)

    body = client.get("/health").json()

    assert body["status"] == "healthy"
    assert body["timestamp"].endswith("Z")
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "up",
        "redis": "up",
        "zenzefi": "up",
    }
    assert body["checks"]["zenzefi"]["url"] == upstream
    assert body["overall"] == {"healthy_count": 3, "total_count": 3}
    assert "checked_at" not in body


@pytest.mark.django_db
def test_degraded_when_the_upstream_is_down(client, settings):
    settings.ZENZEFI_TARGET_URL = "http://127.0.0.1:9"
    cache.delete(health.HEALTH_KEY)

    response = client.get("/health")
    ready = client.get("/health/ready")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["zenzefi"] == {
        "status": "down",
        "latency_ms": response.json()["checks"]["zenzefi"]["latency_ms"],
        "error": "ConnectError",
        "url": "http://127.0.0.1:9",
    }
    assert ready.status_code == 200


@pytest.mark.django_db
def test_degraded_when_redis_is_stopped(client, upstream, spare_redis):
    assert health.run_checks()["checks"]["redis"]["status"] == "up"

    spare_redis.kill()
    spare_redis.wait(timeout=5)
    body = client.get("/health").json()

    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "up"


def test_unhealthy_when_the_database_is_unreachable():
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='zenzefi.settings'; django.setup();"
        "from django.test import Client; c = Client(HTTP_HOST='localhost');"
        "h = c.get('/health'); r = c.get('/health/ready');"
        "print(h.status_code, h.json()['status'], r.status_code, h.json()['checks']['database']['status'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(
        ENV_FILE="",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nowhere",
        ZENZEFI_TARGET_URL="http://127.0.0.1:9",
        HEALTH_CHECK_TIMEOUT="1",
    )

    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert result.stdout.split() == ["200", "unhealthy", "503", "down"], result.stderr


@pytest.mark.django_db
def test_health_answers_from_the_cached_report(client):
    report = {
        "status": "healthy",
        "timestamp": "2026-01-01T00:00:00Z",
        "checked_at": time.time(),
        "checks": {"marker": {"status": "up"}},
        "overall": {"healthy_count": 1, "total_count": 1},
    }
    cache.set(health.HEALTH_KEY, report)

    body = client.get("/health").json()

    assert body["checks"] == {"marker": {"status": "up"}}


@pytest.mark.django_db
def test_stale_report_is_refreshed(client, upstream):
    cache.set(health.HEALTH_KEY, {"status": "unhealthy", "checked_at": time.time() - 3600, "checks": {}})

    body = client.get("/health").json()

    assert body["status"] == "healthy"
    assert cache.get(health.HEALTH_KEY)["status"] == "healthy"


@pytest.mark.django_db
def test_beat_task_stores_the_report(upstream):
    cache.delete(health.HEALTH_KEY)

    assert tasks.health_check() == "healthy"
    assert tasks.health_check() == "healthy"  # idempotent
    assert cache.get(health.HEALTH_KEY)["checks"]["database"]["status"] == "up"


def test_liveness_needs_nothing(client):
    assert client.get("/health/live").json() == {"status": "alive"}


@pytest.mark.django_db(transaction=True)
def test_probes_are_answered_ahead_of_django(gate, upstream):
    import httpx

    cache.delete(health.HEALTH_KEY)
    with httpx.Client(base_url=gate.url) as http:
        first = http.get("/health")
        cached = http.get("/health")
        live = http.get("/health/live")
        ready = http.get("/health/ready")

    assert first.json()["status"] == "healthy"
    assert cached.json()["timestamp"] == first.json()["timestamp"]  # from the stored report
    assert "x-request-id" not in cached.headers  # Django's middleware did not run
    assert live.json() == {"status": "alive"}
    assert ready.status_code == 200
