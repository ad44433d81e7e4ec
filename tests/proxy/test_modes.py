"""Browser (cookie) mode, upstream TLS, and the device rule across processes."""

import re

import httpx
import pytest
from django.conf import settings as django_settings
from django.test import Client

from access import services as access
from proxy.models import ProxySession
from proxy.services import sessions_flush
from tests.helpers import fund
from tests.servers import fake_zenzefi, process_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token(alice):
    fund(alice, "50")
    return access.token_purchase(user=alice, duration_hours=12)


@pytest.fixture
def browser_cookies(alice, token):
    """The cookies the portal's Open Zenzefi button sets."""
    portal = Client()
    portal.force_login(alice)
    response = portal.post(f"/zenzefi/open/{token.pk}/")
    assert response.status_code == 302
    assert response["Location"] == "/api/v1/proxy/"
    cookie = response.cookies["zg_proxy"]
    assert cookie["httponly"] is True
    assert cookie["path"] == "/api/v1/proxy/"
    return {"zg_proxy": cookie.value, "zg_device": response.cookies["zg_device"].value}


def test_open_zenzefi_is_only_for_the_owner(bob, token):
    portal = Client()
    portal.force_login(bob)

    assert portal.post(f"/zenzefi/open/{token.pk}/").status_code == 404
    assert portal.get(f"/zenzefi/open/{token.pk}/").status_code == 405


def test_cookie_mode_rewrites_html_links_into_the_proxy(gate, upstream, browser_cookies, token):
    with httpx.Client(base_url=gate.url, cookies=browser_cookies) as browser:
        page = browser.get("/api/v1/proxy/")

    html = page.text
    assert page.status_code == 200
    assert 'href="/api/v1/proxy/static/app.css"' in html
    assert 'src="/api/v1/proxy/static/logo.svg"' in html
    assert 'href="/api/v1/proxy/certificates/filter"' in html
    assert 'href="certificates/details/1"' in html  # relative links already resolve inside the prefix
    assert 'href="/api/v1/proxy/users/currentUser"' in html  # the upstream's absolute URL
    assert upstream not in html
    assert int(page.headers["content-length"]) == len(page.content)
    token.refresh_from_db()
    assert token.activated_at is not None
    session = ProxySession.objects.get()
    assert (session.mode, session.device_id) == ("cookie", browser_cookies["zg_device"])


def test_cookie_mode_rewrites_location_and_set_cookie(gate, upstream, browser_cookies):
    with httpx.Client(base_url=gate.url, cookies=browser_cookies) as browser:
        redirect = browser.get("/api/v1/proxy/redirect")
        cookies = browser.get("/api/v1/proxy/cookies")

    assert redirect.headers["location"] == "/api/v1/proxy/certificates/filter"
    assert cookies.headers.get_list("set-cookie") == [
        "session=abc123; Path=/api/v1/proxy/; HttpOnly",
        "theme=dark; Path=/api/v1/proxy/certificates",
    ]


def test_cookie_mode_keeps_our_cookies_from_the_upstream(gate, upstream, browser_cookies, token):
    with httpx.Client(base_url=gate.url, cookies={**browser_cookies, "sessionid": "s", "theme": "dark"}) as browser:
        body = browser.get("/api/v1/proxy/echo").json()

    cookies = [v for k, v in body["headers"] if k == "cookie"]
    assert cookies == ["theme=dark"]
    assert token.secret not in str(body)


def test_header_mode_passes_html_untouched(gate, upstream, token):
    with httpx.Client(base_url=gate.url) as desktop:
        page = desktop.get("/api/v1/proxy/", headers={"X-Access-Token": token.secret, "X-Device-ID": "desktop-000001"})

    assert 'href="/static/app.css"' in page.text
    assert "/api/v1/proxy" not in page.text


def test_tls_upstream_is_verified_against_the_ca_bundle(gate, settings, token, tmp_path):
    with fake_zenzefi("--tls", "--cert-dir", str(tmp_path)) as (_process, port):
        settings.ZENZEFI_TARGET_URL = f"https://127.0.0.1:{port}"
        from proxy import client

        headers = {"X-Access-Token": token.secret, "X-Device-ID": "desktop-000001"}
        with httpx.Client(base_url=gate.url) as desktop:
            client._clients.clear()  # a fresh client picks up the TLS settings
            untrusted = desktop.get("/api/v1/proxy/echo", headers=headers)
            settings.ZENZEFI_CA_BUNDLE = str(tmp_path / "fake-zenzefi.crt")
            client._clients.clear()
            trusted = desktop.get("/api/v1/proxy/echo", headers=headers)
        client._clients.clear()

    assert untrusted.status_code == 502
    assert trusted.status_code == 200
    assert trusted.json()["path"] == "/echo"


def test_device_rule_holds_across_two_processes(alice, token, zenzefi_url):
    database = django_settings.DATABASES["default"]
    env = {
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "REDIS_URL": django_settings.REDIS_URL,
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DEBUG": "false",
        "ZENZEFI_TARGET_URL": zenzefi_url,
    }
    with process_server(env) as first, process_server(env) as second:
        a = httpx.get(
            first + "/api/v1/proxy/echo", headers={"X-Access-Token": token.secret, "X-Device-ID": "device-A-000001"}
        )
        b = httpx.get(
            second + "/api/v1/proxy/echo", headers={"X-Access-Token": token.secret, "X-Device-ID": "device-B-000002"}
        )
        again = httpx.get(
            second + "/api/v1/proxy/echo", headers={"X-Access-Token": token.secret, "X-Device-ID": "device-A-000001"}
        )
        access.token_revoke(user=alice, token_id=token.pk)
        after_revoke = httpx.get(
            first + "/api/v1/proxy/echo", headers={"X-Access-Token": token.secret, "X-Device-ID": "device-A-000001"}
        )

    assert (a.status_code, b.status_code, again.status_code, after_revoke.status_code) == (200, 409, 200, 401)
    assert re.match(r"Token already in use on device 'device-A\.\.\.'", b.json()["detail"])
    assert ProxySession.objects.count() == 1
    assert sessions_flush() == {"flushed": 1, "closed": 1}
    assert ProxySession.objects.get().end_reason == "token revoked"


def test_rate_limits_hold_across_two_processes(alice, token, zenzefi_url):
    from accounts.tokens import jwt_pair

    database = django_settings.DATABASES["default"]
    env = {
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "REDIS_URL": django_settings.REDIS_URL,
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DEBUG": "false",
        "ZENZEFI_TARGET_URL": zenzefi_url,
        "RATE_LIMIT_PROXY": "3/60",
        "RATE_LIMIT_API": "3/60",
    }
    proxy_headers = {"X-Access-Token": token.secret, "X-Device-ID": "device-A-000001"}
    api_headers = {"Authorization": f"Bearer {jwt_pair(alice)['access_token']}"}
    with process_server(env) as first, process_server(env) as second:
        proxied = [
            httpx.get(url + "/api/v1/proxy/echo", headers=proxy_headers) for url in (first, second, first, second)
        ]
        api = [
            httpx.get(url + "/api/v1/currency/balance", headers=api_headers) for url in (second, first, second, first)
        ]

    assert [r.status_code for r in proxied] == [200, 200, 200, 429]
    assert [r.status_code for r in api] == [200, 200, 200, 429]
    assert api[-1].headers["x-ratelimit-remaining"] == "0"
