"""YooKassa end to end through our API; only YooKassa's HTTP API is faked (``responses``)."""

import base64
import json
from decimal import Decimal

import pytest
import requests
import responses

from tests.helpers import assert_ledger_consistent, balance
from wallet.models import Payment, Transaction

pytestmark = pytest.mark.django_db

API = "https://api.yookassa.ru/v3"
PURCHASE = "/api/v1/currency/purchase"
WEBHOOK = "/api/v1/webhooks/yookassa"
RETURN_URL = "http://localhost:8000/wallet/"
YK_ID = "2f1b7c39-000f-5000-8000-1f8f0c2c1f0a"
CHECKOUT_URL = f"https://yoomoney.ru/checkout/payments/v2/contract?orderId={YK_ID}"
YOOKASSA_NETWORKS = ["185.71.76.0/27", "185.71.77.0/27", "77.75.156.11/32", "2a02:5180::/32"]


def yk_payment(yk_id: str, status: str, *, metadata: dict | None = None) -> dict:
    """A payment as YooKassa's API returns it."""
    body = {
        "id": yk_id,
        "status": status,
        "paid": status == "succeeded",
        "amount": {"value": "1500.00", "currency": "RUB"},
        "created_at": "2025-05-01T12:00:00.000Z",
        "description": "Zenzefi Gate: 150.00 ZNC",
        "metadata": metadata or {},
        "recipient": {"account_id": "506751", "gateway_id": "2000001"},
        "refundable": status == "succeeded",
        "test": True,
    }
    if status == "pending":
        body["confirmation"] = {"type": "redirect", "confirmation_url": CHECKOUT_URL}
    return body


@pytest.fixture
def yk(settings):
    """YooKassa configured, its API faked; an unregistered request fails instead of leaving the machine."""
    settings.PAYMENT_PROVIDER = "yookassa"
    settings.ENABLE_MOCK_PAYMENTS = False
    settings.YOOKASSA_SHOP_ID = "506751"
    settings.YOOKASSA_SECRET_KEY = "test_SECRET"
    settings.YOOKASSA_WEBHOOK_IPS = []
    settings.TRUSTED_PROXY_IPS = []
    settings.ZNC_TO_RUB_RATE = Decimal("10")
    settings.BACKEND_URL = "http://localhost:8000"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def yk_lookup(yk, status: str, yk_id: str = YK_ID, **kwargs) -> None:
    """What ``GET /payments/<id>`` answers from now on."""
    if status in ("404", "500"):
        error = {"type": "error", "id": "ab1c", "code": "not_found" if status == "404" else "internal_server_error"}
        yk.upsert(responses.GET, f"{API}/payments/{yk_id}", status=int(status), json=error)
    else:
        yk.upsert(responses.GET, f"{API}/payments/{yk_id}", json=yk_payment(yk_id, status, **kwargs))


def lookups(yk, yk_id: str = YK_ID) -> int:
    return sum(1 for call in yk.calls if call.request.method == "GET" and call.request.url == f"{API}/payments/{yk_id}")


def purchase(as_user, user, *, amount="150", return_url=RETURN_URL):
    body = {"amount_znc": amount}
    if return_url is not None:
        body["return_url"] = return_url
    return as_user(user).post(PURCHASE, body, format="json")


@pytest.fixture
def payment(yk, as_user, alice) -> Payment:
    """Alice's pending 150 ZNC top-up, created at (fake) YooKassa."""
    yk.add(responses.POST, f"{API}/payments", json=yk_payment(YK_ID, "pending"))
    response = purchase(as_user, alice)
    assert response.status_code == 201, response.content
    return Payment.objects.get(pk=response.json()["id"])


def notify(client, event: str = "payment.succeeded", yk_id: str = YK_ID, *, remote_addr: str = "185.71.76.10", **extra):
    body = {"type": "notification", "event": event, "object": {"id": yk_id, "status": event.split(".")[-1]}}
    return client.post(WEBHOOK, json.dumps(body), content_type="application/json", REMOTE_ADDR=remote_addr, **extra)


