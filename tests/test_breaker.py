"""The Redis circuit breaker and the client timeouts behind it."""

import logging

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache

from accounts.models import CacheRepair
from accounts.services import cache_forget, cache_repairs_replay
from zenzefi import breaker


def test_one_warning_per_outage_then_skip_until_the_cooldown(caplog, settings):
    settings.REDIS_BREAKER_SECONDS = 60
    watched = breaker.Breaker("Redis")
    with caplog.at_level(logging.WARNING, logger="zenzefi.redis"):
        for _ in range(50):
            watched.failure(TimeoutError())
        assert not watched.available()
        watched.success()

    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("Redis unavailable (TimeoutError): skipping it for 60 s")
    assert messages[1].startswith("Redis is back after") and messages[1].endswith("(50 failed calls)")
    assert watched.available()
    assert watched.recoveries == 1


def test_every_redis_client_has_short_timeouts():
    options = django_settings.CACHES["default"]["OPTIONS"]

    assert options["CLIENT_CLASS"] == "zenzefi.rediscache.GuardedClient"
    assert (options["SOCKET_CONNECT_TIMEOUT"], options["SOCKET_TIMEOUT"]) == (0.2, 0.2)


@pytest.mark.django_db
def test_an_open_breaker_skips_redis_and_keeps_the_invalidation(settings):
    settings.REDIS_BREAKER_SECONDS = 60
    cache.set("zg-test-stale", "facts", timeout=60)
    breaker.redis.failure(ConnectionError())

    cache_forget("zg-test-stale")  # never raises

    assert list(CacheRepair.objects.values_list("key", "delete")) == [("zg-test-stale", True)]
    assert cache_repairs_replay() == 0  # still down: nothing is lost
    breaker.redis.reset()
    assert cache.get("zg-test-stale") == "facts"
    assert cache_repairs_replay() == 1
    assert cache.get("zg-test-stale") is None
    assert not CacheRepair.objects.exists()
