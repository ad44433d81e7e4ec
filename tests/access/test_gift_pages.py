import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from access import gifts, services
from access.models import AccessToken, Gift, GiftStatus
from accounts.models import AuditLog, User
from tests.factories import UserFactory
from tests.helpers import balance, fund, html, messages_of
from wallet.models import Transaction

pytestmark = pytest.mark.django_db

STRONG = "Gift-Pass-2026!x"
LINK = re.compile(r'<input type="text" id="gift-link"[^>]*value="(?P<url>[^"]+)"[^>]*data-testid="gift-link"')


def buy_token(user, hours: int = 12, scope: str = "full") -> AccessToken:
    return services.token_purchase(user=user, duration_hours=hours, scope=scope)


def activate(token: AccessToken) -> None:
    now = timezone.now()
    AccessToken.objects.filter(pk=token.pk).update(activated_at=now, expires_at=now + token.duration)


def link_of(response) -> str:
    match = LINK.search(html(response))
    assert match, "the page shows no gift link"
    return match["url"]


def code_of(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[1]


def send(user, token: AccessToken, **fields) -> str:
    _gift, code = gifts.gift_send(user=user, token_id=token.pk, **fields)
    return code


def browser(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def ready(alice):
    fund(alice, "100")
    return buy_token(alice, 12)


# --- Login required --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/gifts/", "/gifts/?show=received", "/gifts/give/00000000-0000-0000-0000-000000000000/"]
)
def test_gift_pages_need_login(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/gifts/")


def test_nav_links_the_gifts_page(portal):
    page = html(portal.get("/gifts/"))

    assert 'href="/gifts/" data-testid="nav-gifts" class="nav-current" aria-current="page">Gifts</a>' in page


# --- Give as a gift ------------------------------------------------------------------------


def test_token_page_offers_a_gift_only_for_an_unused_token(portal, alice, ready):
    used = buy_token(alice, 24)
    activate(used)

    assert f'href="/gifts/give/{ready.pk}/" data-testid="token-gift"' in html(portal.get(f"/access/tokens/{ready.pk}/"))
    assert 'data-testid="token-gift"' not in html(portal.get(f"/access/tokens/{used.pk}/"))


def test_gift_form_explains_freeze_once_and_no_refund(portal, ready):
    page = html(portal.get(f"/gifts/give/{ready.pk}/"))

    assert "the token is frozen: nobody can use or revoke it" in page
    assert "The link is shown only once" in page
    assert "A claimed gift cannot be refunded" in page
    assert 'name="recipient_email"' in page
    assert 'maxlength="280"' in page


def test_giving_a_token_shows_the_link_once(portal, alice, ready, client):
    ledger_before = Transaction.objects.count()

    response = portal.post(
        f"/gifts/give/{ready.pk}/", {"recipient_email": "Friend@Example.com", "message": "Happy <b>birthday</b>!"}
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    url = link_of(response)
    assert url.startswith("http://testserver/gifts/claim/")
    assert 'data-testid="gift-copy"' in html(response)
    assert "Happy &lt;b&gt;birthday&lt;/b&gt;!" in html(response)
    gift = Gift.objects.get(token=ready)
    assert (gift.status, gift.sender, gift.recipient_email) == (GiftStatus.PENDING, alice, "Friend@example.com")
    assert gift.code_digest == gifts.code_digest(code_of(url))
    assert Transaction.objects.count() == ledger_before  # a gift moves no money
    preview = client.get(urlsplit(url).path)
    assert preview.status_code == 200
    assert 'data-testid="gift-sender">alice<' in html(preview)
    # Nowhere again: not on the token page, not on the list of tokens or gifts.
    code = code_of(url)
    for path in (f"/access/tokens/{ready.pk}/", "/access/tokens/", "/gifts/"):
        assert code not in html(portal.get(path))


def test_pending_gift_token_page_is_frozen(portal, alice, ready):
    send(alice, ready, recipient_email="friend@example.com")

    page = html(portal.get(f"/access/tokens/{ready.pk}/"))

    assert 'data-testid="token-status">Pending gift</span>' in page
    assert 'data-testid="token-gift-for">friend@example.com<' in page
    assert 'href="/gifts/" data-testid="token-gifts-link"' in page
    for testid in ("token-revoke", "token-open", "reveal", "copy", "secret-value", "token-gift", "renew-switch"):
        assert f'data-testid="{testid}"' not in page


def test_tokens_list_tags_pending_and_received_gifts(portal, stranger, alice, bob, ready):
    send(alice, ready)
    other = buy_token(alice, 24)
    gifts.gift_claim(user=bob, code=send(alice, other), accept=True)

    mine = html(portal.get("/access/tokens/"))
    theirs = html(stranger.get("/access/tokens/"))

    assert 'data-testid="token-gift-tag">gift pending</span>' in mine
    assert 'data-testid="token-gift-frozen"' in mine
    assert mine.count('data-testid="token-card"') == 1  # the claimed one is bob's now
    assert 'data-testid="token-gift-tag">gift from alice</span>' in theirs
    assert 'data-testid="reveal"' in theirs


def test_gift_of_an_activated_token_is_refused_with_a_message(portal, alice, ready):
    activate(ready)

    response = portal.post(f"/gifts/give/{ready.pk}/", {"recipient_email": "", "message": ""}, follow=True)

    assert response.redirect_chain == [(f"/access/tokens/{ready.pk}/", 302)]
    assert messages_of(response) == ["Only a token that has never been used can be given as a gift"]
    assert not Gift.objects.exists()


def test_gift_of_a_pending_gift_is_refused_with_a_message(portal, alice, ready):
    send(alice, ready)

    response = portal.post(f"/gifts/give/{ready.pk}/", {"message": "again"}, follow=True)

    assert messages_of(response) == ["This token is already a pending gift"]
    assert Gift.objects.filter(token=ready).count() == 1


def test_gift_form_errors_stay_on_the_form(portal, ready):
    response = portal.post(f"/gifts/give/{ready.pk}/", {"recipient_email": "not-an-address", "message": "x" * 281})

    assert response.status_code == 200
    assert "Enter a valid email address." in html(response)
    assert "Ensure this value has at most 280 characters (it has 281)." in html(response)
    assert not Gift.objects.exists()


def test_someone_elses_token_cannot_be_given(stranger, ready):
    assert stranger.get(f"/gifts/give/{ready.pk}/").status_code == 404
    assert stranger.post(f"/gifts/give/{ready.pk}/", {}).status_code == 404
    assert not Gift.objects.exists()


def test_gift_limit_message_is_translated_with_its_figure(portal, alice, ready, settings):
    settings.GIFT_MAX_PENDING = 1
    send(alice, buy_token(alice, 1))

    response = portal.post(f"/gifts/give/{ready.pk}/", {}, follow=True, HTTP_ACCEPT_LANGUAGE="ru")

    assert messages_of(response) == [
        "У вас 1 подарок ждёт получателя. Дождитесь, пока его примут, или сначала отмените его."
    ]


# --- Buy as a gift -----------------------------------------------------------------------------


def test_buy_page_has_a_gift_mode(portal, alice):
    page = html(portal.get("/access/?gift=1"))

    assert 'href="/access/buy/token/?duration=12&amp;scope=full&amp;gift=1"' in page
    assert 'data-testid="buy-gift-notice"' in page


def test_confirm_page_offers_buy_as_a_gift(portal, alice):
    fund(alice, "100")

    page = html(portal.get("/access/buy/token/?duration=12&scope=full&gift=1"))

    assert '<details class="gift-box" data-testid="confirm-gift-box" open>' in page
    assert 'data-testid="confirm-buy"' not in page  # gift mode: the one way to pay is the gift's
    assert 'name="gift-recipient_email"' in page
    assert 'data-testid="confirm-gift"' in page


def test_buy_as_a_gift_debits_once_and_shows_the_link(portal, alice):
    fund(alice, "100")
    price = Decimal(str(django_settings.TOKEN_PRICES[12]))

    response = portal.post(
        "/access/buy/token/?duration=12&scope=full",
        {"as_gift": "1", "gift-recipient_email": "", "gift-message": "For you"},
    )

    assert response.status_code == 200
    code = code_of(link_of(response))
    assert "Bought as a gift" in html(response)
    purchases = Transaction.objects.filter(user=alice, kind="purchase")
    assert purchases.count() == 1
    assert purchases.get().amount == -price
    assert balance(alice) == Decimal("100") - price
    gift = Gift.objects.get()
    assert (gift.status, gift.message, gift.token.user, gift.token.duration_hours) == ("pending", "For you", alice, 12)
    assert gifts.gift_by_code(code) == gift


def test_buy_as_a_gift_without_funds_shows_the_top_up_link(portal, alice):
    fund(alice, "1")

    response = portal.post(
        "/access/buy/token/?duration=12&scope=full", {"as_gift": "1", "gift-message": ""}, follow=True
    )

    (message,) = messages_of(response)
    assert message.startswith("Not enough ZNC: the price is")
    assert '<a href="/wallet/">Top up your balance</a>' in message
    assert not Gift.objects.exists()
    assert not AccessToken.objects.exists()
    assert balance(alice) == Decimal("1.00")


# --- The Gifts page ----------------------------------------------------------------------------


def test_gifts_page_lists_sent_and_received(portal, stranger, alice, bob, ready):
    send(alice, ready, recipient_email="friend@example.com")
    claimed = buy_token(alice, 24)
    gifts.gift_claim(user=bob, code=send(alice, claimed), accept=True)

    sent = html(portal.get("/gifts/"))
    received = html(stranger.get("/gifts/?show=received"))

    assert re.findall(r'data-testid="gift-status">([^<]+)<', sent) == ["Claimed", "Pending"]
    assert 'data-testid="gift-recipient">friend@example.com<' in sent
    assert 'data-testid="gift-recipient">link only<' in sent
    assert 'data-testid="gift-claimed-by">bob<' in sent
    assert sent.count('data-testid="gift-cancel"') == 1
    assert "Cancel the gift and give it again to make a new link" in sent
    assert 'data-testid="gift-sender">alice<' in received
    assert f'href="/access/tokens/{claimed.pk}/" data-testid="gift-token"' in received
    assert 'data-testid="gifts-empty"' in html(portal.get("/gifts/?show=received"))
    assert 'data-testid="gifts-empty"' in html(stranger.get("/gifts/"))


def test_sender_cancels_a_pending_gift(portal, alice, ready):
    send(alice, ready)
    gift = Gift.objects.get()

    response = portal.post(f"/gifts/{gift.pk}/cancel/", follow=True)

    assert response.redirect_chain == [("/gifts/", 302)]
    assert messages_of(response) == ["The gift was cancelled: the token is yours again."]
    gift.refresh_from_db()
    assert gift.status == GiftStatus.CANCELLED
    assert 'data-testid="gift-status">Cancelled<' in html(response)
    assert 'data-testid="reveal"' in html(portal.get(f"/access/tokens/{ready.pk}/"))


def test_stranger_cannot_cancel_a_gift(stranger, client, alice, ready):
    send(alice, ready)
    gift = Gift.objects.get()

    assert stranger.post(f"/gifts/{gift.pk}/cancel/").status_code == 404
    assert client.post(f"/gifts/{gift.pk}/cancel/").status_code == 302  # to the login page
    assert stranger.get(f"/gifts/{gift.pk}/cancel/").status_code == 405
    gift.refresh_from_db()
    assert gift.status == GiftStatus.PENDING


# --- The claim page ---------------------------------------------------------------------------


def test_claim_page_for_a_visitor(client, alice, ready):
    code = send(alice, ready, message="Enjoy <script>alert(1)</script>")
    path = f"/gifts/claim/{code}"

    response = client.get(path)

    page = html(response)
    assert response.status_code == 200
    assert 'data-testid="gift-duration">12 hours<' in page
    assert "Every page of Zenzefi." in page
    assert "Enjoy &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'data-testid="gift-accept"' not in page
    register = re.search(r'href="([^"]+)" data-testid="gift-register"', page)[1].replace("&amp;", "&")
    assert urlsplit(register).path == "/register/"
    assert parse_qs(urlsplit(register).query) == {"ref": [alice.referral_code], "next": [path]}
    login = re.search(r'href="([^"]+)" data-testid="gift-login"', page)[1]
    assert parse_qs(urlsplit(login).query) == {"next": [path]}


def test_registering_through_the_link_comes_back_and_counts_as_referral(client, alice, ready):
    code = send(alice, ready)
    path = f"/gifts/claim/{code}"
    form = client.get(f"/register/?ref={alice.referral_code}&next={path}")
    assert f'<input type="hidden" name="next" value="{path}">' in html(form)

    response = client.post(
        "/register/",
        {
            "email": "carol@example.com",
            "username": "carol",
            "full_name": "Carol",
            "password1": STRONG,
            "password2": STRONG,
            "referral_code": alice.referral_code,
            "next": path,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == path
    carol = User.objects.get(username="carol")
    assert carol.referred_by == alice
    assert 'data-testid="gift-accept"' in html(client.get(path))
    accepted = client.post(path, {"decision": "accept"})
    assert accepted["Location"] == f"/access/tokens/{ready.pk}/"
    ready.refresh_from_db()
    assert ready.user == carol


def test_register_ignores_an_outside_next(client):
    response = client.post(
        "/register/",
        {
            "email": "dan@example.com",
            "username": "dan",
            "full_name": "",
            "password1": STRONG,
            "password2": STRONG,
            "referral_code": "",
            "next": "https://evil.example/",
        },
    )

    assert response["Location"] == "/profile/"


def test_accepting_makes_the_token_the_recipients(stranger, alice, bob, ready):
    code = send(alice, ready)
    old_secret = ready.secret

    response = stranger.post(f"/gifts/claim/{code}", {"decision": "accept"}, follow=True)

    assert response.redirect_chain == [(f"/access/tokens/{ready.pk}/", 302)]
    assert messages_of(response) == [
        "The gift is yours: 12 hours, Full access from alice. Its time starts at first use."
    ]
    ready.refresh_from_db()
    assert (ready.user, ready.gifted_by, ready.activated_at) == (bob, alice, None)
    assert ready.secret != old_secret
    page = html(response)
    assert 'data-testid="token-gift-from">alice,' in page
    assert 'data-testid="reveal"' in page
    assert Gift.objects.get().status == GiftStatus.CLAIMED


def test_declining_returns_the_gift_to_the_sender(stranger, alice, bob, ready):
    code = send(alice, ready)

    response = stranger.post(f"/gifts/claim/{code}", {"decision": "decline"}, follow=True)

    assert response.redirect_chain == [("/gifts/?show=received", 302)]
    assert messages_of(response) == ["You declined the gift. The token went back to alice."]
    ready.refresh_from_db()
    assert ready.user == alice
    assert Gift.objects.get().status == GiftStatus.DECLINED


def test_sender_sees_their_own_gift_without_buttons(portal, alice, ready):
    code = send(alice, ready)

    page = html(portal.get(f"/gifts/claim/{code}"))
    refused = portal.post(f"/gifts/claim/{code}", {"decision": "accept"}, follow=True)

    assert "This is your gift." in page
    assert 'data-testid="gift-accept"' not in page and 'data-testid="gift-decline"' not in page
    assert messages_of(refused) == ["You cannot claim your own gift. Cancel it on the Gifts page instead."]
    assert Gift.objects.get().status == GiftStatus.PENDING


def test_anonymous_post_goes_to_login(client, alice, ready):
    code = send(alice, ready)

    response = client.post(f"/gifts/claim/{code}", {"decision": "accept"})

    assert response["Location"] == f"/login/?next=%2Fgifts%2Fclaim%2F{code}"
    assert Gift.objects.get().status == GiftStatus.PENDING


def test_wrong_code_is_a_clear_404(client, alice, ready):
    send(alice, ready)

    response = client.get("/gifts/claim/not-a-real-code")

    assert response.status_code == 404
    assert "This gift link is not valid" in html(response)
    assert 'href="/" data-testid="gift-home"' in html(response)


def test_used_code_is_a_clear_page_and_changes_nothing(stranger, alice, bob, ready):
    code = send(alice, ready)
    gifts.gift_claim(user=bob, code=code, accept=True)
    carol = browser(UserFactory(username="carol", email="carol@example.com"))
    audit_before = AuditLog.objects.count()

    shown = carol.get(f"/gifts/claim/{code}")
    tried = carol.post(f"/gifts/claim/{code}", {"decision": "accept"})

    assert shown.status_code == tried.status_code == 410
    assert "This gift has already been claimed" in html(shown)
    assert 'data-testid="gift-accept"' not in html(shown)
    ready.refresh_from_db()
    assert ready.user == bob
    assert AuditLog.objects.count() == audit_before


@pytest.mark.parametrize(
    ("end", "text"),
    [("cancel", "This gift was cancelled by its sender"), ("expire", "This gift link has expired")],
)
def test_cancelled_and_expired_codes_say_which(client, alice, ready, end, text):
    code = send(alice, ready)
    gift = Gift.objects.get()
    if end == "cancel":
        gifts.gift_cancel(user=alice, gift_id=gift.pk)
    else:
        Gift.objects.filter(pk=gift.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.get(f"/gifts/claim/{code}")

    assert response.status_code == 410
    assert text in html(response)


def test_claim_page_is_rate_limited_per_ip(client, alice, ready, settings):
    settings.RATE_LIMIT_GIFT_CLAIM = "2/60"
    code = send(alice, ready)

    codes = [client.get(f"/gifts/claim/{code}").status_code, client.get("/gifts/claim/guess").status_code]
    limited = client.post(f"/gifts/claim/{code}", {"decision": "accept"})

    assert codes == [200, 404]
    assert limited.status_code == 429
    assert "Too many gift link attempts. Please wait and try again." in html(limited)
    assert limited["Retry-After"]
    assert Gift.objects.get().status == GiftStatus.PENDING


def test_claim_page_in_russian(client, alice, ready):
    code = send(alice, ready)

    page = html(client.get(f"/gifts/claim/{code}", HTTP_ACCEPT_LANGUAGE="ru"))

    assert '<html lang="ru">' in page
    assert "alice дарит вам доступ к Zenzefi" in page
    assert "Принять подарок" not in page  # a visitor gets the account buttons
    assert ">Создать учётную запись</a>" in page
    assert 'data-testid="gift-duration">12 часов<' in page
    assert "Все страницы Zenzefi." in page


def test_invalid_and_used_pages_in_russian(client, stranger, alice, bob, ready):
    code = send(alice, ready)
    gifts.gift_claim(user=bob, code=code, accept=True)

    used = html(client.get(f"/gifts/claim/{code}", HTTP_ACCEPT_LANGUAGE="ru"))
    invalid = html(client.get("/gifts/claim/nope", HTTP_ACCEPT_LANGUAGE="ru"))

    assert "Этот подарок уже получен" in used
    assert "Эта ссылка на подарок недействительна" in invalid


def test_logged_in_russian_claim_page_has_the_buttons(stranger, alice, ready):
    code = send(alice, ready)

    page = html(stranger.get(f"/gifts/claim/{code}", HTTP_ACCEPT_LANGUAGE="ru"))

    assert ">Принять подарок</button>" in page
    assert ">Отказаться</button>" in page


# --- Revoke ------------------------------------------------------------------------------------


def test_revoke_page_of_a_claimed_gift_says_it_refunds_nothing(stranger, alice, bob, ready):
    gifts.gift_claim(user=bob, code=send(alice, ready), accept=True)

    page = html(stranger.get(f"/access/tokens/{ready.pk}/revoke/"))
    response = stranger.post(f"/access/tokens/{ready.pk}/revoke/", follow=True)

    assert 'data-testid="refund-preview">0.00 ZNC<' in page
    assert "This token was a gift." in page
    assert "revoking it refunds 0.00 ZNC" in page
    assert messages_of(response) == ["Token revoked. Refunded 0.00 ZNC."]
    assert balance(bob) == Decimal("0.00")
    assert not Transaction.objects.filter(kind="refund").exists()


def test_revoke_page_of_a_pending_gift_refuses(portal, alice, ready):
    send(alice, ready)
    paid = balance(alice)

    page = html(portal.get(f"/access/tokens/{ready.pk}/revoke/"))
    response = portal.post(f"/access/tokens/{ready.pk}/revoke/", follow=True)

    assert "This token is a pending gift: cancel the gift first to use or revoke it" in page
    assert 'data-testid="revoke-confirm"' not in page
    assert '<a href="/gifts/">Go to Gifts</a>' in page
    assert messages_of(response) == ["This token is a pending gift: cancel the gift first to use or revoke it"]
    ready.refresh_from_db()
    assert ready.revoked_at is None
    assert balance(alice) == paid
