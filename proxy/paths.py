"""The path the upstream will see, and which scopes may reach it."""

import re
import urllib.parse

# The reference's certificates_only list (prefix matches on the normalised path, on segment boundaries).
CERTIFICATE_PREFIXES = (
    "certificates/filter",
    "certificates/details/",
    "certificates/export/",
    "certificates/import/",
    "certificates/remove",
    "certificates/restore",
    "certificates/activeForTesting",
    "certificates/update/",
    "certificates/update/cancel",
    "certificates/update/metrics",
    "certificates/checkSystemIntegrityReport",
    "certificates/checkSystemIntegrityLog",
    "certificates/checkSystemIntegrityLogExistance",
    "configurations/certificatesColumnOrder",
    "configurations/certificatesColumnVisibility",
)
_SAFE = "/:@!$&'()*+,;=-._~"
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")


def normalise(raw_path: str) -> str | None:
    """The path as a server resolves it: percent-escapes decoded (repeatedly), path parameters dropped, dot
    segments resolved.

    A path parameter is what follows ``;`` in a segment (``filter;jsessionid=1``, ``..;``): Java servlet
    containers (Tomcat, Jetty) route without it, so ``..;`` climbs like ``..``. It is dropped here, and the
    upstream is sent this normalised path, so it sees what the scope check saw.

    Returns the path without its leading slash, or None when it climbs above the root (``../`` past the
    start) or its escapes are not UTF-8 (overlong forms like ``%c0%ae``): no honest client sends either.
    """
    path = raw_path
    for _ in range(3):  # %252e → %2e → .
        try:
            decoded = urllib.parse.unquote(path, errors="strict")
        except UnicodeDecodeError:
            return None
        if decoded == path:
            break
        path = decoded
    path = "/".join(segment.split(";", 1)[0] for segment in path.replace("\\", "/").split("/"))
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not segments:
                return None
            segments.pop()
            continue
        segments.append(segment)
    result = "/".join(segments)
    if path.endswith("/") and result:
        result += "/"
    return result


def quote(path: str) -> str:
    """The normalised path as it goes on the wire to the upstream."""
    return urllib.parse.quote(path, safe=_SAFE)


def _under(path: str, prefix: str) -> bool:
    """``prefix`` matches whole segments: ``certificates/filter`` covers ``certificates/filter/1``, not
    ``certificates/filterAnything``; a prefix ending in ``/`` covers what lies below it."""
    return path.startswith(prefix) if prefix.endswith("/") else path == prefix or path.startswith(prefix + "/")


def scope_allows(scope: str, path: str) -> bool:
    """Whether ``scope`` may reach ``path``, a path as ``normalise`` returns it."""
    if scope == "full":
        return True
    if scope == "certificates_only":
        return any(_under(path, prefix) for prefix in CERTIFICATE_PREFIXES)
    return False
