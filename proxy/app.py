"""The hot path: a raw ASGI app for ``/api/v1/proxy/...``, routed ahead of Django.

Per request, in the reference's order: device id, token, scope (on the
normalised path), device rule, then first-use activation, then the request
is streamed to ZENZEFI_TARGET_URL and the answer streamed back. A warm
request touches only Redis: token facts, the device session and its
counters. The database is reached only to validate a token the cache does
not know, to activate a token, and to open a device session.
"""

import json
import logging
import time
from datetime import UTC, datetime
from http.cookies import SimpleCookie

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError

from access.crypto import secret_digest
from access.services import (
    GIFT_PENDING_DETAIL,
    TokenFacts,
    facts_from_cache,
    token_activate,
    token_cache_keys,
    token_known,
    token_validate_async,
)
from accounts.services import cache_repairs_after_outage, cache_repairs_due
from proxy import client as upstream
from proxy import pages, rewrite, sessions
from proxy.paths import normalise, quote, scope_allows
from proxy.services import session_count_db, session_forget_db, session_open, session_touch_db
from zenzefi import aioredis, breaker, database, metrics, ratelimit
from zenzefi.logging import access_log, request_id
from zenzefi.net import client_ip

logger = logging.getLogger("zenzefi.proxy")

PREFIX = "/api/v1/proxy"
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
}
DROP_REQUEST = HOP_BY_HOP | {
    b"host",
    b"x-access-token",
    b"x-device-id",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-real-ip",
}
PORTAL_COOKIES = {"sessionid", "csrftoken", "django_language"}
CORS_METHODS = "GET, POST, PUT, DELETE, PATCH, OPTIONS, HEAD"


class Reject(Exception):
    """A refusal: JSON ``{"detail": ...}`` for clients, a page for a person in a browser (``pages.py``)."""

    def __init__(self, status: int, detail: str, headers: list | None = None, *, kind: str = "", fresh: bool = False):
        self.status = status
        self.detail = detail
        self.headers = headers or []
        self.kind = kind or pages.KIND_BY_STATUS.get(status, "error")
        # The token has not been activated: its time has not started.
        self.fresh = fresh


def _proxy_rate() -> ratelimit.Rate | None:
    return ratelimit.Rate.parse(settings.RATE_LIMIT_PROXY) if settings.RATE_LIMIT_ENABLED else None


def _limited(decision: ratelimit.Decision, detail: str | None = None) -> Reject:
    headers = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]
    return Reject(429, decision.error(detail).detail, headers)


# Invalid tokens per client IP: a spray of guessed secrets is refused by Redis before it reaches the database.
INVALID_BUCKET = "proxy_invalid"


def _invalid_rate() -> ratelimit.Rate | None:
    return ratelimit.Rate.parse(settings.RATE_LIMIT_PROXY_INVALID) if settings.RATE_LIMIT_ENABLED else None


def _flooding(decision: ratelimit.Decision) -> Reject:
    return _limited(
        decision,
        f"Too many invalid access tokens from your address. Try again in {decision.retry_after} seconds.",
    )


async def _refuse_flooding(ip: str) -> None:
    """Before a token is looked up (cold path, /status): an address over its invalid-token limit gets 429."""
    if (rate := _invalid_rate()) is not None:
        decision = await ratelimit.check_async(INVALID_BUCKET, ip, rate)
        if not decision.allowed:
            metrics.RATE_LIMITED.labels(INVALID_BUCKET).inc()
            raise _flooding(decision)


async def _invalid_token(ip: str) -> Reject:
    """The token is unknown, revoked, expired or malformed: counted for the address; 401, or 429 over the limit."""
    if (rate := _invalid_rate()) is not None:
        decision = await ratelimit.hit_async(INVALID_BUCKET, ip, rate)
        if not decision.allowed:
            return _flooding(decision)
    return Reject(401, "Invalid or expired access token")


async def _json(send, status: int, body: dict, headers: list | None = None) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _refuse(send, request, reject: Reject) -> None:
    if request.browser:
        await pages.send_error(send, request, reject)
    else:
        await _json(send, reject.status, {"detail": reject.detail}, _cors(request.header("origin")) + reject.headers)


def _cors(origin: str | None) -> list[tuple[bytes, bytes]]:
    if not origin or origin not in settings.CORS_ALLOWED_ORIGINS:
        return []
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"vary", b"Origin"),
    ]


