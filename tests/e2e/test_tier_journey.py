"""The Premium API tier in the browser: alice sees her Free plan on the profile, upgrades, and sees the new limit
and her balance down by the price."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from access.models import TierPeriod
from accounts.models import User
from tests.e2e.test_access_journey import fund, log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_upgrade_to_premium_on_the_profile(page, settings):
    settings.RATE_LIMIT_API = "100/60"
    settings.RATE_LIMIT_API_PREMIUM = "500/60"
    settings.PREMIUM_PRICE_ZNC = Decimal("10.00")
    user = UserFactory(email="alice@example.com", username="alice")
    fund(user, "25")

    log_in(page, "alice")
    page.goto("/profile/")
    plan = page.get_by_test_id("plan-card")
    expect(plan.get_by_test_id("plan-tier")).to_have_text("Free · 100 requests per minute")
    expect(plan.get_by_test_id("plan-usage")).to_have_text("0 of 100")
    expect(page.get_by_test_id("nav-balance")).to_have_text("25.00 ZNC")

    plan.get_by_role("button", name="Upgrade to Premium for 10.00 ZNC / 30 days").click()

    expect(page.get_by_text("You are on Premium now: 500 requests per minute until")).to_be_visible()
    plan = page.get_by_test_id("plan-card")
    expect(plan.get_by_test_id("plan-tier")).to_have_text("Premium · 500 requests per minute")
    expect(plan.get_by_test_id("plan-usage")).to_have_text("0 of 500")
    expect(plan.get_by_test_id("plan-renews")).to_have_text("renews automatically for 10.00 ZNC")
    expect(page.get_by_test_id("nav-balance")).to_have_text("15.00 ZNC")
    expect(plan.get_by_role("button", name="Switch back to Free at the end of the period")).to_be_visible()
    assert User.objects.values_list("rate_tier", "balance").get(pk=user.pk) == ("premium", Decimal("15.00"))
    assert TierPeriod.objects.filter(user=user).count() == 1

    page.goto("/wallet/")
    expect(page.get_by_text("Premium API tier").first).to_be_visible()
