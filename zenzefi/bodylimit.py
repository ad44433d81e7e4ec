"""Request bodies for Django are at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes, checked before and while they arrive.

Django's ASGI handler reads a whole body into a temporary file before any view
runs, so a 100 MB body would be taken in full just to be refused. This wrapper
answers 413 at once when Content-Length says too much, and otherwise counts
the chunks as Django reads them: past the limit it stops the read (Django's
handler gives up on ``RequestAborted`` without answering) and answers 413
itself. Under ``/api/`` the answer is JSON with a ``detail``, as every API error.

The proxy is routed before this (``zenzefi/asgi.py``): its uploads stream to
Zenzefi untouched, whatever their size.
"""

import json

from django.conf import settings
from django.core.exceptions import RequestAborted

from zenzefi.parsers import too_large_detail


async def too_large(scope, send) -> None:
    detail = too_large_detail()
    if scope["path"].startswith("/api/"):
        body, content_type = json.dumps({"detail": detail}).encode(), b"application/json"
    else:
        body, content_type = (detail + "\n").encode(), b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is not read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _declared_length(scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def body_limited(app, scope, receive, send) -> None:
    """Run ``app`` (Django's ASGI handler) on an HTTP request whose body may not exceed the limit."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None:
        return await app(scope, receive, send)
    declared = _declared_length(scope)
    if declared is not None and declared > limit:
        return await too_large(scope, send)
    state = {"received": 0, "exceeded": False}

    async def counted():
        message = await receive()
        if message["type"] == "http.request":
            state["received"] += len(message.get("body", b""))
            if state["received"] > limit:
                state["exceeded"] = True
                raise RequestAborted()
        return message

    await app(scope, counted, send)
    if state["exceeded"]:
        await too_large(scope, send)
