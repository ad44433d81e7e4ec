"""Auto-renewal: the rule, the lead times, balance and reserve, two workers, events, refunds after renewals."""

import datetime as dt
import importlib
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from access import services
from access.models import AccessToken, Bundle, TokenRenewal
from access.renewal import token_renew, tokens_renew
from accounts.models import User
from events.models import Event
from tests.helpers import balance, fund, run_at_once
from wallet.models import Transaction

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def running(user, hours: int = 12, *, auto_renew: bool = True) -> AccessToken:
    """A token bought and first used at the clock's now, with auto-renewal switched as asked."""
    token = services.token_purchase(user=user, duration_hours=hours)
    services.token_activate(token_id=token.pk)
    AccessToken.objects.filter(pk=token.pk).update(auto_renew=auto_renew)
    token.refresh_from_db()
    return token


def renewal_rows(token):
    return list(TokenRenewal.objects.filter(token=token).values_list("period", "price"))


def events(type_: str) -> list[dict]:
    return [e.data for e in Event.objects.filter(type=type_).order_by("created_at", "id")]


# --- The rule ------------------------------------------------------------------------------------


def test_12h_token_renews_once_at_60_minutes_before_expiry(alice, clock, django_capture_on_commit_callbacks):
    fund(alice, "30")
    token = running(alice, 12)
    assert services.token_validate(token.secret).expires_at == T0 + 12 * H  # cached by the proxy's path

    clock.move_to(T0 + 11 * H - dt.timedelta(seconds=1))
    assert tokens_renew() == 0
    clock.move_to(T0 + 11 * H)
    with django_capture_on_commit_callbacks(execute=True):
        assert tokens_renew() == 1
    clock.move_to(T0 + 11 * H + dt.timedelta(minutes=5))
    assert tokens_renew() == 0

    token.refresh_from_db()
    assert token.expires_at == T0 + 24 * H
    assert token.activated_at == T0
    assert balance(alice) == Decimal("10.00")
    entry = Transaction.objects.get(user=alice, description="Token renewal: 12h, period 2")
    assert (entry.kind, entry.amount, entry.balance_after) == ("purchase", Decimal("-10.00"), Decimal("10.00"))
    renewal = TokenRenewal.objects.get(token=token)
    assert (renewal.period, renewal.price, renewal.transaction) == (2, Decimal("10.00"), entry)
    assert renewal.created_at == T0 + 11 * H
    # The cached facts were dropped: the proxy sees the new expiry, for the same secret.
    assert services.token_validate(token.secret).expires_at == T0 + 24 * H
    assert events("token.renewed") == [
        {"token_id": str(token.pk), "period": 2, "price": "10.00", "expires_at": "2026-03-02T12:00:00Z"}
    ]

    clock.move_to(T0 + 12 * H + dt.timedelta(minutes=1))  # past the first expiry: still usable
    assert services.tokens_expire() == 0
    assert services.token_validate(token.secret) is not None
    assert token.status_at(timezone.now()) == "active"


def test_the_next_period_renews_again_at_its_own_lead_time(alice, clock):
    fund(alice, "30")
    token = running(alice, 12)

    clock.move_to(T0 + 11 * H)
    tokens_renew()
    clock.move_to(T0 + 22 * H)
    tokens_renew()
    clock.move_to(T0 + 23 * H)
    tokens_renew()

    token.refresh_from_db()
    assert token.expires_at == T0 + 36 * H
    assert renewal_rows(token) == [(2, Decimal("10.00")), (3, Decimal("10.00"))]
    assert balance(alice) == Decimal("0.00")


@pytest.mark.parametrize(("hours", "lead"), [(1, H), (24, H), (168, 24 * H), (720, 24 * H)])
def test_lead_time_depends_on_the_duration(alice, clock, hours, lead):
    fund(alice, "700")
    token = running(alice, hours)
    expiry = T0 + hours * H

    if expiry - lead - dt.timedelta(minutes=1) > T0:
        clock.move_to(expiry - lead - dt.timedelta(minutes=1))
        assert tokens_renew() == 0
    clock.move_to(expiry - lead)
    assert tokens_renew() == 1

    token.refresh_from_db()
    assert token.expires_at == expiry + hours * H
    assert token.next_renewal_at == expiry + hours * H - lead


