"""The benchmark's baseline: the least a streaming reverse proxy in Python can do.

A raw ASGI app with no auth, no Redis and no database: one shared
``httpx.AsyncClient`` per event loop (same limits as the proxy's), the request
body streamed up, the response streamed back, hop-by-hop headers dropped. A
leading ``/api/v1/proxy`` is stripped, so the same URL path works against
both targets. The upstream comes from ``BASELINE_UPSTREAM``.

Run: ``BASELINE_UPSTREAM=http://127.0.0.1:18090 uvicorn bench.baseline_forwarder:app --workers 2``
"""

import asyncio
import os

import httpx

UPSTREAM = os.environ.get("BASELINE_UPSTREAM", "http://127.0.0.1:18090").rstrip("/")
PREFIX = b"/api/v1/proxy"
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"trailers",
    b"transfer-encoding",
    b"upgrade",
    b"host",
}

_clients: dict[int, httpx.AsyncClient] = {}


def _client() -> httpx.AsyncClient:
    loop_id = id(asyncio.get_running_loop())
    found = _clients.get(loop_id)
    if found is None:
        found = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(60.0, connect=5.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            trust_env=False,
        )
        _clients[loop_id] = found
    return found


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            found = _clients.pop(id(asyncio.get_running_loop()), None)
            if found is not None:
                await found.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    if scope["type"] != "http":
        return None
    path = scope.get("raw_path") or scope["path"].encode()
    if path == PREFIX or path.startswith(PREFIX + b"/"):
        path = path[len(PREFIX) :] or b"/"
    url = UPSTREAM + path.decode("latin-1")
    if scope.get("query_string"):
        url += "?" + scope["query_string"].decode("latin-1")
    headers = [(name, value) for name, value in scope["headers"] if name not in HOP_BY_HOP]
    has_body = any(name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])

    async def body():
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            if message.get("body"):
                yield message["body"]
            if not message.get("more_body"):
                return

    http = _client()
    request = http.build_request(scope["method"], url, headers=headers, content=body() if has_body else None)
    try:
        response = await http.send(request, stream=True)
    except httpx.HTTPError:
        await send({"type": "http.response.start", "status": 502, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return None
    try:
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(n.lower(), v) for n, v in response.headers.raw if n.lower() not in HOP_BY_HOP],
            }
        )
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await response.aclose()
    return None
