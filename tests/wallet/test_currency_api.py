from decimal import Decimal

import pytest

from accounts.models import AuditLog
from tests.wallet.helpers import balance, fund
from wallet.models import Payment, Transaction

pytestmark = pytest.mark.django_db


def test_balance(as_user, alice):
    fund(alice, "42.5")

    response = as_user(alice).get("/api/v1/currency/balance")

    assert response.status_code == 200
    assert response.json() == {"balance": "42.50", "currency": "ZNC"}


def test_balance_needs_a_jwt(api):
    response = api.get("/api/v1/currency/balance")

    assert response.status_code == 403
    assert response.json() == {"detail": "Not authenticated"}


def test_transactions_newest_first_with_total(as_user, alice, bob):
    for amount in ("1", "2", "3"):
        fund(alice, amount)
    fund(bob, "7")

    response = as_user(alice).get("/api/v1/currency/transactions")

    body = response.json()
    assert response.status_code == 200
    assert (body["total"], body["limit"], body["offset"]) == (3, 10, 0)
    assert [item["amount"] for item in body["items"]] == ["3.00", "2.00", "1.00"]
    item = body["items"][0]
    assert set(item) == {"id", "amount", "transaction_type", "description", "payment_id", "balance_after", "created_at"}
    assert (item["transaction_type"], item["balance_after"], item["payment_id"]) == ("deposit", "6.00", None)


@pytest.mark.parametrize("offset_param", ["offset", "skip"])
def test_transactions_pagination(as_user, alice, offset_param):
    for amount in range(1, 6):
        fund(alice, str(amount))

    body = as_user(alice).get("/api/v1/currency/transactions", {"limit": 2, offset_param: 1}).json()

    assert [item["amount"] for item in body["items"]] == ["4.00", "3.00"]
    assert (body["total"], body["limit"], body["offset"]) == (5, 2, 1)


def test_transactions_filter_by_type(as_user, alice):
    from wallet.services import Actor, balance_adjust

    fund(alice, "10")
    balance_adjust(user=alice, amount=Decimal("-1"), reason="x", actor=Actor())

    body = as_user(alice).get("/api/v1/currency/transactions", {"transaction_type": "adjustment"}).json()

    assert body["total"] == 1
    assert body["items"][0]["amount"] == "-1.00"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"offset": -1}, "offset"),
        ({"transaction_type": "gift"}, "transaction_type"),
    ],
)
def test_transactions_bad_query_is_400(as_user, alice, params, field):
    response = as_user(alice).get("/api/v1/currency/transactions", params)

    assert response.status_code == 400
    assert field in response.json()
    assert response.json()["detail"].startswith(f"{field}: ")


def test_mock_purchase_is_404_when_disabled(as_user, alice, settings):
    settings.ENABLE_MOCK_PAYMENTS = False

    response = as_user(alice).post("/api/v1/currency/mock-purchase", {"amount": 100}, format="json")

    assert response.status_code == 404
    assert balance(alice) == 0


def test_mock_purchase_credits_each_call(as_user, alice, mock_payments):
    client = as_user(alice)

    first = client.post("/api/v1/currency/mock-purchase", {"amount": 100}, format="json")
    second = client.post("/api/v1/currency/mock-purchase/", {"amount": "50.5"}, format="json")

    assert first.status_code == 201
    assert first.json()["success"] is True
    assert first.json()["amount"] == "100.00"
    assert first.json()["new_balance"] == "100.00"
    assert first.json()["message"] == "Successfully added 100.00 ZNC to your balance"
    assert second.json()["new_balance"] == "150.50"
    ids = list(Transaction.objects.filter(user=alice).values_list("payment_id", flat=True))
    assert len(set(ids)) == 2
    assert all(i.startswith("MOCK_") for i in ids)
    assert AuditLog.objects.filter(action="currency_mock_deposit", user=alice).count() == 2


@pytest.mark.parametrize(
    "amount", [0, -5, "1.001", "abc", 100001, None], ids=["zero", "negative", "3dp", "text", "too-big", "null"]
)
def test_mock_purchase_bad_amount_is_400_and_writes_nothing(as_user, alice, mock_payments, amount):
    response = as_user(alice).post("/api/v1/currency/mock-purchase", {"amount": amount}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Transaction.objects.exists()


def test_purchase_creates_a_pending_payment_and_no_ledger_row(as_user, alice, mock_payments):
    response = as_user(alice).post(
        "/api/v1/currency/purchase", {"amount_znc": 150, "return_url": "http://localhost:8000/wallet/"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    payment = Payment.objects.get()
    assert body["payment_id"] == payment.provider_payment_id
    assert body["payment_id"].startswith("MOCK_PAY_")
    assert body["payment_url"] == f"http://localhost:8000/wallet/checkout/{payment.pk}/"
    assert (body["amount_znc"], body["amount_rub"], body["currency"], body["status"]) == (
        "150.00",
        "1500.00",
        "RUB",
        "pending",
    )
    assert payment.return_url == "http://localhost:8000/wallet/"
    assert balance(alice) == 0
    assert not Transaction.objects.exists()
    assert AuditLog.objects.filter(action="payment_create", user=alice, resource_id=str(payment.pk)).exists()


def test_purchase_accepts_amount_alias_and_no_return_url(as_user, alice, mock_payments):
    response = as_user(alice).post("/api/v1/currency/purchase", {"amount": "12.34"}, format="json")

    assert response.status_code == 201
    assert response.json()["amount_rub"] == "123.40"


@pytest.mark.parametrize(
    "return_url",
    ["https://evil.example.com/steal", "//evil.example.com/", "javascript:alert(1)", "ftp://localhost/x"],
)
def test_purchase_refuses_foreign_return_url(as_user, alice, mock_payments, return_url):
    response = as_user(alice).post(
        "/api/v1/currency/purchase", {"amount_znc": 10, "return_url": return_url}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["detail"] == "return_url must point at this site"
    assert not Payment.objects.exists()


@pytest.mark.parametrize("amount", [0, "0.5", 100001])
def test_purchase_refuses_out_of_bounds_amounts(as_user, alice, mock_payments, amount):
    response = as_user(alice).post("/api/v1/currency/purchase", {"amount_znc": amount}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Payment.objects.exists()


def test_purchase_with_mock_disabled_is_503(as_user, alice, settings):
    settings.PAYMENT_PROVIDER = "mock"
    settings.ENABLE_MOCK_PAYMENTS = False

    response = as_user(alice).post("/api/v1/currency/purchase", {"amount_znc": 10}, format="json")

    assert response.status_code == 503
    assert response.json() == {"detail": "Top-ups are not available right now."}
    assert not Payment.objects.exists()


def test_payment_detail_is_private(as_user, alice, bob, mock_payments):
    created = as_user(alice).post("/api/v1/currency/purchase", {"amount_znc": 10}, format="json").json()

    own = as_user(alice).get(f"/api/v1/currency/payments/{created['id']}")
    other = as_user(bob).get(f"/api/v1/currency/payments/{created['id']}")
    garbage = as_user(bob).get("/api/v1/currency/payments/not-a-uuid")

    assert own.status_code == 200
    assert own.json()["status"] == "pending"
    assert other.status_code == 404
    assert other.json() == {"detail": "Payment not found"}
    assert garbage.status_code == 404
