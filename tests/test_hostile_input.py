"""Hostile input answers a 4xx with a JSON ``detail`` and writes nothing; what still fails answers JSON 500."""

import json
import socket
import time

import httpx
import pytest
from rest_framework.test import APIClient

from access.models import AccessToken, Bundle
from accounts.models import AuditLog, User
from accounts.tokens import jwt_pair
from tests.helpers import fund
from tests.wallet.helpers import signed_webhook
from wallet.models import Payment, Transaction

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register"


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count() for model in (User, AuditLog, Transaction, AccessToken, Payment, Bundle)
    }


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def assert_refused(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return body


# --- 6: nesting ---------------------------------------------------------------------------------


@pytest.fixture
def clients(alice, admin_user, settings):
    """An anonymous, a user's and an admin's API client, keyed by who calls."""
    settings.PAYMENT_WEBHOOK_SECRET = "s3cret-for-tests"
    settings.ENABLE_MOCK_PAYMENTS = True
    settings.YOOKASSA_SHOP_ID, settings.YOOKASSA_SECRET_KEY = "506751", "test_SECRET"
    fund(alice, "100")
    user = APIClient()
    user.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_pair(alice)['access_token']}")
    staff = APIClient()
    staff.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_pair(admin_user)['access_token']}")
    return {"anonymous": APIClient(), "user": user, "admin": staff}


JSON_ENDPOINTS = [
    ("anonymous", "post", REGISTER),
    ("anonymous", "post", "/api/v1/auth/login"),
    ("anonymous", "post", "/api/v1/auth/refresh"),
    ("user", "patch", "/api/v1/users/me"),
    ("user", "post", "/api/v1/tokens/purchase"),
    ("user", "post", "/api/v1/currency/purchase"),
    ("user", "post", "/api/v1/currency/mock-purchase"),
    ("admin", "post", "/api/v1/bundles"),
]


NESTED_BODIES = {
    "array-1000": nested(1000),
    "field-5000": '{"email": ' + nested(5000) + "}",
    "object-41": '{"password": ' + '{"a": ' * 40 + '"x"' + "}" * 41,
}


@pytest.mark.parametrize(("who", "method", "path"), JSON_ENDPOINTS)
def test_deeply_nested_json_is_400_and_writes_nothing(clients, who, method, path):
    before = counts()

    for name, body in NESTED_BODIES.items():
        response = getattr(clients[who], method)(path, body, content_type="application/json")

        detail = assert_refused(response, 400)["detail"]
        assert detail == "JSON parse error - JSON nested deeper than 32 levels", name
    assert counts() == before


def test_deeply_nested_signed_webhook_is_400(clients):
    before = counts()

    response = signed_webhook(clients["anonymous"], {"payment_id": json.loads(nested(800)), "status": "succeeded"})

    assert_refused(response, 400)
    assert counts() == before


@pytest.mark.parametrize("depth", [40, 1000, 5000])
def test_deeply_nested_yookassa_notification_is_400(clients, depth):
    body = '{"type": "notification", "event": "payment.succeeded", "object": {"id": ' + nested(depth) + "}}"
    before = counts()

    response = clients["anonymous"].post("/api/v1/webhooks/yookassa", body, content_type="application/json")

    assert_refused(response, 400)
    assert counts() == before


def test_ordinary_nesting_still_parses(clients, admin_user):
    response = clients["admin"].patch(
        f"/api/v1/admin/users/{admin_user.pk}", {"reason": "ok", "is_active": True}, format="json"
    )

    assert response.status_code == 200


# --- 7: integer query parameters -----------------------------------------------------------------

PAGED = [
    ("user", "/api/v1/currency/transactions"),
    ("admin", "/api/v1/admin/users"),
    ("admin", "/api/v1/admin/audit-logs"),
    ("admin", "/api/v1/admin/tokens"),
]


@pytest.mark.parametrize(("who", "path"), PAGED)
def test_huge_integer_query_parameters_are_400(clients, who, path):
    for name in ("offset", "skip", "limit"):
        for value in (2**63, 2**63 - 1, 10**40, -(2**63) - 1):
            response = clients[who].get(path, {name: value})

            body = assert_refused(response, 400)
            assert name in body, (name, value)


@pytest.mark.parametrize(("who", "path"), PAGED)
def test_a_large_but_sane_offset_is_an_empty_page(clients, who, path):
    response = clients[who].get(path, {"offset": 2_000_000_000})

    assert response.status_code == 200
    assert response.json()["items"] == []
    assert response.json()["offset"] == 2_000_000_000


# --- 8: NUL and other text that cannot be stored ----------------------------------------------


