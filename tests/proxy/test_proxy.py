import hashlib
import time
from decimal import Decimal

import httpx
import pytest

from access import services as access
from access.models import AccessToken
from accounts.models import User
from proxy.models import ProxySession
from proxy.services import sessions_flush
from tests.helpers import balance, fund
from tests.proxy.test_paths import BYPASSES

pytestmark = pytest.mark.django_db(transaction=True)

DEVICE = "workshop-pc-0001"


@pytest.fixture
def token(alice):
    fund(alice, "100")
    return access.token_purchase(user=alice, duration_hours=24, scope="full")


@pytest.fixture
def cert_token(alice):
    fund(alice, "100")
    return access.token_purchase(user=alice, duration_hours=24, scope="certificates_only")


@pytest.fixture
def http(gate, upstream):
    with httpx.Client(base_url=gate.url + "/api/v1/proxy", timeout=30) as client:
        yield client


def auth(token, device=DEVICE) -> dict:
    headers = {"X-Access-Token": token.secret}
    if device is not None:
        headers["X-Device-ID"] = device
    return headers


def echo(http, token, **kwargs):
    response = http.request(
        kwargs.pop("method", "GET"),
        kwargs.pop("path", "/echo"),
        headers={**auth(token), **kwargs.pop("headers", {})},
        **kwargs,
    )
    assert response.status_code == 200, response.text
    return response.json()


# --- /status ------------------------------------------------------------------------------


def test_status_of_a_ready_token_does_not_activate_it(http, token):
    response = http.get("/status", headers={"X-Access-Token": token.secret})

    assert response.status_code == 200
    assert response.json() == {
        "connected": True,
        "user_id": str(token.user_id),
        "token_id": str(token.pk),
        "is_activated": False,
        "expires_at": None,
        "duration_hours": 24,
        "time_remaining_seconds": None,
        "status": "ready",
    }
    token.refresh_from_db()
    assert token.activated_at is None


def test_status_of_an_active_token(http, token):
    echo(http, token)

    body = http.get("/status", headers={"X-Access-Token": token.secret}).json()

    token.refresh_from_db()
    assert body["status"] == "active"
    assert body["is_activated"] is True
    assert body["expires_at"] == token.expires_at.isoformat()
    assert 86390 <= body["time_remaining_seconds"] <= 86400


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Authentication required: provide X-Access-Token header"),
        ({"X-Access-Token": "nope" * 16}, "Invalid or expired access token"),
    ],
)
def test_status_errors(http, headers, detail):
    response = http.get("/status", headers=headers)

    assert response.status_code == 401
    assert response.json() == {"detail": detail}


# --- the checks, in the reference's order ---------------------------------------------------


def test_missing_device_id_is_403(http, token):
    response = http.get("/echo", headers=auth(token, device=None))

    assert response.status_code == 403
    assert response.json()["detail"].startswith("Device identification required: X-Device-ID header missing.")


@pytest.mark.parametrize("device", ["short", "x" * 256])
def test_bad_device_id_length_is_400(http, token, device):
    response = http.get("/echo", headers=auth(token, device=device))

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid X-Device-ID header format (must be 8-255 characters)"}


def test_missing_token_is_401(http):
    response = http.get("/echo", headers={"X-Device-ID": DEVICE})

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication required: provide X-Access-Token header"}


def test_unknown_token_is_401(http):
    response = http.get("/echo", headers={"X-Access-Token": "z" * 64, "X-Device-ID": DEVICE})

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or expired access token"}


@pytest.mark.parametrize(
    "path",
    [
        "/users/currentUser",
        "/",
        "/certificates/filter/%2e%2e/%2e%2e/users/currentUser",
        "/certificates/filter/../../users/currentUser",
        "/certificates/filter/%252e%252e/%252e%252e/users/currentUser",
        "/certificates%2Ffilter/..%2F..%2Fusers/currentUser",
    ],
)
def test_certificates_scope_denies_other_paths_and_does_not_activate(http, cert_token, path):
    response = http.get(path, headers=auth(cert_token))

    assert response.status_code == 403
    assert response.json()["detail"].startswith("Access denied: your token scope ('certificates_only')")
    cert_token.refresh_from_db()
    assert cert_token.activated_at is None
    assert not ProxySession.objects.exists()


@pytest.mark.parametrize("path", BYPASSES)
def test_certificates_scope_refuses_path_traversal_bypasses_sent_as_is(http, cert_token, path):
    """Sent byte for byte (no client-side normalisation): the OWASP cheat sheet's list, for a servlet upstream."""
    target = ("/api/v1/proxy" + path).encode("latin-1")

    response = http.get(path, headers=auth(cert_token), extensions={"target": target})

    assert response.status_code == 403, response.text
    assert response.json()["detail"].startswith("Access denied: your token scope ('certificates_only')")
    cert_token.refresh_from_db()
    assert cert_token.activated_at is None
    assert not ProxySession.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/certificates/filter",
        "/certificates/details/2",
        "/certificates/x/../filter",
        "/certificates//filter",
        "/certificates/filter;jsessionid=ABC123",
        "/certificates;v=1/details/2",
    ],
)
def test_certificates_scope_allows_certificate_paths(http, cert_token, path):
    response = http.get(path, headers=auth(cert_token), extensions={"target": ("/api/v1/proxy" + path).encode()})

    assert response.status_code == 200
    assert "certificates" in response.json() or response.json()["id"] == 2


