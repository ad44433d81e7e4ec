import datetime as dt
import threading
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from access import services
from access.models import AccessToken
from accounts.models import AuditLog, User
from tests.helpers import balance, fund
from wallet.errors import InsufficientFunds
from wallet.models import Transaction
from wallet.services import Actor

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("hours", "price"), [(1, "1.00"), (12, "10.00"), (24, "18.00"), (168, "100.00"), (720, "300.00")]
)
def test_each_duration_costs_its_list_price(alice, hours, price):
    fund(alice, "500")

    token = services.token_purchase(user=alice, duration_hours=hours, scope="full")

    assert token.cost_znc == Decimal(price)
    entry = Transaction.objects.get(user=alice, kind="purchase")
    assert entry.amount == -Decimal(price)
    assert entry.description == f"Token purchase: {hours}h (full)"
    assert token.purchase == entry
    assert balance(alice) == Decimal("500") - Decimal(price)
    assert (token.activated_at, token.revoked_at, token.status) == (None, None, "ready")


def test_prices_follow_settings(alice, settings):
    settings.TOKEN_PRICES = {**settings.TOKEN_PRICES, 24: Decimal("20.50")}
    fund(alice, "50")

    assert services.token_purchase(user=alice, duration_hours=24).cost_znc == Decimal("20.50")


def test_invalid_duration_writes_nothing(alice):
    fund(alice, "50")

    with pytest.raises(services.InvalidDuration) as error:
        services.token_purchase(user=alice, duration_hours=2)

    assert error.value.detail == "Invalid duration. Must be one of: [1, 12, 24, 168, 720]"
    assert not AccessToken.objects.exists()
    assert balance(alice) == Decimal("50.00")


def test_insufficient_balance_writes_nothing(alice):
    fund(alice, "5")

    with pytest.raises(InsufficientFunds) as error:
        services.token_purchase(user=alice, duration_hours=12)

    assert error.value.detail == "Insufficient balance. Required: 10.00 ZNC, Available: 5.00 ZNC"
    assert not AccessToken.objects.exists()
    assert Transaction.objects.filter(kind="purchase").count() == 0


def test_secret_is_64_urlsafe_chars_and_never_stored_in_plain(alice):
    fund(alice, "50")
    token = services.token_purchase(user=alice, duration_hours=1)
    secret = token.secret

    assert len(secret) == 64
    assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM access_accesstoken")
        rows = cursor.fetchall()
        cursor.execute("SELECT details::text, resource_id FROM accounts_auditlog")
        audit = cursor.fetchall()
    dump = repr(rows) + repr(audit)
    assert secret not in dump
    assert secret[8:40] not in dump
    assert token.secret_prefix == secret[:8]
    assert AccessToken.objects.get(pk=token.pk).secret == secret


def test_refund_of_an_unactivated_token_is_the_price_paid(alice):
    fund(alice, "20")
    token = services.token_purchase(user=alice, duration_hours=24)

    _, refund, new_balance = services.token_revoke(user=alice, token_id=token.pk)

    assert (refund, new_balance) == (Decimal("18.00"), Decimal("20.00"))
    entry = Transaction.objects.get(kind="refund")
    assert (entry.amount, entry.description) == (Decimal("18.00"), "Token refund: 24h (not activated)")
    token.refresh_from_db()
    assert token.status == "revoked"
    assert token.refund == entry


@pytest.mark.parametrize(
    ("used", "refund", "description"),
    [
        (dt.timedelta(0), "18.00", "Token refund: 24.0h unused"),
        (dt.timedelta(hours=12), "9.00", "Token refund: 12.0h unused"),
        (dt.timedelta(hours=23, minutes=59), "0.01", "Token refund: 0.0h unused"),
        (dt.timedelta(hours=7, minutes=13, seconds=7), "12.58", "Token refund: 16.8h unused"),
    ],
    ids=["0%", "50%", "~100%", "odd"],
)
def test_refund_of_an_activated_token_is_pro_rata_rounded_down(alice, used, refund, description):
    fund(alice, "18")
    token = services.token_purchase(user=alice, duration_hours=24)
    with time_machine.travel(T0, tick=False):
        services.token_activate(token_id=token.pk)
    with time_machine.travel(T0 + used, tick=False):
        _, paid_back, new_balance = services.token_revoke(user=alice, token_id=token.pk)

    assert paid_back == Decimal(refund)
    assert new_balance == Decimal(refund)
    assert Transaction.objects.get(kind="refund").description == description


