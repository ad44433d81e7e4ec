"""Portal: the per-token auto-renewal switch, the profile's master switch and reserve, renewal rows in the history."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import formats, timezone

from access import services
from access.models import AccessToken
from access.renewal import token_auto_renew_set, tokens_renew
from accounts.models import User
from tests.helpers import fund, html

pytestmark = pytest.mark.django_db


@pytest.fixture
def portal(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


def csrf(client, url: str) -> str:
    client.get(url)
    return client.cookies["csrftoken"].value


@pytest.fixture
def token(alice):
    fund(alice, "50")
    token = services.token_purchase(user=alice, duration_hours=12)
    services.token_activate(token_id=token.pk)
    token.refresh_from_db()
    return token


def test_switch_on_my_tokens_turns_auto_renewal_on_and_shows_the_next_renewal(portal, token):
    page = portal.get("/access/tokens/")
    assert 'data-testid="renew-switch"' in html(page) and 'aria-checked="false"' in html(page)
    assert 'data-testid="next-renewal"' not in html(page)

    response = portal.post(
        f"/access/tokens/{token.pk}/auto-renew/",
        {"auto_renew": "on", "next": "/access/tokens/", "csrfmiddlewaretoken": csrf(portal, "/access/tokens/")},
    )

    assert (response.status_code, response["Location"]) == (302, "/access/tokens/")
    token.refresh_from_db()
    assert token.auto_renew is True
    page = html(portal.get("/access/tokens/"))
    moment = formats.date_format(timezone.localtime(token.expires_at - timedelta(hours=1)), "d.m H:i")
    assert f"next renewal {moment} for 10.00 ZNC" in page
    assert 'aria-checked="true"' in page
    assert "Auto-renewal is on for this token." in page


def test_switch_off_on_the_token_page(portal, token):
    AccessToken.objects.filter(pk=token.pk).update(auto_renew=True)
    url = f"/access/tokens/{token.pk}/"
    assert 'data-testid="next-renewal"' in html(portal.get(url))

    response = portal.post(
        f"/access/tokens/{token.pk}/auto-renew/",
        {"auto_renew": "off", "next": url, "csrfmiddlewaretoken": csrf(portal, url)},
    )

    assert (response.status_code, response["Location"]) == (302, url)
    token.refresh_from_db()
    assert token.auto_renew is False
    assert 'data-testid="next-renewal"' not in html(portal.get(url))


def test_switch_needs_csrf_and_a_post(portal, token):
    assert portal.post(f"/access/tokens/{token.pk}/auto-renew/", {"auto_renew": "on"}).status_code == 403
    assert portal.get(f"/access/tokens/{token.pk}/auto-renew/").status_code == 405
    token.refresh_from_db()
    assert token.auto_renew is False


def test_someone_elses_token_is_404(bob, token):
    client = Client()
    client.force_login(bob)

    assert client.post(f"/access/tokens/{token.pk}/auto-renew/", {"auto_renew": "on"}).status_code == 404
    token.refresh_from_db()
    assert token.auto_renew is False


def test_a_foreign_next_is_not_followed(portal, token):
    response = portal.post(
        f"/access/tokens/{token.pk}/auto-renew/",
        {"auto_renew": "on", "next": "https://evil.example/", "csrfmiddlewaretoken": csrf(portal, "/access/tokens/")},
    )

    assert response["Location"] == f"/access/tokens/{token.pk}/"


def test_revoked_token_has_no_switch_and_cannot_be_switched(portal, alice, token):
    services.token_revoke(user=alice, token_id=token.pk)

    assert 'data-testid="renew-switch"' not in html(portal.get(f"/access/tokens/{token.pk}/"))
    response = portal.post(
        f"/access/tokens/{token.pk}/auto-renew/",
        {"auto_renew": "on", "csrfmiddlewaretoken": csrf(portal, "/access/tokens/")},
        follow=True,
    )
    assert "Token is revoked: auto-renewal cannot be changed" in html(response)
    token.refresh_from_db()
    assert token.auto_renew is False


def test_master_switch_off_shows_the_token_as_paused(portal, alice, token):
    token_auto_renew_set(user=alice, token_id=token.pk, enabled=True)
    User.objects.filter(pk=alice.pk).update(auto_renew_enabled=False)

    page = html(portal.get("/access/tokens/"))

    assert "paused: auto-renewal is off in your profile" in page
    assert 'data-testid="next-renewal"' not in page


def test_profile_shows_and_saves_the_master_switch_and_reserve(portal, alice):
    page = html(portal.get("/profile/"))
    assert 'data-testid="auto-renewal-settings"' in page
    assert 'value="0.00"' in page

    response = portal.post(
        "/access/auto-renewal/", {"min_balance": "12.50", "csrfmiddlewaretoken": csrf(portal, "/profile/")}
    )

    assert (response.status_code, response["Location"]) == (302, "/profile/")
    alice.refresh_from_db()
    assert (alice.auto_renew_enabled, alice.renew_min_balance) == (False, Decimal("12.50"))
    page = html(portal.get("/profile/"))
    assert 'value="12.50"' in page and "Auto-renewal settings saved." in page


@pytest.mark.parametrize("amount", ["-1", "1.005", "lots", ""])
def test_profile_refuses_a_bad_reserve(portal, alice, amount):
    response = portal.post(
        "/access/auto-renewal/",
        {"enabled": "on", "min_balance": amount, "csrfmiddlewaretoken": csrf(portal, "/profile/")},
        follow=True,
    )

    assert response.redirect_chain == [("/profile/", 302)]
    assert "Keep at least, ZNC:" in html(response)
    alice.refresh_from_db()
    assert (alice.auto_renew_enabled, alice.renew_min_balance) == (True, Decimal("0.00"))


def test_renewal_row_is_readable_in_the_wallet_history(portal, alice, token):
    token_auto_renew_set(user=alice, token_id=token.pk, enabled=True)
    tokens_renew(now=token.expires_at - timedelta(minutes=30))

    page = html(portal.get("/wallet/"))

    assert "Token renewal: 12h, period 2" in page
    assert 'data-testid="token-renewals">1<' in html(portal.get(f"/access/tokens/{token.pk}/"))


# --- Admin ---------------------------------------------------------------------------------------


def test_admin_token_page_shows_renewals_read_only(staff, alice, token):
    token_auto_renew_set(user=alice, token_id=token.pk, enabled=True)
    tokens_renew(now=token.expires_at - timedelta(minutes=30))

    page = staff.get(f"/admin/access/accesstoken/{token.pk}/change/")

    assert page.status_code == 200
    inline = page.context["inline_admin_formsets"][0]
    assert inline.formset.model.__name__ == "TokenRenewal"
    assert not inline.has_add_permission and not inline.has_change_permission and not inline.has_delete_permission
    assert [(form.original.period, form.original.price) for form in inline] == [(2, Decimal("10.00"))]


def test_admin_auto_renewing_filter(staff, alice, token):
    fund(alice, "20")
    off = services.token_purchase(user=alice, duration_hours=1)
    paused_owner = User.objects.create_user(email="carol@example.com", username="carol", password="x" * 12)
    fund(paused_owner, "20")
    paused = services.token_purchase(user=paused_owner, duration_hours=1)
    token_auto_renew_set(user=alice, token_id=token.pk, enabled=True)
    token_auto_renew_set(user=paused_owner, token_id=paused.pk, enabled=True)
    User.objects.filter(pk=paused_owner.pk).update(auto_renew_enabled=False)

    def listed(value):
        response = staff.get("/admin/access/accesstoken/", {"auto_renewing": value})
        return {t.pk for t in response.context["cl"].result_list}

    assert listed("yes") == {token.pk}
    assert listed("no") == {off.pk, paused.pk}