def test_the_upstream_gets_the_path_the_scope_check_saw(http, token):
    path = "/echo;jsessionid=1/..;/echo"

    body = echo(http, token, path=path, extensions={"target": ("/api/v1/proxy" + path).encode()})

    assert body["path"] == "/echo"


# --- what the upstream receives -------------------------------------------------------------


def test_upstream_gets_no_token_and_forwarded_headers(http, token):
    body = echo(
        http,
        token,
        headers={"Cookie": "a=1; sessionid=portal; zg_proxy=x", "Connection": "keep-alive", "X-Custom": "kept"},
    )

    headers = {}
    for name, value in body["headers"]:
        headers.setdefault(name, []).append(value)
    assert "x-access-token" not in headers
    assert "x-device-id" not in headers
    assert headers["cookie"] == ["a=1"]
    assert headers["x-custom"] == ["kept"]
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-forwarded-proto"] == ["http"]
    assert headers["x-forwarded-host"][0].startswith("127.0.0.1:")
    assert token.secret not in str(body)


def test_query_with_repeated_parameters_is_intact(http, token):
    body = echo(http, token, path="/echo?x=1&x=2&empty=&q=a%20b")

    assert body["query"] == "x=1&x=2&empty=&q=a%20b"
    assert body["query_params"] == {"x": ["1", "2"], "empty": [""], "q": ["a b"]}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_methods_and_bodies_reach_upstream(http, token, method):
    payload = b'{"certificate": "' + b"A" * 5000 + b'"}'

    body = echo(http, token, method=method, content=payload, headers={"Content-Type": "application/json"})

    assert body["method"] == method
    assert body["body_length"] == len(payload)
    assert body["body_sha256"] == hashlib.sha256(payload).hexdigest()


def test_head_and_options_are_proxied(http, token):
    head = http.head("/echo", headers=auth(token))
    options = http.options("/echo", headers=auth(token))

    assert head.status_code == 200
    assert head.content == b""
    assert options.json()["method"] == "OPTIONS"


def test_large_upload_streams_through(http, token):
    payload = bytes(range(256)) * 40_000  # ~10 MB

    body = echo(
        http,
        token,
        method="POST",
        path="/echo",
        content=iter([payload[i : i + 65536] for i in range(0, len(payload), 65536)]),
    )

    assert body["body_length"] == len(payload)
    assert body["body_sha256"] == hashlib.sha256(payload).hexdigest()


def test_large_download_streams_through(http, token):
    received = 0
    with http.stream("GET", "/large?kb=20480", headers=auth(token)) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(20480 * 1024)
        for chunk in response.iter_raw():
            received += len(chunk)

    assert received == 20480 * 1024


def test_redirects_are_passed_back(http, token):
    response = http.get("/redirect", headers=auth(token))

    assert response.status_code == 302
    assert response.headers["location"] == "/certificates/filter"


def test_repeated_set_cookie_headers_stay_separate(http, token):
    response = http.get("/cookies", headers=auth(token))

    assert response.headers.get_list("set-cookie") == [
        "session=abc123; Path=/; HttpOnly",
        "theme=dark; Path=/certificates",
    ]
    assert len(response.headers.get_list("date")) == 1  # the upstream's Date is replaced, not doubled


def test_upstream_status_codes_pass_through(http, token):
    assert http.get("/status/418", headers=auth(token)).status_code == 418


# --- CORS -------------------------------------------------------------------------------------


def test_cors_answers_only_the_desktop_client_origin(http, token):
    allowed = http.get("/echo", headers={**auth(token), "Origin": "https://127.0.0.1:61000"})
    other = http.get("/echo", headers={**auth(token), "Origin": "https://evil.example"})
    preflight = http.options(
        "/echo", headers={"Origin": "https://localhost:61000", "Access-Control-Request-Method": "POST"}
    )
    bad_preflight = http.options(
        "/echo", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )

    assert allowed.headers["access-control-allow-origin"] == "https://127.0.0.1:61000"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in other.headers
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://localhost:61000"
    assert bad_preflight.status_code == 403
    assert "*" not in allowed.headers.get("access-control-allow-origin", "")


# --- upstream failures --------------------------------------------------------------------


