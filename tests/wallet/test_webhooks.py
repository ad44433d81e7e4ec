import json
import threading
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import AuditLog
from tests.wallet.helpers import balance, signed_webhook
from wallet.models import Payment, Transaction

pytestmark = pytest.mark.django_db


@pytest.fixture
def payment(as_user, alice, mock_payments):
    body = as_user(alice).post("/api/v1/currency/purchase", {"amount_znc": 150}, format="json").json()
    return Payment.objects.get(pk=body["id"])


def test_signed_webhook_delivered_three_times_credits_once(api, alice, payment):
    responses = [
        signed_webhook(api, {"payment_id": payment.provider_payment_id, "status": "succeeded"}) for _ in range(3)
    ]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.json() for r in responses] == [
        {"received": True, "processed": True},
        {"received": True, "processed": False},
        {"received": True, "processed": False},
    ]
    assert balance(alice) == Decimal("150.00")
    deposit = Transaction.objects.get(user=alice)
    assert (deposit.kind, deposit.amount, deposit.payment_id) == (
        "deposit",
        Decimal("150.00"),
        payment.provider_payment_id,
    )
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.transaction == deposit
    assert AuditLog.objects.filter(action="payment_succeeded", resource_id=str(payment.pk)).count() == 1
    assert AuditLog.objects.filter(action="payment_capture_ignored", resource_id=str(payment.pk)).count() == 2


def test_webhook_by_our_payment_id(api, alice, payment):
    response = signed_webhook(api, {"payment_id": str(payment.pk), "status": "succeeded"})

    assert response.json()["processed"] is True
    assert balance(alice) == Decimal("150.00")


@pytest.mark.parametrize(
    "signature", ["", "deadbeef", "sha256=0000", None], ids=["empty", "wrong", "wrong-prefixed", "missing"]
)
def test_webhook_with_bad_signature_changes_nothing(api, alice, payment, signature):
    body = json.dumps({"payment_id": payment.provider_payment_id, "status": "succeeded"})
    headers = {} if signature is None else {"HTTP_X_SIGNATURE": signature}

    response = api.post("/api/v1/webhooks/payment", body, content_type="application/json", **headers)

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid signature"}
    assert balance(alice) == 0
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_forged_webhook_signed_with_another_secret_is_refused(api, alice, payment):
    response = signed_webhook(api, {"payment_id": payment.provider_payment_id, "status": "succeeded"}, secret="guess")

    assert response.status_code == 401
    assert balance(alice) == 0


def test_webhook_is_refused_when_no_secret_is_configured(api, alice, payment, settings):
    settings.PAYMENT_WEBHOOK_SECRET = ""
    body = json.dumps({"payment_id": payment.provider_payment_id, "status": "succeeded"}).encode()

    response = api.post("/api/v1/webhooks/payment", body, content_type="application/json", HTTP_X_SIGNATURE="")

    assert response.status_code == 401
    assert response.json() == {"detail": "Webhook signing is not configured"}
    assert balance(alice) == 0


def test_canceled_payment_never_credits(api, alice, payment):
    canceled = signed_webhook(api, {"payment_id": payment.provider_payment_id, "status": "canceled"})
    late_success = signed_webhook(api, {"payment_id": payment.provider_payment_id, "status": "succeeded"})

    assert canceled.json()["processed"] is True
    assert late_success.json()["processed"] is False
    assert balance(alice) == 0
    assert not Transaction.objects.exists()
    payment.refresh_from_db()
    assert payment.status == "canceled"


def test_cancel_after_success_changes_nothing(api, alice, payment):
    signed_webhook(api, {"payment_id": payment.provider_payment_id, "status": "succeeded"})
    late_cancel = signed_webhook(api, {"payment_id": payment.provider_payment_id, "status": "canceled"})

    assert late_cancel.json()["processed"] is False
    assert balance(alice) == Decimal("150.00")
    payment.refresh_from_db()
    assert payment.status == "succeeded"


def test_other_statuses_are_acknowledged_and_ignored(api, alice, payment):
    response = signed_webhook(api, {"payment_id": payment.provider_payment_id, "status": "waiting_for_capture"})

    assert response.json() == {"received": True, "processed": False}
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_webhook_for_unknown_payment_is_404(api, mock_payments):
    response = signed_webhook(api, {"payment_id": "MOCK_PAY_nope", "status": "succeeded"})

    assert response.status_code == 404
    assert response.json() == {"detail": "Payment not found"}


def test_malformed_but_signed_webhook_is_400(api, mock_payments):
    response = signed_webhook(api, {"status": "succeeded"})

    assert response.status_code == 400
    assert response.json()["detail"] == "Malformed webhook body"


def test_mock_payment_link_completes_once(api, alice, payment):
    url = f"/api/v1/webhooks/mock-payment?payment_id={payment.provider_payment_id}"

    first = api.get(url)
    second = api.get(url)

    assert first.json() == {
        "status": "success",
        "message": f"Payment {payment.provider_payment_id} completed successfully",
        "payment_id": payment.provider_payment_id,
    }
    assert second.json()["status"] == "error"
    assert second.json()["message"] == "Payment not found or already processed"
    assert balance(alice) == Decimal("150.00")


def test_mock_routes_are_404_when_mock_payments_are_off(api, as_user, client, alice, payment, settings):
    settings.ENABLE_MOCK_PAYMENTS = False
    client.force_login(alice)

    link = api.get(f"/api/v1/webhooks/mock-payment?payment_id={payment.provider_payment_id}")
    mock_purchase = as_user(alice).post("/api/v1/currency/mock-purchase", {"amount": 5}, format="json")
    checkout = client.get(f"/wallet/checkout/{payment.pk}/")
    pay = client.post(f"/wallet/checkout/{payment.pk}/submit/", {"action": "pay"})

    assert link.status_code == 404
    assert mock_purchase.status_code == 404
    assert checkout.status_code == 404
    assert pay.status_code == 404
    assert balance(alice) == 0


@pytest.mark.django_db(transaction=True)
def test_simultaneous_deliveries_credit_once(alice, payment):
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def deliver():
        barrier.wait()
        try:
            response = signed_webhook(APIClient(), {"payment_id": payment.provider_payment_id, "status": "succeeded"})
            results.append(response.json()["processed"])
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 5 + [True]
    assert balance(alice) == Decimal("150.00")
    assert Transaction.objects.filter(user=alice).count() == 1
