"""One web process loses its database (a closed port); another keeps it; both share Redis.

The instance without a database answers 503 with a JSON ``detail`` to logins,
API calls and proxied requests that need the database, a 503 page to portal
pages, and says so on ``/health/ready`` while the healthy instance says 200;
tokens whose facts and device session are already in Redis keep working
through it. The outage is logged as one warning, not a traceback per request.
"""

import socket
import time

import httpx
import psycopg
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.db.backends.signals import connection_created
from django.test import Client

from access import services as access
from accounts.tokens import jwt_pair
from proxy.models import ProxySession
from tests.factories import PASSWORD
from tests.helpers import fund
from tests.servers import free_port, process_server
from zenzefi import health
from zenzefi.database import DETAIL, is_unreachable

pytestmark = pytest.mark.django_db(transaction=True)


def _env(zenzefi_url: str, database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": django_settings.REDIS_URL,
        "CELERY_BROKER_URL": "memory://",
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DEBUG": "false",
        "ZENZEFI_TARGET_URL": zenzefi_url,
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "plain",
    }


def _healthy_env(zenzefi_url: str) -> dict[str, str]:
    database = django_settings.DATABASES["default"]
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    return _env(zenzefi_url, url)


def _cut_off_env(zenzefi_url: str) -> dict[str, str]:
    return _env(zenzefi_url, f"postgres://postgres@127.0.0.1:{free_port()}/nowhere")


@pytest.fixture(scope="module")
def healthy(zenzefi_url):
    with process_server(_healthy_env(zenzefi_url)) as url:
        yield url


@pytest.fixture(scope="module")
def cut_off(zenzefi_url):
    with process_server(_cut_off_env(zenzefi_url)) as url:
        yield url


@pytest.fixture
def token(alice):
    fund(alice, "50")
    return access.token_purchase(user=alice, duration_hours=12)


def proxied(base: str, token, device: str, **headers) -> httpx.Response:
    return httpx.get(
        base + "/api/v1/proxy/echo",
        headers={"X-Access-Token": token.secret, "X-Device-ID": device, **headers},
        timeout=10,
    )


def test_login_answers_503_with_a_detail(alice, cut_off, healthy):
    body = {"email": alice.email, "password": PASSWORD}

    refused = httpx.post(cut_off + "/api/v1/auth/login", json=body, timeout=10)
    served = httpx.post(healthy + "/api/v1/auth/login", json=body, timeout=10)

    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/json"
    assert refused.json() == {"detail": DETAIL}
    assert served.status_code == 200


def test_balance_answers_503_with_a_detail(alice, cut_off):
    headers = {"Authorization": f"Bearer {jwt_pair(alice)['access_token']}"}

    response = httpx.get(cut_off + "/api/v1/currency/balance", headers=headers, timeout=10)

    assert response.status_code == 503
    assert response.json() == {"detail": DETAIL}


def test_proxy_serves_cached_tokens_and_refuses_uncached_ones(alice, token, cut_off, healthy):
    fund(alice, "50")
    unseen = access.token_purchase(user=alice, duration_hours=1)
    # The token is used through the healthy instance: activated, its device session and (on the second
    # request, after activation dropped them) its facts are in Redis.
    for _ in range(2):
        assert proxied(healthy, token, "device-A-000001").status_code == 200

    warm = proxied(cut_off, token, "device-A-000001")
    cold = proxied(cut_off, unseen, "device-B-000002")
    browser = httpx.get(
        cut_off + "/api/v1/proxy/",
        cookies={"zg_proxy": unseen.secret, "zg_device": "device-B-000002"},
        headers={"Accept": "text/html", "Accept-Language": "ru"},
        timeout=10,
    )
    status = httpx.get(cut_off + "/api/v1/proxy/status", headers={"X-Access-Token": unseen.secret}, timeout=10)

    assert warm.status_code == 200
    assert warm.json()["path"] == "/echo"  # the fake Zenzefi answered
    assert cold.status_code == 503
    assert cold.json() == {"detail": DETAIL}
    assert status.status_code == 503
    assert status.json() == {"detail": DETAIL}
    assert browser.status_code == 503
    assert browser.headers["content-type"] == "text/html; charset=utf-8"
    assert 'data-status="503"' in browser.text
    assert "Zenzefi Gate временно недоступен" in browser.text


def test_first_use_without_the_database_answers_503_and_starts_nothing(alice, token, cut_off, healthy):
    # The token's facts reach Redis (the status check never activates), but it was never used.
    assert httpx.get(healthy + "/api/v1/proxy/status", headers={"X-Access-Token": token.secret}).status_code == 200

    refused = proxied(cut_off, token, "device-A-000001")
    token.refresh_from_db()
    activated_while_down = token.activated_at
    served = proxied(healthy, token, "device-A-000001")

    assert refused.status_code == 503
    assert refused.json() == {"detail": DETAIL}
    assert activated_while_down is None
    assert served.status_code == 200
    # The session begun without a database was forgotten, so the healthy instance opened it for real.
    assert ProxySession.objects.filter(token=token, device_id="device-A-000001", ended_at__isnull=True).count() == 1


