"""Bad-token floods and cache stampedes cost Redis, not PostgreSQL.

A digest no token has is remembered as unknown; invalid tokens are limited per
client IP (429 past RATE_LIMIT_PROXY_INVALID, before any look-up); concurrent
cache misses of one token share one database read per process. Queries are
counted on Django's cursor, in every thread (the gate server shares this process).
"""

import asyncio
import contextlib
import secrets
import threading
import time

import httpx
import pytest
from django.core.cache import cache
from django.db import connection, transaction

from access import services as access
from tests.helpers import fund
from tests.servers import process_server
from tests.test_redis_faults import OwnRedis
from zenzefi import aioredis

pytestmark = pytest.mark.django_db(transaction=True)

DEVICE = "workshop-pc-0001"


@pytest.fixture
def token_queries(monkeypatch):
    """The SQL statements on the access-token table, from any thread of this process."""
    from django.db.backends import utils

    seen = []
    original = utils.CursorWrapper.execute

    def counting(self, sql, params=None):
        if '"access_accesstoken"' in sql:
            seen.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(utils.CursorWrapper, "execute", counting)
    return seen


@pytest.fixture
def http(gate, upstream, settings):
    settings.TRUSTED_PROXY_IPS = ["127.0.0.1"]  # X-Forwarded-For names the client: several addresses in one test
    with httpx.Client(base_url=gate.url + "/api/v1/proxy", timeout=30) as client:
        yield client


def random_secret() -> str:
    return secrets.token_urlsafe(48)


def sent(http, secret, ip, path="/echo"):
    return http.get(path, headers={"X-Access-Token": secret, "X-Device-ID": DEVICE, "X-Forwarded-For": ip})


def test_a_spray_of_random_tokens_costs_one_query_per_secret(http, settings, token_queries):
    settings.RATE_LIMIT_PROXY_INVALID = "100000/60"  # out of the way: the negative cache is what is measured
    spray = [random_secret() for _ in range(5)]

    statuses = [sent(http, spray[i % 5], "203.0.113.7", "/status" if i % 4 == 0 else "/echo") for i in range(200)]

    assert statuses[0].json() == {"detail": "Invalid or expired access token"}
    assert {r.status_code for r in statuses} == {401}
    assert len(token_queries) == 5  # each unknown secret is looked up once, then answered from Redis


def test_a_new_token_drops_the_unknown_mark_of_its_digest(alice, monkeypatch, token_queries):
    secret = random_secret()
    assert access.token_validate(secret) is None  # no such token: remembered as unknown
    assert access.token_validate(secret) is None
    assert len(token_queries) == 1
    fund(alice, "10")
    monkeypatch.setattr(access, "secret_generate", lambda: secret)  # the impossible case: a guess made before

    token = access.token_purchase(user=alice, duration_hours=1)

    assert access.token_validate(secret).token_id == str(token.pk)


def test_the_31st_invalid_token_from_one_address_is_429(http, alice, token_queries):
    fund(alice, "10")
    valid = access.token_purchase(user=alice, duration_hours=1)
    flooder, other = "198.51.100.1", "198.51.100.2"
    assert sent(http, valid.secret, flooder).status_code == 200  # first use: activates
    assert sent(http, valid.secret, flooder).status_code == 200  # known to this process: the warm path
    token_queries.clear()

    answers = [sent(http, random_secret(), flooder, "/status" if i % 3 == 0 else "/echo") for i in range(200)]

    assert [r.status_code for r in answers[:30]] == [401] * 30
    assert {r.status_code for r in answers[30:]} == {429}
    limited = answers[30]
    assert limited.json()["detail"].startswith("Too many invalid access tokens from your address. Try again in ")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["X-RateLimit-Limit"] == "30"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert len(token_queries) == 30  # one look-up per secret until the limit; the 170 others: none
    # Another address is not affected; a token it has never used works.
    assert sent(http, random_secret(), other).status_code == 401
    assert sent(http, valid.secret, other).status_code == 200
    # The flooding address: a known valid token (warm) still works; the cold path is refused, before any query.
    assert sent(http, valid.secret, flooder).status_code == 200
    access._KNOWN.clear()
    before = len(token_queries)
    refused = sent(http, valid.secret, flooder)
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert len(token_queries) == before


