"""Stripe Checkout end to end through our API; only Stripe's HTTP API is faked (``responses``).

Webhooks are signed for real, as Stripe does: ``t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>``.
"""

import hashlib
import hmac
import json
import time
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import responses

from tests.helpers import assert_ledger_consistent, balance
from wallet.models import Payment, Transaction

pytestmark = pytest.mark.django_db

API = "https://api.stripe.com/v1"
PURCHASE = "/api/v1/currency/purchase"
WEBHOOK = "/api/v1/webhooks/stripe"
RETURN_URL = "http://localhost:8000/wallet/"
SECRET_KEY = "sk_test_51Zenzefi"
WEBHOOK_SECRET = "whsec_test_zenzefi"
CS_ID = "cs_test_a1B2c3D4e5F6g7H8i9J0"
CHECKOUT_URL = f"https://checkout.stripe.com/c/pay/{CS_ID}#fidkdWxOYHwnPyd1blpxYHZxWjA0"


def checkout_session(session_id: str = CS_ID, *, payment_status: str = "unpaid", status: str = "open") -> dict:
    """A Checkout Session as Stripe's API returns it."""
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_total": 150000,
        "currency": "rub",
        "livemode": False,
        "mode": "payment",
        "payment_status": payment_status,
        "status": status,
        "url": CHECKOUT_URL if status == "open" else None,
    }


@pytest.fixture
def stripe_api(settings):
    """Stripe configured, its API faked; an unregistered request fails instead of leaving the machine."""
    settings.PAYMENT_PROVIDER = "stripe"
    settings.PAYMENT_PROVIDER_BY_CURRENCY = {"RUB": "stripe", "USD": "stripe", "EUR": "stripe"}
    settings.ENABLE_MOCK_PAYMENTS = False
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.ZNC_TO_RUB_RATE = Decimal("10")
    settings.BACKEND_URL = "http://localhost:8000"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def purchase(as_user, user, *, amount="150", return_url=RETURN_URL):
    body = {"amount_znc": amount}
    if return_url is not None:
        body["return_url"] = return_url
    return as_user(user).post(PURCHASE, body, format="json")


@pytest.fixture
def payment(stripe_api, as_user, alice) -> Payment:
    """Alice's pending 150 ZNC top-up, as an open (fake) Checkout Session."""
    stripe_api.add(responses.POST, f"{API}/checkout/sessions", json=checkout_session())
    response = purchase(as_user, alice)
    assert response.status_code == 201, response.content
    return Payment.objects.get(pk=response.json()["id"])


def stripe_signature(payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_payload(event_type: str, session: dict, event_id: str = "evt_1PzZenzefi") -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2025-03-31.basil",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {"object": session},
        }
    )


def deliver(client, payload: str, signature: str | None = None):
    headers = {"HTTP_STRIPE_SIGNATURE": stripe_signature(payload) if signature is None else signature}
    return client.post(WEBHOOK, payload, content_type="application/json", **headers)


def send_event(client, event_type: str, *, session_id: str = CS_ID, payment_status: str = "paid", status="complete"):
    session = checkout_session(session_id, payment_status=payment_status, status=status)
    return deliver(client, event_payload(event_type, session))


# --- Creating a payment --------------------------------------------------------------------------


def test_purchase_creates_checkout_session(stripe_api, as_user, alice):
    stripe_api.add(responses.POST, f"{API}/checkout/sessions", json=checkout_session())

    response = purchase(as_user, alice)

    assert response.status_code == 201
    body = response.json()
    payment = Payment.objects.get(pk=body["id"])
    assert (body["payment_id"], body["payment_url"]) == (CS_ID, CHECKOUT_URL)
    assert (body["amount_znc"], body["amount_rub"], body["currency"]) == ("150.00", "1500.00", "RUB")
    assert (body["provider"], body["status"]) == ("stripe", "pending")
    assert (payment.user_id, payment.provider, payment.status) == (alice.pk, "stripe", "pending")
    assert (payment.provider_payment_id, payment.confirmation_url) == (CS_ID, CHECKOUT_URL)

    [call] = stripe_api.calls
    assert (call.request.method, call.request.url) == ("POST", f"{API}/checkout/sessions")
    assert call.request.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert call.request.headers["Idempotency-Key"] == str(payment.pk)
    sent = {key: values[0] for key, values in parse_qs(call.request.body).items()}
    assert sent == {
        "mode": "payment",
        "line_items[0][price_data][currency]": "rub",
        "line_items[0][price_data][unit_amount]": "150000",
        "line_items[0][price_data][product_data][name]": "150.00 ZNC",
        "line_items[0][quantity]": "1",
        "success_url": RETURN_URL,
        "cancel_url": RETURN_URL,
        "client_reference_id": str(payment.pk),
        "metadata[payment_id]": str(payment.pk),
    }

    assert balance(alice) == 0
    assert not Transaction.objects.exists()
    assert_ledger_consistent()