def test_fully_used_token_is_revoked_without_a_refund_row(alice):
    fund(alice, "1")
    token = services.token_purchase(user=alice, duration_hours=1)
    with time_machine.travel(T0, tick=False):
        services.token_activate(token_id=token.pk)
    with time_machine.travel(T0 + dt.timedelta(hours=2), tick=False):
        _, refund, _ = services.token_revoke(user=alice, token_id=token.pk)

    assert refund == Decimal("0.00")
    assert not Transaction.objects.filter(kind="refund").exists()


def test_bundle_token_refunds_its_share(alice):
    fund(alice, "100")
    bundle = services.Bundle.objects.get(name="Starter Pack")
    _, tokens, _ = services.bundle_purchase(user=alice, bundle_id=bundle.pk)

    _, refund, _ = services.token_revoke(user=alice, token_id=tokens[-1].pk)

    assert refund == Decimal("16.20")


def test_revoking_twice_is_404_and_writes_once(alice):
    fund(alice, "20")
    token = services.token_purchase(user=alice, duration_hours=12)
    services.token_revoke(user=alice, token_id=token.pk)

    with pytest.raises(services.TokenNotFound) as error:
        services.token_revoke(user=alice, token_id=token.pk)

    assert error.value.status_code == 404
    assert error.value.detail == "Token not found or already revoked"
    assert Transaction.objects.filter(kind="refund").count() == 1


def test_someone_elses_token_is_not_found(alice, bob):
    fund(alice, "20")
    token = services.token_purchase(user=alice, duration_hours=12)

    with pytest.raises(services.TokenNotFound):
        services.token_revoke(user=bob, token_id=token.pk)

    token.refresh_from_db()
    assert token.revoked_at is None
    assert balance(bob) == 0


def test_force_revoke_refunds_nothing_and_is_audited(alice, admin_user):
    fund(alice, "20")
    token = services.token_purchase(user=alice, duration_hours=12)

    services.token_force_revoke(token_id=token.pk, actor=Actor(user=admin_user, ip="10.0.0.9"))

    token.refresh_from_db()
    assert token.status == "revoked"
    assert token.revoked_by == admin_user
    assert balance(alice) == Decimal("10.00")
    assert not Transaction.objects.filter(kind="refund").exists()
    log = AuditLog.objects.get(action="admin_force_revoke")
    assert (log.user, str(log.ip_address), log.resource_id) == (admin_user, "10.0.0.9", str(token.pk))


def test_validate_reads_the_cache_and_revoke_drops_it(
    alice, django_assert_num_queries, django_capture_on_commit_callbacks
):
    fund(alice, "20")
    token = services.token_purchase(user=alice, duration_hours=12)
    secret = token.secret

    first = services.token_validate(secret)
    with django_assert_num_queries(0):
        cached = services.token_validate(secret)
    with django_capture_on_commit_callbacks(execute=True):
        services.token_revoke(user=alice, token_id=token.pk)

    assert first == cached
    assert (first.token_id, first.user_id, first.scope, first.activated_at) == (
        str(token.pk),
        str(alice.pk),
        "full",
        None,
    )
    assert services.token_validate(secret) is None


def test_validate_refuses_unknown_and_garbage():
    assert services.token_validate("x" * 64) is None
    assert services.token_validate("") is None
    assert services.token_validate("x" * 10_000) is None


def test_deactivated_user_is_refused_at_once_even_from_cache(
    as_user, admin_user, alice, django_capture_on_commit_callbacks
):
    fund(alice, "20")
    secret = services.token_purchase(user=alice, duration_hours=12).secret
    assert services.token_validate(secret) is not None  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(admin_user).patch(f"/api/v1/admin/users/{alice.pk}", {"is_active": False}, format="json")

    assert response.status_code == 200
    assert services.token_validate(secret) is None
    with django_capture_on_commit_callbacks(execute=True):
        as_user(admin_user).patch(f"/api/v1/admin/users/{alice.pk}", {"is_active": True}, format="json")
    assert services.token_validate(secret) is not None


