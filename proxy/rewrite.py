"""Browser (cookie) mode: keep the browser inside the proxy prefix.

Absolute URLs of the upstream and root-relative paths in HTML become
``/api/v1/proxy/...``; so do ``Location`` headers and ``Set-Cookie`` paths.
Header mode (the desktop client) never goes through here.
"""

import re

PREFIX = "/api/v1/proxy"
_ATTR = re.compile(rb"""(\s(?:href|src|action|formaction|poster)\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_CSS_URL = re.compile(rb"""(url\(\s*)(["']?)(/[^)"']*)\2(\s*\))""", re.IGNORECASE)


def rewrite_url(url: str, upstream: str) -> str:
    if url.startswith(upstream):
        url = url[len(upstream) :] or "/"
    if url.startswith("/") and not url.startswith("//") and not url.startswith(PREFIX + "/"):
        return PREFIX + url
    return url


def rewrite_html(body: bytes, upstream: str) -> bytes:
    upstream_bytes = upstream.encode()

    def attr(match: re.Match) -> bytes:
        value = match.group(3)
        if value.startswith(upstream_bytes):
            value = value[len(upstream_bytes) :] or b"/"
        if value.startswith(b"/") and not value.startswith(b"//") and not value.startswith(PREFIX.encode() + b"/"):
            value = PREFIX.encode() + value
        return match.group(1) + match.group(2) + value + match.group(2)

    def css(match: re.Match) -> bytes:
        value = match.group(3)
        if not value.startswith(b"//") and not value.startswith(PREFIX.encode() + b"/"):
            value = PREFIX.encode() + value
        return match.group(1) + match.group(2) + value + match.group(2) + match.group(4)

    return _CSS_URL.sub(css, _ATTR.sub(attr, body))


def rewrite_set_cookie(value: str) -> str:
    """Scope an upstream cookie to the proxy prefix (``Path=/x`` → ``Path=/api/v1/proxy/x``), drop its Domain."""
    parts = [p.strip() for p in value.split(";")]
    out, has_path = [parts[0]], False
    for part in parts[1:]:
        name = part.split("=", 1)[0].strip().lower()
        if name == "domain":
            continue
        if name == "path":
            has_path = True
            path = part.split("=", 1)[1].strip() if "=" in part else "/"
            part = f"Path={PREFIX}{path if path.startswith('/') else '/' + path}"
        out.append(part)
    if not has_path:
        out.append(f"Path={PREFIX}/")
    return "; ".join(out)