def test_renewal_charges_the_current_list_price(alice, clock, settings):
    fund(alice, "30")
    token = running(alice, 12)
    settings.TOKEN_PRICES = {**settings.TOKEN_PRICES, 12: Decimal("12.50")}

    clock.move_to(T0 + 11 * H)
    tokens_renew()

    assert renewal_rows(token) == [(2, Decimal("12.50"))]
    assert balance(alice) == Decimal("30") - Decimal("10.00") - Decimal("12.50")


def test_bundle_token_renews_at_list_price(alice, clock):
    bundle = Bundle.objects.create(
        name="Two halves", token_count=2, duration_hours=12, discount_percent=25, base_price=20, total_price=15
    )
    fund(alice, "40")
    _bundle, tokens, _entry = services.bundle_purchase(user=alice, bundle_id=bundle.pk)
    token = tokens[0]
    services.token_activate(token_id=token.pk)
    AccessToken.objects.filter(pk=token.pk).update(auto_renew=True)

    clock.move_to(T0 + 11 * H)
    tokens_renew()

    assert token.cost_znc == Decimal("7.50")
    assert renewal_rows(token) == [(2, Decimal("10.00"))]
    assert balance(alice) == Decimal("15.00")


@pytest.mark.parametrize(
    "setup",
    ["switched off", "master switch off", "revoked", "owner deactivated", "not activated", "force revoked"],
)
def test_tokens_that_must_not_renew_are_never_charged(alice, clock, setup):
    fund(alice, "50")
    token = running(alice, 12, auto_renew=setup not in ("switched off", "not activated"))
    if setup == "master switch off":
        User.objects.filter(pk=alice.pk).update(auto_renew_enabled=False)
    elif setup == "revoked":
        services.token_revoke(user=alice, token_id=token.pk)
    elif setup == "force revoked":
        services.token_force_revoke(token_id=token.pk, actor=services.SYSTEM)
    elif setup == "owner deactivated":
        User.objects.filter(pk=alice.pk).update(is_active=False)
    elif setup == "not activated":
        token = services.token_purchase(user=alice, duration_hours=12)
        AccessToken.objects.filter(pk=token.pk).update(auto_renew=True)
    before = balance(alice)

    for at in (11 * H, 11 * H + dt.timedelta(minutes=30), 12 * H - dt.timedelta(minutes=1)):
        clock.move_to(T0 + at)
        assert tokens_renew() == 0
        assert token_renew(token_id=token.pk) is None

    assert not TokenRenewal.objects.exists()
    assert balance(alice) == before
    assert not Transaction.objects.filter(description__startswith="Token renewal").exists()
    assert events("token.renewal_failed") == []


# --- Balance and reserve -------------------------------------------------------------------------


def test_short_balance_is_retried_until_a_top_up_renews_it(alice, clock):
    fund(alice, "15")
    token = running(alice, 12)  # 5.00 left, the renewal costs 10.00

    for minutes in (0, 5, 10):
        clock.move_to(T0 + 11 * H + dt.timedelta(minutes=minutes))
        assert tokens_renew() == 0
    token.refresh_from_db()
    assert token.renewal_failed_at == T0 + 11 * H
    assert token.expires_at == T0 + 12 * H
    assert balance(alice) == Decimal("5.00")
    assert events("token.renewal_failed") == [  # once for the whole episode, not every 5 minutes
        {"token_id": str(token.pk), "reason": "insufficient_balance", "required": "10.00", "available": "5.00"}
    ]

    fund(alice, "20")
    clock.move_to(T0 + 11 * H + dt.timedelta(minutes=55))
    assert tokens_renew() == 1

    token.refresh_from_db()
    assert (token.expires_at, token.renewal_failed_at) == (T0 + 24 * H, None)
    assert balance(alice) == Decimal("15.00")
    assert renewal_rows(token) == [(2, Decimal("10.00"))]