class Request:
    """What the proxy needs from an ASGI scope."""

    def __init__(self, scope):
        self.scope = scope
        self.method = scope["method"]
        self.headers: list[tuple[bytes, bytes]] = scope["headers"]
        single = {}
        for name, value in self.headers:
            single[name] = value
        self.header = lambda name: single.get(name.encode()).decode("latin-1") if name.encode() in single else None
        raw = scope.get("raw_path") or scope["path"].encode()
        self.raw_path = raw.decode("latin-1")[len(PREFIX) :]
        self.query = scope.get("query_string", b"")
        peer = scope.get("client") or (None, None)
        self.ip = client_ip(peer[0], self.header("x-forwarded-for"))
        cookies = SimpleCookie()
        try:
            cookies.load(self.header("cookie") or "")
        except Exception:  # a malformed Cookie header is not our problem
            cookies = SimpleCookie()
        self.cookies = {k: m.value for k, m in cookies.items()}
        self.token_scope = self.token_id = self.user_id = None
        # A person in a browser (cookie mode, or no credentials and asking for HTML): refusals are pages.
        self.browser = False
        self.rate_decision = None
        self.request_id = request_id(self.header("x-request-id"))
        self.responded = False  # the answer's headers are sent: an error can no longer become a refusal


class ProxyApp:
    async def __call__(self, scope, receive, send):
        request = Request(scope)
        started = time.perf_counter()
        tag = (b"x-request-id", request.request_id.encode())
        reply = send

        async def send(message):
            if message["type"] == "http.response.start":
                request.responded = True
                extra = [tag]
                if request.rate_decision is not None and request.rate_decision.allowed:
                    extra += [(k.lower().encode(), v.encode()) for k, v in request.rate_decision.headers().items()]
                message["headers"] = [*message["headers"], *extra]
            await reply(message)

        status = 500
        try:
            if (
                request.method == "OPTIONS"
                and request.header("origin")
                and request.header("access-control-request-method")
            ):
                status = await self._preflight(request, send)
            elif request.raw_path in ("/status", "/status/") and request.method == "GET":
                status = await self._status(request, send)
            else:
                status = await self._proxy(request, receive, send)
        except Reject as reject:
            status = reject.status
            await _refuse(send, request, reject)
        except (OperationalError, InterfaceError) as exc:
            # The database is out of reach (a token the cache does not know, a first use): 503, not a 500.
            # Tokens whose facts and session are in Redis never ask it, and keep working.
            if request.responded or not database.is_unreachable(exc):
                raise
            database.unreachable_logged(exc, where="proxy")
            status = 503
            await _refuse(send, request, Reject(503, database.DETAIL))
        finally:
            elapsed = time.perf_counter() - started
            metrics.PROXY_REQUESTS.labels(request.method, str(status)).inc()
            metrics.PROXY_LATENCY.observe(elapsed)
            metrics.PROXY_BY_CLASS.labels(f"{status // 100}xx", request.token_scope or "none").inc()
            access_log(request, status, elapsed)

    async def _preflight(self, request: Request, send) -> int:
        headers = _cors(request.header("origin"))
        if not headers:
            raise Reject(403, "CORS origin not allowed")
        headers += [
            (b"access-control-allow-methods", CORS_METHODS.encode()),
            (b"access-control-allow-headers", (request.header("access-control-request-headers") or "*").encode()),
            (b"access-control-max-age", b"600"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return 204

    def _credentials(self, request: Request) -> tuple[str | None, str | None, str]:
        token = request.header("x-access-token")
        if token is not None or request.header("x-device-id") is not None:
            return token, request.header("x-device-id"), "header"
        if settings.PROXY_COOKIE in request.cookies:
            return request.cookies[settings.PROXY_COOKIE], request.cookies.get(settings.PROXY_DEVICE_COOKIE), "cookie"
        return None, None, "header"

    async def _status(self, request: Request, send) -> int:
        secret, _device, _mode = self._credentials(request)
        if not secret:
            raise Reject(401, "Authentication required: provide X-Access-Token header")
        ip = request.ip or "unknown"
        await _refuse_flooding(ip)
        facts = await token_validate_async(secret)
        if facts is None:
            raise await _invalid_token(ip)
        if facts.gift_pending:
            raise Reject(401, GIFT_PENDING_DETAIL)
        now = datetime.now(UTC)
        await _json(
            send,
            200,
            {
                "connected": True,
                "user_id": facts.user_id,
                "token_id": facts.token_id,
                "is_activated": facts.activated_at is not None,
                "expires_at": facts.expires_at.isoformat() if facts.expires_at else None,
                "duration_hours": facts.duration_hours,
                "time_remaining_seconds": facts.seconds_left(now),
                "status": "active" if facts.activated_at else "ready",
            },
            _cors(request.header("origin")),
        )
        return 200

    async def _authorise(self, request: Request) -> tuple[TokenFacts, str, str, str, sessions.Touch]:
        """Every check in the reference's order. Opening the session and activating wait for the upstream."""
        secret, device, mode = self._credentials(request)
        request.browser = mode == "cookie" or (
            secret is None and device is None and "text/html" in (request.header("accept") or "")
        )
        if not device:
            raise Reject(
                403,
                "Device identification required: X-Device-ID header missing. "
                "Please update your Desktop Client to the latest version.",
            )
        if not 8 <= len(device) <= 255:
            raise Reject(400, "Invalid X-Device-ID header format (must be 8-255 characters)")
        if not secret:
            raise Reject(401, "Authentication required: provide X-Access-Token header")
        path = normalise(request.raw_path)
        shown = "/" + (path if path is not None else request.raw_path.lstrip("/"))
        ip, agent = request.ip or "", request.header("user-agent") or ""
        checked = await self._check_warm(secret, device, path, shown, ip, agent)
        if checked is None:
            checked = await self._check_cold(secret, device, path, shown, ip, agent, mode)
        facts, touch, request.rate_decision = checked
        request.token_scope, request.token_id, request.user_id = facts.scope, facts.token_id, facts.user_id
        if touch.outcome == "conflict":
            since = datetime.fromtimestamp(touch.started, tz=UTC).isoformat()
            timeout = duration_words(settings.SESSION_IDLE_TIMEOUT_SECONDS)
            raise Reject(
                409,
                f"Token already in use on device '{touch.other_device[:8]}...'. Session started at {since}. "
                f"Wait for session timeout ({timeout}) or stop the other device.",
                fresh=facts.activated_at is None,
            )
        return facts, path, mode, device, touch

    def _first_use(self, request: Request, facts: TokenFacts, touch: sessions.Touch, device: str, mode: str):
        """After the upstream answered: open the device session if this request began it, and activate
        the token on its first use (once: ``token_activate`` locks the row). None if the token was
        revoked or expired meanwhile. Sync: one thread hop for both writes."""
        if touch.outcome == "new" and not touch.stored:
            session_open(
                session_id=touch.session_id,
                token_id=facts.token_id,
                user_id=facts.user_id,
                device_id=device,
                ip=request.ip,
                user_agent=request.header("user-agent") or "",
                mode=mode,
                started=touch.started,
                previous=touch.previous,
            )
        if facts.activated_at is None:
            return token_activate(token_id=facts.token_id)
        return facts

    @staticmethod
    async def _unreached(facts: TokenFacts, touch: sessions.Touch) -> None:
        """The upstream did not answer: a session this request began is forgotten, so it was never opened."""
        if touch.outcome != "new":
            return
        try:
            if touch.stored:
                await sync_to_async(session_forget_db, thread_sensitive=False)(session_id=touch.session_id)
            else:
                await sync_to_async(sessions.drop, thread_sensitive=False)(facts.token_id, touch.session_id)
        except Exception:
            logger.warning("could not forget an unopened device session", exc_info=True)

    @staticmethod
    def _denied(scope: str, shown: str) -> Reject:
        return Reject(403, f"Access denied: your token scope ('{scope}') does not allow access to '{shown}'")

    async def _check_warm(self, secret, device, path, shown, ip, agent) -> tuple | None:
        """A token this process has seen: every check in one Redis round trip. None: take the cold path."""
        if not aioredis.usable() or len(secret) > 256:
            return None  # no Redis, or its circuit breaker is open: the cold path asks the database
        digest = secret_digest(secret)
        known = token_known(digest)
        if known is None:
            return None
        facts_key, blocked_key = token_cache_keys(digest, known.user_id)
        rate = _proxy_rate()
        try:
            outcome, raw, touch, decision = await sessions.check_and_touch(
                facts_key=facts_key,
                blocked_key=blocked_key,
                token_id=known.token_id,
                device_id=device,
                ip=ip,
                user_agent=agent,
                scope_ok=path is not None and scope_allows(known.scope, path),
                rate=rate,
            )
        except Exception as exc:
            breaker.redis.failure(exc)  # logs once per outage; the cold path asks the database
            return None
        breaker.redis.success()
        if cache_repairs_due():
            # Redis is back after an outage: make the invalidations it missed, then ask again (cold).
            await sync_to_async(cache_repairs_after_outage, thread_sensitive=False)()
            return None
        if outcome == "miss":
            return None
        facts = None if outcome == "blocked" else facts_from_cache(raw)
        if facts is None:
            raise await _invalid_token(ip or "unknown")
        if outcome == "denied":
            raise self._denied(facts.scope, shown)
        if outcome == "limited":
            metrics.RATE_LIMITED.labels("proxy").inc()
            raise _limited(decision)
        return facts, touch, decision

    async def _check_cold(self, secret, device, path, shown, ip, agent, mode) -> tuple:
        # An address over its invalid-token limit is refused here, even with a valid token this process has not
        # seen yet: the cold path is the one that can reach the database. A known valid token (warm) is never
        # refused for it: that check would cost the warm path a Redis round trip.
        await _refuse_flooding(ip or "unknown")
        facts = await token_validate_async(secret)
        if facts is None:
            raise await _invalid_token(ip or "unknown")
        if facts.gift_pending:
            raise Reject(401, GIFT_PENDING_DETAIL)
        if path is None or not scope_allows(facts.scope, path):
            raise self._denied(facts.scope, shown)
        decision = None
        if (rate := _proxy_rate()) is not None:
            decision = await ratelimit.hit_async("proxy", facts.token_id, rate)
            if not decision.allowed:
                raise _limited(decision)
        touch = None
        if aioredis.usable() or not settings.REDIS_URL:
            try:
                touch = await sessions.touch(token_id=facts.token_id, device_id=device, ip=ip, user_agent=agent)
            except Exception as exc:
                if not settings.REDIS_URL:
                    # As the reference: a session-tracking failure is logged and the request proceeds.
                    logger.exception("device session tracking failed")
                    touch = sessions.Touch("untracked")
                else:
                    breaker.redis.failure(exc)
        if touch is None:
            # Redis unavailable: the device rule runs on the database, across processes all the same.
            touch = await sync_to_async(session_touch_db, thread_sensitive=False)(
                token_id=facts.token_id, user_id=facts.user_id, device_id=device, ip=ip, user_agent=agent, mode=mode
            )
        return facts, touch, decision

    def _upstream_headers(self, request: Request) -> list[tuple[bytes, bytes]]:
        headers = []
        for name, value in request.headers:
            if name in DROP_REQUEST:
                continue
            if name == b"cookie":
                kept = "; ".join(
                    f"{k}={v}"
                    for k, v in request.cookies.items()
                    if k not in PORTAL_COOKIES and k not in (settings.PROXY_COOKIE, settings.PROXY_DEVICE_COOKIE)
                )
                if not kept:
                    continue
                value = kept.encode("latin-1")
            headers.append((name, value))
        host = request.header("host") or ""
        headers += [
            (b"x-forwarded-for", (request.ip or "").encode()),
            (b"x-forwarded-proto", request.scope.get("scheme", "http").encode()),
            (b"x-forwarded-host", host.encode("latin-1")),
        ]
        return headers

    async def _proxy(self, request: Request, receive, send) -> int:
        facts, path, mode, device, touch = await self._authorise(request)
        url = settings.ZENZEFI_TARGET_URL + "/" + quote(path)
        if request.query:
            url += "?" + request.query.decode("latin-1")
        counted = {"in": 0, "out": 0}

        async def body():
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                counted["in"] += len(chunk)
                if chunk:
                    yield chunk
                if not message.get("more_body"):
                    return

        has_body = any(n in (b"content-length", b"transfer-encoding") for n, _ in request.headers)
        http = upstream.client()
        outgoing = http.build_request(
            request.method,
            url,
            headers=self._upstream_headers(request),
            content=body() if has_body else None,
            timeout=httpx.Timeout(settings.PROXY_READ_TIMEOUT, connect=settings.PROXY_CONNECT_TIMEOUT),
        )
        sent = time.perf_counter()
        try:
            response = await http.send(outgoing, stream=True)
        except httpx.TimeoutException:
            await self._unreached(facts, touch)
            raise Reject(
                504, "Gateway Timeout: Zenzefi server did not respond", fresh=facts.activated_at is None
            ) from None
        except httpx.HTTPError as exc:
            logger.warning("upstream unreachable: %s", type(exc).__name__)
            await self._unreached(facts, touch)
            raise Reject(502, "Bad Gateway: Unable to reach Zenzefi server", fresh=facts.activated_at is None) from None
        metrics.UPSTREAM_LATENCY.observe(time.perf_counter() - sent)
        if touch.outcome == "new" or facts.activated_at is None:
            # The upstream answered (any status): the session is real, and a first use starts the clock.
            try:
                used = await sync_to_async(self._first_use, thread_sensitive=False)(request, facts, touch, device, mode)
            except BaseException as exc:
                await response.aclose()
                if database.is_unreachable(exc) and not touch.stored:
                    # Nothing of the session reached the database: forget it, so the next request opens it.
                    await self._unreached(facts, touch)
                raise
            if used is None:
                # Revoked, or offered as a gift, while this request was on its way: its session must not
                # hold the token against the next device.
                await response.aclose()
                await self._unreached(facts, touch)
                raise Reject(401, "Invalid or expired access token")
            facts = used
        try:
            status = await self._relay(request, response, send, mode, counted)
        finally:
            await response.aclose()
            if touch.stored:
                await sync_to_async(session_count_db, thread_sensitive=False)(
                    session_id=touch.session_id, bytes_in=counted["in"], bytes_out=counted["out"]
                )
            else:
                sessions.count_bytes(token_id=facts.token_id, bytes_in=counted["in"], bytes_out=counted["out"])
            metrics.PROXY_BYTES.labels("in").inc(counted["in"])
            metrics.PROXY_BYTES.labels("out").inc(counted["out"])
        return status

    async def _relay(self, request: Request, response: httpx.Response, send, mode: str, counted: dict) -> int:
        rewrite_html = mode == "cookie" and "text/html" in response.headers.get("content-type", "")
        # Header mode sends compressed bodies as they came but chunked, without the upstream's
        # Content-Length: the desktop client decodes them and would otherwise cut the decoded body
        # at the compressed length (bench/README.md, "Compressed answers").
        encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
        decode = encoded and mode == "header" and settings.PROXY_DECODE_COMPRESSION
        drop_length = rewrite_html or (encoded and mode == "header")
        drop_encoding = rewrite_html or decode
        headers = []
        for name, value in response.headers.raw:
            lname = name.lower()
            if lname in HOP_BY_HOP or lname in (b"date", b"server"):
                continue  # the server adds its own Date and Server
            if (drop_length and lname == b"content-length") or (drop_encoding and lname == b"content-encoding"):
                continue
            if mode == "cookie" and lname == b"location":
                value = rewrite.rewrite_url(value.decode("latin-1"), settings.ZENZEFI_TARGET_URL).encode("latin-1")
            if mode == "cookie" and lname == b"set-cookie":
                value = rewrite.rewrite_set_cookie(value.decode("latin-1")).encode("latin-1")
            if lname.startswith(b"access-control-"):
                continue
            headers.append((lname, value))
        headers += _cors(request.header("origin"))
        if rewrite_html:
            document = rewrite.rewrite_html(await response.aread(), settings.ZENZEFI_TARGET_URL)
            headers.append((b"content-length", str(len(document)).encode()))
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            await send({"type": "http.response.body", "body": document})
            counted["out"] += len(document)
            return response.status_code
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        try:
            async for chunk in response.aiter_bytes() if decode else response.aiter_raw():
                counted["out"] += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError:
            logger.warning("upstream broke off a response after its headers")
        await send({"type": "http.response.body", "body": b""})
        return response.status_code


def duration_words(seconds: int) -> str:
    """A timeout as the reference's English sentence needs it: "10 seconds", "1 minute", "2 hours"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("" if count == 1 else "s")
    return f"{seconds} second" + ("" if seconds == 1 else "s")


proxy_app = ProxyApp()
