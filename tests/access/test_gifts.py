"""Gift services on the real database: every transition and every refusal, with the whole outcome checked."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from access import gifts, services
from access.crypto import secret_digest
from access.models import AccessToken, Gift, GiftStatus
from accounts.models import AuditLog, User
from events.models import Event
from tests.factories import UserFactory
from tests.helpers import assert_ledger_consistent, balance, fund, run_at_once
from wallet.errors import InsufficientFunds
from wallet.models import Transaction
from zenzefi.errors import Conflict, DomainError, NotFound, RateLimited

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(alice):
    fund(alice, "100")
    return services.token_purchase(user=alice, duration_hours=12)


def ledger_rows() -> int:
    return Transaction.objects.count()


def sent(alice, token, **kwargs):
    return gifts.gift_send(user=alice, token_id=token.pk, **kwargs)


def event_types() -> list[str]:
    return list(Event.objects.filter(type__startswith="gift.").order_by("created_at").values_list("type", flat=True))


# --- Sending ---------------------------------------------------------------------------------------------


def test_sending_freezes_the_token_and_makes_a_code_stored_only_as_a_digest(alice, token):
    rows = ledger_rows()
    gift, code = sent(alice, token, recipient_email="Bob@Example.COM", message="  For the workshop  ")

    assert len(code) >= 22  # ≥ 128 bits, url-safe
    assert gift.status == GiftStatus.PENDING
    assert gift.code_digest == gifts.code_digest(code) != code
    assert not Gift.objects.filter(code_digest=code).exists()
    assert gift.recipient_email == "Bob@example.com"  # the domain is case-insensitive
    assert gift.message == "For the workshop"
    assert gift.expires_at - gift.created_at == dt.timedelta(days=30)
    token.refresh_from_db()
    assert token.user_id == alice.pk and token.activated_at is None and token.revoked_at is None
    assert ledger_rows() == rows  # a gift writes no ledger row
    assert gifts.gift_by_code(code).pk == gift.pk
    assert gifts.claim_url(code).endswith(f"/gifts/claim/{code}")
    assert event_types() == ["gift.sent"]
    assert AuditLog.objects.filter(action="gift_send", resource_id=str(gift.pk)).count() == 1


def test_the_owner_cannot_revoke_or_activate_a_pending_gift(alice, token):
    sent(alice, token)

    with pytest.raises(services.TokenGiftPending) as refused:
        services.token_revoke(user=alice, token_id=token.pk)
    assert refused.value.status_code == 409
    assert services.token_activate(token_id=token.pk) is None
    facts = services.token_validate(token.secret)
    assert facts is not None and facts.gift_pending
    token.refresh_from_db()
    assert token.revoked_at is None and token.activated_at is None
    assert balance(alice) == Decimal("90.00")


@pytest.mark.parametrize(
    ("prepare", "error", "detail"),
    [
        (lambda t, u: services.token_activate(token_id=t.pk), DomainError, "never been used"),
        (lambda t, u: services.token_revoke(user=u, token_id=t.pk), DomainError, "revoked token"),
        (lambda t, u: gifts.gift_send(user=u, token_id=t.pk), DomainError, "already a pending gift"),
    ],
    ids=["activated", "revoked", "already-pending"],
)
def test_refused_gifts_write_nothing(alice, token, prepare, error, detail):
    prepare(token, alice)
    rows, gift_count, events = ledger_rows(), Gift.objects.count(), Event.objects.count()

    with pytest.raises(error) as refused:
        sent(alice, token)

    assert detail in refused.value.detail
    assert refused.value.status_code == 400
    assert (ledger_rows(), Gift.objects.count(), Event.objects.count()) == (rows, gift_count, events)


def test_someone_elses_token_is_not_found(alice, bob, token):
    with pytest.raises(NotFound):
        gifts.gift_send(user=bob, token_id=token.pk)
    assert Gift.objects.count() == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"message": "x" * 281}, "message"), ({"recipient_email": "not-an-address"}, "recipient_email")],
)
def test_bad_input_is_refused(alice, token, kwargs, field):
    with pytest.raises(DomainError) as refused:
        sent(alice, token, **kwargs)
    assert refused.value.field == field
    assert Gift.objects.count() == 0


def test_a_message_of_280_characters_is_kept(alice, token):
    gift, _code = sent(alice, token, message="é" * 280)
    assert len(gift.message) == 280


def test_the_daily_limit_is_a_429_and_the_pending_limit_a_400(settings, alice):
    fund(alice, "200")
    settings.GIFT_MAX_PER_DAY, settings.GIFT_MAX_PENDING = 3, 2
    tokens = [services.token_purchase(user=alice, duration_hours=1) for _ in range(4)]
    first, _ = gifts.gift_send(user=alice, token_id=tokens[0].pk)
    gifts.gift_send(user=alice, token_id=tokens[1].pk)

    with pytest.raises(DomainError) as pending:
        gifts.gift_send(user=alice, token_id=tokens[2].pk)
    assert pending.value.status_code == 400 and "2 gifts waiting" in pending.value.detail

    gifts.gift_cancel(user=alice, gift_id=first.pk)
    gifts.gift_send(user=alice, token_id=tokens[2].pk)  # the third of the day
    with pytest.raises(RateLimited) as daily:
        gifts.gift_send(user=alice, token_id=tokens[3].pk)
    assert daily.value.status_code == 429 and "at most 3 gifts a day" in daily.value.detail
    assert 0 < daily.value.retry_after <= 86400
    assert Gift.objects.filter(sender=alice).count() == 3


def test_buying_as_a_gift_debits_once_and_leaves_a_pending_gift(alice):
    fund(alice, "50")
    gift, code = gifts.gift_buy(user=alice, duration_hours=24, scope="certificates_only", message="Happy new year")

    assert balance(alice) == Decimal("50") - services.token_price(24)
    purchase = Transaction.objects.get(user=alice, kind=Transaction.Kind.PURCHASE)
    assert gift.token.purchase_id == purchase.pk and gift.token.scope == "certificates_only"
    assert gifts.gift_by_code(code).status == GiftStatus.PENDING
    assert event_types() == ["gift.sent"]


def test_buying_as_a_gift_without_funds_writes_nothing(alice):
    fund(alice, "1")
    with pytest.raises(InsufficientFunds):
        gifts.gift_buy(user=alice, duration_hours=24)
    assert (AccessToken.objects.count(), Gift.objects.count(), ledger_rows()) == (0, 0, 1)


# --- Claiming ---------------------------------------------------------------------------------------------


def test_accepting_moves_the_token_to_the_recipient_with_a_new_secret(alice, bob, token):
    old_secret, old_digest = token.secret, token.secret_digest
    token.auto_renew = True
    token.save(update_fields=["auto_renew"])
    gift, code = sent(alice, token, message="hi")
    rows = ledger_rows()

    claimed = gifts.gift_claim(user=bob, code=code, accept=True)

    token.refresh_from_db()
    assert claimed.status == GiftStatus.CLAIMED and claimed.recipient_id == bob.pk and claimed.finished_at
    assert token.user_id == bob.pk and token.gifted_by_id == alice.pk and token.gifted_at == claimed.finished_at
    assert token.activated_at is None and token.revoked_at is None and token.auto_renew is False
    assert token.secret != old_secret and token.secret_digest == secret_digest(token.secret) != old_digest
    assert token.secret_prefix == token.secret[:8]
    assert services.token_validate(old_secret) is None  # what the sender may have seen opens nothing
    facts = services.token_validate(token.secret)
    assert facts.user_id == str(bob.pk) and not facts.gift_pending
    assert ledger_rows() == rows
    assert (balance(alice), balance(bob)) == (Decimal("90.00"), Decimal("0.00"))
    assert event_types() == ["gift.sent", "gift.claimed"]
    claimed_event = Event.objects.get(type="gift.claimed")
    assert claimed_event.user_id == alice.pk and claimed_event.data["recipient_id"] == str(bob.pk)
    assert AuditLog.objects.filter(action="gift_claim", resource_id=str(gift.pk)).count() == 1


def test_a_claimed_gift_revokes_with_no_refund(alice, bob, token):
    _gift, code = sent(alice, token)
    gifts.gift_claim(user=bob, code=code, accept=True)

    revoked, refund, new_balance = services.token_revoke(user=bob, token_id=token.pk)

    assert refund == Decimal("0.00") and new_balance == Decimal("0.00")
    assert revoked.revoked_at is not None and revoked.refund_id is None
    assert not Transaction.objects.filter(kind=Transaction.Kind.REFUND).exists()
    assert (balance(alice), balance(bob)) == (Decimal("90.00"), Decimal("0.00"))


def test_a_claimed_gift_used_for_a_while_still_refunds_nothing(alice, bob, token):
    _gift, code = sent(alice, token)
    gifts.gift_claim(user=bob, code=code, accept=True)
    services.token_activate(token_id=token.pk)
    token.refresh_from_db()
    assert services.refund_amount(token, token.activated_at + dt.timedelta(hours=1)) == Decimal("0.00")


def test_declining_returns_the_token_to_the_sender_unchanged(alice, bob, token):
    secret = token.secret
    _gift, code = sent(alice, token)

    declined = gifts.gift_claim(user=bob, code=code, accept=False)

    token.refresh_from_db()
    assert declined.status == GiftStatus.DECLINED and declined.recipient_id == bob.pk
    assert token.user_id == alice.pk and token.secret == secret and token.gifted_by_id is None
    assert not services.token_validate(secret).gift_pending
    _t, refund, _b = services.token_revoke(user=alice, token_id=token.pk)  # normal refund again
    assert refund == Decimal("10.00") and balance(alice) == Decimal("100.00")
    assert event_types() == ["gift.sent", "gift.declined"]


def test_cancelling_returns_the_token_and_kills_the_code(alice, bob, token):
    gift, code = sent(alice, token)

    gifts.gift_cancel(user=alice, gift_id=gift.pk)

    gift.refresh_from_db()
    token.refresh_from_db()
    assert gift.status == GiftStatus.CANCELLED and gift.finished_at and token.user_id == alice.pk
    with pytest.raises(Conflict) as refused:
        gifts.gift_claim(user=bob, code=code, accept=True)
    assert "cancelled" in refused.value.detail
    token.refresh_from_db()
    assert token.user_id == alice.pk
    assert event_types() == ["gift.sent", "gift.cancelled"]


def test_only_the_sender_cancels_and_only_a_pending_gift(alice, bob, token):
    gift, code = sent(alice, token)
    with pytest.raises(NotFound):
        gifts.gift_cancel(user=bob, gift_id=gift.pk)
    gifts.gift_claim(user=bob, code=code, accept=True)
    with pytest.raises(Conflict):
        gifts.gift_cancel(user=alice, gift_id=gift.pk)
    token.refresh_from_db()
    assert token.user_id == bob.pk


def test_the_sender_cannot_claim_their_own_gift(alice, token):
    gift, code = sent(alice, token)
    with pytest.raises(DomainError) as refused:
        gifts.gift_claim(user=alice, code=code, accept=True)
    assert refused.value.status_code == 400 and "own gift" in refused.value.detail
    gift.refresh_from_db()
    assert gift.status == GiftStatus.PENDING


def test_a_code_works_once(alice, bob, token):
    carol = UserFactory()
    _gift, code = sent(alice, token)
    gifts.gift_claim(user=bob, code=code, accept=True)

    for accept in (True, False):
        with pytest.raises(Conflict) as refused:
            gifts.gift_claim(user=carol, code=code, accept=accept)
        assert "already been claimed" in refused.value.detail
    token.refresh_from_db()
    assert token.user_id == bob.pk


def test_a_wrong_code_is_not_found(bob):
    for code in ("", "x" * 129, "not-a-real-code-but-long-enough-123"):
        with pytest.raises(gifts.GiftCodeInvalid):
            gifts.gift_claim(user=bob, code=code, accept=True)


def test_an_expired_code_is_refused_even_before_the_task_runs(alice, bob, token):
    gift, code = sent(alice, token)
    Gift.objects.filter(pk=gift.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    with pytest.raises(Conflict) as refused:
        gifts.gift_claim(user=bob, code=code, accept=True)

    assert "expired" in refused.value.detail
    token.refresh_from_db()
    assert token.user_id == alice.pk
    gifts.gift_cancel(user=alice, gift_id=gift.pk)  # the sender may still take it back at once


def test_a_new_account_claiming_becomes_the_senders_referral(alice, token):
    _gift, code = sent(alice, token)
    newcomer = UserFactory()

    gifts.gift_claim(user=newcomer, code=code, accept=True)

    newcomer.refresh_from_db()
    assert newcomer.referred_by_id == alice.pk
    assert AuditLog.objects.filter(action="referral_via_gift", resource_id=str(newcomer.pk)).count() == 1


def test_an_existing_account_or_a_referred_one_keeps_its_referrer(alice, bob, token):
    carol = UserFactory()
    User.objects.filter(pk=bob.pk).update(created_at=timezone.now() - dt.timedelta(days=3))
    _gift, code = sent(alice, token)
    gifts.gift_claim(user=bob, code=code, accept=True)
    bob.refresh_from_db()
    assert bob.referred_by_id is None

    second = services.token_purchase(user=alice, duration_hours=1)
    dave = UserFactory()
    User.objects.filter(pk=dave.pk).update(referred_by=carol)
    _gift, code = gifts.gift_send(user=alice, token_id=second.pk)
    dave.refresh_from_db()
    gifts.gift_claim(user=dave, code=code, accept=True)
    dave.refresh_from_db()
    assert dave.referred_by_id == carol.pk


# --- Expiry ---------------------------------------------------------------------------------------------


def test_expiry_returns_the_token_once_even_when_run_twice(alice, bob, token):
    gift, code = sent(alice, token)
    later = gift.expires_at + dt.timedelta(minutes=1)

    assert gifts.gifts_expire(now=gift.expires_at - dt.timedelta(minutes=1)) == 0
    assert gifts.gifts_expire(now=later) == 1
    assert gifts.gifts_expire(now=later) == 0

    gift.refresh_from_db()
    token.refresh_from_db()
    assert gift.status == GiftStatus.EXPIRED and gift.finished_at == later
    assert token.user_id == alice.pk and token.activated_at is None
    assert event_types() == ["gift.sent", "gift.expired"]
    with pytest.raises(Conflict):
        gifts.gift_claim(user=bob, code=code, accept=True)
    _t, refund, _b = services.token_revoke(user=alice, token_id=token.pk)
    assert refund == Decimal("10.00")


def test_admin_force_revoke_cancels_a_pending_gift(alice, admin_user, token):
    from wallet.services import Actor

    gift, _code = sent(alice, token)
    services.token_force_revoke(token_id=token.pk, actor=Actor(user=admin_user))
    gift.refresh_from_db()
    assert gift.status == GiftStatus.CANCELLED
    assert event_types() == ["gift.sent", "gift.cancelled"]


def test_claim_attempts_are_limited_per_ip(settings):
    settings.RATE_LIMIT_GIFT_CLAIM = "3/60"
    for _ in range(3):
        gifts.claim_rate_check("203.0.113.7")
    with pytest.raises(RateLimited):
        gifts.claim_rate_check("203.0.113.7")
    gifts.claim_rate_check("203.0.113.8")  # another client is not affected


def test_a_mail_code_opens_only_untampered(alice, token):
    sealed = gifts.fernet("gift-mail").encrypt(b"the-code").decode()
    assert gifts.mail_code_open(sealed) == "the-code"
    assert gifts.mail_code_open(sealed[:-4] + "AAAA") is None


# --- Races ------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_claims_change_the_owner_once(alice):
    fund(alice, "100")
    token = services.token_purchase(user=alice, duration_hours=12)
    _gift, code = gifts.gift_send(user=alice, token_id=token.pk)
    claimants = [UserFactory() for _ in range(10)]

    results, errors = run_at_once([lambda u=u: gifts.gift_claim(user=u, code=code, accept=True) for u in claimants])

    assert len(results) == 1 and len(errors) == 9
    assert all(isinstance(e, Conflict) and "already been claimed" in e.detail for e in errors)
    token.refresh_from_db()
    assert token.user_id == results[0].recipient_id and token.gifted_by_id == alice.pk
    assert Event.objects.filter(type="gift.claimed").count() == 1
    assert AuditLog.objects.filter(action="gift_claim").count() == 1
    assert_ledger_consistent()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_claim_racing_cancel_one_wins_never_both(alice, bob, attempt):
    fund(alice, "100")
    token = services.token_purchase(user=alice, duration_hours=12)
    gift, code = gifts.gift_send(user=alice, token_id=token.pk)

    results, errors = run_at_once(
        [
            lambda: gifts.gift_claim(user=bob, code=code, accept=True),
            lambda: gifts.gift_cancel(user=alice, gift_id=gift.pk),
        ]
    )

    assert len(results) == 1 and len(errors) == 1 and isinstance(errors[0], Conflict)
    gift.refresh_from_db()
    token.refresh_from_db()
    if gift.status == GiftStatus.CLAIMED:
        assert token.user_id == bob.pk and "cancel" not in "".join(event_types())
    else:
        assert gift.status == GiftStatus.CANCELLED and token.user_id == alice.pk and token.gifted_by_id is None
        assert "gift.claimed" not in event_types()
    assert len(event_types()) == 2
    assert_ledger_consistent()
