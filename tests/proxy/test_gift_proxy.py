"""The proxy refuses a pending gift, and serves it to its recipient after the claim, on a new device."""

import threading
import time

import httpx
import pytest

from access import gifts
from access import services as access
from access.models import AccessToken
from proxy import sessions
from proxy.models import ProxySession
from tests.helpers import fund

pytestmark = pytest.mark.django_db(transaction=True)

SENDER_DEVICE = "senders-pc-0001"
RECIPIENT_DEVICE = "recipient-laptop-01"


@pytest.fixture
def http(gate, upstream):
    with httpx.Client(base_url=gate.url + "/api/v1/proxy", timeout=30) as client:
        yield client


def test_a_pending_gift_is_refused_and_the_recipient_uses_it_after_the_claim(http, alice, bob):
    fund(alice, "30")
    token = access.token_purchase(user=alice, duration_hours=12)
    old_secret = token.secret
    # The sender's client has seen the token: this process caches its facts.
    assert http.get("/status", headers={"X-Access-Token": old_secret}).json()["status"] == "ready"
    _gift, code = gifts.gift_send(user=alice, token_id=token.pk)

    refused = http.get("/echo", headers={"X-Access-Token": old_secret, "X-Device-ID": SENDER_DEVICE})
    status = http.get("/status", headers={"X-Access-Token": old_secret})

    assert refused.status_code == 401
    assert refused.json()["detail"] == access.GIFT_PENDING_DETAIL
    assert "pending gift" in refused.json()["detail"]
    assert status.status_code == 401 and status.json()["detail"] == access.GIFT_PENDING_DETAIL
    token.refresh_from_db()
    assert token.activated_at is None
    assert ProxySession.objects.count() == 0  # no session holds the token against the recipient's device

    gifts.gift_claim(user=bob, code=code, accept=True)
    token.refresh_from_db()
    served = http.get("/echo", headers={"X-Access-Token": token.secret, "X-Device-ID": RECIPIENT_DEVICE})
    again = http.get("/echo", headers={"X-Access-Token": token.secret, "X-Device-ID": RECIPIENT_DEVICE})
    by_sender = http.get("/echo", headers={"X-Access-Token": old_secret, "X-Device-ID": SENDER_DEVICE})

    assert served.status_code == 200, served.text
    assert again.status_code == 200
    assert by_sender.status_code == 401 and by_sender.json()["detail"] == "Invalid or expired access token"
    token = AccessToken.objects.get(pk=token.pk)
    assert token.activated_at is not None and token.user_id == bob.pk
    session = ProxySession.objects.get(token=token)
    assert (session.user_id, session.device_id) == (bob.pk, RECIPIENT_DEVICE)
    body = http.get("/status", headers={"X-Access-Token": token.secret}).json()
    assert body["user_id"] == str(bob.pk) and body["status"] == "active"


def test_a_cancelled_gift_works_again_for_its_sender(http, alice):
    fund(alice, "30")
    token = access.token_purchase(user=alice, duration_hours=12)
    gift, _code = gifts.gift_send(user=alice, token_id=token.pk)
    headers = {"X-Access-Token": token.secret, "X-Device-ID": SENDER_DEVICE}
    assert http.get("/echo", headers=headers).status_code == 401

    gifts.gift_cancel(user=alice, gift_id=gift.pk)

    assert http.get("/echo", headers=headers).status_code == 200
    token.refresh_from_db()
    assert token.activated_at is not None


def test_a_gift_made_while_the_first_request_is_in_flight_leaves_no_session(http, alice, bob):
    """The first request passed its checks before the gift; when Zenzefi answers, the token is a pending gift:
    it is not activated, the request is refused, and the session it began does not hold the token against the
    recipient's device."""
    fund(alice, "30")
    token = access.token_purchase(user=alice, duration_hours=12)
    headers = {"X-Access-Token": token.secret, "X-Device-ID": SENDER_DEVICE}
    answers = {}
    first = threading.Thread(target=lambda: answers.setdefault("slow", http.get("/slow?seconds=2", headers=headers)))
    first.start()
    for _ in range(100):  # until the request has begun its session in Redis and waits on the upstream
        if str(token.pk) in sessions.snapshot_all():
            break
        time.sleep(0.02)
    _gift, code = gifts.gift_send(user=alice, token_id=token.pk)
    first.join()

    assert answers["slow"].status_code == 401
    token.refresh_from_db()
    assert token.activated_at is None
    gifts.gift_claim(user=bob, code=code, accept=True)
    token.refresh_from_db()
    served = http.get("/echo", headers={"X-Access-Token": token.secret, "X-Device-ID": RECIPIENT_DEVICE})
    assert served.status_code == 200, served.text  # no 409: the sender's unfinished session was forgotten
