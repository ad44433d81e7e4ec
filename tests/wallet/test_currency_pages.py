"""The wallet's currency picker, and what was paid in which currency on the payment, checkout and history pages."""

from decimal import Decimal

import pytest

from accounts.models import AuditLog, User
from tests.helpers import assert_ledger_consistent, balance, html, messages_of
from wallet.models import CurrencyRate, Payment, Transaction
from wallet.providers import WebhookEvent
from wallet.services import Actor, currency_rate_set, webhook_apply

pytestmark = pytest.mark.django_db

NBSP = "\u00a0"


@pytest.fixture
def usd(mock_payments):
    return currency_rate_set(currency="USD", znc_price=Decimal("0.11"), enabled=True, actor=Actor())


def picker_codes(page: str) -> list[str]:
    return [part.split('"', 1)[0] for part in page.split('name="currency" value="')[1:]]


def test_picker_lists_only_enabled_currencies(portal, usd):
    CurrencyRate.objects.filter(pk="EUR").update(znc_price=Decimal("0.1"), enabled=False)

    page = html(portal.get("/wallet/"))

    assert 'data-testid="currency-picker"' in page
    assert picker_codes(page) == ["RUB", "USD"]
    assert 'value="RUB" checked' in page  # alice's preferred currency, RUB by default


def test_only_rub_enabled_shows_no_picker(portal, mock_payments):
    page = html(portal.get("/wallet/"))

    assert 'data-testid="currency-picker"' not in page
    assert '<input type="hidden" name="currency" value="RUB">' in page
    assert f'data-testid="topup-total" aria-live="polite">RUB{NBSP}1,000.00<' in page  # the 100 ZNC default


def test_total_in_usd_in_english_and_russian(portal, alice, usd):
    User.objects.filter(pk=alice.pk).update(preferred_currency="USD")
    # A refused POST (an unknown currency) shows the form again, priced at the preferred currency.
    refused = {"amount": "150", "currency": "XYZ"}

    english = html(portal.post("/wallet/", refused))
    russian = html(portal.post("/wallet/", refused, HTTP_ACCEPT_LANGUAGE="ru"))
    fresh = html(portal.get("/wallet/", HTTP_ACCEPT_LANGUAGE="ru"))

    assert 'value="USD" checked' in english
    assert 'aria-live="polite">$16.50<' in english
    assert '1 ZNC = <span id="topup-rate">$0.11</span>' in english
    assert "<small data-preset-price>$16.50</small>" in english  # the 150 ZNC preset
    assert f'aria-live="polite">16,50{NBSP}$<' in russian
    assert f'1 ZNC = <span id="topup-rate">0,11{NBSP}$</span>' in russian
    assert f'aria-live="polite">11,00{NBSP}$<' in fresh  # the default 100 ZNC
    assert f"<small data-preset-price>16,50{NBSP}$</small>" in fresh
    assert not Payment.objects.exists()


def test_the_script_gets_the_exact_rates(portal, usd):
    page = html(portal.get("/wallet/"))

    assert '<script id="topup-rates" type="application/json">' in page
    assert '"USD": {"price": "0.110000", "minor": 2, "rate_label": "$0.11"}' in page
    assert '/static/js/topup.js"' in page


def test_paying_in_usd_freezes_the_rate_and_credits_the_znc_asked_for(portal, alice, usd):
    response = portal.post("/wallet/", {"amount": "150", "currency": "USD"})

    payment = Payment.objects.get()
    assert response["Location"] == f"/wallet/checkout/{payment.pk}/"
    assert (payment.currency, payment.rate, payment.amount_money, payment.amount_minor, payment.amount_znc) == (
        "USD",
        Decimal("0.110000"),
        Decimal("16.50"),
        1650,
        Decimal("150.00"),
    )
    currency_rate_set(currency="USD", znc_price=Decimal("0.2"), enabled=True, actor=Actor())  # after: no effect
    checkout = html(portal.get(f"/wallet/checkout/{payment.pk}/"))
    assert 'data-testid="checkout-amount">$16.50<' in checkout

    portal.post(f"/wallet/checkout/{payment.pk}/submit/", {"action": "pay"})

    page = html(portal.get(f"/wallet/payments/{payment.pk}/"))
    assert 'data-status="succeeded"' in page
    assert 'data-testid="payment-znc">150.00 ZNC<' in page
    assert 'data-testid="payment-amount">$16.50<' in page
    assert "1 ZNC = $0.11" in page
    assert balance(alice) == Decimal("150.00")
    assert Transaction.objects.get(user=alice).amount == Decimal("150.00")
    assert_ledger_consistent()


