import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from access import services
from access.models import AccessToken, Bundle
from accounts.models import AuditLog, User
from tests.factories import UserFactory
from tests.helpers import html, messages_of
from wallet.models import Transaction
from wallet.services import balance_change

pytestmark = pytest.mark.django_db

TIMES, MINUS = "\u00d7", "\u2212"  # as the pages print them


def fund(user, amount: str) -> None:
    balance_change(user_id=user.pk, amount=Decimal(amount), kind="deposit", description="Test funding")


def balance(user) -> Decimal:
    return User.objects.values_list("balance", flat=True).get(pk=user.pk)


def ledger(user) -> list[tuple[str, Decimal, Decimal]]:
    rows = Transaction.objects.filter(user=user).order_by("seq")
    return [(row.kind, row.amount, row.balance_after) for row in rows]


def audited() -> None:
    """The ledger invariant holds over the whole database (raises otherwise)."""
    call_command("wallet_audit", verbosity=0)


def buy_token(user, hours: int = 12, scope: str = "full") -> AccessToken:
    return services.token_purchase(user=user, duration_hours=hours, scope=scope)


def activate(token: AccessToken, ago: timedelta) -> None:
    activated_at = timezone.now() - ago
    AccessToken.objects.filter(pk=token.pk).update(activated_at=activated_at, expires_at=activated_at + token.duration)


def starter() -> Bundle:
    return Bundle.objects.get(name="Starter Pack")