def test_purchase_without_return_url_returns_to_the_payment_page(stripe_api, as_user, alice):
    stripe_api.add(responses.POST, f"{API}/checkout/sessions", json=checkout_session())

    response = purchase(as_user, alice, return_url=None)

    assert response.status_code == 201
    sent = parse_qs(stripe_api.calls[0].request.body)
    page = f"http://localhost:8000/wallet/payments/{response.json()['id']}/"
    assert (sent["success_url"], sent["cancel_url"]) == ([page], [page])


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, {"type": "api_error", "message": "Something went wrong"}), (401, {"message": "Invalid API Key"})],
    ids=["http-500", "http-401"],
)
def test_purchase_when_stripe_fails_is_502_and_failed(stripe_api, as_user, alice, status, error):
    # Stripe marks such answers not worth retrying; without the header the SDK retries twice, with back-off.
    stripe_api.add(
        responses.POST,
        f"{API}/checkout/sessions",
        status=status,
        json={"error": error},
        headers={"Stripe-Should-Retry": "false"},
    )

    response = purchase(as_user, alice)

    assert response.status_code == 502
    assert response.json() == {"detail": "The payment provider is unavailable. Please try again later."}
    assert len(stripe_api.calls) == 1
    payment = Payment.objects.get(user=alice)
    assert payment.status == "failed"
    assert payment.provider_payment_id is None
    assert balance(alice) == 0
    assert not Transaction.objects.exists()
    assert_ledger_consistent()


def test_purchase_without_secret_key_is_503(stripe_api, settings, as_user, alice):
    settings.STRIPE_SECRET_KEY = ""

    response = purchase(as_user, alice)

    assert response.status_code == 503
    assert response.json() == {"detail": "Top-ups are not available right now."}
    assert not Payment.objects.exists()
    assert len(stripe_api.calls) == 0


# --- Webhooks ------------------------------------------------------------------------------------


def test_completed_event_delivered_three_times_credits_once(stripe_api, client, alice, payment):
    payload = event_payload("checkout.session.completed", checkout_session(payment_status="paid", status="complete"))

    replies = [deliver(client, payload) for _ in range(3)]

    assert [r.status_code for r in replies] == [200, 200, 200]
    assert [r.json()["processed"] for r in replies] == [True, False, False]
    assert balance(alice) == Decimal("150.00")
    deposit = Transaction.objects.get(user=alice)
    assert (deposit.kind, deposit.amount, deposit.balance_after, deposit.payment_id) == (
        "deposit",
        Decimal("150.00"),
        Decimal("150.00"),
        CS_ID,
    )
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.transaction == deposit
    assert len(stripe_api.calls) == 1  # the create only: a signed event needs no call back
    assert_ledger_consistent()


def test_expired_after_completed_changes_nothing(stripe_api, client, alice, payment):
    assert send_event(client, "checkout.session.completed").json()["processed"] is True

    reply = send_event(client, "checkout.session.expired", payment_status="unpaid", status="expired")

    assert reply.status_code == 200
    assert reply.json()["processed"] is False
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert balance(alice) == Decimal("150.00")
    assert Transaction.objects.filter(user=alice).count() == 1
    assert_ledger_consistent()


