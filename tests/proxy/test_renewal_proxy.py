"""A renewed token keeps proxying with the same secret and device; the proxy sees the new expiry at once."""

import datetime as dt

import httpx
import pytest
import time_machine
from django.utils import timezone

from access import services as access
from access.models import AccessToken, TokenRenewal
from access.renewal import token_auto_renew_set, tokens_renew
from tests.helpers import fund

pytestmark = pytest.mark.django_db(transaction=True)

DEVICE = "workshop-pc-0001"


@pytest.fixture
def http(gate, upstream):
    with httpx.Client(base_url=gate.url + "/api/v1/proxy", timeout=30) as client:
        yield client


def test_renewed_token_still_proxies_with_the_same_secret_after_its_first_expiry(http, alice):
    fund(alice, "30")
    token = access.token_purchase(user=alice, duration_hours=12)
    token_auto_renew_set(user=alice, token_id=token.pk, enabled=True)
    headers = {"X-Access-Token": token.secret, "X-Device-ID": DEVICE}
    assert http.get("/echo", headers=headers).status_code == 200  # first use: activates, caches the facts
    # 11.5 hours later, as far as the database knows; the proxy's cache still holds the first expiry.
    now = timezone.now()
    AccessToken.objects.filter(pk=token.pk).update(
        activated_at=now - dt.timedelta(hours=11.5), expires_at=now + dt.timedelta(minutes=30)
    )

    assert tokens_renew() == 1

    token.refresh_from_db()
    assert token.expires_at == now + dt.timedelta(hours=12, minutes=30)
    assert TokenRenewal.objects.get(token=token).period == 2
    status = http.get("/status", headers={"X-Access-Token": token.secret}).json()
    assert status["expires_at"] == token.expires_at.isoformat()  # the cached facts were dropped on commit
    assert http.get("/echo", headers=headers).status_code == 200
    # The device binding is the token's: another device is still refused while this one is active.
    other = http.get("/echo", headers={**headers, "X-Device-ID": "another-device-01"})
    assert other.status_code == 409

    with time_machine.travel(now + dt.timedelta(minutes=31)):  # past the first period's end
        assert access.tokens_expire() == 0
        response = http.get("/echo", headers=headers)
        status = http.get("/status", headers={"X-Access-Token": token.secret}).json()

    assert response.status_code == 200, response.text
    assert status["status"] == "active"
    assert 11.9 * 3600 <= status["time_remaining_seconds"] <= 12 * 3600
