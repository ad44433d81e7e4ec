"""Alice buys a gift and copies its link; a new visitor registers through it, accepts and opens Zenzefi with it."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from access.models import AccessToken, Gift, GiftStatus
from accounts.models import User
from proxy.models import ProxySession
from tests.e2e.test_access_journey import log_in
from tests.helpers import balance, fund
from wallet.models import Transaction

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def contexts(_browser, gate, upstream):
    """Browsers on our whole ASGI app (portal + proxy) with the fake Zenzefi upstream; one per person."""
    opened = []

    def open_page(**options):
        context = _browser.new_context(base_url=gate.url, locale="en-US", **options)
        opened.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield open_page
    for context in opened:
        context.close()


def test_alice_gifts_a_token_to_a_new_visitor_who_uses_it(contexts, alice):
    fund(alice, "50")
    page = contexts(permissions=["clipboard-read", "clipboard-write"])
    log_in(page, "alice")

    # Alice buys a 12-hour token as a gift and copies its one-time link.
    page.get_by_test_id("nav-buy").click()
    page.get_by_test_id("buy-as-gift").click()
    page.get_by_test_id("buy-12-full").click()
    page.get_by_test_id("confirm-gift-box").get_by_label("Message").fill("For the Tuesday coding job")
    page.get_by_test_id("confirm-gift").click()
    link = page.get_by_test_id("gift-link").input_value()
    page.get_by_test_id("gift-copy").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == link and re.search(r"/gifts/claim/[A-Za-z0-9_-]{32}$", link)
    expect(page.get_by_test_id("nav-balance")).to_have_text("40.00 ZNC")
    gift = Gift.objects.get(sender=alice)
    assert gift.status == GiftStatus.PENDING and gift.token.user_id == alice.pk

    # A new visitor opens the link in another browser, registers from it and comes back to accept.
    visitor = contexts()
    visitor.goto(copied)
    expect(visitor.get_by_test_id("gift-title")).to_have_text("alice sends you access to Zenzefi")
    expect(visitor.get_by_test_id("gift-message")).to_have_text("For the Tuesday coding job")
    visitor.get_by_test_id("gift-register").click()
    visitor.get_by_label("E-mail").fill("bob.new@example.com")
    visitor.get_by_label("Username").fill("bobnew")
    visitor.get_by_label("Full name").fill("Bob Newcomer")
    visitor.get_by_label("Password", exact=True).fill("Workshop-Pass-31")
    visitor.get_by_label("Repeat password").fill("Workshop-Pass-31")
    visitor.get_by_role("button", name="Create account").click()
    expect(visitor).to_have_url(re.compile(r"/gifts/claim/"))
    visitor.get_by_test_id("gift-accept").click()

    bob = User.objects.get(username="bobnew")
    token = AccessToken.objects.get(pk=gift.token_id)
    assert token.user_id == bob.pk and token.gifted_by_id == alice.pk
    expect(visitor).to_have_url(re.compile(rf"/access/tokens/{token.pk}/$"))
    visitor.goto("/access/tokens/")
    expect(visitor.get_by_test_id("token-gift-tag")).to_have_text("gift from alice")

    # Bob opens Zenzefi with it: through the proxy, on his browser as the device.
    visitor.goto(f"/access/tokens/{token.pk}/")
    with visitor.context.expect_page() as opened:
        visitor.get_by_test_id("token-open").click()
    zenzefi = opened.value
    zenzefi.wait_for_load_state()
    expect(zenzefi.get_by_role("heading", level=1)).to_have_text("Zenzefi certificate management")
    token.refresh_from_db()
    assert token.activated_at is not None
    assert ProxySession.objects.get(token=token).user_id == bob.pk

    # Alice sees the gift claimed by bob, and bob counted as her referral.
    page.goto("/gifts/")
    card = page.get_by_test_id("gift-card")
    expect(card.get_by_test_id("gift-status")).to_have_text("Claimed")
    expect(card.get_by_test_id("gift-claimed-by")).to_have_text("bobnew")
    page.goto("/referrals/")
    expect(page.get_by_test_id("referrals-total")).to_have_text("1")
    expect(page.get_by_test_id("referral-row")).to_contain_text("bobnew")

    # Money: one purchase by alice, nothing moved by the gift.
    assert (balance(alice), balance(bob)) == (Decimal("40.00"), Decimal("0.00"))
    assert sorted(Transaction.objects.values_list("user__username", "kind")) == [
        ("alice", "deposit"),
        ("alice", "purchase"),
    ]
