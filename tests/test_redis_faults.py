"""Redis fails under traffic: killed, frozen (SIGSTOP) and restarted, under two web processes.

The web processes use their own ``redis-server`` on a free port, never the
shared one. While Redis is frozen or dead, proxied requests for a warm and a
cold token, logins, purchases and a revoke are answered (no 5xx) within a
second; the device rule still refuses a second device across the two
processes; a token revoked during the outage is refused everywhere once Redis
is back. The ledger audit runs after the test (conftest).
"""

import concurrent.futures
import os
import shutil
import signal
import subprocess
import time

import httpx
import pytest
from django.conf import settings as django_settings

from access import services as access
from access.models import AccessToken
from accounts.models import CacheRepair
from tests.factories import PASSWORD
from tests.helpers import fund
from tests.servers import free_port, process_server, wait_port

pytestmark = pytest.mark.django_db(transaction=True)

BREAKER_SECONDS = 2


class OwnRedis:
    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = workdir
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=5)

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.thaw()
            self.kill()


@pytest.fixture
def own_redis(tmp_path):
    redis = OwnRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def webs(own_redis, zenzefi_url):
    database = django_settings.DATABASES["default"]
    env = {
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "REDIS_URL": own_redis.url,
        "CELERY_BROKER_URL": "memory://",
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DEBUG": "false",
        "ZENZEFI_TARGET_URL": zenzefi_url,
        "REDIS_BREAKER_SECONDS": str(BREAKER_SECONDS),
        "LOG_LEVEL": "WARNING",
    }
    with process_server(env) as first, process_server(env) as second:
        yield first, second


def proxied(base, token, device, path="/echo"):
    return httpx.get(
        base + "/api/v1/proxy" + path, headers={"X-Access-Token": token.secret, "X-Device-ID": device}, timeout=10
    )


class Clock:
    """Every request of a phase: its status and how long it took."""

    def __init__(self):
        self.seen = []

    def __call__(self, label, send):
        started = time.monotonic()
        response = send()
        self.seen.append((label, response.status_code, time.monotonic() - started))
        return response

    def failures(self):
        return [s for s in self.seen if s[1] >= 500]

    def slowest(self):
        return max(s[2] for s in self.seen)


def login(base, user):
    return httpx.post(base + "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}, timeout=10)


def bearer(base, user) -> dict:
    return {"Authorization": "Bearer " + login(base, user).json()["access_token"]}


def test_redis_frozen_killed_and_restarted_under_traffic(alice, bob, own_redis, webs):
    first, second = webs
    fund(alice, "200")
    warm = access.token_purchase(user=alice, duration_hours=24)
    cold = access.token_purchase(user=alice, duration_hours=12)
    spare = access.token_purchase(user=alice, duration_hours=1)
    # The warm token is cached and known in both processes (the warm path), on device W.
    for base in (first, second):
        assert proxied(base, warm, "device-W-00001").status_code == 200
    jwt = bearer(first, alice)
    clock = Clock()

    # --- Redis frozen: every call to it would hang -------------------------------------------------
    own_redis.freeze()
    try:
        for base in (first, second):
            for _ in range(3):
                assert clock("warm", lambda b=base: proxied(b, warm, "device-W-00001")).status_code == 200
        assert clock("cold", lambda: proxied(first, cold, "device-C-00001")).status_code == 200
        assert clock("cold again", lambda: proxied(first, cold, "device-C-00001")).status_code == 200
        # The device rule holds on the database, across the two processes.
        other = clock("cold, second device", lambda: proxied(second, cold, "device-X-00002"))
        assert other.status_code == 409
        assert other.json()["detail"].startswith("Token already in use on device 'device-C...'")
        assert clock("login", lambda: login(second, bob)).status_code == 200
        bought = clock(
            "purchase",
            lambda: httpx.post(second + "/api/v1/tokens/purchase", json={"duration_hours": 1}, headers=jwt, timeout=10),
        )
        assert bought.status_code == 201, bought.text
        revoked = clock("revoke", lambda: httpx.delete(f"{first}/api/v1/tokens/{warm.pk}", headers=jwt, timeout=10))
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked"] is True
        # The revoked token's cached facts could not be dropped: the deletion waits in the database.
        assert CacheRepair.objects.filter(delete=True).count() >= 1
        assert clock("revoked, during", lambda: proxied(second, warm, "device-W-00001")).status_code == 401
        health = clock("health", lambda: httpx.get(first + "/health", timeout=10))
        assert health.status_code == 200
    finally:
        own_redis.thaw()

    assert clock.failures() == []
    assert clock.slowest() < 1.0, clock.seen

    # --- Redis back: the stale entry of the revoked token is never honoured --------------------------
    time.sleep(BREAKER_SECONDS + 0.5)
    for base in (first, second):
        for _ in range(2):
            assert proxied(base, warm, "device-W-00001").status_code == 401
    deadline = time.monotonic() + 10
    while CacheRepair.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not CacheRepair.objects.exists()

    # --- Redis killed, then restarted empty -------------------------------------------------------------
    own_redis.kill()
    killed = Clock()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(
            pool.map(
                lambda i: killed("spare", lambda: proxied((first, second)[i % 2], spare, "device-S-00001")), range(12)
            )
        )
    assert {r.status_code for r in statuses} == {200}
    assert killed("login", lambda: login(first, alice)).status_code == 200
    assert killed.failures() == []
    assert killed.slowest() < 1.0, killed.seen
    own_redis.start()
    time.sleep(BREAKER_SECONDS + 0.5)
    for base in (first, second):
        assert proxied(base, spare, "device-S-00001").status_code == 200
        assert proxied(base, warm, "device-W-00001").status_code == 401
    assert AccessToken.objects.get(pk=warm.pk).revoked_at is not None
    assert os.environ.get("REDIS_URL") != own_redis.url  # the shared Redis was never touched