# --- Creating a payment --------------------------------------------------------------------------


def test_purchase_creates_yookassa_payment(yk, as_user, alice):
    yk.add(responses.POST, f"{API}/payments", json=yk_payment(YK_ID, "pending"))

    response = purchase(as_user, alice)

    assert response.status_code == 201
    body = response.json()
    payment = Payment.objects.get(pk=body["id"])
    assert body["payment_id"] == YK_ID
    assert body["payment_url"] == CHECKOUT_URL
    assert (body["amount_znc"], body["amount_rub"], body["currency"]) == ("150.00", "1500.00", "RUB")
    assert (body["provider"], body["status"]) == ("yookassa", "pending")
    assert (payment.user_id, payment.provider, payment.status) == (alice.pk, "yookassa", "pending")
    assert (payment.provider_payment_id, payment.confirmation_url) == (YK_ID, CHECKOUT_URL)
    assert payment.amount_money == Decimal("1500.00")

    [call] = yk.calls
    assert (call.request.method, call.request.url) == ("POST", f"{API}/payments")
    assert call.request.headers["Idempotence-Key"] == str(payment.pk)
    credentials = base64.b64encode(b"506751:test_SECRET").decode()
    assert call.request.headers["Authorization"] == f"Basic {credentials}"
    sent = json.loads(call.request.body)
    assert sent["amount"] == {"value": "1500.00", "currency": "RUB"}
    assert sent["capture"] is True
    assert sent["confirmation"] == {"type": "redirect", "return_url": RETURN_URL}
    assert sent["description"] == "Zenzefi Gate: 150.00 ZNC"
    assert sent["metadata"]["payment_id"] == str(payment.pk)

    # Nothing is credited before YooKassa says the money arrived.
    assert balance(alice) == 0
    assert not Transaction.objects.exists()
    assert_ledger_consistent()


def test_purchase_without_return_url_returns_to_the_payment_page(yk, as_user, alice):
    yk.add(responses.POST, f"{API}/payments", json=yk_payment(YK_ID, "pending"))

    response = purchase(as_user, alice, return_url=None)

    assert response.status_code == 201
    payment_pk = response.json()["id"]
    sent = json.loads(yk.calls[0].request.body)
    assert sent["confirmation"]["return_url"] == f"http://localhost:8000/wallet/payments/{payment_pk}/"


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": {"type": "error", "id": "x1", "code": "internal_server_error"}},
        {"status": 401, "json": {"type": "error", "id": "x2", "code": "invalid_credentials"}},
        {"body": requests.ConnectionError("connection refused")},
    ],
    ids=["http-500", "http-401", "network"],
)
def test_purchase_when_yookassa_fails_is_502_and_failed(yk, as_user, alice, failure):
    yk.add(responses.POST, f"{API}/payments", **failure)

    response = purchase(as_user, alice)

    assert response.status_code == 502
    assert response.json() == {"detail": "The payment provider is unavailable. Please try again later."}
    payment = Payment.objects.get(user=alice)
    assert payment.status == "failed"
    assert payment.completed_at is not None
    assert payment.provider_payment_id is None
    assert balance(alice) == 0
    assert not Transaction.objects.exists()
    assert_ledger_consistent()


@pytest.mark.parametrize("missing", ["YOOKASSA_SHOP_ID", "YOOKASSA_SECRET_KEY"])
def test_purchase_without_keys_is_503(yk, settings, as_user, alice, missing):
    setattr(settings, missing, "")

    response = purchase(as_user, alice)

    assert response.status_code == 503
    assert response.json() == {"detail": "Top-ups are not available right now."}
    assert not Payment.objects.exists()
    assert len(yk.calls) == 0


# --- Notifications -------------------------------------------------------------------------------


