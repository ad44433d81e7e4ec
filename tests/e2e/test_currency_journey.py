"""Top-up in US dollars in the browser: pick USD, see the total follow, pay at the mock checkout, see it in history."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests.e2e.test_access_journey import log_in
from tests.e2e.test_gift_phone import PHONE, assert_fits
from tests.factories import PASSWORD, UserFactory
from tests.helpers import assert_ledger_consistent
from wallet.models import Payment, Transaction
from wallet.services import Actor, currency_rate_set

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NBSP = "\u00a0"


@pytest.fixture
def mock_checkout(settings, live_server):
    settings.ENABLE_MOCK_PAYMENTS = True
    settings.PAYMENT_PROVIDER = "mock"
    settings.BACKEND_URL = live_server.url


def test_top_up_in_usd_through_the_mock_checkout(page, alice, mock_checkout):
    currency_rate_set(currency="USD", znc_price=Decimal("0.11"), enabled=True, actor=Actor())
    page.goto("/login/")
    page.get_by_label("E-mail or username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("nav-balance")).to_have_text("0.00 ZNC")

    page.get_by_test_id("nav-balance").click()
    total = page.get_by_test_id("topup-total")
    expect(total).to_have_text(f"RUB{NBSP}1,000.00")  # RUB and 100 ZNC until alice chooses
    picker = page.get_by_test_id("currency-picker")
    expect(picker.locator("input[name=currency]")).to_have_count(2)  # RUB and USD; EUR is off
    picker.locator("label", has_text="US dollar").click()
    expect(total).to_have_text("$11.00")
    expect(page.locator("#topup-rate")).to_have_text("$0.11")
    expect(page.locator("label.preset", has_text="300 ZNC")).to_contain_text("$33.00")  # presets repriced too
    page.locator("#id_amount").fill("12.34")
    expect(total).to_have_text("$1.36")  # 1.3574 rounds half up to the cent
    page.get_by_text("150 ZNC").click()
    expect(page.locator("#id_amount")).to_have_value("150")
    expect(total).to_have_text("$16.50")
    page.get_by_role("button", name="Continue to payment").click()

    expect(page).to_have_url(re.compile(r"/wallet/checkout/[0-9a-f-]+/$"))
    expect(page.get_by_test_id("checkout-amount")).to_have_text("$16.50")
    page.get_by_role("button", name="Pay").click()

    expect(page.get_by_test_id("payment-status")).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_test_id("payment-amount")).to_have_text("$16.50")
    expect(page.get_by_test_id("nav-balance")).to_have_text("150.00 ZNC")
    page.get_by_role("link", name="History").click()
    row = page.get_by_test_id("transaction-row").first
    expect(row).to_contain_text("+150.00")
    expect(row.get_by_test_id("transaction-paid")).to_have_text("· paid $16.50")
    paid = page.get_by_test_id("payment-row").first
    expect(paid).to_have_attribute("data-currency", "USD")
    expect(paid).to_contain_text("$16.50")
    expect(paid).to_contain_text("Succeeded")

    payment = Payment.objects.get(user=alice)
    assert (payment.currency, payment.rate, payment.amount_money, payment.status) == (
        "USD",
        Decimal("0.110000"),
        Decimal("16.50"),
        "succeeded",
    )
    assert User.objects.get(pk=alice.pk).balance == Decimal("150.00")  # exactly the ZNC asked for
    assert Transaction.objects.get(user=alice).amount == Decimal("150.00")
    assert User.objects.get(pk=alice.pk).preferred_currency == "USD"
    assert_ledger_consistent()

    # In Russian the wallet opens on the remembered USD, and the live total reads as Babel writes it.
    page.get_by_role("button", name="RU").click()
    page.get_by_test_id("nav-balance").click()
    expect(page.locator("input[name=currency][value=USD]")).to_be_checked()
    expect(total).to_have_text(f"11,00{NBSP}$")
    page.locator("#id_amount").fill("1500")
    expect(total).to_have_text(f"165,00{NBSP}$")
    page.locator("label.preset", has_text="RUB").click()
    expect(total).to_have_text(f"15{NBSP}000,00{NBSP}₽")


@pytest.fixture
def phone_page(_release_test_database, _browser, live_server):
    context = _browser.new_context(base_url=live_server.url, locale="en-US", viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_currency_pages_fit_on_a_phone_in_russian(phone_page, mock_checkout):
    for currency, price in (("USD", "0.11"), ("EUR", "0.1")):
        currency_rate_set(currency=currency, znc_price=Decimal(price), enabled=True, actor=Actor())
    page = phone_page
    page.set_viewport_size({"width": 1200, "height": 800})  # the menu is folded on a phone
    user = UserFactory(email="phone@example.com", username="phone")
    log_in(page, "phone")
    page.get_by_role("button", name="RU").click()
    page.set_viewport_size(PHONE)

    page.goto("/wallet/")
    expect(page.get_by_test_id("currency-picker").locator("input[name=currency]")).to_have_count(3)
    page.get_by_test_id("currency-picker").locator("label", has_text="Евро").click()
    expect(page.get_by_test_id("topup-total")).to_have_text(f"10,00{NBSP}€")
    assert_fits(page)
    page.get_by_role("button", name="Перейти к оплате").click()
    expect(page.get_by_test_id("checkout-amount")).to_have_text(f"10,00{NBSP}€")
    assert_fits(page)
    page.get_by_role("button", name="Оплатить").click()
    expect(page.get_by_test_id("payment-amount")).to_have_text(f"10,00{NBSP}€")
    assert_fits(page)
    # A second payment the provider reported another amount for: labelled in the history.
    mismatched = Payment.objects.create(
        user=user,
        amount_znc=Decimal("1000"),
        amount_money=Decimal("110.00"),
        amount_minor=11000,
        currency="USD",
        rate=Decimal("0.11"),
        provider="mock",
        status=Payment.Status.MISMATCH,
    )

    page.goto("/wallet/history/")
    expect(page.locator("[data-testid=payment-row][data-status=mismatch]")).to_contain_text(
        "Несовпадение суммы — обратитесь в поддержку"
    )
    expect(page.locator("[data-testid=payment-row][data-currency=EUR]")).to_contain_text(f"10,00{NBSP}€")
    assert_fits(page)
    page.goto(f"/wallet/payments/{mismatched.pk}/")
    expect(page.get_by_test_id("payment-status")).to_contain_text("Несовпадение суммы — обратитесь в поддержку.")
    assert_fits(page)
