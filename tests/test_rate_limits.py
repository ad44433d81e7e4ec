"""The three kinds of rate limit beyond the auth endpoints: per user on the API (by tier), per token on the proxy."""

import httpx
import pytest

from access import services as access
from accounts.models import User
from tests.helpers import fund


@pytest.mark.django_db
@pytest.mark.parametrize(("tier", "allowed"), [("free", 3), ("premium", 5)])
def test_api_is_limited_per_user_by_tier(as_user, alice, settings, tier, allowed):
    settings.RATE_LIMIT_API = "3/60"
    settings.RATE_LIMIT_API_PREMIUM = "5/60"
    User.objects.filter(pk=alice.pk).update(rate_tier=tier)
    client = as_user(alice)

    responses = [client.get("/api/v1/currency/balance") for _ in range(allowed + 1)]

    assert [r.status_code for r in responses] == [200] * allowed + [429]
    assert [r["X-RateLimit-Remaining"] for r in responses[:allowed]] == [str(n) for n in range(allowed - 1, -1, -1)]
    blocked = responses[-1]
    assert blocked.json()["detail"].startswith("Rate limit exceeded. Try again in ")
    assert int(blocked["Retry-After"]) >= 1
    assert blocked["X-RateLimit-Limit"] == str(allowed)
    assert blocked["X-RateLimit-Remaining"] == "0"


@pytest.mark.django_db
def test_api_limit_is_per_user_and_enterprise_is_unlimited(as_user, alice, bob, settings):
    settings.RATE_LIMIT_API = "2/60"
    User.objects.filter(pk=bob.pk).update(rate_tier="enterprise")

    alice_codes = [as_user(alice).get("/api/v1/users/me").status_code for _ in range(3)]
    bob_responses = [as_user(bob).get("/api/v1/users/me") for _ in range(5)]

    assert alice_codes == [200, 200, 429]
    assert [r.status_code for r in bob_responses] == [200] * 5
    assert "X-RateLimit-Limit" not in bob_responses[0]


@pytest.mark.django_db(transaction=True)
def test_proxy_is_limited_per_token_on_cold_and_warm_paths(gate, upstream, alice, settings):
    settings.RATE_LIMIT_PROXY = "3/60"
    fund(alice, "10")
    token = access.token_purchase(user=alice, duration_hours=1)
    other = access.token_purchase(user=alice, duration_hours=1)
    headers = {"X-Access-Token": token.secret, "X-Device-ID": "device-000001"}

    with httpx.Client(base_url=gate.url + "/api/v1/proxy") as http:
        responses = [http.get("/echo", headers=headers) for _ in range(4)]
        other_token = http.get("/echo", headers={"X-Access-Token": other.secret, "X-Device-ID": "device-000002"})

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in responses[:3]] == ["2", "1", "0"]
    blocked = responses[3]
    assert blocked.json()["detail"].startswith("Rate limit exceeded. Try again in ")
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert blocked.headers["x-ratelimit-limit"] == "3"
    assert other_token.status_code == 200
