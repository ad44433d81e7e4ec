"""The client's address, as far as it can be believed; how to trust the upstream Zenzefi's TLS."""

import ipaddress
import ssl
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _trusted_networks(spec: tuple[str, ...]) -> tuple[ipaddress._BaseNetwork, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in spec if item.strip())


def _is_trusted(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(remote_addr: str | None, forwarded_for: str | None) -> str | None:
    """The socket peer, unless it is a trusted proxy.

    Behind trusted proxies, the right-most X-Forwarded-For address that is not
    itself trusted is the client: everything left of it could be forged.
    """
    networks = _trusted_networks(tuple(settings.TRUSTED_PROXY_IPS))
    if not remote_addr or not networks or not _is_trusted(remote_addr, networks) or not forwarded_for:
        return remote_addr or None
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _is_trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote_addr
    return remote_addr


def request_ip(request) -> str | None:
    return client_ip(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))


def is_local_or_trusted(request) -> bool:
    """Whether the request comes from this host (loopback) or from a TRUSTED_PROXY_IPS address.

    Judged on the client address as believed (``client_ip``): a request relayed by a trusted proxy is
    judged by whom it relays, and one relayed by an untrusted proxy (``X-Forwarded-For`` from a peer
    not in TRUSTED_PROXY_IPS, e.g. a local nginx nobody declared) is not local.
    """
    networks = _trusted_networks(tuple(settings.TRUSTED_PROXY_IPS))
    peer = request.META.get("REMOTE_ADDR") or ""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if forwarded and not _is_trusted(peer, networks):
        return False
    address = client_ip(peer, forwarded)
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return ip.is_loopback or _is_trusted(str(ip), networks)


def upstream_tls_verify() -> ssl.SSLContext | bool:
    """``verify=`` for HTTP clients to the upstream Zenzefi (the proxy's pool and the health check)."""
    if settings.ZENZEFI_CA_BUNDLE:
        return ssl.create_default_context(cafile=settings.ZENZEFI_CA_BUNDLE)
    # Turning verification off is an explicit setting (ZENZEFI_VERIFY_TLS=false), never a default.
    return settings.ZENZEFI_VERIFY_TLS
