"""Sliding-window rate limits, shared by every process through Redis.

A window is a Redis sorted set of hit timestamps (``rl:<bucket>:<key>``),
trimmed and counted atomically by one Lua script. Without Redis (the embedded
default) the same algorithm runs on the shared database cache: the window is a
list of hit timestamps, read and written under a zenzefi.sharedcache lock, so
every process counts into the same window. Errors fail open: an outage of the
limiter must not lock users out.
"""

import hashlib
import logging
import math
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from zenzefi import breaker, metrics, sharedcache
from zenzefi.errors import RateLimited
from zenzefi.middleware import HybridMiddleware
from zenzefi.net import request_ip

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, spec: str) -> "Rate":
        count, _sep, seconds = spec.partition("/")
        return cls(int(count), int(seconds or 60))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds when the oldest hit leaves the window
    retry_after: int  # seconds; 0 when allowed

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers

    def error(self, detail: str | None = None) -> RateLimited:
        return RateLimited(
            detail or f"Rate limit exceeded. Try again in {self.retry_after} seconds.",
            limit=self.limit,
            retry_after=self.retry_after,
            reset=self.reset,
        )


_SCRIPT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local record = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  allowed = 1
  if record == 1 then
    redis.call('ZADD', key, now, ARGV[4])
    count = count + 1
  end
end
if count > 0 then redis.call('PEXPIRE', key, window) end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local first = now
if oldest[2] then first = tonumber(oldest[2]) end
return {allowed, count, first}
"""


def _run_shared(key: str, now: int, window: int, limit: int, record: bool) -> tuple[int, int, int]:
    """The Lua script's rule on the shared cache. The user-given part of the key is hashed (cache-key safe)."""
    bucket, _sep, rest = key.partition(":")[2].partition(":")
    name = f"rl:{bucket}:{hashlib.sha256(rest.encode()).hexdigest()[:32]}"
    with sharedcache.locked(name):
        stored = cache.get(name) or []
        hits = [t for t in stored if t > now - window]
        allowed = len(hits) < limit
        if allowed and record:
            hits.append(now)
        if hits != stored:
            cache.set(name, hits, timeout=math.ceil(window / 1000))
    return int(allowed), len(hits), hits[0] if hits else now


_script = None


def _redis():
    if not settings.REDIS_URL:
        return None
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def _evaluate(key: str, rate: Rate, *, record: bool) -> Decision:
    global _script
    now = int(time.time() * 1000)
    window = rate.seconds * 1000
    client = _redis()
    if client is None:
        try:
            allowed, count, first = _run_shared(key, now, window, rate.count, record)
        except Exception:  # the limiter fails open
            logger.warning("rate limiter unavailable; request allowed", exc_info=True)
            return Decision(True, rate.count, rate.count, math.ceil((now + window) / 1000), 0)
    elif not breaker.redis.available():  # Redis is down (the breaker logged it): the limiter fails open
        return Decision(True, rate.count, rate.count, math.ceil((now + window) / 1000), 0)
    else:
        try:
            if _script is None:
                _script = client.register_script(_SCRIPT)
            member = f"{now}:{secrets.token_hex(4)}"
            allowed, count, first = (
                int(v) for v in _script(keys=[key], args=[now, window, rate.count, member, int(record)], client=client)
            )
        except Exception as exc:  # the limiter fails open
            breaker.redis.failure(exc)
            return Decision(True, rate.count, rate.count, math.ceil((now + window) / 1000), 0)
        breaker.redis.success()
    return decide(rate, now, allowed, count, first)


def hit(bucket: str, key: str, rate: Rate) -> Decision:
    """Count one hit if the window has room; say whether it had."""
    decision = _evaluate(f"rl:{bucket}:{key}", rate, record=True)
    if not decision.allowed:
        metrics.RATE_LIMITED.labels(bucket).inc()
    return decision


async def hit_async(bucket: str, key: str, rate: Rate) -> Decision:
    """``hit`` for async code (the proxy), through the event loop's Redis client."""
    decision = await _evaluate_async(bucket, key, rate, record=True)
    if not decision.allowed:
        metrics.RATE_LIMITED.labels(bucket).inc()
    return decision


async def check_async(bucket: str, key: str, rate: Rate) -> Decision:
    """``check`` for async code: whether one more hit would be allowed, without counting one."""
    return await _evaluate_async(bucket, key, rate, record=False)


