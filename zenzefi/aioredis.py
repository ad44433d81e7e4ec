"""One asyncio Redis client per event loop, for the async proxy's hot path.

Keys written through Django's cache are read here with ``cache.make_key`` and
the same JSON encoding (settings: django-redis JSONSerializer).
"""

import asyncio
import json

from django.conf import settings
from django.core.cache import cache

from zenzefi import breaker

# loop id → (loop, client); the loop is kept to tell a new loop that reused a dead one's id.
_clients: dict[int, tuple] = {}


def client():
    """The loop's client, or None on the embedded default (no Redis)."""
    if not settings.REDIS_URL:
        return None
    import redis.asyncio as aioredis

    loop = asyncio.get_running_loop()
    found = _clients.get(id(loop))
    if found is None or found[0] is not loop:
        found = (
            loop,
            aioredis.from_url(
                settings.REDIS_URL,
                max_connections=200,
                health_check_interval=30,
                socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
                socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
            ),
        )
        _clients[id(loop)] = found
    return found[1]


def usable() -> bool:
    """Redis is configured and the circuit breaker is closed (zenzefi/breaker.py)."""
    return bool(settings.REDIS_URL) and breaker.redis.available()


async def call(awaitable):
    """Await one Redis call, feeding the breaker; re-raises the failure for the caller's fallback."""
    try:
        result = await awaitable
    except Exception as exc:
        breaker.redis.failure(exc)
        raise
    breaker.redis.success()
    return result


async def close() -> None:
    found = _clients.pop(id(asyncio.get_running_loop()), None)
    if found is not None:
        await found[1].aclose()


def cache_key(key: str) -> str:
    return cache.make_key(key)


def cache_decode(raw: bytes | None):
    """A value stored through Django's cache, as django-redis's JSON serializer wrote it."""
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return json.loads(raw)
