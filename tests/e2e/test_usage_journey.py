import json
import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from access import services as access
from proxy.services import sessions_flush
from tests.factories import PASSWORD
from tests.helpers import fund

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DEVICE = "workshop-pc-usage-01"
PHONE = {"width": 375, "height": 800}


@pytest.fixture
def portal(_browser, gate, upstream):
    """A browser on our whole ASGI app (portal + proxy), with the fake Zenzefi upstream."""
    context = _browser.new_context(base_url=gate.url, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def log_in(page) -> None:
    page.goto("/login/")
    page.get_by_label("E-mail or username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("nav-usage")).to_be_attached()


def test_alice_uses_a_token_and_sees_her_usage_charted(portal, gate, alice):
    page = portal
    fund(alice, "50")
    token = access.token_purchase(user=alice, duration_hours=12, scope="full")
    # The desktop client: five requests through the proxy to the fake Zenzefi.
    with httpx.Client(base_url=gate.url + "/api/v1/proxy", timeout=30) as http:
        for _ in range(5):
            response = http.get("/echo", headers={"X-Access-Token": token.secret, "X-Device-ID": DEVICE})
            assert response.status_code == 200
    time.sleep(1.3)  # the proxy adds byte counts to Redis once a second
    sessions_flush()  # the beat task every 10 s; the rollup follows its signal

    log_in(page)
    page.get_by_test_id("nav-usage").click()
    expect(page).to_have_url(re.compile(r"/usage/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Usage")

    # uPlot drew both charts: a canvas inside each chart's root.
    expect(page.locator("#chart-requests .uplot canvas")).to_have_count(1)
    expect(page.locator("#chart-traffic .uplot canvas")).to_have_count(1)
    assert page.locator("#chart-requests canvas").evaluate("c => c.width > 0 && c.height > 0")
    data = json.loads(page.locator("#usage-data").text_content())
    assert sum(data["requests"]) == 5 and data["requests"][-1] == 5 and len(data["t"]) == 30
    expect(page.get_by_test_id("usage-requests")).to_have_text("5")

    rows = page.get_by_test_id("usage-session-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(DEVICE)
    expect(rows.first).to_contain_text("127.0.0.1")
    expect(page.get_by_test_id("usage-token")).to_contain_text(token.secret_prefix)

    # The table view of the same numbers.
    page.get_by_text("Show the numbers as a table").click()
    expect(page.get_by_test_id("usage-table").locator("tbody tr").first).to_contain_text("5")

    # One token selected: the same numbers.
    page.locator("#usage-token").select_option(str(token.pk))
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(rf"/usage/\?token={token.pk}$"))
    expect(page.get_by_test_id("usage-requests")).to_have_text("5")

    # In Russian, and on a phone: no horizontal page scroll, the charts drawn to its width.
    page.get_by_role("button", name="RU").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Использование")
    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.locator("#chart-requests .uplot canvas")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator("#chart-requests canvas").evaluate("c => c.getBoundingClientRect().right") <= PHONE["width"]