# --- Login required ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/access/",
        "/access/buy/token/?duration=12&scope=full",
        "/access/buy/bundle/00000000-0000-0000-0000-000000000000/",
        "/access/tokens/",
        "/access/tokens/00000000-0000-0000-0000-000000000000/",
        "/access/tokens/00000000-0000-0000-0000-000000000000/revoke/",
        "/referrals/",
    ],
)
def test_pages_need_login(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/")


def test_anonymous_post_buys_nothing(client, alice):
    fund(alice, "50")

    response = client.post("/access/buy/token/?duration=12&scope=full")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert not AccessToken.objects.exists()
    assert balance(alice) == Decimal("50.00")


# --- Buy access ----------------------------------------------------------------------------------


def test_buy_page_shows_grid_bundles_and_balance(portal, alice, django_assert_max_num_queries):
    fund(alice, "42.50")
    Bundle.objects.filter(name="Pro Bundle").update(is_active=False)

    with django_assert_max_num_queries(6):
        response = portal.get("/access/")

    page = html(response)
    assert response.status_code == 200
    assert 'data-testid="buy-balance">42.50 ZNC' in page
    for hours, price in [(1, "1.00"), (12, "10.00"), (24, "18.00"), (168, "100.00"), (720, "300.00")]:
        for scope in ("full", "certificates_only"):
            cell = re.search(rf'data-testid="buy-{hours}-{scope}"\s+href="([^"]+)">\s*<strong>([^<]+)</strong>', page)
            assert cell is not None, (hours, scope)
            assert cell.group(1) == f"/access/buy/token/?duration={hours}&amp;scope={scope}"
            assert cell.group(2) == f"{price} ZNC"
    assert "Full access" in page
    assert "Certificates only" in page
    names = re.findall(r'data-testid="bundle-card" data-bundle="([^"]+)"', page)
    assert names == ["Starter Pack", "Certificates Bundle", "Ultimate Package"]  # active only, by total price
    starter_card = page[page.index('data-bundle="Starter Pack"') : page.index('data-bundle="Certificates Bundle"')]
    assert f"5 {TIMES} 24 hours" in starter_card
    assert '<s class="muted" data-testid="bundle-base-price">90.00 ZNC</s>' in starter_card
    assert 'data-testid="bundle-price">81.00 ZNC' in starter_card
    assert "You save 9.00 ZNC" in starter_card
    assert "16.20 ZNC per token" in starter_card
    assert f"{MINUS}10&nbsp;%" in starter_card
    assert f'href="/access/buy/bundle/{starter().pk}/"' in starter_card
    ultimate = page[page.index('data-bundle="Ultimate Package"') :]
    assert f"20 {TIMES} 7 days" in ultimate


def bundle_card(page: str, name: str) -> str:
    start = page.index(f'data-testid="bundle-card" data-bundle="{name}"')
    return page[start : page.index("</article>", start)]


@pytest.mark.parametrize(
    ("language", "name", "description"),
    [
        ("ru", "Стартовый", "5 токенов по 24 часа: попробуйте сервис в течение рабочей недели."),
        ("en", "Starter Pack", "5 tokens of 24 hours: try the service for a working week."),
    ],
)
def test_buy_page_shows_bundles_in_the_users_language(portal, language, name, description):
    page = html(portal.get("/access/", HTTP_ACCEPT_LANGUAGE=language))

    card = bundle_card(page, "Starter Pack")  # the data attribute stays the English name, whatever the language
    assert f"<h3>{name}</h3>" in card
    assert f'<p class="muted bundle-description">{description}</p>' in card
    assert f'<html lang="{language}">' in page


def test_buy_page_falls_back_to_english_where_the_russian_text_is_empty(portal):
    Bundle.objects.filter(name="Pro Bundle").update(name_ru="", description_ru="")
    Bundle.objects.filter(name="Starter Pack").update(description_ru="")

    page = html(portal.get("/access/", HTTP_ACCEPT_LANGUAGE="ru"))

    pro = bundle_card(page, "Pro Bundle")
    assert "<h3>Pro Bundle</h3>" in pro
    assert '<p class="muted bundle-description">10 tokens of 24 hours for a busy workshop.</p>' in pro
    starter_card = bundle_card(page, "Starter Pack")
    assert "<h3>Стартовый</h3>" in starter_card
    assert '<p class="muted bundle-description">5 tokens of 24 hours: try the service for a working week.</p>' in (
        starter_card
    )


def test_bundle_purchase_pages_name_the_bundle_in_russian(portal, alice):
    fund(alice, "100")
    portal.cookies["django_language"] = "ru"

    confirm = html(portal.get(f"/access/buy/bundle/{starter().pk}/"))
    bought = portal.post(f"/access/buy/bundle/{starter().pk}/", follow=True)
    token = AccessToken.objects.filter(user=alice).first()
    detail = html(portal.get(f"/access/tokens/{token.pk}/"))

    assert "<h1>Стартовый</h1>" in confirm
    assert messages_of(bought) == ["Пакет «Стартовый» куплен: добавлено 5 токенов, 81,00 ZNC."]
    assert html(bought).count('<span class="tag" title="Пакет">Стартовый</span>') == 5
    assert "<dd>Стартовый</dd>" in detail


def test_nav_links_for_logged_in_users(portal):
    page = html(portal.get("/access/tokens/"))

    assert 'href="/access/" data-testid="nav-buy"' in page
    assert 'href="/access/tokens/" data-testid="nav-tokens" class="nav-current" aria-current="page"' in page
    assert 'href="/referrals/" data-testid="nav-referrals"' in page


def test_home_call_to_action_points_at_buy_access(portal, client):
    assert 'href="/access/" data-testid="cta-buy"' in html(portal.get("/", HTTP_ACCEPT="text/html"))
    assert 'data-testid="cta-buy"' not in html(client.get("/", HTTP_ACCEPT="text/html"))


# --- Confirm and buy a token ------------------------------------------------------------------


def test_confirm_token_shows_price_and_balance_after(portal, alice):
    fund(alice, "25")

    response = portal.get("/access/buy/token/?duration=12&scope=certificates_only")

    page = html(response)
    assert response.status_code == 200
    assert 'data-testid="confirm-what">12 hours' in page
    assert "Certificates only" in page
    assert 'data-testid="confirm-price">10.00 ZNC' in page
    assert 'data-testid="confirm-balance">25.00 ZNC' in page
    assert 'data-testid="confirm-balance-after">15.00 ZNC' in page
    assert 'data-testid="confirm-insufficient"' not in page
    assert re.search(r'data-testid="confirm-buy">\s*Pay 10.00 ZNC', page)
    assert not AccessToken.objects.exists()


def test_post_buys_one_token_and_writes_the_purchase_row(portal, alice):
    fund(alice, "25")

    response = portal.post("/access/buy/token/?duration=12&scope=certificates_only", follow=True)

    assert response.redirect_chain == [("/access/tokens/", 302)]
    token = AccessToken.objects.get()
    assert (token.user_id, token.duration_hours, token.scope, token.cost_znc) == (
        alice.pk,
        12,
        "certificates_only",
        Decimal("10.00"),
    )
    assert token.activated_at is None
    assert ledger(alice) == [
        ("deposit", Decimal("25.00"), Decimal("25.00")),
        ("purchase", Decimal("-10.00"), Decimal("15.00")),
    ]
    assert token.purchase == Transaction.objects.get(kind="purchase")
    assert balance(alice) == Decimal("15.00")
    assert messages_of(response) == [
        "Token bought: 12 hours, Certificates only, 10.00 ZNC. Its time starts at first use."
    ]
    assert AuditLog.objects.filter(action="token_purchase", user=alice, resource_id=str(token.pk)).count() == 1
    assert f'data-token-id="{token.pk}"' in html(response)
    audited()


def test_insufficient_balance_disables_the_button_and_buys_nothing(portal, alice):
    fund(alice, "4")

    page = html(portal.get("/access/buy/token/?duration=24&scope=full"))
    response = portal.post("/access/buy/token/?duration=24&scope=full", follow=True)

    assert 'data-testid="confirm-insufficient"' in page
    assert "Not enough ZNC: the price is 18.00 ZNC, your balance is 4.00 ZNC." in page
    assert re.search(r'data-testid="confirm-buy" disabled>', page)
    assert 'data-testid="confirm-balance-after"' not in page
    assert 'href="/wallet/"' in page
    assert response.redirect_chain == [("/access/buy/token/?duration=24&scope=full", 302)]
    assert messages_of(response) == [
        'Not enough ZNC: the price is 18.00 ZNC, your balance is 4.00 ZNC. <a href="/wallet/">Top up your balance</a>'
    ]
    assert '<a href="/wallet/">Top up your balance</a>' in html(response)  # rendered as a link, not escaped
    assert not AccessToken.objects.exists()
    assert ledger(alice) == [("deposit", Decimal("4.00"), Decimal("4.00"))]
    audited()


@pytest.mark.parametrize(
    "query",
    ["duration=5&scope=full", "duration=12&scope=everything", "duration=abc&scope=full", "scope=full", ""],
)
def test_invalid_duration_or_scope_buys_nothing(portal, alice, query):
    fund(alice, "500")

    shown = portal.get(f"/access/buy/token/?{query}", follow=True)
    posted = portal.post(f"/access/buy/token/?{query}", {"duration": "12", "scope": "full"}, follow=True)

    for response in (shown, posted):
        assert response.redirect_chain == [("/access/", 302)]
        assert messages_of(response) == ["This duration or scope is not on sale. Choose one from the table."]
    assert not AccessToken.objects.exists()
    assert balance(alice) == Decimal("500.00")


def test_confirm_rejects_other_methods(portal):
    assert portal.put("/access/buy/token/?duration=12&scope=full").status_code == 405


# --- Confirm and buy a bundle ---------------------------------------------------------------------


def test_confirm_bundle_shows_what_is_bought(portal, alice):
    fund(alice, "100")

    page = html(portal.get(f"/access/buy/bundle/{starter().pk}/"))

    assert "<h1>Starter Pack</h1>" in page
    assert f'data-testid="confirm-what">5 {TIMES} 24 hours' in page
    assert "<s>90.00 ZNC</s>" in page
    assert 'data-testid="confirm-price">81.00 ZNC' in page
    assert 'data-testid="confirm-balance">100.00 ZNC' in page
    assert 'data-testid="confirm-balance-after">19.00 ZNC' in page


def test_post_buys_the_bundle_once(portal, alice):
    fund(alice, "100")
    bundle = starter()

    response = portal.post(f"/access/buy/bundle/{bundle.pk}/", follow=True)

    assert response.redirect_chain == [("/access/tokens/", 302)]
    tokens = AccessToken.objects.filter(user=alice)
    assert tokens.count() == 5
    assert {(t.duration_hours, t.scope, t.cost_znc, t.bundle_id) for t in tokens} == {
        (24, "full", Decimal("16.20"), bundle.pk)
    }
    assert ledger(alice) == [
        ("deposit", Decimal("100.00"), Decimal("100.00")),
        ("purchase", Decimal("-81.00"), Decimal("19.00")),
    ]
    assert messages_of(response) == ["Starter Pack bought: 5 tokens added, 81.00 ZNC."]
    assert html(response).count('data-testid="token-card"') == 5
    audited()


def test_bundle_with_too_little_balance_buys_nothing(portal, alice):
    fund(alice, "80")
    bundle = starter()

    page = html(portal.get(f"/access/buy/bundle/{bundle.pk}/"))
    response = portal.post(f"/access/buy/bundle/{bundle.pk}/", follow=True)

    assert "Not enough ZNC: the price is 81.00 ZNC, your balance is 80.00 ZNC." in page
    assert response.redirect_chain == [(f"/access/buy/bundle/{bundle.pk}/", 302)]
    assert messages_of(response)[0].startswith("Not enough ZNC: the price is 81.00 ZNC, your balance is 80.00 ZNC.")
    assert not AccessToken.objects.exists()
    assert ledger(alice) == [("deposit", Decimal("80.00"), Decimal("80.00"))]
    audited()


def test_inactive_or_unknown_bundle_is_404(portal, alice):
    fund(alice, "100")
    bundle = starter()
    Bundle.objects.filter(pk=bundle.pk).update(is_active=False)

    assert portal.get(f"/access/buy/bundle/{bundle.pk}/").status_code == 404
    assert portal.post(f"/access/buy/bundle/{bundle.pk}/").status_code == 404
    assert portal.get("/access/buy/bundle/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert portal.get("/access/buy/bundle/not-a-uuid/").status_code == 404
    assert not AccessToken.objects.exists()
    assert balance(alice) == Decimal("100.00")


# --- My tokens ------------------------------------------------------------------------------------


def test_my_tokens_lists_own_tokens_newest_first_with_status(portal, alice, bob, django_assert_max_num_queries):
    fund(alice, "200")
    fund(bob, "10")
    revoked = buy_token(alice, 1)
    expired = buy_token(alice, 1)
    active = buy_token(alice, 24, "certificates_only")
    ready = buy_token(alice, 12)
    bobs = buy_token(bob, 12)
    services.token_revoke(user=alice, token_id=revoked.pk)
    activate(expired, timedelta(hours=2))
    activate(active, timedelta(hours=1))

    with django_assert_max_num_queries(8):
        response = portal.get("/access/tokens/")

    page = html(response)
    assert "no-store" in response["Cache-Control"]
    cards = re.findall(r'data-testid="token-card" data-token-id="([^"]+)" data-status="([^"]+)"', page)
    assert cards == [
        (str(ready.pk), "ready"),
        (str(active.pk), "active"),
        (str(expired.pk), "expired"),
        (str(revoked.pk), "revoked"),
    ]
    assert str(bobs.pk) not in page
    assert bobs.secret not in page
    # The secrets of usable tokens are in the page (hidden until "Reveal"); dead ones show the prefix only.
    assert f'data-secret="{ready.secret}"' in page
    assert f'data-secret="{active.secret}"' in page
    assert expired.secret not in page
    assert revoked.secret not in page
    assert page.count('data-testid="reveal"') == 2
    assert page.count('data-testid="copy"') == 2
    assert f'href="/access/tokens/{ready.pk}/revoke/"' in page
    assert f'href="/access/tokens/{active.pk}/revoke/"' in page
    assert f'href="/access/tokens/{expired.pk}/revoke/"' not in page
    assert f'href="/access/tokens/{revoked.pk}/revoke/"' not in page
    for token in (ready, active, expired, revoked):
        assert f'href="/access/tokens/{token.pk}/"' in page
    for label in ("Ready", "Active", "Expired", "Revoked"):
        assert f'data-testid="token-status">{label}</span>' in page
    active.refresh_from_db()
    countdown = re.search(r'data-testid="time-left" data-expires="([^"]+)" data-expired-label="Expired">([^<]+)<', page)
    assert countdown.group(1) == active.expires_at.isoformat(timespec="milliseconds")
    assert re.fullmatch(r"22:59:5\d", countdown.group(2))
    assert "12 hours, from first use" in page
    assert 'data-testid="token-paid">18.00 ZNC' in page


def test_usable_tab_hides_revoked_and_expired(portal, alice):
    fund(alice, "50")
    revoked = buy_token(alice, 1)
    expired = buy_token(alice, 1)
    ready = buy_token(alice, 12)
    services.token_revoke(user=alice, token_id=revoked.pk)
    activate(expired, timedelta(hours=1, seconds=1))

    page = html(portal.get("/access/tokens/?show=usable"))

    cards = re.findall(r'data-testid="token-card" data-token-id="([^"]+)"', page)
    assert cards == [str(ready.pk)]
    assert 'data-testid="tab-usable" aria-current="page"' in page


def test_my_tokens_empty_state(portal):
    page = html(portal.get("/access/tokens/"))

    assert 'data-testid="tokens-empty"' in page
    assert "You have no tokens yet." in page


def test_my_tokens_paginates(portal, alice):
    fund(alice, "30")
    for _ in range(27):
        buy_token(alice, 1)

    first = html(portal.get("/access/tokens/"))
    second = html(portal.get("/access/tokens/?page=2"))

    assert first.count('data-testid="token-card"') == 25
    assert second.count('data-testid="token-card"') == 2
    assert "Page 1 of 2" in first


# --- Token detail ---------------------------------------------------------------------------------


def test_token_detail_for_the_owner(portal, alice):
    fund(alice, "20")
    token = buy_token(alice, 12)

    response = portal.get(f"/access/tokens/{token.pk}/")

    page = html(response)
    assert response.status_code == 200
    assert f'data-secret="{token.secret}"' in page
    assert 'data-testid="token-status">Ready' in page
    assert 'data-testid="token-paid">10.00 ZNC' in page
    assert 'data-testid="token-sessions"' in page
    assert "no-store" in response["Cache-Control"]
    assert "No sessions yet." in page
    assert f'href="/access/tokens/{token.pk}/revoke/"' in page


def test_other_users_token_pages_are_404(stranger, alice, bob):
    fund(alice, "20")
    token = buy_token(alice, 12)

    assert stranger.get(f"/access/tokens/{token.pk}/").status_code == 404
    assert stranger.get(f"/access/tokens/{token.pk}/revoke/").status_code == 404
    assert stranger.post(f"/access/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert balance(alice) == Decimal("10.00")
    assert not Transaction.objects.filter(kind="refund").exists()
    audited()


def test_unknown_token_is_404(portal):
    assert portal.get("/access/tokens/00000000-0000-0000-0000-000000000000/").status_code == 404


# --- Revoke --------------------------------------------------------------------------------------


def test_revoke_preview_and_full_refund_of_an_unused_token(portal, alice):
    fund(alice, "20")
    token = buy_token(alice, 12)

    preview = html(portal.get(f"/access/tokens/{token.pk}/revoke/"))
    response = portal.post(f"/access/tokens/{token.pk}/revoke/", follow=True)

    assert 'data-testid="refund-preview">10.00 ZNC' in preview
    assert "refunded in full" in preview
    assert response.redirect_chain == [("/access/tokens/", 302)]
    assert messages_of(response) == ["Token revoked. Refunded 10.00 ZNC."]
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.revoked_by_id == alice.pk
    assert ledger(alice) == [
        ("deposit", Decimal("20.00"), Decimal("20.00")),
        ("purchase", Decimal("-10.00"), Decimal("10.00")),
        ("refund", Decimal("10.00"), Decimal("20.00")),
    ]
    assert token.refund == Transaction.objects.get(kind="refund")
    assert 'data-status="revoked"' in html(response)
    audited()


def test_revoke_of_a_used_token_refunds_the_unused_part(portal, alice):
    fund(alice, "20")
    token = buy_token(alice, 12)
    activate(token, timedelta(hours=3))

    preview = html(portal.get(f"/access/tokens/{token.pk}/revoke/"))
    response = portal.post(f"/access/tokens/{token.pk}/revoke/", follow=True)

    # 9 of 12 hours left of 10.00 paid, a few milliseconds less by now, rounded down.
    assert 'data-testid="refund-preview">7.49 ZNC' in preview
    assert messages_of(response) == ["Token revoked. Refunded 7.49 ZNC."]
    assert ledger(alice)[-1] == ("refund", Decimal("7.49"), Decimal("17.49"))
    audited()


def test_revoke_of_a_bundle_token_refunds_its_share(portal, alice):
    fund(alice, "81")
    _bundle, tokens, _entry = services.bundle_purchase(user=alice, bundle_id=starter().pk)

    preview = html(portal.get(f"/access/tokens/{tokens[0].pk}/revoke/"))
    portal.post(f"/access/tokens/{tokens[0].pk}/revoke/")

    assert 'data-testid="refund-preview">16.20 ZNC' in preview
    assert ledger(alice)[-1] == ("refund", Decimal("16.20"), Decimal("16.20"))
    audited()


def test_already_revoked_token_is_404_and_refunds_once(portal, alice):
    fund(alice, "20")
    token = buy_token(alice, 12)
    portal.post(f"/access/tokens/{token.pk}/revoke/")

    assert portal.get(f"/access/tokens/{token.pk}/revoke/").status_code == 404
    assert portal.post(f"/access/tokens/{token.pk}/revoke/").status_code == 404
    assert Transaction.objects.filter(kind="refund").count() == 1
    assert balance(alice) == Decimal("20.00")
    audited()


# --- Referrals ------------------------------------------------------------------------------------


def test_referrals_page_numbers(portal, alice):
    buyer = UserFactory(username="carol", referred_by=alice)
    UserFactory(username="dave", referred_by=alice)
    UserFactory(username="erin")  # not referred by alice
    fund(buyer, "300")
    buy_token(buyer, 720)  # 300 ZNC > 100: alice earns 10 %

    page = html(portal.get("/referrals/"))

    assert f'value="http://testserver/register/?ref={alice.referral_code}"' in page
    assert f'data-testid="referral-code">{alice.referral_code}<' in page
    assert 'data-testid="referrals-total">2<' in page
    assert 'data-testid="referrals-qualifying">1<' in page
    assert 'data-testid="referrals-earned">30.00 <span>ZNC' in page
    assert "above 100 ZNC" in page
    assert "10&nbsp;% of that purchase" in page
    rows = re.findall(r'data-testid="referral-row">\s*<td>(\w+)</td>.*?<span class="pill [\w-]+">([^<]+)<', page, re.S)
    assert sorted(rows) == [("carol", "Yes"), ("dave", "Not yet")]
    assert "erin" not in page
    assert balance(alice) == Decimal("30.00")
    audited()


def test_referrals_page_without_referrals(portal):
    page = html(portal.get("/referrals/"))

    assert 'data-testid="referrals-total">0<' in page
    assert 'data-testid="referrals-earned">0.00 <span>ZNC' in page
    assert 'data-testid="referrals-empty"' in page


def test_profile_links_to_referrals(portal):
    assert 'href="/referrals/" data-testid="referrals-link"' in html(portal.get("/profile/"))
