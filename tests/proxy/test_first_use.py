"""What the desktop client and a person in a browser meet on a token's first use.

Compressed answers reach the desktop client whole; a token's clock starts
only when Zenzefi answered; refusals in the browser are pages in the user's
language, while header mode keeps the reference's JSON.
"""

import asyncio
import concurrent.futures
import gzip
import json
import zlib

import aiohttp
import httpx
import pytest
from aiohttp import web
from django.test import Client

from access import services as access
from access.models import AccessToken
from accounts.models import AuditLog
from proxy.app import duration_words
from proxy.fake_zenzefi import document
from proxy.models import ProxySession
from tests.helpers import fund
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

DEVICE = "workshop-pc-0001"
DOWN = "http://127.0.0.1:9"


@pytest.fixture
def token(alice):
    fund(alice, "100")
    return access.token_purchase(user=alice, duration_hours=24, scope="full")


def auth(token, device=DEVICE) -> dict:
    return {"X-Access-Token": token.secret, "X-Device-ID": device}


@pytest.fixture
def http(gate, upstream):
    with httpx.Client(base_url=gate.url + "/api/v1/proxy", timeout=30) as client:
        yield client


# --- 1. compressed answers through the desktop client ---------------------------------------


async def _through_desktop_client(gate_url: str, path: str, headers: dict) -> tuple[int, dict, bytes]:
    """A local aiohttp proxy that behaves like the desktop client (melxiory/zenzefi_client):
    aiohttp ClientSession to the gate, body read whole (aiohttp decodes gzip/deflate), every
    response header copied except content-encoding, transfer-encoding, connection and keep-alive."""
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30, connect=5))

    async def forward(request: web.Request) -> web.Response:
        sent = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "connection", "content-length")}
        async with session.request(
            request.method, gate_url + request.path_qs, headers=sent, data=await request.read(), allow_redirects=False
        ) as answer:
            content = await answer.read()
            kept = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in ("content-encoding", "transfer-encoding", "connection", "keep-alive")
            }
            return web.Response(body=content, status=answer.status, headers=kept)

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        # The vendor software behind the client: plain HTTP, no compression of its own.
        async with httpx.AsyncClient(timeout=30, headers={"Accept-Encoding": "identity"}) as vendor:
            response = await vendor.get(f"http://127.0.0.1:{port}{path}", headers=headers)
            return response.status_code, dict(response.headers), response.content
    finally:
        await runner.cleanup()
        await session.close()


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize("kb", [None, 5120])
def test_compressed_answers_reach_the_desktop_client_whole(gate, upstream, token, encoding, kb):
    path = f"/api/v1/proxy/compressed?encoding={encoding}" + (f"&kb={kb}" if kb else "")
    expected = document(kb)

    # In a thread of its own: Playwright's sync API may have left an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        status, headers, body = pool.submit(asyncio.run, _through_desktop_client(gate.url, path, auth(token))).result()

    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(expected))
    assert len(body) == len(expected)
    assert body == expected
    if kb is None:
        assert json.loads(body)["total"] == 3


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_header_mode_relays_compressed_bytes_chunked(http, token, encoding):
    with http.stream("GET", f"/compressed?encoding={encoding}&kb=64", headers=auth(token)) as response:
        raw = b"".join(response.iter_raw())

    assert response.status_code == 200
    assert response.headers["content-encoding"] == encoding
    assert "content-length" not in response.headers
    assert response.headers["transfer-encoding"] == "chunked"
    unpacked = gzip.decompress(raw) if encoding == "gzip" else zlib.decompress(raw)
    assert unpacked == document(64)
    assert len(raw) < len(unpacked) / 3  # the bytes on the wire stayed compressed


def test_decoding_instead_is_a_setting(http, token, settings):
    settings.PROXY_DECODE_COMPRESSION = True

    response = http.get("/compressed?encoding=gzip&kb=64", headers={**auth(token), "Accept-Encoding": "identity"})

    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert response.content == document(64)


def test_uncompressed_answers_keep_their_content_length(http, token):
    response = http.get("/certificates/filter", headers=auth(token))

    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(response.content))