def test_history_shows_the_currency_paid_in(portal, alice, usd):
    portal.post("/wallet/", {"amount": "100", "currency": "USD"})
    payment = Payment.objects.get()
    portal.post(f"/wallet/checkout/{payment.pk}/submit/", {"action": "pay"})

    english = html(portal.get("/wallet/history/"))
    russian = html(portal.get("/wallet/history/", HTTP_ACCEPT_LANGUAGE="ru"))

    assert 'data-testid="transaction-paid">· paid $11.00</small>' in english
    assert '<tr data-testid="payment-row" data-currency="USD" data-status="succeeded">' in english
    assert '100.00 ZNC</span> · <span class="nowrap" data-testid="payment-paid">$11.00</span>' in english
    assert f'100,00 ZNC</span> · <span class="nowrap" data-testid="payment-paid">11,00{NBSP}$</span>' in russian


def test_history_query_count_does_not_grow_with_rows(portal, alice, usd, django_assert_max_num_queries):
    for _ in range(3):
        portal.post("/wallet/", {"amount": "10", "currency": "USD"})
    for payment in Payment.objects.all():
        portal.post(f"/wallet/checkout/{payment.pk}/submit/", {"action": "pay"})

    with django_assert_max_num_queries(12):
        page = html(portal.get("/wallet/history/"))

    assert page.count('data-testid="transaction-paid"') == 3


def test_a_mismatched_payment_is_labelled_on_the_payment_and_history_pages(portal, alice, usd):
    portal.post("/wallet/", {"amount": "100", "currency": "USD"})
    payment = Payment.objects.get()
    # The provider says 10.00 was paid, not 11.00: nothing credited, the payment closes as mismatch.
    event = WebhookEvent(provider_payment_id=str(payment.pk), status="succeeded", amount_minor=1000, currency="USD")
    webhook_apply(event=event, provider=None, actor=Actor())
    assert Payment.objects.get().status == Payment.Status.MISMATCH

    status = html(portal.get(f"/wallet/payments/{payment.pk}/"))
    history = html(portal.get("/wallet/history/"))
    russian = html(portal.get("/wallet/history/", HTTP_ACCEPT_LANGUAGE="ru"))

    assert 'data-status="mismatch"' in status
    assert "Amount mismatch — contact support." in status
    assert "http-equiv" not in status
    assert '<span class="tag tag-mismatch">Amount mismatch — contact support</span>' in history
    assert "Несовпадение суммы — обратитесь в поддержку" in russian
    assert balance(alice) == 0


def test_a_disabled_currency_is_refused_with_a_message_and_nothing_written(portal, alice, mock_payments):
    response = portal.post("/wallet/", {"amount": "150", "currency": "USD"})
    russian = portal.post("/wallet/", {"amount": "150", "currency": "EUR"}, HTTP_ACCEPT_LANGUAGE="ru")

    assert response.status_code == 200
    assert messages_of(response) == ["Currency USD is not available. Available: RUB"]
    assert messages_of(russian) == ["Валюта EUR недоступна. Доступны: RUB"]
    assert 'value="RUB"' in html(response)
    assert not Payment.objects.exists()
    assert User.objects.get(pk=alice.pk).preferred_currency == "RUB"


def test_paying_remembers_the_currency(portal, alice, usd):
    portal.post("/wallet/", {"amount": "10", "currency": "usd"})

    assert User.objects.get(pk=alice.pk).preferred_currency == "USD"
    assert 'value="USD" checked' in html(portal.get("/wallet/"))
    audit = AuditLog.objects.filter(user=alice, action="user_update").get()
    assert audit.details == {"fields": ["preferred_currency"]}

    portal.post("/wallet/", {"amount": "10", "currency": "USD"})  # the same again: nothing more written
    assert AuditLog.objects.filter(user=alice, action="user_update").count() == 1


def test_a_preferred_currency_that_is_switched_off_falls_back_to_rub(portal, alice, usd):
    User.objects.filter(pk=alice.pk).update(preferred_currency="USD")
    CurrencyRate.objects.filter(pk="USD").update(enabled=False)

    page = html(portal.get("/wallet/"))

    assert 'data-testid="currency-picker"' not in page
    assert '<input type="hidden" name="currency" value="RUB">' in page


def test_no_currency_available_says_top_ups_are_off(portal, mock_payments):
    CurrencyRate.objects.filter(pk="RUB").update(enabled=False)

    page = html(portal.get("/wallet/"))

    assert "Top-ups are not available right now." in page
    assert 'name="currency"' not in page


def test_bob_cannot_see_alices_payment(portal, stranger, usd):
    portal.post("/wallet/", {"amount": "10", "currency": "USD"})
    payment = Payment.objects.get()

    assert stranger.get(f"/wallet/payments/{payment.pk}/").status_code == 404
    assert stranger.get(f"/wallet/checkout/{payment.pk}/").status_code == 404
    assert "$1.10" not in html(stranger.get("/wallet/history/"))