def test_a_new_failure_episode_is_reported_again(alice, clock):
    fund(alice, "25")
    token = running(alice, 12)  # 15.00 left: one renewal, then 5.00

    clock.move_to(T0 + 11 * H)
    assert tokens_renew() == 1
    clock.move_to(T0 + 23 * H)
    assert tokens_renew() == 0
    clock.move_to(T0 + 23 * H + dt.timedelta(minutes=5))
    assert tokens_renew() == 0

    assert events("token.renewal_failed") == [
        {"token_id": str(token.pk), "reason": "insufficient_balance", "required": "10.00", "available": "5.00"}
    ]
    assert len(events("token.renewed")) == 1


def test_without_a_top_up_the_token_expires_and_auto_renew_turns_off(alice, clock):
    fund(alice, "15")
    token = running(alice, 12)

    clock.move_to(T0 + 11 * H)
    tokens_renew()
    clock.move_to(T0 + 12 * H)
    assert tokens_renew() == 0
    assert services.tokens_expire() == 1

    token.refresh_from_db()
    assert (token.expired_at, token.expires_at) == (T0 + 12 * H, T0 + 12 * H)
    assert (token.auto_renew, token.renewal_failed_at) == (False, None)
    assert token.status_at(timezone.now()) == "expired"
    assert services.token_validate(token.secret) is None
    assert not TokenRenewal.objects.exists()
    assert balance(alice) == Decimal("5.00")


@pytest.mark.parametrize(("reserve", "renews"), [("0.00", True), ("5.00", True), ("5.01", False)])
def test_the_reserve_is_respected_to_the_cent(alice, clock, reserve, renews):
    fund(alice, "25")
    token = running(alice, 12)  # 15.00 left, the renewal costs 10.00
    User.objects.filter(pk=alice.pk).update(renew_min_balance=Decimal(reserve))

    clock.move_to(T0 + 11 * H)
    assert tokens_renew() == int(renews)

    assert balance(alice) == (Decimal("5.00") if renews else Decimal("15.00"))
    assert TokenRenewal.objects.filter(token=token).exists() is renews
    if not renews:
        assert events("token.renewal_failed") == [
            {"token_id": str(token.pk), "reason": "below_reserve", "required": "15.01", "available": "15.00"}
        ]


def test_a_duration_taken_off_sale_is_not_renewed(alice, clock, settings):
    fund(alice, "30")
    token = running(alice, 12)
    settings.TOKEN_PRICES = {h: p for h, p in settings.TOKEN_PRICES.items() if h != 12}

    clock.move_to(T0 + 11 * H)
    assert tokens_renew() == 0

    assert not TokenRenewal.objects.exists()
    assert events("token.renewal_failed") == [
        {"token_id": str(token.pk), "reason": "duration_not_on_sale", "required": None, "available": "20.00"}
    ]


# --- Once per period -----------------------------------------------------------------------------


def test_a_period_can_be_charged_only_once(alice, clock):
    fund(alice, "30")
    token = running(alice, 12)
    clock.move_to(T0 + 11 * H)
    tokens_renew()

    assert token_renew(token_id=token.pk) is None  # no longer due: renewed for the coming period
    entry = Transaction.objects.get(description="Token renewal: 12h, period 2")
    with pytest.raises(IntegrityError), transaction.atomic():
        TokenRenewal.objects.create(token=token, period=2, price=Decimal("10.00"), transaction=entry)
    assert TokenRenewal.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_charge_once(alice):
    fund(alice, "100")
    tokens = [running(alice, 12) for _ in range(3)]
    now = timezone.now()
    # Due now: 30 minutes left of each.
    AccessToken.objects.filter(pk__in=[t.pk for t in tokens]).update(
        activated_at=now - 11.5 * H, expires_at=now + dt.timedelta(minutes=30)
    )
    counts, errors = run_at_once([tokens_renew, tokens_renew])

    assert errors == []
    assert sum(counts) == 3
    assert TokenRenewal.objects.count() == 3
    assert Transaction.objects.filter(description__startswith="Token renewal").count() == 3
    assert balance(alice) == Decimal("100") - 3 * Decimal("10.00") - 3 * Decimal("10.00")
    for token in tokens:
        token.refresh_from_db()
        assert token.expires_at - now == dt.timedelta(minutes=30) + 12 * H