# --- 5. the device conflict says its timeout in words --------------------------------------


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(1, "1 second"), (10, "10 seconds"), (60, "1 minute"), (90, "90 seconds"), (300, "5 minutes"), (7200, "2 hours")],
)
def test_duration_words(seconds, words):
    assert duration_words(seconds) == words


@pytest.mark.parametrize(("seconds", "words"), [(10, "10 seconds"), (60, "1 minute"), (300, "5 minutes")])
def test_conflict_detail_names_the_real_timeout(http, token, settings, seconds, words):
    settings.SESSION_IDLE_TIMEOUT_SECONDS = seconds
    assert http.get("/echo", headers=auth(token, "device-A-000001")).status_code == 200

    conflict = http.get("/echo", headers=auth(token, "device-B-000002"))

    assert conflict.status_code == 409
    detail = conflict.json()["detail"]
    assert detail.startswith("Token already in use on device 'device-A...'. Session started at ")
    assert detail.endswith(f"Wait for session timeout ({words}) or stop the other device.")


# --- 6. the clock starts when Zenzefi answered --------------------------------------------------


def _activations(token) -> int:
    return AuditLog.objects.filter(action="token_activate", resource_id=str(token.pk)).count()


def test_first_use_with_upstream_down_leaves_the_token_ready(http, token, settings):
    settings.ZENZEFI_TARGET_URL = DOWN

    response = http.get("/echo", headers=auth(token))

    assert response.status_code == 502
    assert response.json() == {"detail": "Bad Gateway: Unable to reach Zenzefi server"}
    token.refresh_from_db()
    assert (token.activated_at, token.expires_at) == (None, None)
    assert ProxySession.objects.count() == 0
    status = http.get("/status", headers={"X-Access-Token": token.secret}).json()
    assert (status["status"], status["expires_at"]) == ("ready", None)


def test_first_use_timeout_leaves_the_token_ready(http, token, settings):
    settings.PROXY_READ_TIMEOUT = 0.5

    response = http.get("/slow?seconds=3", headers=auth(token))

    assert response.status_code == 504
    token.refresh_from_db()
    assert token.activated_at is None
    assert ProxySession.objects.count() == 0


def test_upstream_back_activates_once(http, token, settings, upstream):
    settings.ZENZEFI_TARGET_URL = DOWN
    assert http.get("/echo", headers=auth(token)).status_code == 502
    assert http.get("/echo", headers=auth(token)).status_code == 502
    settings.ZENZEFI_TARGET_URL = upstream

    first = http.get("/echo", headers=auth(token))
    second = http.get("/echo", headers=auth(token))

    assert (first.status_code, second.status_code) == (200, 200)
    token.refresh_from_db()
    assert token.activated_at is not None
    assert _activations(token) == 1
    session = ProxySession.objects.get()
    assert (session.device_id, session.ended_at) == (DEVICE, None)


def test_an_upstream_error_status_is_an_answer_and_activates(http, token):
    response = http.get("/status/500", headers=auth(token))

    assert response.status_code == 500
    token.refresh_from_db()
    assert token.activated_at is not None


def test_parallel_first_requests_to_a_slow_upstream_activate_once(gate, upstream, token):
    def one(_):
        with httpx.Client(base_url=gate.url + "/api/v1/proxy", timeout=30) as client:
            return client.get("/slow?seconds=1", headers=auth(token)).status_code

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(one, range(6)))

    assert codes == [200] * 6
    token.refresh_from_db()
    assert token.activated_at is not None
    assert _activations(token) == 1
    assert ProxySession.objects.filter(token=token).count() == 1


# --- 7. refusals in the browser are pages -------------------------------------------------------


def _open(user, token) -> dict:
    portal = Client()
    portal.force_login(user)
    response = portal.post(f"/zenzefi/open/{token.pk}/")
    assert response.status_code == 302
    return {"zg_proxy": response.cookies["zg_proxy"].value, "zg_device": response.cookies["zg_device"].value}


def _browse(gate, cookies, path="/", language="ru", **headers):
    with httpx.Client(base_url=gate.url + "/api/v1/proxy", cookies=cookies, timeout=30) as client:
        return client.get(
            path,
            headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": language, **headers},
        )


def _page(response, status: int) -> str:
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert 'href="/access/tokens/"' in response.text  # the way back to My tokens
    return response.text


