"""A circuit breaker for Redis, per process.

Redis is a cache here, never the only copy of anything that matters. When a
call to it fails (refused, reset, or timed out after REDIS_SOCKET_TIMEOUT),
the breaker opens: for REDIS_BREAKER_SECONDS every caller skips Redis at once
and takes its fallback (the database, or "allow" for rate limits) instead of
each waiting for the timeout. The next call after that is a trial; success
closes the breaker. One warning is logged per outage and per
``WARN_EVERY_SECONDS`` while it lasts, not one per request.

``recoveries`` counts closings, so that code which must repair what an outage
left behind in the cache (``accounts.services.cache_repairs_replay``) can run
once per recovery in each process.
"""

import logging
import time

from django.conf import settings

logger = logging.getLogger("zenzefi.redis")

WARN_EVERY_SECONDS = 30.0


class Breaker:
    def __init__(self, name: str):
        self.name = name
        self.open_until = 0.0
        self.down_since = 0.0
        self.failures = 0
        self.recoveries = 0
        self._warned = 0.0

    def reset(self) -> None:
        """Closed, no outage in progress (tests start from here)."""
        self.open_until = self.down_since = self._warned = 0.0
        self.failures = 0

    def available(self) -> bool:
        """False while open: skip the dependency and take the fallback."""
        return time.monotonic() >= self.open_until

    def failure(self, exc: BaseException | None = None) -> None:
        now = time.monotonic()
        self.failures += 1
        if not self.down_since:
            self.down_since = now
        self.open_until = now + settings.REDIS_BREAKER_SECONDS
        if now - self._warned >= WARN_EVERY_SECONDS:
            self._warned = now
            logger.warning(
                "%s unavailable (%s): skipping it for %g s at a time, using the fallbacks",
                self.name,
                type(exc).__name__ if exc else "error",
                settings.REDIS_BREAKER_SECONDS,
            )

    def success(self) -> None:
        if self.down_since:
            logger.warning(
                "%s is back after %.1f s (%d failed calls)",
                self.name,
                time.monotonic() - self.down_since,
                self.failures,
            )
            self.down_since = 0.0
            self.failures = 0
            self._warned = 0.0
            self.recoveries += 1
        self.open_until = 0.0


redis = Breaker("Redis")
