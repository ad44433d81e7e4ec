import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from access.models import AccessToken
from proxy.models import ProxySession
from tests.factories import PASSWORD
from tests.helpers import fund

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def portal(_browser, gate, upstream):
    """A browser on our whole ASGI app (portal + proxy), with the fake Zenzefi upstream."""
    context = _browser.new_context(base_url=gate.url, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_buy_a_token_and_use_zenzefi_in_the_browser(portal, alice):
    page = portal
    fund(alice, "50")
    page.goto("/login/")
    page.get_by_label("E-mail or username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.get_by_test_id("nav-buy").click()
    page.get_by_test_id("buy-12-full").click()
    page.get_by_role("button", name="Pay 10.00 ZNC").click()
    expect(page).to_have_url(re.compile(r"/access/tokens/$"))
    token = AccessToken.objects.get(user=alice)
    assert token.cost_znc == Decimal("10.00")

    with page.context.expect_page() as opened:
        page.get_by_test_id("token-open").first.click()
    zenzefi = opened.value
    zenzefi.wait_for_load_state()

    expect(zenzefi).to_have_url(re.compile(r"/api/v1/proxy/$"))
    expect(zenzefi.get_by_role("heading", level=1)).to_have_text("Zenzefi certificate management")
    # The stylesheet and the image came through the proxy.
    expect(zenzefi.locator("h1")).to_have_css("color", "rgb(42, 122, 58)")
    assert zenzefi.locator("#logo").evaluate("img => img.complete && img.naturalWidth") == 64

    zenzefi.locator("#link-form").click()
    expect(zenzefi).to_have_url(re.compile(r"/api/v1/proxy/form$"))
    zenzefi.locator("#name").fill("ECU-Door-42")
    zenzefi.locator("#import").click()
    expect(zenzefi.locator("#imported")).to_have_text("Imported ECU-Door-42")
    expect(zenzefi).to_have_url(re.compile(r"/api/v1/proxy/certificates/import/$"))

    token.refresh_from_db()
    assert token.activated_at is not None
    session = ProxySession.objects.get(token=token)
    assert session.mode == "cookie"
    page.goto(f"/access/tokens/{token.pk}/")
    expect(page.get_by_test_id("session-row")).to_have_count(1)
