import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests.factories import PASSWORD
from wallet.models import Transaction

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def mock_checkout(settings, live_server):
    settings.ENABLE_MOCK_PAYMENTS = True
    settings.PAYMENT_PROVIDER = "mock"
    settings.BACKEND_URL = live_server.url


def test_top_up_150_through_the_mock_checkout(page, alice, mock_checkout):
    page.goto("/login/")
    page.get_by_label("E-mail or username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("nav-balance")).to_have_text("0.00 ZNC")

    page.get_by_test_id("nav-balance").click()
    page.get_by_text("150 ZNC").click()
    expect(page.locator("#id_amount")).to_have_value("150")
    expect(page.get_by_test_id("topup-total")).to_have_text("RUB\xa01,500.00")
    page.get_by_role("button", name="Continue to payment").click()

    expect(page).to_have_url(re.compile(r"/wallet/checkout/[0-9a-f-]+/$"))
    expect(page.get_by_test_id("checkout-amount")).to_have_text("RUB\xa01,500.00")
    page.get_by_role("button", name="Pay").click()

    expect(page.get_by_test_id("payment-status")).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_test_id("nav-balance")).to_have_text("150.00 ZNC")
    page.get_by_role("link", name="History").click()
    row = page.get_by_test_id("transaction-row").first
    expect(row).to_contain_text("Top-up")
    expect(row).to_contain_text("+150.00")
    assert User.objects.get(pk=alice.pk).balance == Decimal("150.00")
    assert Transaction.objects.get(user=alice).amount == Decimal("150.00")
