"""Gift pages on a phone (375 px wide): give a token, copy the one-time link, and open it as a visitor, in both
languages, without the page scrolling sideways."""

import pytest
from playwright.sync_api import expect

from access import services
from tests.e2e.test_access_journey import fund, log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 375, "height": 740}


@pytest.fixture
def phone(_release_test_database, _browser, live_server):
    def open_context(locale: str = "en-US"):
        context = _browser.new_context(
            base_url=live_server.url,
            locale=locale,
            viewport=PHONE,
            permissions=["clipboard-read", "clipboard-write"],
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    contexts = []
    yield open_context
    for context in contexts:
        context.close()


def assert_fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide"


def test_give_copy_and_open_a_gift_on_a_phone(phone):
    alice = UserFactory(email="giver@example.com", username="giver")
    fund(alice, "50")
    token = services.token_purchase(user=alice, duration_hours=12)

    page = phone()
    page.set_viewport_size({"width": 1200, "height": 800})  # the log-out button is in the folded menu on a phone
    log_in(page, "giver")
    page.set_viewport_size(PHONE)
    page.goto(f"/access/tokens/{token.pk}/")
    page.get_by_test_id("token-gift").click()
    expect(page.get_by_test_id("gift-form")).to_be_visible()
    assert_fits(page)
    page.get_by_label("Message").fill("Happy birthday! A very long word: " + "x" * 60)
    expect(page.get_by_text("Characters left: 186")).to_be_visible()
    page.get_by_test_id("gift-send").click()

    link = page.get_by_test_id("gift-link").input_value()
    assert "/gifts/claim/" in link
    assert_fits(page)
    page.get_by_test_id("gift-copy").click()
    expect(page.get_by_text("Copied ✓")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == link

    for path in ("/gifts/", f"/access/tokens/{token.pk}/", "/access/tokens/"):
        page.goto(path)
        assert_fits(page)
    expect(page.get_by_test_id("token-gift-tag")).to_have_text("gift pending")

    for locale, heading, register in (
        ("en-US", "giver sends you access to Zenzefi", "Create an account"),
        ("ru-RU", "giver дарит вам доступ к Zenzefi", "Создать учётную запись"),
    ):
        visitor = phone(locale)
        visitor.goto(link)
        expect(visitor.get_by_test_id("gift-title")).to_have_text(heading)
        expect(visitor.get_by_test_id("gift-register")).to_have_text(register)
        expect(visitor.get_by_test_id("gift-message")).to_contain_text("Happy birthday!")
        assert_fits(visitor)