def test_readiness_is_about_this_instance(cut_off, healthy):
    # The shared report says healthy (as beat, with its database, wrote it) and /health keeps answering it.
    cache.set(
        health.HEALTH_KEY,
        {"status": "healthy", "timestamp": "2026-01-01T00:00:00Z", "checked_at": time.time(), "checks": {}},
    )

    down = httpx.get(cut_off + "/health/ready", timeout=10)
    up = httpx.get(healthy + "/health/ready", timeout=10)
    report = httpx.get(cut_off + "/health", timeout=10)

    assert down.status_code == 503
    assert down.json()["status"] == "unavailable"
    assert down.json()["down"] == ["database"]
    assert down.json()["detail"] == DETAIL
    assert down.json()["checks"]["database"]["status"] == "down"
    assert down.json()["checks"]["database"]["error"] == "OperationalError"
    assert up.status_code == 200
    assert up.json()["status"] == "ready"
    assert up.json()["checks"]["database"]["status"] == "up"
    assert report.status_code == 200
    assert report.json()["status"] == "healthy"


def test_portal_page_answers_a_503_page(alice, cut_off, healthy):
    portal = Client()
    portal.force_login(alice)
    session = {"sessionid": portal.cookies["sessionid"].value}

    english = httpx.get(cut_off + "/profile/", cookies=session, timeout=10)
    russian = httpx.get(cut_off + "/profile/", cookies={**session, "django_language": "ru"}, timeout=10)
    served = httpx.get(healthy + "/profile/", cookies=session, timeout=10)

    assert english.status_code == 503
    assert english.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>Temporarily unavailable</h1>" in english.text
    assert russian.status_code == 503
    assert "<h1>Временно недоступно</h1>" in russian.text
    assert served.status_code == 200


def test_an_outage_is_logged_as_one_warning(alice, token, zenzefi_url):
    output: list[str] = []
    bearer = {"Authorization": f"Bearer {jwt_pair(alice)['access_token']}"}
    with process_server(_cut_off_env(zenzefi_url), output=output) as url:
        for _ in range(3):
            httpx.post(url + "/api/v1/auth/login", json={"email": alice.email, "password": PASSWORD}, timeout=10)
            httpx.get(url + "/api/v1/currency/balance", headers=bearer, timeout=10)
            proxied(url, token, "device-A-000001")
            httpx.get(url + "/profile/", cookies={"sessionid": "no-such-session"}, timeout=10)

    warnings = [line for line in output if "database unreachable" in line]
    assert len(warnings) == 1, output
    assert " WARNING zenzefi.database " in warnings[0]
    assert not [line for line in output if "Traceback" in line or " ERROR " in line], output


def test_a_silent_database_host_holds_a_request_only_for_the_connect_timeout(alice, zenzefi_url):
    # A listener that never answers: the TCP handshake completes, PostgreSQL's never does (a black hole).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        database_url = f"postgres://postgres@127.0.0.1:{silent.getsockname()[1]}/nowhere"
        with process_server({**_env(zenzefi_url, database_url), "DB_CONNECT_TIMEOUT": "2"}) as url:
            started = time.monotonic()
            response = httpx.post(
                url + "/api/v1/auth/login", json={"email": alice.email, "password": PASSWORD}, timeout=20
            )
            elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json() == {"detail": DETAIL}
    assert 1.5 < elapsed < 8


def _wrapped(cause: Exception) -> OperationalError:
    """What Django raises for a driver error: its own class, the driver's error as the cause."""
    error = OperationalError(str(cause))
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (_wrapped(psycopg.OperationalError("connection failed: Connection refused")), True),  # client side
        (_wrapped(psycopg.errors.TooManyConnections("sorry, too many clients already")), True),
        (_wrapped(psycopg.errors.AdminShutdown("terminating connection due to administrator command")), True),
        (_wrapped(psycopg.errors.CannotConnectNow("the database system is starting up")), True),
        (InterfaceError("connection already closed"), True),
        (_wrapped(psycopg.errors.DeadlockDetected("deadlock detected")), False),
        (_wrapped(psycopg.errors.LockNotAvailable("could not obtain lock on row")), False),
        (IntegrityError("duplicate key value"), False),
        (DataError("bigint out of range"), False),
    ],
)
def test_only_failing_to_reach_the_database_is_an_outage(error, outage):
    assert is_unreachable(error) is outage


def test_a_storm_of_readiness_probes_asks_the_database_once():
    connected = []

    def count(sender, connection, **kwargs):
        connected.append(connection.alias)

    time.sleep(health.READY_CACHE_SECONDS)  # whatever an earlier probe remembered is stale now
    connection_created.connect(count)
    try:
        answers = [health.readiness() for _ in range(50)]
    finally:
        connection_created.disconnect(count)

    assert connected == ["default"]
    assert {status for status, _body in answers} == {200}
    assert answers[0][1]["status"] == "ready"
