"""One asyncio Redis client per event loop, for the async proxy's hot path.

Keys written through Django's cache are read here with ``cache.make_key`` and
the same JSON encoding (settings: django-redis JSONSerializer).
"""

import asyncio
import json

from django.conf import settings
from django.core.cache import cache

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
        found = (loop, aioredis.from_url(settings.REDIS_URL, max_connections=200, health_check_interval=30))
        _clients[id(loop)] = found
    return found[1]


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
