"""The device rule and session counters, in Redis so every web process shares them.

One hash per token (``proxy:session:<token id>``) holds the device using it,
the session id and its live counters. A Lua script decides atomically whether
a request's device may use the token: the same device touches the session,
another device is refused while the session is active within
SESSION_IDLE_TIMEOUT_SECONDS, after which it takes over (the old session is
returned so it can be closed). Without Redis (embedded default) the same
rule runs in process memory.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass

from django.conf import settings

from zenzefi import aioredis

KEY = "proxy:session:{}"
# Kept well past the idle timeout, so the flush task still finds the counters.
RETENTION_SECONDS = 7 * 24 * 3600

_TOUCH = """
local key = KEYS[1]
local device, now, idle, sid = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local cur = redis.call('HMGET', key, 'device', 'last', 'sid', 'started', 'req', 'bin', 'bout', 'ip', 'ua')
if cur[1] == device then
  redis.call('HSET', key, 'last', ARGV[2], 'ip', ARGV[5], 'ua', ARGV[6])
  redis.call('HINCRBY', key, 'req', 1)
  redis.call('EXPIRE', key, tonumber(ARGV[7]))
  return {'same', cur[3], cur[4]}
end
if cur[1] and (now - tonumber(cur[2])) < idle then
  return {'conflict', cur[1], cur[4]}
end
redis.call('DEL', key)
redis.call('HSET', key, 'device', device, 'sid', sid, 'started', ARGV[2], 'last', ARGV[2],
           'req', 1, 'bin', 0, 'bout', 0, 'ip', ARGV[5], 'ua', ARGV[6])
redis.call('EXPIRE', key, tonumber(ARGV[7]))
if cur[1] then
  return {'new', sid, ARGV[2], cur[3], cur[2], cur[5], cur[6], cur[7]}
end
return {'new', sid, ARGV[2]}
"""


@dataclass(frozen=True)
class Touch:
    outcome: str  # "same" | "new" | "conflict"
    session_id: str = ""
    started: float = 0.0
    other_device: str = ""
    # When a new session took over an idle one: the old session and its last counters.
    previous: dict | None = None


_memory: dict[str, dict] = {}
_memory_lock = asyncio.Lock()
_script = None


def _decode(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def touch(*, token_id: str, device_id: str, ip: str, user_agent: str) -> Touch:
    """Apply the device rule for one request and count it."""
    global _script
    now = time.time()
    idle = settings.SESSION_IDLE_TIMEOUT_SECONDS
    new_sid = str(uuid.uuid4())
    redis = aioredis.client()
    if redis is None:
        return await _touch_memory(token_id, device_id, now, idle, new_sid, ip, user_agent)
    if _script is None:
        _script = redis.register_script(_TOUCH)
    result = [
        _decode(v)
        for v in await _script(
            keys=[aioredis.cache_key(KEY.format(token_id))],
            args=[device_id, repr(now), idle, new_sid, ip or "", (user_agent or "")[:512], RETENTION_SECONDS],
            client=redis,
        )
    ]
    if result[0] == "conflict":
        return Touch("conflict", other_device=result[1], started=float(result[2]))
    previous = None
    if result[0] == "new" and len(result) > 3:
        previous = {
            "sid": result[3],
            "last": float(result[4]),
            "req": int(result[5]),
            "bin": int(result[6]),
            "bout": int(result[7]),
        }
    return Touch(result[0], session_id=result[1], started=float(result[2]), previous=previous)


async def _touch_memory(token_id, device_id, now, idle, new_sid, ip, user_agent) -> Touch:
    async with _memory_lock:
        cur = _memory.get(token_id)
        if cur and cur["device"] == device_id:
            cur.update(last=now, ip=ip, ua=user_agent)
            cur["req"] += 1
            return Touch("same", session_id=cur["sid"], started=cur["started"])
        if cur and now - cur["last"] < idle:
            return Touch("conflict", other_device=cur["device"], started=cur["started"])
        fresh = {
            "device": device_id,
            "sid": new_sid,
            "started": now,
            "last": now,
            "req": 1,
            "bin": 0,
            "bout": 0,
            "ip": ip,
            "ua": user_agent,
        }
        _memory[token_id] = fresh
        previous = {k: cur[k] for k in ("sid", "last", "req", "bin", "bout")} if cur else None
        return Touch("new", session_id=new_sid, started=now, previous=previous)


async def count_bytes(*, token_id: str, bytes_in: int, bytes_out: int) -> None:
    redis = aioredis.client()
    if redis is None:
        cur = _memory.get(token_id)
        if cur:
            cur["bin"] += bytes_in
            cur["bout"] += bytes_out
        return
    key = aioredis.cache_key(KEY.format(token_id))
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(key, "bin", bytes_in)
        pipe.hincrby(key, "bout", bytes_out)
        await pipe.execute()


def snapshot_all() -> dict[str, dict]:
    """Every live session hash, for the flush task (sync; runs in Celery or a test)."""
    if not settings.REDIS_URL:
        return {token_id: dict(values) for token_id, values in _memory.items()}
    from django_redis import get_redis_connection

    redis = get_redis_connection("default")
    prefix = aioredis.cache_key(KEY.format(""))
    found = {}
    for key in redis.scan_iter(match=prefix + "*", count=500):
        values = {_decode(k): _decode(v) for k, v in redis.hgetall(key).items()}
        if values:
            found[_decode(key)[len(prefix) :]] = values
    return found


def drop(token_id: str, session_id: str) -> None:
    """Forget a closed session's hash, unless a new session replaced it meanwhile."""
    if not settings.REDIS_URL:
        cur = _memory.get(token_id)
        if cur and cur["sid"] == session_id:
            del _memory[token_id]
        return
    from django_redis import get_redis_connection

    redis = get_redis_connection("default")
    key = aioredis.cache_key(KEY.format(token_id))
    redis.eval(
        "if redis.call('HGET', KEYS[1], 'sid') == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        1,
        key,
        session_id,
    )