# --- Refunds after renewals ----------------------------------------------------------------------


def revoke_at(user, token, moment) -> Decimal:
    with time_machine.travel(moment, tick=False):
        _token, refund, _balance = services.token_revoke(user=user, token_id=token.pk)
    return refund


def test_revoked_just_before_the_renewal_refunds_the_first_period_only(alice, clock):
    fund(alice, "30")
    token = running(alice, 12)
    clock.move_to(T0 + 11 * H - dt.timedelta(seconds=1))
    assert tokens_renew() == 0

    refund = revoke_at(alice, token, T0 + 11 * H - dt.timedelta(seconds=1))

    assert refund == Decimal("0.83")  # 10 × 3601 / 43200 = 0.8335…, rounded down
    assert balance(alice) == Decimal("20.83")
    clock.move_to(T0 + 11 * H)
    assert tokens_renew() == 0


def test_revoked_just_after_the_renewal_refunds_the_unbegun_period_in_full(alice, clock):
    fund(alice, "30")
    token = running(alice, 12)
    clock.move_to(T0 + 11 * H)
    tokens_renew()

    refund = revoke_at(alice, token, T0 + 11 * H)

    assert refund == Decimal("0.83") + Decimal("10.00")
    entry = Transaction.objects.get(kind="refund")
    assert (entry.amount, entry.balance_after) == (Decimal("10.83"), Decimal("20.83"))
    assert balance(alice) == Decimal("20.83")


def test_revoked_in_the_renewed_period_refunds_its_unused_share(alice, clock):
    fund(alice, "30")
    token = running(alice, 12)
    clock.move_to(T0 + 11 * H)
    tokens_renew()

    assert revoke_at(alice, token, T0 + 12 * H + dt.timedelta(seconds=1)) == Decimal("9.99")  # 10 × 43199 / 43200


def test_revoked_in_the_overlap_of_a_720h_token_renewed_24h_early(alice, clock, settings):
    fund(alice, "700")
    token = running(alice, 720)
    settings.TOKEN_PRICES = {**settings.TOKEN_PRICES, 720: Decimal("320.00")}  # each period refunds its own price
    clock.move_to(T0 + 696 * H)
    assert tokens_renew() == 1

    refund = revoke_at(alice, token, T0 + 700 * H)

    # Period 1: 300 × 20 h / 720 h = 8.333… → 8.33; period 2 not begun: its 320.00 in full.
    assert refund == Decimal("328.33")
    assert balance(alice) == Decimal("700") - Decimal("300") - Decimal("320") + Decimal("328.33")
    token.refresh_from_db()
    assert services.refund_amount(token, T0 + 720 * H) == Decimal("320.00")
    assert services.refund_amount(token, T0 + 1080 * H) == Decimal("160.00")
    assert services.refund_amount(token, T0 + 1440 * H) == Decimal("0.00")


def test_the_migration_fills_the_expiry_of_tokens_activated_before_it(alice, clock):
    from django.apps import apps

    migration = importlib.import_module("access.migrations.0005_token_expiry_and_renewals")
    fund(alice, "400")
    short, long = running(alice, 12), running(alice, 720)
    ready = services.token_purchase(user=alice, duration_hours=1)
    AccessToken.objects.update(expires_at=None)

    migration.fill_expires_at(apps, None)

    expiries = dict(AccessToken.objects.values_list("pk", "expires_at"))
    assert expiries == {short.pk: T0 + 12 * H, long.pk: T0 + 720 * H, ready.pk: None}
