import time

import pytest
from django_redis import get_redis_connection

from accounts.models import AuditLog
from zenzefi import ratelimit
from zenzefi.net import client_ip

LOGIN = "/api/v1/auth/login"


def bad_login(api, email="alice@example.com", ip="10.0.0.1"):
    return api.post(LOGIN, {"email": email, "password": "wrong-password"}, format="json", REMOTE_ADDR=ip)


@pytest.mark.django_db
def test_auth_endpoints_are_limited_per_ip_then_recover(api, alice, settings):
    settings.RATE_LIMIT_AUTH = "3/2"
    settings.RATE_LIMIT_LOGIN_FAILURES = "100/60"

    statuses = [bad_login(api).status_code for _ in range(3)]
    blocked = bad_login(api)

    assert statuses == [401, 401, 401]
    assert blocked.status_code == 429
    assert blocked.json()["detail"].startswith("Rate limit exceeded. Try again in ")
    assert 1 <= int(blocked["Retry-After"]) <= 2
    assert blocked["X-RateLimit-Limit"] == "3"
    assert blocked["X-RateLimit-Remaining"] == "0"
    assert int(blocked["X-RateLimit-Reset"]) >= int(time.time())
    # Another address has its own window.
    assert bad_login(api, ip="10.0.0.2").status_code == 401
    # The window slides: after it passes the address may try again.
    time.sleep(int(blocked["Retry-After"]) + 0.1)
    assert bad_login(api).status_code == 401


@pytest.mark.django_db
def test_rate_limit_headers_count_down(api, alice, settings):
    settings.RATE_LIMIT_AUTH = "5/60"

    remaining = [bad_login(api)["X-RateLimit-Remaining"] for _ in range(3)]

    assert remaining == ["4", "3", "2"]


@pytest.mark.django_db
def test_rate_limit_state_lives_in_redis(api, alice):
    bad_login(api, ip="10.9.9.9")

    redis = get_redis_connection("default")
    assert redis.zcard("rl:auth:10.9.9.9") == 1
    assert 0 < redis.pttl("rl:auth:10.9.9.9") <= 60_000


@pytest.mark.django_db
def test_register_counts_against_the_same_ip_window(api, settings):
    settings.RATE_LIMIT_AUTH = "1/60"
    body = {"email": "x@example.com", "username": "xavier", "password": "Tr1cky-Passw0rd"}

    first = api.post("/api/v1/auth/register", body, format="json", REMOTE_ADDR="10.1.1.1")
    second = api.post(
        "/api/v1/auth/register", {**body, "email": "y@example.com"}, format="json", REMOTE_ADDR="10.1.1.1"
    )

    assert first.status_code == 201
    assert second.status_code == 429


@pytest.mark.django_db
def test_failed_logins_lock_the_account_across_ips(api, alice, password, settings):
    settings.RATE_LIMIT_LOGIN_FAILURES = "3/60"

    statuses = [bad_login(api, ip=f"10.0.1.{n}").status_code for n in range(3)]
    blocked = api.post(
        LOGIN, {"email": "Alice@Example.com", "password": password}, format="json", REMOTE_ADDR="10.0.2.1"
    )

    assert statuses == [401, 401, 401]
    assert blocked.status_code == 429
    assert blocked.json()["detail"] == "Too many failed login attempts for this account. Try again later."
    assert int(blocked["Retry-After"]) > 0
    assert AuditLog.objects.filter(action="auth_login_blocked").count() == 1
    assert not AuditLog.objects.filter(action="auth_login").exists()
    # Another account from the same addresses is unaffected.
    assert bad_login(api, email="bob@example.com", ip="10.0.2.1").status_code == 401


@pytest.mark.django_db
def test_successful_logins_do_not_lock_the_account(api, alice, password, settings):
    settings.RATE_LIMIT_LOGIN_FAILURES = "2/60"

    statuses = [
        api.post(LOGIN, {"email": "alice@example.com", "password": password}, format="json", REMOTE_ADDR=f"10.3.0.{n}")
        for n in range(4)
    ]

    assert [r.status_code for r in statuses] == [200, 200, 200, 200]


def test_forwarded_for_is_ignored_from_untrusted_peers(settings):
    settings.TRUSTED_PROXY_IPS = []

    assert client_ip("203.0.113.9", "1.2.3.4") == "203.0.113.9"


def test_forwarded_for_from_trusted_proxy_uses_rightmost_untrusted(settings):
    settings.TRUSTED_PROXY_IPS = ["10.0.0.0/8", "127.0.0.1"]

    assert client_ip("127.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.5") == "198.51.100.7"
    assert client_ip("127.0.0.1", "garbage") == "127.0.0.1"
    assert client_ip("127.0.0.1", "10.0.0.1") == "127.0.0.1"


@pytest.mark.django_db
def test_trusted_proxy_clients_get_separate_windows(api, alice, settings):
    settings.TRUSTED_PROXY_IPS = ["127.0.0.1"]
    settings.RATE_LIMIT_AUTH = "1/60"
    settings.RATE_LIMIT_LOGIN_FAILURES = "100/60"

    first = bad_login(api, ip="127.0.0.1")
    other_client = api.post(
        LOGIN,
        {"email": "alice@example.com", "password": "x"},
        format="json",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.1",
    )
    forged_left = api.post(
        LOGIN,
        {"email": "alice@example.com", "password": "x"},
        format="json",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.1",
    )

    assert first.status_code == 401
    assert other_client.status_code == 401
    assert forged_left.status_code == 429


def test_windows_without_redis_follow_the_same_rule(settings):
    settings.REDIS_URL = ""
    rate = ratelimit.Rate(2, 60)

    decisions = [ratelimit.hit("t", "k", rate) for _ in range(3)]

    assert [d.allowed for d in decisions] == [True, True, False]
    assert [d.remaining for d in decisions] == [1, 0, 0]
    assert decisions[2].retry_after > 0