@contextlib.contextmanager
def token_table_locked(seconds: float):
    """Reads of the token table wait ``seconds`` (another connection holds a lock): concurrent misses overlap."""
    locked, done = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                connection.cursor().execute("LOCK TABLE access_accesstoken IN ACCESS EXCLUSIVE MODE")
                locked.set()
                done.wait(seconds)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(5)
    try:
        yield
    finally:
        holder.join()


def run_async(coro):
    """``asyncio.run`` in a thread of its own: Playwright's sync API may hold a running loop in this one."""
    outcome = {}

    def target():
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised below, in the test's thread
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def validate_all(secret: str, count: int):
    async def run():
        try:
            return await asyncio.gather(*(access.token_validate_async(secret) for _ in range(count)))
        finally:
            await aioredis.close()

    return run_async(run())


def test_a_cache_expiry_under_50_concurrent_requests_reads_the_database_once(alice, token_queries):
    fund(alice, "10")
    token = access.token_purchase(user=alice, duration_hours=1)
    access.token_activate(token_id=token.pk)  # no pending-gift question: one statement per validation
    [first] = validate_all(token.secret, 1)  # cached, and known to this process
    cache.delete(access.FACTS_CACHE_KEY.format(access.secret_digest(token.secret)))  # the entry expires
    token_queries.clear()

    with token_table_locked(0.5):
        results = validate_all(token.secret, 50)

    assert first.token_id == str(token.pk)
    assert [r.token_id for r in results] == [str(token.pk)] * 50
    assert len(token_queries) == 1
    assert access._INFLIGHT == {}


def test_a_failed_read_reaches_every_waiter_and_leaves_nothing_behind(alice, monkeypatch):
    calls = []

    def failing(secret):
        calls.append(secret)
        time.sleep(0.2)  # still in flight when every waiter's Redis miss has come back
        raise RuntimeError("database gone")

    monkeypatch.setattr(access, "token_validate", failing)
    secret = random_secret()

    async def ten():
        try:
            return await asyncio.gather(
                *(access.token_validate_async(secret) for _ in range(10)), return_exceptions=True
            )
        finally:
            await aioredis.close()

    results = run_async(ten())

    assert len(calls) == 1
    assert [str(r) for r in results] == ["database gone"] * 10
    assert access._INFLIGHT == {}


def test_a_cancelled_waiter_does_not_cancel_the_shared_read(alice, token_queries):
    fund(alice, "10")
    token = access.token_purchase(user=alice, duration_hours=1)
    access.token_activate(token_id=token.pk)
    token_queries.clear()

    async def scenario():
        try:
            leaving = asyncio.ensure_future(access.token_validate_async(token.secret))
            while not access._INFLIGHT:  # its database read has started
                await asyncio.sleep(0)
            staying = asyncio.ensure_future(access.token_validate_async(token.secret))
            await asyncio.sleep(0)
            leaving.cancel()
            return await staying, leaving
        finally:
            await aioredis.close()

    facts, leaving = run_async(scenario())

    assert facts.token_id == str(token.pk)
    assert leaving.cancelled()
    assert len(token_queries) == 1
    assert access._INFLIGHT == {}


def test_with_redis_down_the_database_still_refuses_random_tokens(alice, tmp_path, zenzefi_url):
    from django.conf import settings as django_settings

    redis = OwnRedis(tmp_path)
    redis.start()
    database = django_settings.DATABASES["default"]
    env = {
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "REDIS_URL": redis.url,
        "CELERY_BROKER_URL": "memory://",
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DEBUG": "false",
        "ZENZEFI_TARGET_URL": zenzefi_url,
        "LOG_LEVEL": "WARNING",
    }
    fund(alice, "10")
    valid = access.token_purchase(user=alice, duration_hours=1)
    try:
        with process_server(env) as base:
            redis.kill()
            repeated = random_secret()
            # More than the per-IP limit: without Redis the limiter fails open, and the database decides each one.
            answers = [
                httpx.get(
                    base + "/api/v1/proxy" + ("/status" if i % 2 else "/echo"),
                    headers={"X-Access-Token": repeated if i % 5 == 0 else random_secret(), "X-Device-ID": DEVICE},
                    timeout=10,
                )
                for i in range(40)
            ]
            works = httpx.get(
                base + "/api/v1/proxy/echo", headers={"X-Access-Token": valid.secret, "X-Device-ID": DEVICE}, timeout=10
            )
    finally:
        redis.stop()

    assert [r.status_code for r in answers] == [401] * 40
    assert {r.json()["detail"] for r in answers} == {"Invalid or expired access token"}
    assert works.status_code == 200, works.text
