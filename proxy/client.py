"""The one pooled HTTP client to the upstream Zenzefi, per event loop."""

import asyncio
import ssl

import httpx
from django.conf import settings

_clients: dict[int, httpx.AsyncClient] = {}


def _verify():
    if settings.ZENZEFI_CA_BUNDLE:
        return ssl.create_default_context(cafile=settings.ZENZEFI_CA_BUNDLE)
    # Turning verification off is an explicit setting (ZENZEFI_VERIFY_TLS=false), never a default.
    return settings.ZENZEFI_VERIFY_TLS


def client() -> httpx.AsyncClient:
    loop_id = id(asyncio.get_running_loop())
    found = _clients.get(loop_id)
    if found is None:
        found = httpx.AsyncClient(
            verify=_verify(),
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