def test_succeeded_notification_delivered_three_times_credits_once(yk, client, alice, payment):
    yk_lookup(yk, "succeeded", metadata={"payment_id": str(payment.pk)})

    replies = [notify(client) for _ in range(3)]

    assert [r.status_code for r in replies] == [200, 200, 200]
    assert [r.json()["processed"] for r in replies] == [True, False, False]
    assert lookups(yk) == 3  # every delivery is verified at YooKassa, not taken on trust
    assert balance(alice) == Decimal("150.00")
    deposit = Transaction.objects.get(user=alice)
    assert (deposit.kind, deposit.amount, deposit.balance_after, deposit.payment_id) == (
        "deposit",
        Decimal("150.00"),
        Decimal("150.00"),
        YK_ID,
    )
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.transaction == deposit
    assert payment.completed_at is not None
    assert_ledger_consistent()


def test_canceled_after_succeeded_changes_nothing(yk, client, alice, payment):
    yk_lookup(yk, "succeeded")
    assert notify(client).json()["processed"] is True

    yk_lookup(yk, "canceled")
    reply = notify(client, "payment.canceled")

    assert reply.status_code == 200
    assert reply.json()["processed"] is False
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert balance(alice) == Decimal("150.00")
    assert Transaction.objects.filter(user=alice).count() == 1
    assert_ledger_consistent()


def test_succeeded_after_canceled_credits_nothing(yk, client, alice, payment):
    yk_lookup(yk, "canceled")
    assert notify(client, "payment.canceled").json()["processed"] is True
    payment.refresh_from_db()
    assert payment.status == "canceled"

    # Even if YooKassa reported success now, a canceled payment stays canceled.
    yk_lookup(yk, "succeeded")
    reply = notify(client)

    assert reply.status_code == 200
    assert reply.json()["processed"] is False
    payment.refresh_from_db()
    assert payment.status == "canceled"
    assert payment.transaction is None
    assert balance(alice) == 0
    assert not Transaction.objects.exists()
    assert_ledger_consistent()


@pytest.mark.parametrize("fetched", ["pending", "waiting_for_capture"])
def test_succeeded_notification_for_unpaid_payment_credits_nothing(yk, client, alice, payment, fetched):
    """The body claims success; YooKassa says otherwise, and YooKassa wins."""
    yk_lookup(yk, fetched)

    reply = notify(client, "payment.succeeded")

    assert reply.status_code == 200
    assert reply.json() == {"received": True, "processed": False}
    assert lookups(yk) == 1
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert balance(alice) == 0
    assert not Transaction.objects.exists()
    assert_ledger_consistent()


def test_payment_unknown_to_yookassa_is_rejected(yk, client, alice, payment):
    forged = "2f1b7c39-000f-5000-8000-000000000000"
    yk_lookup(yk, "404", yk_id=forged)

    reply = notify(client, yk_id=forged)

    assert reply.status_code == 401
    assert reply.json() == {"detail": "Unknown payment"}
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert balance(alice) == 0
    assert_ledger_consistent()


def test_payment_unknown_to_us_is_404(yk, client, alice, payment):
    """A real YooKassa payment (say, from another integration of the shop) that is not ours."""
    other = "2f1b7c39-000f-5000-8000-0000000000ff"
    yk_lookup(yk, "succeeded", yk_id=other)

    reply = notify(client, yk_id=other)

    assert reply.status_code == 404
    assert reply.json() == {"detail": "Payment not found"}
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert balance(alice) == 0
    assert not Transaction.objects.exists()


def test_lookup_answering_another_payment_is_rejected(yk, client, alice, payment):
    yk.upsert(responses.GET, f"{API}/payments/{YK_ID}", json=yk_payment("someone-elses-payment", "succeeded"))

    reply = notify(client)

    assert reply.status_code == 401
    assert reply.json() == {"detail": "Unknown payment"}
    assert balance(alice) == 0
    assert not Transaction.objects.exists()


