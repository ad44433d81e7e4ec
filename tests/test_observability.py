"""/metrics moves with every listed action; logs are JSON lines with request ids and no secrets."""

import json
import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from access import services as access
from tests.helpers import fund
from tests.wallet.helpers import signed_webhook
from zenzefi.logging import JsonFormatter


def scrape(client) -> dict[tuple, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.django_db(transaction=True)
def test_metrics_move_with_each_action(client, api, as_user, alice, gate, upstream, settings):
    settings.ENABLE_MOCK_PAYMENTS = True
    settings.PAYMENT_PROVIDER = "mock"
    settings.PAYMENT_WEBHOOK_SECRET = "s3cret-for-tests"
    settings.RATE_LIMIT_AUTH = "100/60"
    before = scrape(client)

    api.post("/api/v1/auth/login", {"email": "alice@example.com", "password": "wrong-one"}, format="json")
    api.post("/api/v1/auth/login", {"email": "alice@example.com", "password": "Correct-Horse-42"}, format="json")
    as_user(alice).post("/api/v1/currency/mock-purchase", {"amount": 50}, format="json")
    payment = as_user(alice).post("/api/v1/currency/purchase", {"amount_znc": 20}, format="json").json()
    signed_webhook(api, {"payment_id": payment["payment_id"], "status": "succeeded"})
    token = access.token_purchase(user=alice, duration_hours=12)
    spare = access.token_purchase(user=alice, duration_hours=1)
    access.token_revoke(user=alice, token_id=spare.pk)
    with httpx.Client(base_url=gate.url) as http:
        ok = http.get("/api/v1/proxy/echo", headers={"X-Access-Token": token.secret, "X-Device-ID": "device-000001"})
        refused = http.get("/api/v1/proxy/echo", headers={"X-Device-ID": "device-000001"})
    settings.RATE_LIMIT_API = "0/60"
    as_user(alice).get("/api/v1/users/me")
    after = scrape(client)

    def moved(name, by=1.0, **labels):
        assert value(after, name, **labels) - value(before, name, **labels) == pytest.approx(by), (name, labels)

    assert (ok.status_code, refused.status_code) == (200, 401)
    moved("auth_attempts_total", result="failure")
    moved("auth_attempts_total", result="success")
    moved("balance_deposits_total", by=2)
    moved("znc_total", by=70, kind="deposited")
    moved("znc_total", by=11, kind="spent")
    moved("znc_total", by=1, kind="refunded")
    moved("payments_total", provider="mock", status="pending")
    moved("payments_total", provider="mock", status="succeeded")
    moved("token_purchases_total", duration_hours="12")
    moved("token_purchases_total", duration_hours="1")
    moved("token_revocations_total")
    moved("proxy_requests_total", method="GET", status_code="200")
    moved("proxy_requests_total", method="GET", status_code="401")
    moved("proxy_responses_total", status_class="2xx", scope="full")
    moved("proxy_latency_seconds_count", by=2)
    moved("proxy_upstream_latency_seconds_count")
    moved("rate_limit_rejections_total", bucket="api")
    assert value(after, "proxy_bytes_total", direction="out") > value(before, "proxy_bytes_total", direction="out")
    assert value(after, "active_tokens") == 1
    assert value(after, "active_sessions") == 1
    assert value(after, "total_users") == 1
    assert value(after, "redis_connected") == 1
    assert value(after, "database_connected") == 1


@pytest.mark.django_db
def test_beat_task_runs_are_counted(client, upstream):
    from zenzefi.tasks import health_check

    before = value(scrape(client), "beat_task_runs_total", task="zenzefi.health_check", result="success")
    health_check.apply()

    after = value(scrape(client), "beat_task_runs_total", task="zenzefi.health_check", result="success")
    assert after - before == 1


@pytest.mark.django_db
def test_metrics_token_protects_the_endpoint(client, settings):
    settings.METRICS_TOKEN = "scrape-me"

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200


@pytest.fixture
def json_logs():
    """Everything logged during the test, as the JSON lines production writes."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    yield records
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.mark.django_db(transaction=True)
def test_logs_are_json_with_request_ids_and_hold_no_secret(json_logs, api, as_user, gate, upstream, settings):
    password = "Very-Secret-Passw0rd-77"
    register = api.post(
        "/api/v1/auth/register",
        {"email": "logs@example.com", "username": "logger", "password": password},
        format="json",
        HTTP_X_REQUEST_ID="req-abc-123",
    )
    login = api.post("/api/v1/auth/login", {"email": "logs@example.com", "password": password}, format="json")
    jwt = login.json()["access_token"]
    refresh = login.json()["refresh_token"]
    api.post("/api/v1/auth/login", {"email": "logs@example.com", "password": "wrong-" + password}, format="json")
    from accounts.models import User

    user = User.objects.get(username="logger")
    fund(user, "10")
    token = access.token_purchase(user=user, duration_hours=1)
    with httpx.Client(base_url=gate.url) as http:
        proxied = http.get(
            "/api/v1/proxy/echo?q=1",
            headers={
                "X-Access-Token": token.secret,
                "X-Device-ID": "device-000001",
                "Cookie": "sessionid=cookie-secret-1",
            },
        )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt}")
    api.get("/api/v1/users/me")
    api.post("/password/reset/", {"email": "logs@example.com"})

    assert register["X-Request-ID"] == "req-abc-123"
    assert len(proxied.headers["x-request-id"]) == 32
    lines = [json.loads(line) for line in json_logs]
    access_lines = [line for line in lines if line["logger"] == "zenzefi.access"]
    assert {
        "request_id": "req-abc-123",
        "method": "POST",
        "path": "/api/v1/auth/register",
        "status": 201,
    }.items() <= access_lines[0].items()
    proxy_line = next(line for line in access_lines if line["path"] == "/api/v1/proxy/echo")
    assert proxy_line["token_id"] == str(token.pk)
    assert proxy_line["user_id"] == str(user.pk)
    assert proxy_line["request_id"] == proxied.headers["x-request-id"]
    assert "duration_ms" in proxy_line
    everything = "\n".join(json_logs)
    for secret in (password, jwt, refresh, token.secret, "cookie-secret-1", jwt.split(".")[2]):
        assert secret not in everything


@pytest.mark.django_db
def test_error_records_hold_no_query_string(json_logs, as_user, alice, monkeypatch):
    def broken(user):
        raise RuntimeError("boom")

    monkeypatch.setattr("accounts.api.referral_summary", broken)
    client = as_user(alice)
    client.raise_request_exception = False

    response = client.get("/api/v1/users/me/referrals?email=alice%40example.com&code=secret-query-777")

    assert response.status_code == 500
    errors = [json.loads(line) for line in json_logs if '"django.request"' in line]
    assert errors, json_logs
    assert errors[0]["message"] == "Internal Server Error: /api/v1/users/me/referrals"
    assert errors[0]["request"] == "GET /api/v1/users/me/referrals"
    everything = "\n".join(json_logs)
    assert "secret-query-777" not in everything
    assert "alice%40example.com" not in everything


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "status"),
    [
        ([], "127.0.0.1", None, 200),
        ([], "::1", None, 200),
        ([], "203.0.113.5", None, 403),
        ([], "10.0.0.7", None, 403),
        # A local proxy nobody declared relays the outside world: not local.
        ([], "127.0.0.1", "203.0.113.5", 403),
        (["10.0.0.0/8"], "10.0.0.7", None, 200),
        # A trusted proxy is judged by whom it relays.
        (["127.0.0.1"], "127.0.0.1", "203.0.113.5", 403),
        (["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", "10.0.0.9", 200),
        (["127.0.0.1"], "127.0.0.1", "203.0.113.5, 127.0.0.1", 403),
    ],
)
def test_metrics_without_a_token_answer_only_loopback_and_trusted_peers(
    client, settings, trusted, remote, forwarded, status
):
    settings.METRICS_TOKEN = ""
    settings.TRUSTED_PROXY_IPS = trusted
    extra = {"REMOTE_ADDR": remote}
    if forwarded:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded

    response = client.get("/metrics", **extra)

    assert response.status_code == status
    if status == 403:
        assert b"METRICS_TOKEN" in response.content
        assert b"proxy_requests_total" not in response.content


def test_metrics_token_opens_the_endpoint_to_any_address(client, settings):
    settings.METRICS_TOKEN = "scrape-me"

    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200
