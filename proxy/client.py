"""The one pooled HTTP client to the upstream Zenzefi, per event loop."""

import asyncio

import httpx
from django.conf import settings

from zenzefi.net import upstream_tls_verify

_clients: dict[int, httpx.AsyncClient] = {}


def client() -> httpx.AsyncClient:
    loop_id = id(asyncio.get_running_loop())
    found = _clients.get(loop_id)
    if found is None:
        found = httpx.AsyncClient(
            verify=upstream_tls_verify(),
            follow_redirects=False,
            timeout=httpx.Timeout(settings.PROXY_READ_TIMEOUT, connect=settings.PROXY_CONNECT_TIMEOUT),
            limits=httpx.Limits(
                max_connections=settings.PROXY_MAX_CONNECTIONS,
                max_keepalive_connections=settings.PROXY_MAX_KEEPALIVE,
            ),
            trust_env=False,
        )
        _clients[loop_id] = found
    return found


async def close() -> None:
    found = _clients.pop(id(asyncio.get_running_loop()), None)
    if found is not None:
        await found.aclose()
