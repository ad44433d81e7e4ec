"""When the database cannot be reached: which errors say so, the one answer given, and the warning logged.

Every entry point (the API's exception handler, the portal's middleware, the
proxy's cold path) answers 503 with ``DETAIL`` instead of a 500 and a
traceback. An outage is logged as one warning per ``WARN_EVERY_SECONDS`` with
the count of refused requests, not one traceback per request.

Errors the database reports about a query it did run (a deadlock, a lock not
available, a serialization failure) are not an outage: they stay 500s, bugs
to fix, like ``IntegrityError`` or ``DataError``.
"""

import logging
import threading
import time

from django.db import InterfaceError, OperationalError

logger = logging.getLogger("zenzefi.database")

DETAIL = "Service temporarily unavailable: the database cannot be reached"
WARN_EVERY_SECONDS = 30.0
# SQLSTATE classes that mean the server could not be reached or would not serve us: connection
# exception, insufficient resources (too many connections), operator intervention (shutting down,
# starting up, statement cancelled). A client-side failure (refused, timed out) has no SQLSTATE.
UNREACHABLE_CLASSES = ("08", "53", "57")

_lock = threading.Lock()
_state = {"warned": 0.0, "refused": 0}


def is_unreachable(exc: BaseException) -> bool:
    """True for an error that means "no database to talk to" (see the module's docstring)."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate[:2] in UNREACHABLE_CLASSES


def unreachable_logged(exc: BaseException, *, where: str) -> None:
    """Count a request refused for the outage; warn once per interval, without a traceback."""
    now = time.monotonic()
    with _lock:
        _state["refused"] += 1
        if now - _state["warned"] < WARN_EVERY_SECONDS:
            return
        _state["warned"], refused, _state["refused"] = now, _state["refused"], 0
    logger.warning(
        "database unreachable in %s (%s: %s): answering 503; %d request(s) refused since the last warning",
        where,
        type(exc).__name__,
        str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "",
        refused,
    )


def reset() -> None:
    """No outage warned about yet (tests start from here)."""
    with _lock:
        _state["warned"], _state["refused"] = 0.0, 0