async def _evaluate_async(bucket: str, key: str, rate: Rate, *, record: bool) -> Decision:
    from asgiref.sync import sync_to_async

    from zenzefi import aioredis

    redis = aioredis.client()
    if redis is None:
        return await sync_to_async(_evaluate, thread_sensitive=False)(f"rl:{bucket}:{key}", rate, record=record)
    now = int(time.time() * 1000)
    window = rate.seconds * 1000
    if not aioredis.usable():  # Redis is down (the breaker logged it): the limiter fails open
        return Decision(True, rate.count, rate.count, math.ceil((now + window) / 1000), 0)
    try:
        script = redis.register_script(_SCRIPT)
        member = f"{now}:{secrets.token_hex(4)}"
        args = [now, window, rate.count, member, int(record)]
        allowed, count, first = (int(v) for v in await aioredis.call(script(keys=[f"rl:{bucket}:{key}"], args=args)))
    except Exception:  # the limiter fails open (aioredis.call fed the breaker)
        return Decision(True, rate.count, rate.count, math.ceil((now + window) / 1000), 0)
    return decide(rate, now, allowed, count, first)


def decide(rate: Rate, now_ms: int, allowed: int, count: int, first_ms: int) -> Decision:
    reset_ms = first_ms + rate.seconds * 1000
    return Decision(
        allowed=bool(allowed),
        limit=rate.count,
        remaining=max(0, rate.count - count),
        reset=math.ceil(reset_ms / 1000),
        retry_after=0 if allowed else max(1, math.ceil((reset_ms - now_ms) / 1000)),
    )


def check(bucket: str, key: str, rate: Rate) -> Decision:
    """Whether one more hit would be allowed, without counting one."""
    return _evaluate(f"rl:{bucket}:{key}", rate, record=False)


class AuthRateLimitMiddleware(HybridMiddleware):
    """Limits the auth endpoints (API and pages) per client IP.

    A view opts in with ``rate_limit_scope = "auth"`` on its class. Only
    unsafe methods count, so opening the login page costs nothing. Every
    limited response carries the ``X-RateLimit-*`` headers.
    """

    def after(self, request, response):
        decision = getattr(request, "rate_limit_decision", None)
        if decision is not None:
            for name, value in decision.headers().items():
                response.headers.setdefault(name, value)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_class = getattr(view_func, "view_class", None) or getattr(view_func, "cls", None)
        scope = getattr(view_class, "rate_limit_scope", None)
        if scope != "auth" or request.method in ("GET", "HEAD", "OPTIONS") or not settings.RATE_LIMIT_ENABLED:
            return None
        decision = hit("auth", request_ip(request) or "unknown", Rate.parse(settings.RATE_LIMIT_AUTH))
        request.rate_limit_decision = decision
        if decision.allowed:
            return None
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": decision.error().detail}, status=429)
        else:
            response = render(
                request,
                "429.html",
                {"retry_after": decision.retry_after, "message": _("Too many attempts. Please wait and try again.")},
                status=429,
            )
        for name, value in decision.headers().items():
            response[name] = value
        return response


def api_rate(user) -> Rate | None:
    """A user's API limit, by tier: free and premium from settings; enterprise the admin-set
    ``api_limit_per_minute``, or None (unlimited) when it is empty."""
    if user.rate_tier == "enterprise":
        return None if user.api_limit_per_minute is None else Rate(user.api_limit_per_minute, 60)
    return Rate.parse(settings.RATE_LIMIT_API_PREMIUM if user.rate_tier == "premium" else settings.RATE_LIMIT_API)


def api_usage(user, rate: Rate) -> int:
    """How many API requests of the user the current window holds, without counting one (0 if the limiter is down)."""
    # Probed with a limit no window reaches, so a count above the user's own limit reads exactly too.
    probe = Rate(10**9, rate.seconds)
    return probe.count - check("api", str(user.pk), probe).remaining


class UserTierThrottle:
    """DRF throttle: per user on the API, by the user's tier (``api_rate``; unlimited enterprise is not counted).

    Anonymous requests are not counted here (the auth endpoints have their own
    per-IP limit). The decision is kept on the request so the response carries
    the ``X-RateLimit-*`` headers.
    """

    def allow_request(self, request, view) -> bool:
        user = getattr(request, "user", None)
        if not settings.RATE_LIMIT_ENABLED or user is None or not user.is_authenticated:
            return True
        rate = api_rate(user)
        if rate is None:
            return True
        self.decision = hit("api", str(user.pk), rate)
        request._request.rate_limit_decision = self.decision
        return self.decision.allowed

    def wait(self) -> float:
        return self.decision.retry_after
