from decimal import Decimal

import pytest
from django.test import Client

from tests.wallet.helpers import balance, fund
from wallet.models import Payment, Transaction

pytestmark = pytest.mark.django_db


def test_wallet_needs_login(client):
    assert client.get("/wallet/")["Location"] == "/login/?next=/wallet/"


def test_wallet_shows_balance_presets_and_nav_balance(portal, alice, mock_payments):
    fund(alice, "18")

    html = portal.get("/wallet/").content.decode()

    assert 'data-testid="wallet-balance">18.00' in html
    assert 'data-testid="nav-balance"' in html
    assert "18.00 ZNC" in html
    assert "<small data-preset-price>RUB\xa01,500.00</small>" in html  # the 150 ZNC preset priced in RUB


def test_top_up_redirects_to_checkout_then_pay_credits(portal, alice, mock_payments):
    response = portal.post("/wallet/", {"amount": "150"})

    payment = Payment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/wallet/checkout/{payment.pk}/"
    checkout = portal.get(f"/wallet/checkout/{payment.pk}/")
    assert 'data-testid="checkout-amount">RUB\xa01,500.00<' in checkout.content.decode()
    pending = portal.get(f"/wallet/payments/{payment.pk}/").content.decode()
    assert '<meta http-equiv="refresh" content="3">' in pending
    assert 'data-status="pending"' in pending

    paid = portal.post(f"/wallet/checkout/{payment.pk}/submit/", {"action": "pay"})

    assert paid["Location"] == f"/wallet/payments/{payment.pk}/"
    page = portal.get(paid["Location"]).content.decode()
    assert 'data-status="succeeded"' in page
    assert "http-equiv" not in page
    assert balance(alice) == Decimal("150.00")
    history = portal.get("/wallet/history/").content.decode()
    assert "Balance top-up: 150.00 ZNC (mock)" in history


def test_checkout_cancel_credits_nothing(portal, alice, mock_payments):
    portal.post("/wallet/", {"amount": "40"})
    payment = Payment.objects.get()

    portal.post(f"/wallet/checkout/{payment.pk}/submit/", {"action": "cancel"})

    payment.refresh_from_db()
    assert payment.status == "canceled"
    assert balance(alice) == 0
    assert 'data-status="canceled"' in portal.get(f"/wallet/payments/{payment.pk}/").content.decode()


@pytest.mark.parametrize("amount", ["0", "-3", "100001", "abc"])
def test_top_up_form_errors(portal, mock_payments, amount):
    response = portal.post("/wallet/", {"amount": amount})

    assert response.status_code == 200
    assert 'class="field-error"' in response.content.decode()
    assert not Payment.objects.exists()


def test_top_up_when_payments_are_off_shows_a_message(portal, settings):
    settings.ENABLE_MOCK_PAYMENTS = False
    settings.PAYMENT_PROVIDER = "mock"

    response = portal.post("/wallet/", {"amount": "10"}, follow=True)

    assert "Top-ups are not available right now." in response.content.decode()
    assert not Payment.objects.exists()


def test_other_users_payment_pages_are_404(alice, bob, mock_payments):
    owner = Client()
    owner.force_login(alice)
    owner.post("/wallet/", {"amount": "10"})
    payment = Payment.objects.get()
    stranger = Client()
    stranger.force_login(bob)

    assert stranger.get(f"/wallet/payments/{payment.pk}/").status_code == 404
    assert stranger.get(f"/wallet/checkout/{payment.pk}/").status_code == 404
    assert stranger.post(f"/wallet/checkout/{payment.pk}/submit/", {"action": "pay"}).status_code == 404
    assert balance(alice) == 0


def test_history_filter_and_pagination(portal, alice):
    from wallet.services import Actor, balance_adjust

    for _ in range(25):
        fund(alice, "1")
    balance_adjust(user=alice, amount=Decimal("-2"), reason="typo", actor=Actor())

    first = portal.get("/wallet/history/").content.decode()
    second = portal.get("/wallet/history/?page=2").content.decode()
    adjustments = portal.get("/wallet/history/?type=adjustment").content.decode()

    assert first.count('data-testid="transaction-row"') == 20
    assert second.count('data-testid="transaction-row"') == 6
    assert "Page 1 of 2" in first
    assert adjustments.count('data-testid="transaction-row"') == 1
    assert "Adjustment: typo" in adjustments


def test_admin_adjust_balance_page(client, admin_user, alice):
    fund(alice, "10")
    client.force_login(admin_user)

    form = client.get(f"/admin/accounts/user/{alice.pk}/adjust-balance/")
    done = client.post(f"/admin/accounts/user/{alice.pk}/adjust-balance/", {"amount": "-4", "reason": "Goodwill fix"})
    refused = client.post(f"/admin/accounts/user/{alice.pk}/adjust-balance/", {"amount": "-50", "reason": "too much"})

    assert form.status_code == 200
    assert done.status_code == 302
    assert balance(alice) == Decimal("6.00")
    assert Transaction.objects.get(kind="adjustment").description == "Adjustment: Goodwill fix"
    assert refused.status_code == 200
    assert "Insufficient balance" in refused.content.decode()


def test_admin_balance_is_read_only_and_ledger_is_read_only(client, admin_user, alice):
    fund(alice, "10")
    client.force_login(admin_user)

    page = client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    tx = Transaction.objects.get()

    assert 'name="balance"' not in page
    assert "Adjust balance" in page
    assert client.get("/admin/wallet/transaction/add/").status_code == 403
    assert client.get("/admin/wallet/payment/").status_code == 200
    assert client.post(f"/admin/wallet/transaction/{tx.pk}/delete/", {"post": "yes"}).status_code == 403
