"""The device rule and session counters, in Redis so every web process shares them.

One hash per token (``proxy:session:<token id>``) holds the device using it,
the session id and its live counters. A Lua script decides atomically whether
a request's device may use the token: the same device touches the session,
another device is refused while the session is active within
SESSION_IDLE_TIMEOUT_SECONDS, after which it takes over (the old session is
returned so it can be closed). Without Redis (embedded default) the same
rule runs on the shared database cache, one token at a time under a
zenzefi.sharedcache lock, so the worker's flush sees the web's sessions and
counters; an index key lists the tokens that have a session.
"""

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache

from zenzefi import aioredis, breaker, sharedcache

logger = logging.getLogger(__name__)

KEY = "proxy:session:{}"
# Without Redis: the ids of the tokens whose session key may exist (snapshot_all cannot scan the cache).
INDEX_KEY = "proxy:session-index"
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


# The warm path in one round trip: the token's cached facts, its owner's
# "deactivated" mark, the scope verdict (decided by the caller) and the device
# rule, in the reference's order. KEYS: facts, blocked, session.
_RATE_LIMIT = """
local rl_count, limit = 0, tonumber(ARGV[11])
if limit > 0 then
  local now_ms, window = tonumber(ARGV[9]), tonumber(ARGV[10])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now_ms - window)
  rl_count = redis.call('ZCARD', KEYS[4])
  if rl_count >= limit then
    local oldest = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
    return {'limited', facts, rl_count, oldest[2] or ARGV[9]}
  end
  redis.call('ZADD', KEYS[4], now_ms, ARGV[12])
  redis.call('PEXPIRE', KEYS[4], window)
  rl_count = rl_count + 1
end
"""
_CHECK_AND_TOUCH = (
    """
local facts = redis.call('GET', KEYS[1])
if not facts then return {'miss'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'blocked'} end
if ARGV[8] ~= '1' then return {'denied', facts} end
"""
    + _RATE_LIMIT
    + _TOUCH.replace("KEYS[1]", "KEYS[3]")
    .replace("return {'same'", "return {'same', facts, rl_count")
    .replace("return {'conflict'", "return {'conflict', facts, rl_count")
    .replace("return {'new', sid, ARGV[2], cur[3]", "return {'new', facts, rl_count, sid, ARGV[2], cur[3]")
    .replace("return {'new', sid, ARGV[2]}", "return {'new', facts, rl_count, sid, ARGV[2]}")
)


@dataclass(frozen=True)
class Touch:
    outcome: str  # "same" | "new" | "conflict"
    session_id: str = ""
    started: float = 0.0
    other_device: str = ""
    # When a new session took over an idle one: the old session and its last counters.
    previous: dict | None = None
    # Decided on the database (Redis unavailable): the ProxySession row is the session and its counters.
    stored: bool = False


_script = None
_combined = None


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
        return await sync_to_async(_touch_shared, thread_sensitive=False)(
            token_id, device_id, now, idle, new_sid, ip, user_agent
        )
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
    return _touch_result(result)


def _touch_result(result: list[str]) -> Touch:
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


async def check_and_touch(
    *,
    facts_key: str,
    blocked_key: str,
    token_id: str,
    device_id: str,
    ip: str,
    user_agent: str,
    scope_ok: bool,
    rate=None,
):
    """The warm path's one Redis call. Returns (outcome, raw cached facts, touch, rate decision).

    outcome: "miss" (facts not cached: ask access.token_validate), "blocked"
    (owner deactivated), "denied" (scope), "limited" (the token's rate limit),
    or the device rule's outcome. ``rate`` is the token's limit (None: none).
    """
    global _combined
    from zenzefi.ratelimit import decide

    redis = aioredis.client()
    if _combined is None:
        _combined = redis.register_script(_CHECK_AND_TOUCH)
    now = time.time()
    now_ms = int(now * 1000)
    result = await _combined(
        keys=[facts_key, blocked_key, aioredis.cache_key(KEY.format(token_id)), f"rl:proxy:{token_id}"],
        args=[
            device_id,
            repr(now),
            settings.SESSION_IDLE_TIMEOUT_SECONDS,
            str(uuid.uuid4()),
            ip or "",
            (user_agent or "")[:512],
            RETENTION_SECONDS,
            "1" if scope_ok else "0",
            now_ms,
            rate.seconds * 1000 if rate else 0,
            rate.count if rate else 0,
            f"{now_ms}:{uuid.uuid4().hex[:8]}",
        ],
        client=redis,
    )
    outcome = _decode(result[0])
    if outcome in ("miss", "blocked", "denied"):
        return outcome, (result[1] if len(result) > 1 else None), None, None
    count = int(result[2])
    if outcome == "limited":
        return outcome, result[1], None, decide(rate, now_ms, 0, count, int(float(_decode(result[3]))))
    decision = decide(rate, now_ms, 1, count, now_ms) if rate else None
    touch = _touch_result([outcome, *[_decode(v) for v in result[3:]]])
    return outcome, result[1], touch, decision