def test_nul_in_the_referral_code_is_400_and_registers_nobody(clients):
    before = counts()

    response = clients["anonymous"].post(
        REGISTER + "?ref=%00", {"email": "x@example.com", "username": "xavier", "password": "Tr1cky-Passw0rd"}
    )

    body = assert_refused(response, 400)
    assert "ref" in body
    assert counts() == before


@pytest.mark.parametrize("param", ["ref", "referral_code"])
def test_nul_in_either_referral_parameter_is_400(clients, param):
    response = clients["anonymous"].post(
        f"{REGISTER}?{param}=AB%00CD", {"email": "x@example.com", "username": "xavier", "password": "Tr1cky-Passw0rd"}
    )

    assert_refused(response, 400)
    assert not User.objects.filter(username="xavier").exists()


def test_nul_in_the_mock_payment_id_is_400(clients):
    before = counts()

    response = clients["anonymous"].get("/api/v1/webhooks/mock-payment?payment_id=%00")

    body = assert_refused(response, 400)
    assert "payment_id" in body
    assert counts() == before


@pytest.mark.parametrize("field", ["email", "username", "password", "full_name"])
def test_unstorable_text_in_a_json_body_is_400(clients, field):
    before = counts()

    for text in ("ca\x00rol", "ca\ud800rol"):  # NUL, a lone surrogate
        body = {"email": "carol@example.com", "username": "carol", "password": "Tr1cky-Passw0rd", "full_name": "C"}
        body[field] = text + "@example.com" if field == "email" else text + "-Passw0rd-9"
        response = clients["anonymous"].post(REGISTER, json.dumps(body), content_type="application/json")

        assert field in assert_refused(response, 400), repr(text)
    assert counts() == before


def test_nul_in_a_signed_webhook_payment_id_is_400(clients):
    before = counts()

    response = signed_webhook(clients["anonymous"], {"payment_id": "p\x00", "status": "succeeded"})

    assert_refused(response, 400)
    assert counts() == before


# --- 9: body size -------------------------------------------------------------------------------


def test_a_body_over_one_megabyte_is_413_and_registers_nobody(clients):
    body = {"email": "big@example.com", "username": "biggie", "password": "Tr1cky-Passw0rd", "pad": "x" * 1_100_000}
    before = counts()

    response = clients["anonymous"].post(REGISTER, body, format="json")

    assert_refused(response, 413)
    assert counts() == before


def test_a_body_just_under_the_limit_is_parsed(clients):
    body = {"email": "big@example.com", "username": "biggie", "password": "Tr1cky-Passw0rd", "pad": "x" * 1_000_000}

    response = clients["anonymous"].post(REGISTER, body, format="json")

    assert response.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_declared_huge_body_is_413_before_it_is_sent(gate):
    """Content-Length alone is enough: the server answers without waiting for 100 MB that never come."""
    request = (
        f"POST {REGISTER} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 100000000\r\nConnection: close\r\n\r\n{"
    ).encode()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gate.port), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"content-type: application/json" in head.lower()
    assert json.loads(payload)["detail"].startswith("Request body too large")
    assert time.monotonic() - started < 3
    assert not User.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_streamed_body_is_cut_off_at_the_limit(gate):
    """Without Content-Length (chunked), the count is kept while the body arrives."""

    def chunks():
        yield b'{"email": "big@example.com", "username": "biggie", "password": "Tr1cky-Passw0rd", "pad": "'
        for _ in range(64):  # 4 MB
            yield b"x" * 65536
        yield b'"}'

    with httpx.Client(base_url=gate.url, timeout=10) as http:
        response = http.post(REGISTER, content=chunks(), headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"] == "Request body too large (limit 1048576 bytes)"
    assert not User.objects.exists()


# --- 10: the last handler -------------------------------------------------------------------------


def test_an_unhandled_api_error_answers_json_with_the_request_id(clients, monkeypatch):
    def broken(user):
        raise RuntimeError("boom")

    monkeypatch.setattr("accounts.api.referral_summary", broken)
    client = clients["user"]
    client.raise_request_exception = False

    response = client.get("/api/v1/users/me/referrals", HTTP_X_REQUEST_ID="req-500-1")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Internal server error", "request_id": "req-500-1"}
    assert response["X-Request-ID"] == "req-500-1"


def test_an_unknown_api_path_answers_json(clients):
    response = clients["anonymous"].get("/api/v1/no/such/thing")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found"}


def test_an_unhandled_portal_error_keeps_the_html_page(client, alice, monkeypatch):
    def broken(user):
        raise RuntimeError("boom")

    monkeypatch.setattr("accounts.views.referral_summary", broken)
    client.force_login(alice)
    client.raise_request_exception = False

    response = client.get("/referrals/")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert b"Something went wrong" in response.content
