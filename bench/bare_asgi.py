"""The floor for bench/health_bench.py: a bare raw-ASGI app that answers every GET with 200 and a tiny JSON body.

No Django, no middleware, no cache: what uvicorn and the client cost by themselves.
Run: ``uvicorn bench.bare_asgi:app``
"""

BODY = b'{"status":"alive"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
