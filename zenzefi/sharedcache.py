"""A lock for read-modify-write on Django's cache, when there is no Redis to run a script.

On the embedded default the cache is a database table every process shares
(settings.CACHES). The device rule and the rate-limit windows read a value,
decide and write it back; ``locked`` makes that one step across threads and
processes. It is built on ``cache.add``, which the database cache makes atomic
(the key is the table's primary key, written in one transaction): whoever adds
the lock key holds the lock. The key expires, so a process that died holding
it blocks others for ``hold`` seconds at most.

With Redis the callers run Lua scripts instead and never come here.
"""

import contextlib
import time
import uuid

from django.core.cache import cache


class LockTimeout(Exception):
    """The lock stayed taken for longer than the caller was willing to wait."""


@contextlib.contextmanager
def locked(name: str, *, hold: int = 10, wait: float = 10.0):
    """Hold ``lock:<name>`` while the block runs (sync code; in async code, run it in a thread)."""
    key = f"lock:{name}"
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    delay = 0.002
    while not cache.add(key, owner, timeout=hold):
        if time.monotonic() > deadline:
            raise LockTimeout(name)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    try:
        yield
    finally:
        # Only our own lock is released; check-then-delete can race only after
        # the lock outlived ``hold``, which a block of a few cache calls does not.
        if cache.get(key) == owner:
            cache.delete(key)
