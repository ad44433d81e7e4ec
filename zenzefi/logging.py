"""Structured logs: one JSON line per request, with a request id, and never a secret.

The request id comes from ``X-Request-ID`` when it looks like one (else a new
one) and goes back in the response. Query strings are never logged (they can
carry anything), not even with the request Django attaches to its error
records; path segments that are secrets (password-reset links) are masked.
Tokens, passwords, JWTs and cookies are never put in a log record.
"""

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime

from django.http import HttpRequest
from django.utils.functional import empty

from zenzefi.middleware import HybridMiddleware

access_logger = logging.getLogger("zenzefi.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_SECRET_PATHS = [(re.compile(r"^/password/reset/[^/]+/[^/]+/"), "/password/reset/<uid>/<token>/")]
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _request_line(request: HttpRequest) -> str:
    """Django's error records carry the request, whose ``str()`` holds the query string: method and path only."""
    return f"{request.method} {safe_path(request.path)}"


def request_id(incoming: str | None) -> str:
    return incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex


def safe_path(path: str) -> str:
    for pattern, replacement in _SECRET_PATHS:
        if pattern.match(path):
            return pattern.sub(replacement, path, count=1)
    return path


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = _request_line(value) if isinstance(value, HttpRequest) else value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def access_log(request, status: int, elapsed: float) -> None:
    """The proxy's request line (its requests never reach Django's middleware)."""
    access_logger.info(
        "request",
        extra={
            "request_id": request.request_id,
            "method": request.method,
            "path": "/api/v1/proxy" + safe_path(request.raw_path),
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "ip": request.ip,
            "user_id": request.user_id,
            "token_id": request.token_id,
        },
    )


def _known_user_id(request) -> str | None:
    """The user's id if the request already knows it; never loads a session just to log it."""
    user = request.__dict__.get("user")
    if user is not None and "_wrapped" in vars(user):  # a lazy user: only if something evaluated it
        user = vars(user)["_wrapped"]
    if user is None or user is empty or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


class RequestLogMiddleware(HybridMiddleware):
    """Django's side: a request id in and out, and one access line per request."""

    def before(self, request) -> None:
        request.log_started = time.perf_counter()
        request.request_id = request_id(request.headers.get("X-Request-ID"))

    def after(self, request, response):
        from zenzefi.net import request_ip

        response["X-Request-ID"] = request.request_id
        access_logger.info(
            "request",
            extra={
                "request_id": request.request_id,
                "method": request.method,
                "path": safe_path(request.path),
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - request.log_started) * 1000, 2),
                "ip": request_ip(request),
                "user_id": _known_user_id(request),
            },
        )
        return response
