"""The path the upstream will see, and which scopes may reach it."""

import re
import urllib.parse

# The reference's certificates_only list (prefix matches on the normalised path).
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
    """Decode percent-escapes (repeatedly) and resolve dot segments, as a server would.

    Returns the path without its leading slash, or None when it climbs above
    the root (``../`` past the start), which no honest client sends.
    """
    path = raw_path
    for _ in range(3):  # %252e → %2e → .
        decoded = urllib.parse.unquote(path)
        if decoded == path:
            break
        path = decoded
    path = path.replace("\\", "/")
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


def scope_allows(scope: str, path: str) -> bool:
    if scope == "full":
        return True
    if scope == "certificates_only":
        return path.startswith(CERTIFICATE_PREFIXES)
    return False