def test_expired_token_is_never_served_from_cache(alice):
    fund(alice, "1")
    token = services.token_purchase(user=alice, duration_hours=1)
    with time_machine.travel(T0, tick=False):
        services.token_activate(token_id=token.pk)
        assert services.token_validate(token.secret).expires_at == T0 + dt.timedelta(hours=1)
    with time_machine.travel(T0 + dt.timedelta(minutes=59, seconds=59), tick=False):
        assert services.token_validate(token.secret) is not None
    with time_machine.travel(T0 + dt.timedelta(hours=1), tick=False):
        assert services.token_validate(token.secret) is None


def test_activation_keeps_the_first_time(alice):
    fund(alice, "1")
    token = services.token_purchase(user=alice, duration_hours=1)

    with time_machine.travel(T0, tick=False):
        first = services.token_activate(token_id=token.pk)
    with time_machine.travel(T0 + dt.timedelta(minutes=5), tick=False):
        second = services.token_activate(token_id=token.pk)

    assert first.activated_at == second.activated_at == T0
    assert AuditLog.objects.filter(action="token_activate").count() == 1


def test_revoked_token_cannot_be_activated(alice):
    fund(alice, "1")
    token = services.token_purchase(user=alice, duration_hours=1)
    services.token_revoke(user=alice, token_id=token.pk)

    assert services.token_activate(token_id=token.pk) is None
    token.refresh_from_db()
    assert token.activated_at is None


@pytest.mark.django_db(transaction=True)
def test_simultaneous_first_uses_activate_once(alice):
    fund(alice, "1")
    token = services.token_purchase(user=alice, duration_hours=1)
    results = []
    barrier = threading.Barrier(8)

    def use():
        barrier.wait()
        try:
            results.append(services.token_activate(token_id=token.pk).activated_at)
        finally:
            connection.close()

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 8
    assert len(set(results)) == 1
    assert AuditLog.objects.filter(action="token_activate").count() == 1


@pytest.mark.django_db(transaction=True)
def test_revoke_racing_first_use_never_gives_both(alice):
    for _ in range(10):
        fund(alice, "18")
        token = services.token_purchase(user=alice, duration_hours=24)
        outcome = {}
        barrier = threading.Barrier(2)

        def use(token_id=token.pk, outcome=outcome, barrier=barrier):
            barrier.wait()
            try:
                outcome["activated"] = services.token_activate(token_id=token_id)
            finally:
                connection.close()

        def revoke(token_id=token.pk, outcome=outcome, barrier=barrier):
            barrier.wait()
            try:
                outcome["refund"] = services.token_revoke(user=alice, token_id=token_id)[1]
            finally:
                connection.close()

        threads = [threading.Thread(target=use), threading.Thread(target=revoke)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        token.refresh_from_db()
        assert token.revoked_at is not None
        assert services.token_validate(token.secret) is None
        if outcome["activated"] is not None:
            # Activated first: the refund is pro rata, strictly below the price.
            assert outcome["refund"] < Decimal("18.00")
            assert token.activated_at is not None
        else:
            assert outcome["refund"] == Decimal("18.00")
            assert token.activated_at is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_purchases_race_for_the_last_znc(alice):
    fund(alice, "50")
    outcomes = []
    barrier = threading.Barrier(8)

    def buy():
        barrier.wait()
        try:
            services.token_purchase(user=User.objects.get(pk=alice.pk), duration_hours=12)
            outcomes.append("ok")
        except InsufficientFunds:
            outcomes.append("402")
        finally:
            connection.close()

    threads = [threading.Thread(target=buy) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["402"] * 3 + ["ok"] * 5
    assert AccessToken.objects.filter(user=alice).count() == 5
    assert balance(alice) == Decimal("0.00")


def test_status_progression(alice):
    fund(alice, "1")
    token = services.token_purchase(user=alice, duration_hours=1)
    assert token.status_at(T0) == "ready"
    with time_machine.travel(T0, tick=False):
        services.token_activate(token_id=token.pk)
    token.refresh_from_db()

    assert token.status_at(T0 + dt.timedelta(minutes=30)) == "active"
    assert token.seconds_left(T0 + dt.timedelta(minutes=30)) == 1800
    assert token.status_at(T0 + dt.timedelta(hours=1)) == "expired"
    assert timezone.is_aware(token.expires_at)