def _touch_shared(token_id, device_id, now, idle, new_sid, ip, user_agent) -> Touch:
    """The device rule of ``_TOUCH`` on the shared cache (no Redis): read, decide and write under the token's lock."""
    key = KEY.format(token_id)
    with sharedcache.locked(key):
        cur = cache.get(key)
        if cur and cur["device"] == device_id:
            cur.update(last=now, ip=ip or "", ua=(user_agent or "")[:512], req=cur["req"] + 1)
            cache.set(key, cur, timeout=RETENTION_SECONDS)
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
            "ip": ip or "",
            "ua": (user_agent or "")[:512],
        }
        cache.set(key, fresh, timeout=RETENTION_SECONDS)
    # After the session exists, so snapshot_all's pruning cannot drop a live one from the index.
    with sharedcache.locked(INDEX_KEY):
        index = cache.get(INDEX_KEY) or []
        if token_id not in index:
            cache.set(INDEX_KEY, [*index, token_id], timeout=None)
    previous = {k: cur[k] for k in ("sid", "last", "req", "bin", "bout")} if cur else None
    return Touch("new", session_id=new_sid, started=now, previous=previous)


# Bytes are counted in process memory and added to the sessions in Redis once a
# second, in one round trip for all tokens: the hot path makes no call for them.
FLUSH_EVERY_SECONDS = 1.0
_pending: dict[str, list[int]] = {}
_flushers: dict[int, asyncio.Task] = {}
_ADD_BYTES = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, 'bin', ARGV[2 * i - 1])
    redis.call('HINCRBY', key, 'bout', ARGV[2 * i])
  end
end
return 0
"""
_add_bytes = None


def count_bytes(*, token_id: str, bytes_in: int, bytes_out: int) -> None:
    pending = _pending.setdefault(token_id, [0, 0])
    pending[0] += bytes_in
    pending[1] += bytes_out
    loop = asyncio.get_running_loop()
    flusher = _flushers.get(id(loop))
    if flusher is None or flusher.done():
        _flushers[id(loop)] = loop.create_task(_flush_every_second())


async def _flush_every_second() -> None:
    while True:
        await asyncio.sleep(FLUSH_EVERY_SECONDS)
        if settings.REDIS_URL and not aioredis.usable():
            continue  # Redis is down (the breaker logged it): the counts wait
        try:
            await flush_bytes()
        except Exception as exc:  # Redis hiccup: the counts wait for the next round
            if settings.REDIS_URL:
                breaker.redis.failure(exc)
            else:
                logger.warning("could not add session byte counts", exc_info=True)


async def flush_bytes() -> None:
    """Add the bytes counted since the last call to the live sessions (those that still exist)."""
    global _add_bytes
    if not _pending:
        return
    batch = dict(_pending)
    _pending.clear()
    redis = aioredis.client()
    if redis is None:
        try:
            await sync_to_async(_add_bytes_shared, thread_sensitive=False)(batch)
        except Exception:
            _pending_again(batch)
            raise
        return
    if _add_bytes is None:
        _add_bytes = redis.register_script(_ADD_BYTES)
    keys = [aioredis.cache_key(KEY.format(token_id)) for token_id in batch]
    args = [n for counts in batch.values() for n in counts]
    try:
        await _add_bytes(keys=keys, args=args, client=redis)
    except Exception:
        _pending_again(batch)
        raise


def _pending_again(batch: dict[str, list[int]]) -> None:
    for token_id, (bytes_in, bytes_out) in batch.items():
        pending = _pending.setdefault(token_id, [0, 0])
        pending[0] += bytes_in
        pending[1] += bytes_out


def _add_bytes_shared(batch: dict[str, list[int]]) -> None:
    for token_id, (bytes_in, bytes_out) in batch.items():
        key = KEY.format(token_id)
        with sharedcache.locked(key):
            cur = cache.get(key)
            if cur:  # as the Redis script: only sessions that still exist
                cur["bin"] += bytes_in
                cur["bout"] += bytes_out
                cache.set(key, cur, timeout=RETENTION_SECONDS)


def snapshot_all() -> dict[str, dict]:
    """Every live session hash, for the flush task (sync; runs in Celery or a test)."""
    if not settings.REDIS_URL:
        return _snapshot_shared()
    from django_redis import get_redis_connection

    redis = get_redis_connection("default")
    prefix = aioredis.cache_key(KEY.format(""))
    found = {}
    for key in redis.scan_iter(match=prefix + "*", count=500):
        values = {_decode(k): _decode(v) for k, v in redis.hgetall(key).items()}
        if values:
            found[_decode(key)[len(prefix) :]] = values
    return found


def _snapshot_shared() -> dict[str, dict]:
    index = cache.get(INDEX_KEY) or []
    values = cache.get_many([KEY.format(token_id) for token_id in index])
    found = {token_id: values[KEY.format(token_id)] for token_id in index if KEY.format(token_id) in values}
    if len(found) < len(index):
        # Drop the tokens whose session is gone, re-checked under the index lock (a touch may have made one since).
        with sharedcache.locked(INDEX_KEY):
            index = cache.get(INDEX_KEY) or []
            alive = cache.get_many([KEY.format(token_id) for token_id in index])
            cache.set(INDEX_KEY, [t for t in index if KEY.format(t) in alive], timeout=None)
    return found


def drop(token_id: str, session_id: str) -> None:
    """Forget a closed session's hash, unless a new session replaced it meanwhile."""
    if not settings.REDIS_URL:
        key = KEY.format(token_id)
        with sharedcache.locked(key):
            cur = cache.get(key)
            if cur and cur["sid"] == session_id:
                cache.delete(key)
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