def test_browser_502_on_first_use_is_a_russian_page_and_the_token_stays_ready(gate, upstream, settings, alice, token):
    cookies = _open(alice, token)
    settings.ZENZEFI_TARGET_URL = DOWN

    text = _page(_browse(gate, cookies), 502)

    assert '<html lang="ru">' in text
    assert "Zenzefi сейчас недоступен" in text
    assert "Время вашего токена не началось" in text
    assert 'data-testid="time-not-started"' in text
    token.refresh_from_db()
    assert token.activated_at is None


def test_browser_502_of_an_active_token_does_not_promise_the_time(gate, upstream, settings, alice, token):
    cookies = _open(alice, token)
    assert _browse(gate, cookies).status_code == 200
    settings.ZENZEFI_TARGET_URL = DOWN

    text = _page(_browse(gate, cookies, language="en"), 502)

    assert "Zenzefi is not reachable right now" in text
    assert "time-not-started" not in text


def test_browser_504_is_a_page(gate, upstream, settings, alice, token):
    cookies = _open(alice, token)
    settings.PROXY_READ_TIMEOUT = 0.5

    text = _page(_browse(gate, cookies, "/slow?seconds=3", language="en"), 504)

    assert "Zenzefi did not answer in time." in text


def test_browser_409_is_a_page_in_the_users_language(gate, upstream, settings, alice, token):
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 300
    with httpx.Client(base_url=gate.url + "/api/v1/proxy", timeout=30) as desktop:
        assert desktop.get("/echo", headers=auth(token, "desktop-client-01")).status_code == 200
    cookies = _open(alice, token)

    russian = _page(_browse(gate, cookies), 409)
    english = _page(_browse(gate, cookies, language="en"), 409)

    assert "Токен используется на другом устройстве" in russian
    assert "5 минут" in russian
    assert "Token in use on another device" in english
    assert "its session ends after 5 minutes without activity" in english


def test_portal_language_cookie_wins_over_the_browser(gate, upstream, settings, alice, token):
    cookies = {**_open(alice, token), "django_language": "ru"}
    settings.ZENZEFI_TARGET_URL = DOWN

    assert "Zenzefi сейчас недоступен" in _page(_browse(gate, cookies, language="en"), 502)


def test_browser_401_for_an_unknown_token(gate, upstream):
    text = _page(_browse(gate, {"zg_proxy": "not-a-token-at-all", "zg_device": "browser-000001"}, language="en"), 401)

    assert "Your access token is not valid" in text
    assert "Invalid or expired access token" in text


def test_browser_403_outside_the_scope(gate, upstream, alice):
    fund(alice, "100")
    narrow = access.token_purchase(user=alice, duration_hours=24, scope="certificates_only")

    text = _page(_browse(gate, _open(alice, narrow), "/users/currentUser"), 403)

    assert "Не входит в ваш токен" in text
    narrow.refresh_from_db()
    assert narrow.activated_at is None


def test_browser_429_says_when_to_retry(gate, upstream, settings, alice, token):
    settings.RATE_LIMIT_PROXY = "2/60"
    cookies = _open(alice, token)
    assert [_browse(gate, cookies, "/echo").status_code for _ in range(2)] == [200, 200]

    response = _browse(gate, cookies, "/echo", language="en")

    text = _page(response, 429)
    assert f"Wait {response.headers['retry-after']} seconds and reload the page." in text


def test_browser_without_credentials_gets_a_page_and_clients_json(gate, upstream):
    with httpx.Client(base_url=gate.url + "/api/v1/proxy", timeout=30) as client:
        browser = client.get("/", headers={"Accept": "text/html", "Accept-Language": "en"})
        script = client.get("/", headers={"Accept": "*/*"})

    assert browser.status_code == script.status_code == 403
    assert browser.headers["content-type"] == "text/html; charset=utf-8"
    assert script.json()["detail"].startswith("Device identification required")


def test_header_mode_keeps_json_even_when_asking_for_html(http, token, settings):
    settings.ZENZEFI_TARGET_URL = DOWN

    response = http.get("/", headers={**auth(token), "Accept": "text/html"})

    assert response.status_code == 502
    assert response.json() == {"detail": "Bad Gateway: Unable to reach Zenzefi server"}
    assert AccessToken.objects.get(pk=token.pk).activated_at is None