def test_completed_after_expired_credits_nothing(stripe_api, client, alice, payment):
    assert send_event(client, "checkout.session.expired", payment_status="unpaid", status="expired").json() == {
        "received": True,
        "processed": True,
    }
    payment.refresh_from_db()
    assert payment.status == "canceled"

    reply = send_event(client, "checkout.session.completed")

    assert reply.status_code == 200
    assert reply.json()["processed"] is False
    payment.refresh_from_db()
    assert payment.status == "canceled"
    assert payment.transaction is None
    assert balance(alice) == 0
    assert not Transaction.objects.exists()
    assert_ledger_consistent()


def test_completed_but_unpaid_waits_for_the_async_payment(stripe_api, client, alice, payment):
    """A delayed method: the session completes unpaid, the money follows in its own event."""
    unpaid = send_event(client, "checkout.session.completed", payment_status="unpaid")

    assert unpaid.status_code == 200
    assert unpaid.json()["processed"] is False
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert balance(alice) == 0

    paid = send_event(client, "checkout.session.async_payment_succeeded")

    assert paid.json()["processed"] is True
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert balance(alice) == Decimal("150.00")
    assert Transaction.objects.get(user=alice).payment_id == CS_ID
    assert_ledger_consistent()


def test_async_payment_failed_fails_the_payment(stripe_api, client, alice, payment):
    send_event(client, "checkout.session.completed", payment_status="unpaid")

    reply = send_event(client, "checkout.session.async_payment_failed", payment_status="unpaid")

    assert reply.status_code == 200
    assert reply.json()["processed"] is True
    payment.refresh_from_db()
    assert payment.status == "failed"
    assert balance(alice) == 0
    assert not Transaction.objects.exists()
    assert_ledger_consistent()


def _bad_signatures():
    payload = event_payload("checkout.session.completed", checkout_session(payment_status="paid", status="complete"))
    other = payload.replace('"amount_total": 150000', '"amount_total": 1')
    now = int(time.time())
    return [
        pytest.param(payload, None, id="missing"),
        pytest.param(payload, "", id="empty"),
        pytest.param(payload, "garbage", id="garbage"),
        pytest.param(payload, stripe_signature(payload, secret="whsec_someone_else"), id="wrong-secret"),
        pytest.param(payload, stripe_signature(other), id="other-body"),
        pytest.param(payload, stripe_signature(payload, timestamp=now - 3600), id="stale"),
        pytest.param(payload, stripe_signature(payload).replace("v1=", "v0="), id="wrong-scheme"),
    ]


@pytest.mark.parametrize(("payload", "signature"), _bad_signatures())
def test_badly_signed_event_is_401_and_changes_nothing(stripe_api, client, alice, payment, payload, signature):
    headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}

    reply = client.post(WEBHOOK, payload, content_type="application/json", **headers)

    assert reply.status_code == 401
    assert reply.json() == {"detail": "Invalid signature"}
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert balance(alice) == 0
    assert not Transaction.objects.exists()
    assert_ledger_consistent()


def test_event_without_webhook_secret_is_401(stripe_api, settings, client, alice, payment):
    settings.STRIPE_WEBHOOK_SECRET = ""

    reply = send_event(client, "checkout.session.completed")

    assert reply.status_code == 401
    assert reply.json() == {"detail": "Webhook signing is not configured"}
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert balance(alice) == 0


def test_event_for_unknown_session_is_404(stripe_api, client, alice, payment):
    reply = send_event(client, "checkout.session.completed", session_id="cs_test_not_ours")

    assert reply.status_code == 404
    assert reply.json() == {"detail": "Payment not found"}
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert balance(alice) == 0
    assert not Transaction.objects.exists()


def test_signed_event_without_session_id_is_400(stripe_api, client, alice, payment):
    payload = json.dumps({"id": "evt_2", "object": "event", "type": "checkout.session.completed", "data": {}})

    reply = deliver(client, payload)

    assert reply.status_code == 400
    assert reply.json() == {"detail": "Malformed webhook body"}
    assert balance(alice) == 0


def test_unrelated_event_is_acknowledged(stripe_api, client, alice, payment):
    intent = {"id": "pi_3PzZenzefi", "object": "payment_intent", "status": "succeeded"}

    reply = deliver(client, event_payload("payment_intent.succeeded", intent))

    assert reply.status_code == 200
    assert reply.json()["processed"] is False
    assert balance(alice) == 0
