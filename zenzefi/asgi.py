"""ASGI entry point.

``/api/v1/proxy`` goes to the proxy's raw ASGI app, named in ``settings.PROXY_ASGI_APP`` (the hot path skips
Django's request machinery and middleware entirely), and so do the health probes;
everything else goes to Django, with its request body limited (``zenzefi.bodylimit``).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zenzefi.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from zenzefi import aioredis  # noqa: E402  (needs Django set up)
from zenzefi.bodylimit import body_limited  # noqa: E402
from zenzefi.health import HEALTH_PATHS, asgi_health  # noqa: E402

# Named in settings, not imported: zenzefi imports no app (tests/test_import_graph.py).
proxy_app = import_string(settings.PROXY_ASGI_APP)
PREFIX = import_string(settings.PROXY_ASGI_PREFIX)
shutdown_hooks = [import_string(path) for path in settings.ASGI_SHUTDOWN_HOOKS]


async def application(scope, receive, send):
    if scope["type"] == "http" and (scope["path"] == PREFIX or scope["path"].startswith(PREFIX + "/")):
        return await proxy_app(scope, receive, send)
    if scope["type"] == "http" and scope["path"] in HEALTH_PATHS and scope["method"] in ("GET", "HEAD"):
        return await asgi_health(scope, receive, send)
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    if scope["type"] == "http":
        return await body_limited(django_application, scope, receive, send)
    return await django_application(scope, receive, send)


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for hook in shutdown_hooks:  # the proxy's: its sessions' byte counts, then its upstream pool
                await hook()
            await aioredis.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
