"""django-redis with the circuit breaker: a failing Redis costs one timeout, then nothing.

``GuardedClient`` is django-redis's DefaultClient whose cache operations skip
Redis while ``zenzefi.breaker.redis`` is open (raising ``ConnectionInterrupted``
at once, as a failed call would) and feed the breaker with each outcome.
Callers that must not fail use the ``safe_*`` helpers below.
"""

import functools
import logging

from django.core.cache import cache
from django_redis.client import DefaultClient
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from zenzefi import breaker

logger = logging.getLogger("zenzefi.redis")

FAILURES = (ConnectionInterrupted, RedisError, OSError)

_GUARDED = (
    "get",
    "set",
    "add",
    "delete",
    "delete_many",
    "get_many",
    "set_many",
    "has_key",
    "incr",
    "decr",
    "touch",
    "expire",
    "ttl",
    "clear",
    "delete_pattern",
    "iter_keys",
    "keys",
)


def _guard(method):
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        if not breaker.redis.available():
            # As a failed call would: django-redis re-raises the cause.
            raise ConnectionInterrupted(connection=None) from RedisConnectionError("circuit breaker open")
        try:
            result = method(self, *args, **kwargs)
        except FAILURES as exc:
            breaker.redis.failure(exc)
            raise
        breaker.redis.success()
        return result

    return guarded


class GuardedClient(DefaultClient):
    pass


for _name in _GUARDED:
    if hasattr(DefaultClient, _name):
        setattr(GuardedClient, _name, _guard(getattr(DefaultClient, _name)))


# --- calls that must never fail a request ------------------------------------------------
# Any cache backend may fail (Redis, the database cache on a locked SQLite file): these
# answer "miss" / False and leave the decision to the caller's fallback.


def safe_get(key: str, default=None):
    try:
        return cache.get(key, default)
    except Exception:
        logger.debug("cache get failed for a key", exc_info=True)
        return default


def safe_get_many(keys: list[str]) -> dict:
    try:
        return cache.get_many(keys)
    except Exception:
        logger.debug("cache get_many failed", exc_info=True)
        return {}


def safe_set(key: str, value, timeout=None) -> bool:
    try:
        cache.set(key, value, timeout=timeout)
    except Exception:
        logger.debug("cache set failed for a key", exc_info=True)
        return False
    return True


def safe_delete(key: str) -> bool:
    try:
        cache.delete(key)
    except Exception:
        logger.debug("cache delete failed for a key", exc_info=True)
        return False
    return True
