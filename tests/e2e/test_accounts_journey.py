import re

import pytest
from playwright.sync_api import expect

from accounts.models import AuditLog, User

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_register_logout_login_and_see_profile(page):
    page.goto("/")
    page.get_by_role("link", name="Sign up").first.click()
    expect(page).to_have_url(re.compile(r"/register/$"))

    page.get_by_label("E-mail").fill("erin@example.com")
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Full name").fill("Erin Mechanic")
    page.get_by_label("Password", exact=True).fill("Workshop-Pass-31")
    page.get_by_label("Repeat password").fill("Workshop-Pass-31")
    page.get_by_role("button", name="Create account").click()

    expect(page).to_have_url(re.compile(r"/profile/$"))
    expect(page.get_by_text("Welcome, erin!")).to_be_visible()
    expect(page.get_by_test_id("profile-username")).to_have_text("erin")
    user = User.objects.get(username="erin")
    expect(page.get_by_test_id("referral-code")).to_have_text(user.referral_code)

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You have been logged out.")).to_be_visible()
    page.goto("/profile/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/profile/$"))

    page.get_by_label("E-mail or username").fill("erin@example.com")
    page.get_by_label("Password").fill("Workshop-Pass-31")
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/profile/$"))
    expect(page.get_by_test_id("profile-email")).to_have_text("erin@example.com")
    assert AuditLog.objects.filter(user=user, action="auth_login").count() == 1
    assert AuditLog.objects.filter(user=user, action="auth_register").count() == 1


def test_wrong_password_shows_an_error_and_russian_switch(page, alice):
    page.goto("/login/")
    page.get_by_label("E-mail or username").fill("alice")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("alert")).to_contain_text("Incorrect e-mail/username or password.")

    page.get_by_role("button", name="RU").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.get_by_role("heading", level=1)).to_have_text("Вход")


def test_phone_width_menu(page):
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto("/")
    nav_login = page.locator("nav.nav").get_by_role("link", name="Log in")
    expect(nav_login).to_be_hidden()

    page.locator("label.nav-toggle-label").click()

    expect(nav_login).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
