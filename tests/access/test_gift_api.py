"""The gift API: every endpoint's answer and every refusal, on the real database and Redis."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from access import gifts, services
from access.models import AccessToken, Gift, GiftStatus
from tests.factories import UserFactory
from tests.helpers import balance, fund
from wallet.models import Transaction

pytestmark = pytest.mark.django_db

PUBLIC_FIELDS = {"gift_id", "status", "sender_username", "duration_hours", "scope", "message", "expires_at"}
GIFT_FIELDS = PUBLIC_FIELDS | {"created_at", "recipient_email", "recipient_username", "finished_at", "token_id"}
CLAIM_URL_PREFIX = "/gifts/claim/"


@pytest.fixture
def token(alice):
    fund(alice, "100")
    return services.token_purchase(user=alice, duration_hours=12, scope="certificates_only")


@pytest.fixture
def carol(db):
    return UserFactory(email="carol@example.com", username="carol")


@pytest.fixture
def anon():
    return APIClient()


def client_of(user) -> APIClient:
    """A client of its own (``as_user`` shares one), for tests where two users talk in turn."""
    from accounts.tokens import jwt_pair

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_pair(user)['access_token']}")
    return client


def gift_of(user, token, **body):
    return client_of(user).post(f"/api/v1/tokens/{token.pk}/gift", body, format="json")


def code_of(response) -> str:
    return response.json()["claim_url"].rsplit("/", 1)[1]


def sent(user, token, **body) -> str:
    response = gift_of(user, token, **body)
    assert response.status_code == 201, response.json()
    return code_of(response)


def when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def claim(user, code, accept=True):
    return client_of(user).post(f"/api/v1/gifts/claim/{code}", {"accept": accept}, format="json")


# --- Offering a token ---------------------------------------------------------------------------------------


def test_gift_answers_201_with_a_claim_url_whose_code_previews(settings, alice, token, anon):
    ledger = Transaction.objects.count()

    response = gift_of(alice, token, recipient_email="bob@example.com", message="  For the workshop  ")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == GIFT_FIELDS | {"claim_url"}
    gift = Gift.objects.get()
    assert body["gift_id"] == str(gift.pk)
    assert (body["status"], body["sender_username"], body["duration_hours"], body["scope"]) == (
        "pending",
        "alice",
        12,
        "certificates_only",
    )
    assert (body["message"], body["recipient_email"], body["recipient_username"], body["finished_at"]) == (
        "For the workshop",
        "bob@example.com",
        None,
        None,
    )
    assert body["token_id"] == str(token.pk)
    assert when(body["expires_at"]) == gift.expires_at == gift.created_at + dt.timedelta(days=30)
    assert body["claim_url"].startswith(settings.BACKEND_URL + CLAIM_URL_PREFIX)
    code = code_of(response)
    assert gift.code_digest == gifts.code_digest(code) != code
    assert Transaction.objects.count() == ledger  # a gift moves no money

    preview = anon.get(f"/api/v1/gifts/claim/{code}")

    assert preview.status_code == 200
    assert preview.json() == {
        "gift_id": str(gift.pk),
        "status": "pending",
        "sender_username": "alice",
        "duration_hours": 12,
        "scope": "certificates_only",
        "message": "For the workshop",
        "expires_at": body["expires_at"],
    }


def test_a_pending_gift_shows_on_the_token_and_cannot_be_revoked(alice, token):
    sent(alice, token)
    api = client_of(alice)

    shown = api.get(f"/api/v1/tokens/{token.pk}").json()
    revoke = api.delete(f"/api/v1/tokens/{token.pk}")

    assert (shown["gift_pending"], shown["gifted_by"]) == (True, None)
    assert revoke.status_code == 409
    assert revoke.json() == {"detail": "This token is a pending gift: cancel the gift first to use or revoke it"}
    token.refresh_from_db()
    assert token.revoked_at is None
    assert balance(alice) == Decimal("90.00")


def _activated(token):
    services.token_activate(token_id=token.pk)


def _revoked(token):
    services.token_revoke(user=token.user, token_id=token.pk)


@pytest.mark.parametrize(
    ("prepare", "body", "status", "detail"),
    [
        (_activated, {}, 400, "Only a token that has never been used can be given as a gift"),
        (_revoked, {}, 400, "A revoked token cannot be given as a gift"),
        (None, {"message": "x" * 281}, 400, "The message can have at most 280 characters"),
        (None, {"recipient_email": "not-an-address"}, 400, "Enter a valid recipient e-mail address"),
    ],
    ids=["activated", "revoked", "long-message", "bad-email"],
)
def test_gift_refusals_are_4xx_and_write_nothing(alice, token, prepare, body, status, detail):
    if prepare:
        prepare(token)

    response = gift_of(alice, token, **body)

    assert response.status_code == status
    assert response.json()["detail"] == detail
    assert not Gift.objects.exists()


def test_the_field_of_a_bad_message_is_named(alice, token):
    body = gift_of(alice, token, message="x" * 281).json()

    assert body["message"] == ["The message can have at most 280 characters"]


def test_someone_elses_token_is_404(alice, bob, token):
    for token_id in (token.pk, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        response = client_of(bob).post(f"/api/v1/tokens/{token_id}/gift", {}, format="json")

        assert (response.status_code, response.json()) == (404, {"detail": "Token not found"})
    assert not Gift.objects.exists()


def test_a_token_already_offered_is_400(alice, token):
    sent(alice, token)

    response = gift_of(alice, token)

    assert (response.status_code, response.json()) == (400, {"detail": "This token is already a pending gift"})
    assert Gift.objects.count() == 1


def test_gifting_needs_a_jwt(anon, token):
    response = anon.post(f"/api/v1/tokens/{token.pk}/gift", {}, format="json")

    assert (response.status_code, response.json()) == (403, {"detail": "Not authenticated"})


def test_the_third_gift_of_a_day_is_429(settings, alice, token):
    settings.GIFT_MAX_PER_DAY = 2
    more = [services.token_purchase(user=alice, duration_hours=1) for _ in range(2)]
    sent(alice, token)
    sent(alice, more[0])

    response = gift_of(alice, more[1])

    assert response.status_code == 429
    assert response.json() == {"detail": "You can send at most 2 gifts a day. Try again later."}
    assert 0 < int(response["Retry-After"]) <= 86400
    assert response["X-RateLimit-Limit"] == "2"
    assert Gift.objects.count() == 2


def test_a_second_pending_gift_over_the_limit_is_400(settings, alice, token):
    settings.GIFT_MAX_PENDING = 1
    other = services.token_purchase(user=alice, duration_hours=1)
    sent(alice, token)

    response = gift_of(alice, other)

    assert response.status_code == 400
    assert response.json() == {
        "detail": "You have 1 gifts waiting to be claimed. Wait for them to be claimed or cancel some first."
    }
    assert Gift.objects.count() == 1


# --- Buying a gift ------------------------------------------------------------------------------------------


def test_buying_a_gift_debits_once_and_answers_the_gift(settings, alice):
    fund(alice, "20")
    ledger = Transaction.objects.count()

    response = client_of(alice).post(
        "/api/v1/gifts/buy", {"duration_hours": 24, "scope": "full", "message": "Enjoy"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == GIFT_FIELDS | {"claim_url"}
    assert (body["status"], body["duration_hours"], body["scope"], body["message"]) == ("pending", 24, "full", "Enjoy")
    assert body["claim_url"].startswith(settings.BACKEND_URL + CLAIM_URL_PREFIX)
    assert balance(alice) == Decimal("2.00")
    assert Transaction.objects.count() == ledger + 1
    row = Transaction.objects.filter(user=alice).latest("seq")
    assert (row.kind, row.amount, row.balance_after) == ("purchase", Decimal("-18.00"), Decimal("2.00"))
    token = AccessToken.objects.get(pk=body["token_id"])
    assert (token.user_id, token.purchase_id, token.cost_znc) == (alice.pk, row.pk, Decimal("18.00"))
    assert gifts.gift_by_code(code_of(response)).pk == Gift.objects.get().pk


def test_buying_a_gift_without_funds_is_402_and_writes_nothing(alice):
    fund(alice, "5")
    ledger = Transaction.objects.count()

    response = client_of(alice).post("/api/v1/gifts/buy", {"duration_hours": 24}, format="json")

    assert response.status_code == 402
    assert response.json() == {"detail": "Insufficient balance. Required: 18.00 ZNC, Available: 5.00 ZNC"}
    assert (Transaction.objects.count(), AccessToken.objects.count(), Gift.objects.count()) == (ledger, 0, 0)
    assert balance(alice) == Decimal("5.00")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"duration_hours": 2}, "Invalid duration. Must be one of: [1, 12, 24, 168, 720]"),
        ({"duration_hours": 1, "scope": "admin"}, 'scope: "admin" is not a valid choice.'),
        ({}, "duration_hours: This field is required."),
    ],
)
def test_buying_a_gift_with_bad_input_is_400(alice, body, detail):
    fund(alice, "50")

    response = client_of(alice).post("/api/v1/gifts/buy", body, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert (AccessToken.objects.count(), Gift.objects.count(), balance(alice)) == (0, 0, Decimal("50.00"))


# --- Claiming -----------------------------------------------------------------------------------------------


def test_accepting_makes_the_token_the_recipients(alice, bob, token):
    code = sent(alice, token, message="Yours")
    old_secret = token.secret
    ledger = Transaction.objects.count()

    response = claim(bob, code)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == GIFT_FIELDS | {"token"}
    assert (body["status"], body["recipient_username"], body["sender_username"]) == ("claimed", "bob", "alice")
    assert body["finished_at"] is not None
    token.refresh_from_db()
    assert (token.user_id, token.gifted_by_id) == (bob.pk, alice.pk)
    given = body["token"]
    assert (given["id"], given["token"], given["gifted_by"], given["gift_pending"]) == (
        str(token.pk),
        token.secret,
        "alice",
        False,
    )
    assert given["token"] != old_secret  # the sender saw the old secret
    assert (given["scope"], given["status"], given["auto_renew"]) == ("certificates_only", "ready", False)
    assert Transaction.objects.count() == ledger
    mine = client_of(bob).get("/api/v1/tokens/my-tokens").json()
    assert [t["id"] for t in mine] == [str(token.pk)]
    assert mine[0]["gifted_by"] == "alice"
    assert str(token.pk) not in [t["id"] for t in client_of(alice).get("/api/v1/tokens/my-tokens").json()]


def test_declining_gives_the_token_back(alice, bob, token):
    code = sent(alice, token)

    response = claim(bob, code, accept=False)

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["recipient_username"], body["token"]) == ("declined", "bob", None)
    token.refresh_from_db()
    assert token.user_id == alice.pk
    shown = client_of(alice).get(f"/api/v1/tokens/{token.pk}").json()
    assert (shown["gift_pending"], shown["gifted_by"]) == (False, None)


@pytest.mark.parametrize("accept", [None, "yes", "true", 1, 0])
def test_accept_must_be_a_json_boolean(alice, bob, token, accept):
    code = sent(alice, token)
    body = {} if accept is None else {"accept": accept}

    response = client_of(bob).post(f"/api/v1/gifts/claim/{code}", body, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == (
        "accept: This field is required." if accept is None else "accept: Must be a valid boolean."
    )
    assert Gift.objects.get().status == GiftStatus.PENDING


def test_claiming_ones_own_gift_is_400(alice, token):
    code = sent(alice, token)

    response = claim(alice, code)

    assert response.status_code == 400
    assert response.json() == {"detail": "You cannot claim your own gift. Cancel it on the Gifts page instead."}
    assert Gift.objects.get().status == GiftStatus.PENDING


def test_a_used_code_is_409(alice, bob, carol, token):
    code = sent(alice, token)
    claim(bob, code)

    response = claim(carol, code)

    assert (response.status_code, response.json()) == (409, {"detail": "This gift has already been claimed"})
    token.refresh_from_db()
    assert token.user_id == bob.pk


def test_a_cancelled_code_is_409(alice, bob, token, anon):
    code = sent(alice, token)
    client_of(alice).post(f"/api/v1/gifts/{Gift.objects.get().pk}/cancel")

    response = claim(bob, code)

    assert (response.status_code, response.json()) == (409, {"detail": "This gift was cancelled by its sender"})
    assert anon.get(f"/api/v1/gifts/claim/{code}").json()["status"] == "cancelled"
    token.refresh_from_db()
    assert token.user_id == alice.pk


def test_an_expired_code_is_409_and_previews_as_expired(alice, bob, token, anon):
    code = sent(alice, token)
    Gift.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    response = claim(bob, code)

    assert (response.status_code, response.json()) == (409, {"detail": "This gift link has expired"})
    assert anon.get(f"/api/v1/gifts/claim/{code}").json()["status"] == "expired"
    token.refresh_from_db()
    assert token.user_id == alice.pk


def test_an_unknown_code_is_404(bob, anon):
    for response in (anon.get("/api/v1/gifts/claim/no-such-code"), claim(bob, "no-such-code")):
        assert (response.status_code, response.json()) == (404, {"detail": "This gift link is not valid"})


def test_claiming_needs_a_jwt(alice, token, anon):
    code = sent(alice, token)
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")

    missing = anon.post(f"/api/v1/gifts/claim/{code}", {"accept": True}, format="json")
    bad = forged.post(f"/api/v1/gifts/claim/{code}", {"accept": True}, format="json")

    # As every endpoint here (and the reference): no credentials 403, bad credentials 401.
    assert (missing.status_code, missing.json()) == (403, {"detail": "Not authenticated"})
    assert (bad.status_code, bad["WWW-Authenticate"]) == (401, "Bearer")
    assert Gift.objects.get().status == GiftStatus.PENDING


def test_the_preview_ignores_credentials(alice, token):
    code = sent(alice, token)
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")

    assert forged.get(f"/api/v1/gifts/claim/{code}").status_code == 200


def test_code_lookups_are_rate_limited_per_client(settings, alice, bob, token, anon):
    settings.RATE_LIMIT_GIFT_CLAIM = "3/60"
    code = sent(alice, token)

    answers = [anon.get(f"/api/v1/gifts/claim/{code}") for _ in range(3)]
    fourth = anon.get(f"/api/v1/gifts/claim/{code}")
    claiming = claim(bob, code)  # the same address (the test client's): a claim counts as a lookup too

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert fourth.status_code == 429
    assert fourth.json() == {"detail": "Too many gift link attempts. Please wait and try again."}
    assert 0 < int(fourth["Retry-After"]) <= 60
    assert (fourth["X-RateLimit-Limit"], fourth["X-RateLimit-Remaining"]) == ("3", "0")
    assert claiming.status_code == 429
    assert Gift.objects.get().status == GiftStatus.PENDING


def test_a_claimed_gift_revoked_refunds_nothing(alice, bob, token):
    fund(bob, "5")
    claim(bob, sent(alice, token))
    ledger = Transaction.objects.count()

    response = client_of(bob).delete(f"/api/v1/tokens/{token.pk}")

    assert response.status_code == 200
    assert response.json() == {
        "revoked": True,
        "refund_amount": "0.00",
        "new_balance": "5.00",
        "message": "Token revoked. A gift is not refundable: only renewals you paid for are. Refund: 0.00 ZNC. "
        "New balance: 5.00 ZNC.",
    }
    assert (balance(bob), balance(alice)) == (Decimal("5.00"), Decimal("90.00"))
    assert Transaction.objects.count() == ledger


# --- Lists and cancelling -----------------------------------------------------------------------------------


def test_sent_gifts_are_listed_newest_first(alice, bob, token):
    other = services.token_purchase(user=alice, duration_hours=1)
    claim(bob, sent(alice, token))
    sent(alice, other, recipient_email="carol@example.com")

    response = client_of(alice).get("/api/v1/gifts")

    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["limit"], body["offset"]) == (2, 20, 0)
    assert all(set(item) == GIFT_FIELDS for item in body["items"])
    newest, oldest = body["items"]
    assert (newest["token_id"], newest["status"], newest["recipient_email"], newest["recipient_username"]) == (
        str(other.pk),
        "pending",
        "carol@example.com",
        None,
    )
    assert (oldest["token_id"], oldest["status"], oldest["recipient_username"]) == (str(token.pk), "claimed", "bob")
    assert client_of(alice).get("/api/v1/gifts?direction=sent&limit=1&offset=1").json()["items"] == [oldest]
    assert client_of(bob).get("/api/v1/gifts").json()["items"] == []  # bob sent nothing


def test_received_gifts_list_the_claimed_one(alice, bob, carol, token):
    claim(bob, sent(alice, token))
    gift = Gift.objects.get()

    received = client_of(bob).get("/api/v1/gifts?direction=received").json()

    assert [item["gift_id"] for item in received["items"]] == [str(gift.pk)]
    assert (received["items"][0]["status"], received["items"][0]["sender_username"]) == ("claimed", "alice")
    assert client_of(alice).get("/api/v1/gifts?direction=received").json()["items"] == []
    assert client_of(carol).get("/api/v1/gifts?direction=received").json()["total"] == 0


def test_an_unknown_direction_is_400(alice):
    response = client_of(alice).get("/api/v1/gifts?direction=everyone")

    assert response.status_code == 400
    assert response.json()["detail"] == 'direction: "everyone" is not a valid choice.'


def test_the_list_needs_a_jwt(anon):
    assert anon.get("/api/v1/gifts").status_code == 403


def test_the_sender_cancels_a_pending_gift(alice, token):
    sent(alice, token)
    gift = Gift.objects.get()

    response = client_of(alice).post(f"/api/v1/gifts/{gift.pk}/cancel")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == GIFT_FIELDS
    assert (body["gift_id"], body["status"], body["token_id"]) == (str(gift.pk), "cancelled", str(token.pk))
    assert body["finished_at"] is not None
    assert client_of(alice).get(f"/api/v1/tokens/{token.pk}").json()["gift_pending"] is False

    again = client_of(alice).post(f"/api/v1/gifts/{gift.pk}/cancel")

    assert (again.status_code, again.json()) == (409, {"detail": "This gift was cancelled by its sender"})


def test_cancelling_someone_elses_or_an_unknown_gift_is_404(alice, bob, token):
    sent(alice, token)
    gift = Gift.objects.get()

    for client, gift_id in (
        (client_of(bob), gift.pk),
        (client_of(alice), "00000000-0000-0000-0000-000000000000"),
        (client_of(alice), "not-a-uuid"),
    ):
        response = client.post(f"/api/v1/gifts/{gift_id}/cancel")

        assert (response.status_code, response.json()) == (404, {"detail": "Gift not found"})
    assert Gift.objects.get().status == GiftStatus.PENDING


def test_a_claimed_gift_cannot_be_cancelled(alice, bob, token):
    claim(bob, sent(alice, token))

    response = client_of(alice).post(f"/api/v1/gifts/{Gift.objects.get().pk}/cancel")

    assert (response.status_code, response.json()) == (409, {"detail": "This gift has already been claimed"})
    token.refresh_from_db()
    assert token.user_id == bob.pk


# --- Query counts -------------------------------------------------------------------------------------------


def _my_tokens_queries(user) -> int:
    api = client_of(user)
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/v1/tokens/my-tokens").status_code == 200
    return len(queries)


def test_my_tokens_costs_the_same_queries_for_more_gifts(alice, bob, token, carol):
    claim(bob, sent(alice, token))
    one = _my_tokens_queries(bob)
    fund(carol, "10")
    for _ in range(3):
        claim(bob, sent(carol, services.token_purchase(user=carol, duration_hours=1)))
    fund(bob, "1")
    pending = services.token_purchase(user=bob, duration_hours=1)
    gift_of(bob, pending)

    assert _my_tokens_queries(bob) == one
    assert {t["gift_pending"] for t in client_of(bob).get("/api/v1/tokens/my-tokens").json()} == {True, False}


def test_the_gift_list_costs_the_same_queries_for_more_gifts(alice, bob, token):
    claim(bob, sent(alice, token))
    api = client_of(alice)
    with CaptureQueriesContext(connection) as first:
        api.get("/api/v1/gifts")
    for _ in range(3):
        claim(bob, sent(alice, services.token_purchase(user=alice, duration_hours=1)))
    with CaptureQueriesContext(connection) as more:
        assert len(api.get("/api/v1/gifts").json()["items"]) == 4

    assert len(more) == len(first)
