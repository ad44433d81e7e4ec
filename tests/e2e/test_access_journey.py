import importlib
import re
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import call_command
from playwright.sync_api import expect

from access import services
from access.models import AccessToken, Bundle
from accounts.models import User
from tests.factories import PASSWORD, UserFactory
from wallet.models import Transaction
from wallet.services import balance_change

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(_release_test_database, _browser, live_server):
    """Like ``page``, with the clipboard allowed so Copy can be checked for real."""
    context = _browser.new_context(
        base_url=live_server.url, locale="en-US", permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def default_bundles():
    """The bundles of the data migration: an earlier transactional test's flush may have removed them."""
    migration = importlib.import_module("access.migrations.0002_default_bundles")
    migration.create_bundles(apps, None)


def fund(user, amount: str) -> None:
    balance_change(user_id=user.pk, amount=Decimal(amount), kind="deposit", description="Test funding")


def balance(user) -> Decimal:
    return User.objects.values_list("balance", flat=True).get(pk=user.pk)


def log_in(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("E-mail or username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def log_out(page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("Main").get_by_role("link", name="Log in")).to_be_visible()


def buy_bundle(page, name: str, price: str, balance_after: str) -> None:
    page.get_by_test_id("nav-buy").click()
    card = page.locator(f'[data-testid="bundle-card"][data-bundle="{name}"]')
    expect(card.get_by_test_id("bundle-price")).to_have_text(f"{price} ZNC")
    card.get_by_role("link", name="Buy").click()
    expect(page.get_by_test_id("confirm-price")).to_have_text(f"{price} ZNC")
    expect(page.get_by_test_id("confirm-balance-after")).to_have_text(f"{balance_after} ZNC")
    page.get_by_role("button", name=f"Pay {price} ZNC").click()
    expect(page).to_have_url(re.compile(r"/access/tokens/$"))
    expect(page.get_by_test_id("nav-balance")).to_have_text(f"{balance_after} ZNC")


def test_buy_reveal_copy_revoke_and_referral_bonus(browser_page, alice, default_bundles):
    page = browser_page
    fund(alice, "100")

    # Alice buys a 12-hour full token through the grid and the confirm step.
    log_in(page, "alice")
    page.get_by_test_id("nav-buy").click()
    expect(page.get_by_test_id("buy-balance")).to_have_text("100.00 ZNC")
    page.get_by_test_id("buy-12-full").click()
    expect(page.get_by_test_id("confirm-what")).to_have_text("12 hours")
    expect(page.get_by_test_id("confirm-price")).to_have_text("10.00 ZNC")
    expect(page.get_by_test_id("confirm-balance")).to_have_text("100.00 ZNC")
    expect(page.get_by_test_id("confirm-balance-after")).to_have_text("90.00 ZNC")
    page.get_by_role("button", name="Pay 10.00 ZNC").click()
    expect(page).to_have_url(re.compile(r"/access/tokens/$"))
    expect(page.locator(".message-success")).to_contain_text("Token bought: 12 hours, Full access, 10.00 ZNC.")
    token = AccessToken.objects.get(user=alice)
    assert (token.duration_hours, token.scope, token.cost_znc) == (12, "full", Decimal("10.00"))

    # Then the Starter Pack through its card.
    buy_bundle(page, "Starter Pack", "81.00", "9.00")
    expect(page.locator(".message-success")).to_contain_text("Starter Pack bought: 5 tokens added, 81.00 ZNC.")
    expect(page.get_by_test_id("token-card")).to_have_count(6)
    assert AccessToken.objects.filter(user=alice, bundle__name="Starter Pack").count() == 5
    assert balance(alice) == Decimal("9.00")

    # The secret is hidden until revealed; Copy puts it on the clipboard.
    card = page.locator(f'[data-token-id="{token.pk}"]')
    expect(card.get_by_test_id("token-status")).to_have_text("Ready")
    secret = card.get_by_test_id("secret-value")
    expect(secret).not_to_have_text(token.secret)
    expect(secret).to_have_text(f"{token.secret_prefix}••••••••")
    card.get_by_role("button", name="Reveal").click()
    expect(secret).to_have_text(token.secret)
    expect(card.get_by_role("button", name="Hide")).to_be_visible()
    card.get_by_role("button", name="Copy").click()
    expect(card.get_by_test_id("copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token.secret

    # A token in use counts down in the page.
    used = AccessToken.objects.filter(user=alice, bundle__name="Starter Pack").first()
    services.token_activate(token_id=used.pk)
    page.reload()
    left = page.locator(f'[data-token-id="{used.pk}"]').get_by_test_id("time-left")
    expect(left).to_have_text(re.compile(r"^23:59:[0-5]\d$"))
    first = left.text_content()
    expect(left).not_to_have_text(first, timeout=3000)
    expect(page.locator(f'[data-token-id="{used.pk}"]').get_by_test_id("token-status")).to_have_text("Active")

    # Revoking the unused 12-hour token refunds all 10 ZNC.
    card.get_by_role("link", name="Revoke").click()
    expect(page.get_by_test_id("refund-preview")).to_have_text("10.00 ZNC")
    page.get_by_role("button", name="Revoke and refund").click()
    expect(page.locator(".message-success")).to_have_text("Token revoked. Refunded 10.00 ZNC.")
    expect(page.locator(f'[data-token-id="{token.pk}"]').get_by_test_id("token-status")).to_have_text("Revoked")
    expect(page.get_by_test_id("nav-balance")).to_have_text("19.00 ZNC")
    page.goto("/wallet/history/")
    row = page.get_by_test_id("transaction-row").first
    expect(row).to_contain_text("Refund")
    expect(row).to_contain_text("+10.00")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.refund.amount == Decimal("10.00")
    assert balance(alice) == Decimal("19.00")
    log_out(page)

    # Bob registered with Alice's code buys the Ultimate Package: Alice earns 10 % of it.
    bob = UserFactory(username="bob", email="bob@example.com", referred_by=alice)
    fund(bob, "1600")
    log_in(page, "bob")
    buy_bundle(page, "Ultimate Package", "1600.00", "0.00")
    expect(page.get_by_test_id("token-card")).to_have_count(20)
    assert AccessToken.objects.filter(user=bob, bundle=Bundle.objects.get(name="Ultimate Package")).count() == 20
    log_out(page)

    log_in(page, "alice")
    page.get_by_test_id("nav-referrals").click()
    expect(page.get_by_test_id("referrals-total")).to_have_text("1")
    expect(page.get_by_test_id("referrals-qualifying")).to_have_text("1")
    expect(page.get_by_test_id("referrals-earned")).to_have_text("160.00 ZNC")
    expect(page.get_by_test_id("referral-row")).to_contain_text("bob")
    expect(page.get_by_test_id("referral-row")).to_contain_text("Yes")
    expect(page.get_by_test_id("nav-balance")).to_have_text("179.00 ZNC")
    bonus = Transaction.objects.get(user=alice, kind="referral_bonus")
    assert bonus.amount == Decimal("160.00")
    assert balance(alice) == Decimal("179.00")
    assert balance(bob) == Decimal("0.00")
    call_command("wallet_audit", verbosity=0)