@pytest.mark.parametrize("failure", ["500", "network"])
def test_yookassa_unreachable_is_502_then_the_retry_credits(yk, client, alice, payment, failure):
    if failure == "network":
        yk.upsert(responses.GET, f"{API}/payments/{YK_ID}", body=requests.ConnectionError("timed out"))
    else:
        yk_lookup(yk, "500")

    reply = notify(client)

    assert reply.status_code == 502
    assert reply.json() == {"detail": "The payment provider is unavailable. Please try again later."}
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert balance(alice) == 0

    # YooKassa delivers again later; by then its API answers.
    yk_lookup(yk, "succeeded")
    assert notify(client).json()["processed"] is True
    assert balance(alice) == Decimal("150.00")
    assert_ledger_consistent()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"type": "notification", "event": "payment.succeeded"}',
        b'{"type": "notification", "event": "payment.succeeded", "object": {}}',
        b'{"type": "notification", "event": "payment.succeeded", "object": {"id": 42}}',
        b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "../refunds/x"}}',
        b'{"type": "notification", "event": "refund.succeeded", "object": {"id": "2f1b7c39-000f-5000-8000-1"}}',
    ],
    ids=["not-json", "list", "no-object", "no-id", "number-id", "path-id", "refund"],
)
def test_malformed_notification_is_400(yk, client, alice, payment, body):
    reply = client.post(WEBHOOK, body, content_type="application/json", REMOTE_ADDR="185.71.76.10")

    assert reply.status_code == 400
    assert reply.json() == {"detail": "Malformed webhook body"}
    assert len(yk.calls) == 1  # only the create: nothing was looked up
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_notification_while_yookassa_is_not_configured_is_503(yk, settings, client, alice, payment):
    settings.YOOKASSA_SECRET_KEY = ""

    reply = notify(client)

    assert reply.status_code == 503
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert balance(alice) == 0


# --- Address allowlist ---------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["203.0.113.5", "185.71.76.32", "2a01:4f8::1"])
def test_notification_from_outside_the_allowlist_is_rejected(yk, settings, client, alice, payment, address):
    settings.YOOKASSA_WEBHOOK_IPS = YOOKASSA_NETWORKS
    yk_lookup(yk, "succeeded")

    reply = notify(client, remote_addr=address)

    assert reply.status_code == 401
    assert reply.json() == {"detail": "Webhook source not allowed"}
    assert lookups(yk) == 0
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert balance(alice) == 0
    assert not Transaction.objects.exists()
    assert_ledger_consistent()


@pytest.mark.parametrize("address", ["185.71.76.10", "77.75.156.11", "2a02:5180::42"])
def test_notification_from_inside_the_allowlist_is_applied(yk, settings, client, alice, payment, address):
    settings.YOOKASSA_WEBHOOK_IPS = YOOKASSA_NETWORKS
    yk_lookup(yk, "succeeded")

    reply = notify(client, remote_addr=address)

    assert reply.status_code == 200
    assert reply.json()["processed"] is True
    assert balance(alice) == Decimal("150.00")
    assert_ledger_consistent()


def test_forged_forwarded_for_does_not_pass_the_allowlist(yk, settings, client, alice, payment):
    """X-Forwarded-For counts only from a trusted proxy; a stranger cannot claim YooKassa's address."""
    settings.YOOKASSA_WEBHOOK_IPS = YOOKASSA_NETWORKS
    yk_lookup(yk, "succeeded")

    reply = notify(client, remote_addr="203.0.113.5", HTTP_X_FORWARDED_FOR="185.71.76.10")

    assert reply.status_code == 401
    assert balance(alice) == 0


def test_allowlist_sees_the_client_behind_a_trusted_proxy(yk, settings, client, alice, payment):
    settings.YOOKASSA_WEBHOOK_IPS = YOOKASSA_NETWORKS
    settings.TRUSTED_PROXY_IPS = ["10.0.0.0/8"]
    yk_lookup(yk, "succeeded")

    outside = notify(client, remote_addr="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.5")
    inside = notify(client, remote_addr="10.0.0.2", HTTP_X_FORWARDED_FOR="185.71.76.10")

    assert outside.status_code == 401
    assert inside.status_code == 200
    assert inside.json()["processed"] is True
    assert balance(alice) == Decimal("150.00")
    assert_ledger_consistent()
