import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import AuditLog, User
from tests.factories import PASSWORD

STRONG = "Tr1cky-Passw0rd"
FIREFOX_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def browser(db):
    return Client()


def register_form(**overrides):
    return {
        "email": "carol@example.com",
        "username": "carol",
        "full_name": "Carol Doe",
        "password1": STRONG,
        "password2": STRONG,
        "referral_code": "",
        **overrides,
    }


def test_home_shows_the_price_table(browser):
    response = browser.get("/", HTTP_ACCEPT=FIREFOX_ACCEPT)

    assert response.status_code == 200
    html = response.content.decode()
    for price in ("1.00", "10.00", "18.00", "100.00", "300.00"):
        assert f'<td class="num">{price}</td>' in html
    assert "Access to Zenzefi by the hour" in html


def test_home_answers_json_to_api_clients(browser):
    response = browser.get("/", HTTP_ACCEPT="application/json")

    assert response.json() == {"message": "Welcome to Zenzefi Backend", "version": "1.0.0", "docs": "/docs"}


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json, text/html;q=0.5", "nonsense"])
def test_home_answers_json_unless_html_is_asked_for(browser, accept):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}

    response = browser.get("/", **headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"message": "Welcome to Zenzefi Backend", "version": "1.0.0", "docs": "/docs"}
    assert "Accept" in [name.strip() for name in response["Vary"].split(",")]


@pytest.mark.parametrize("accept", [FIREFOX_ACCEPT, "text/html", "text/html, application/json"])
def test_home_answers_html_to_browsers(browser, accept):
    response = browser.get("/", HTTP_ACCEPT=accept)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "Access to Zenzefi by the hour" in response.content.decode()
    assert "Accept" in [name.strip() for name in response["Vary"].split(",")]


def test_register_page_is_prefilled_from_ref(browser, alice):
    response = browser.get(f"/register/?ref={alice.referral_code}")

    assert response.status_code == 200
    assert f'value="{alice.referral_code}"' in response.content.decode()


def test_register_without_slash_keeps_the_referral_code(browser, alice):
    response = browser.get(f"/register?ref={alice.referral_code}")

    assert response.status_code == 301
    assert response["Location"] == f"/register/?ref={alice.referral_code}"


def test_register_page_creates_user_and_logs_in(browser, alice):
    response = browser.post("/register/", register_form(referral_code=alice.referral_code))

    assert response.status_code == 302
    assert response["Location"] == "/profile/"
    carol = User.objects.get(username="carol")
    assert carol.referred_by == alice
    assert carol.full_name == "Carol Doe"
    profile = browser.get("/profile/")
    assert profile.status_code == 200
    assert "carol@example.com" in profile.content.decode()
    assert AuditLog.objects.filter(action="auth_register", user=carol).exists()


@pytest.mark.parametrize(
    ("overrides", "field_error"),
    [
        ({"password2": "Other-Passw0rd"}, "The two passwords do not match."),
        ({"email": "ALICE@example.com"}, "Email already registered"),
        ({"username": "ALICE"}, "Username already taken"),
        ({"referral_code": "ZZZZZZZZZZZZ"}, "Invalid referral code"),
        ({"password1": "password123", "password2": "password123"}, "This password is too common."),
    ],
)
def test_register_page_shows_errors_and_writes_nothing(browser, alice, overrides, field_error):
    response = browser.post("/register/", register_form(**overrides))

    assert response.status_code == 200
    assert field_error in response.content.decode()
    assert User.objects.count() == 1


@pytest.mark.parametrize("username", ["ali\u202eecila", "\u200bcarol", "car\u200dol"])
def test_register_page_refuses_invisible_characters_in_the_username(browser, username):
    response = browser.post("/register/", register_form(username=username))

    assert response.status_code == 200
    assert "Username cannot contain invisible or control characters" in response.content.decode()
    assert not User.objects.exists()


def test_register_page_refuses_invisible_characters_in_russian(browser):
    browser.cookies["django_language"] = "ru"

    response = browser.post("/register/", register_form(username="\u200bcarol"))

    assert "Имя пользователя не может содержать невидимые или управляющие символы (U+200B)." in (
        response.content.decode()
    )
    assert not User.objects.exists()


def test_register_page_stores_the_username_nfkc_normalised(browser, alice):
    taken = browser.post("/register/", register_form(username="\uff21\uff4c\uff49\uff43\uff45"))  # full-width
    created = browser.post("/register/", register_form(username="\uff43\uff41\uff52\uff4f\uff4c"))

    assert "Username already taken" in taken.content.decode()
    assert created.status_code == 302
    assert User.objects.filter(username="carol").exists()
    assert User.objects.count() == 2