def test_upstream_down_is_502_and_charges_nothing(http, token, settings):
    echo(http, token)  # activates
    token.refresh_from_db()
    activated = token.activated_at
    settings.ZENZEFI_TARGET_URL = "http://127.0.0.1:9"

    response = http.get("/echo", headers=auth(token))

    assert response.status_code == 502
    assert response.json() == {"detail": "Bad Gateway: Unable to reach Zenzefi server"}
    token.refresh_from_db()
    assert token.activated_at == activated
    assert balance(token.user) == Decimal("82.00")
    assert http.get("/status", headers={"X-Access-Token": token.secret}).status_code == 200


def test_upstream_timeout_is_504_and_token_stays_valid(http, token, settings):
    settings.PROXY_READ_TIMEOUT = 0.5

    response = http.get("/slow?seconds=3", headers=auth(token))

    assert response.status_code == 504
    assert response.json() == {"detail": "Gateway Timeout: Zenzefi server did not respond"}
    settings.PROXY_READ_TIMEOUT = 60
    assert http.get("/echo", headers=auth(token)).status_code == 200
    assert AccessToken.objects.filter(pk=token.pk, activated_at__isnull=False).count() == 1
    assert balance(token.user) == Decimal("82.00")


# --- device rule and sessions ------------------------------------------------------------------


def test_second_device_is_refused_then_takes_over_after_idle(http, token, settings):
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 1
    assert http.get("/echo", headers=auth(token, "device-A-000001")).status_code == 200

    conflict = http.get("/echo", headers=auth(token, "device-B-000002"))

    assert conflict.status_code == 409
    assert conflict.json()["detail"].startswith("Token already in use on device 'device-A...'. Session started at ")
    time.sleep(1.2)
    assert http.get("/echo", headers=auth(token, "device-B-000002")).status_code == 200
    first, second = ProxySession.objects.order_by("started_at")
    assert (first.device_id, first.end_reason, first.ended_at is not None) == ("device-A-000001", "taken over", True)
    assert (second.device_id, second.ended_at) == ("device-B-000002", None)


def test_conflict_does_not_activate(http, token, alice):
    other = access.token_purchase(user=alice, duration_hours=1)
    http.get("/echo", headers=auth(other, "device-A-000001"))

    refused = http.get("/echo", headers=auth(other, "device-B-000002"))

    assert refused.status_code == 409
    token.refresh_from_db()
    assert token.activated_at is None


def test_counters_are_flushed_to_the_session_row(http, token, settings):
    for _ in range(3):
        echo(http, token)
    http.get("/large?kb=64", headers=auth(token))
    time.sleep(1.3)  # the proxy adds byte counts to Redis once a second

    result = sessions_flush()

    session = ProxySession.objects.get()
    assert result == {"flushed": 1, "closed": 0}
    assert session.request_count == 4
    assert session.bytes_out > 64 * 1024
    assert session.device_id == DEVICE
    assert session.ip_address == "127.0.0.1"
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 0
    assert sessions_flush() == {"flushed": 1, "closed": 1}
    session.refresh_from_db()
    assert session.end_reason == "idle"
    assert session.ended_at is not None


def test_a_warm_request_makes_no_database_query(http, token, monkeypatch):
    from django.db.backends import utils

    queries = []
    original = utils.CursorWrapper.execute

    def counting(self, sql, params=None):
        queries.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(utils.CursorWrapper, "execute", counting)
    echo(http, token)  # cold: validates, opens the session, activates
    echo(http, token)  # re-reads the token facts after activation
    cold = len(queries)
    for _ in range(5):
        echo(http, token)

    assert cold > 0  # the counter sees the server's queries
    assert queries[cold:] == []


def test_revoked_token_is_refused_at_once(http, token, alice):
    echo(http, token)

    access.token_revoke(user=alice, token_id=token.pk)

    assert http.get("/echo", headers=auth(token)).status_code == 401


def test_deactivated_user_is_refused_at_once(http, token, alice, admin_user, as_user):
    echo(http, token)

    as_user(admin_user).patch(f"/api/v1/admin/users/{alice.pk}", {"is_active": False}, format="json")

    assert User.objects.get(pk=alice.pk).is_active is False
    assert http.get("/echo", headers=auth(token)).status_code == 401


def test_warm_token_keeps_the_check_order(http, cert_token, alice, admin_user, as_user):
    assert http.get("/certificates/filter", headers=auth(cert_token)).status_code == 200  # now warm

    denied = http.get("/users/currentUser", headers=auth(cert_token))
    other_device = http.get("/users/currentUser", headers=auth(cert_token, "device-B-000002"))
    as_user(admin_user).patch(f"/api/v1/admin/users/{alice.pk}", {"is_active": False}, format="json")
    blocked = http.get("/users/currentUser", headers=auth(cert_token))

    assert denied.status_code == 403
    assert denied.json()["detail"] == (
        "Access denied: your token scope ('certificates_only') does not allow access to '/users/currentUser'"
    )
    assert other_device.status_code == 403  # scope is checked before the device rule
    assert blocked.status_code == 401  # validity before scope