def test_admin_refuses_invisible_characters_in_a_username(client, admin_user, alice):
    client.force_login(admin_user)

    response = client.post(
        "/admin/accounts/user/add/",
        {"email": "mallory@example.com", "username": "ali\u200bce", "usable_password": "false"},
    )

    assert response.status_code == 200
    assert "Username cannot contain invisible or control characters" in response.content.decode()
    assert not User.objects.filter(email="mallory@example.com").exists()


def test_register_page_errors_are_translated(browser, alice):
    browser.cookies["django_language"] = "ru"

    response = browser.post("/register/", register_form(email="alice@example.com"))

    assert "Этот e-mail уже зарегистрирован" in response.content.decode()
    assert response.content.decode().count('lang="ru"') >= 1


def test_login_page_by_username_then_logout(browser, alice):
    response = browser.post("/login/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/profile/"
    assert AuditLog.objects.filter(action="auth_login", user=alice).exists()
    logout = browser.post("/logout/")
    assert logout.status_code == 302
    assert browser.get("/profile/").status_code == 302


def test_login_page_wrong_password(browser, alice):
    response = browser.post("/login/", {"username": "alice@example.com", "password": "nope-nope"})

    assert response.status_code == 200
    assert "Incorrect e-mail/username or password." in response.content.decode()
    assert AuditLog.objects.filter(action="auth_login_failed", user=alice).count() == 1


def test_profile_requires_login(browser):
    response = browser.get("/profile/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/profile/"


def test_profile_saves_full_name(browser, alice):
    browser.force_login(alice)

    response = browser.post("/profile/", {"full_name": "Alice New"})

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.full_name == "Alice New"


def test_profile_shows_referral_link(browser, alice):
    browser.force_login(alice)

    html = browser.get("/profile/").content.decode()

    assert f"http://testserver/register/?ref={alice.referral_code}" in html


def test_password_change_page(browser, alice):
    browser.force_login(alice)

    response = browser.post(
        "/password/change/",
        {"old_password": PASSWORD, "new_password1": "Another-Secret-77", "new_password2": "Another-Secret-77"},
    )

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("Another-Secret-77")
    # The session survives its own password change.
    assert browser.get("/profile/").status_code == 200
    assert AuditLog.objects.filter(action="user_password_change", user=alice).exists()


def test_password_reset_by_email(browser, alice):
    response = browser.post("/password/reset/", {"email": "alice@example.com"})

    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/password/reset/\S+/)", mail.outbox[0].body).group(1)
    form = browser.get(link, follow=True)
    assert form.status_code == 200
    set_url = form.redirect_chain[-1][0]
    done = browser.post(set_url, {"new_password1": "Reset-Secret-55", "new_password2": "Reset-Secret-55"})
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("Reset-Secret-55")


def test_password_reset_for_unknown_email_sends_nothing(browser):
    response = browser.post("/password/reset/", {"email": "nobody@example.com"})

    assert response.status_code == 302
    assert mail.outbox == []


def test_forms_require_csrf(db):
    strict = Client(enforce_csrf_checks=True)

    response = strict.post("/register/", register_form())

    assert response.status_code == 403
    assert not User.objects.exists()


def test_language_switch_to_russian(browser):
    response = browser.post("/i18n/setlang/", {"language": "ru", "next": "/"}, follow=True, HTTP_ACCEPT=FIREFOX_ACCEPT)

    html = response.content.decode()
    assert '<html lang="ru">' in html
    assert "Цены" in html


def test_accept_language_picks_russian(browser):
    html = browser.get("/login/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    assert '<html lang="ru">' in html


def test_api_stays_english_for_russian_clients(api, alice):
    response = api.post("/api/v1/auth/register", {"email": "bad"}, format="json", HTTP_ACCEPT_LANGUAGE="ru")

    assert response.json()["email"] == ["Enter a valid email address."]


def test_auth_pages_are_rate_limited(browser, settings):
    settings.RATE_LIMIT_AUTH = "2/60"

    codes = [browser.post("/login/", {"username": "x", "password": "y"}).status_code for _ in range(3)]

    assert codes == [200, 200, 429]
    assert browser.get("/login/").status_code == 200


def test_unknown_page_is_a_finished_404(browser):
    response = browser.get("/no-such-page/")

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
