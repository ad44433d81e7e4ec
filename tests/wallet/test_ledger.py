import threading
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from accounts.models import AuditLog, User
from tests.wallet.helpers import balance, fund
from wallet import services
from wallet.errors import InsufficientFunds, InvalidAmount
from wallet.models import Transaction

pytestmark = pytest.mark.django_db


def test_credit_and_debit_write_numbered_rows_with_running_balance(alice):
    first = services.balance_change(user_id=alice.pk, amount=Decimal("100"), kind="deposit", description="in")
    second = services.balance_change(user_id=alice.pk, amount=Decimal("-18.00"), kind="purchase", description="out")

    assert (first.seq, first.amount, first.balance_after) == (1, Decimal("100.00"), Decimal("100.00"))
    assert (second.seq, second.amount, second.balance_after) == (2, Decimal("-18.00"), Decimal("82.00"))
    assert balance(alice) == Decimal("82.00")


def test_overdraft_is_refused_and_writes_nothing(alice):
    fund(alice, "10")

    with pytest.raises(InsufficientFunds) as error:
        services.balance_change(user_id=alice.pk, amount=Decimal("-18"), kind="purchase", description="x")

    assert error.value.detail == "Insufficient balance. Required: 18.00 ZNC, Available: 10.00 ZNC"
    assert error.value.status_code == 402
    assert balance(alice) == Decimal("10.00")
    assert Transaction.objects.filter(user=alice).count() == 1


def test_zero_amount_is_refused(alice):
    with pytest.raises(InvalidAmount):
        services.balance_change(user_id=alice.pk, amount=Decimal("0"), kind="deposit", description="x")
    assert not Transaction.objects.exists()


def test_idempotency_key_returns_the_first_row(alice):
    one = services.balance_change(
        user_id=alice.pk, amount=Decimal("5"), kind="deposit", description="x", idempotency_key="k-1"
    )
    two = services.balance_change(
        user_id=alice.pk, amount=Decimal("5"), kind="deposit", description="x", idempotency_key="k-1"
    )

    assert one.pk == two.pk
    assert balance(alice) == Decimal("5.00")


def test_database_forbids_a_negative_balance(alice):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=alice.pk).update(balance=Decimal("-1"))


def test_database_forbids_a_second_deposit_for_one_payment(alice):
    services.balance_change(user_id=alice.pk, amount=Decimal("5"), kind="deposit", description="x", payment_id="P1")

    with pytest.raises(IntegrityError), transaction.atomic():
        services.balance_change(user_id=alice.pk, amount=Decimal("5"), kind="deposit", description="x", payment_id="P1")
    assert balance(alice) == Decimal("5.00")


def test_adjustment_writes_a_row_and_an_audit_entry(alice, admin_user):
    fund(alice, "50")
    actor = services.Actor(user=admin_user, ip="10.1.2.3", user_agent="admin-ui")

    entry = services.balance_adjust(user=alice, amount=Decimal("-20"), reason="Duplicate top-up", actor=actor)

    assert entry.kind == Transaction.Kind.ADJUSTMENT
    assert entry.description == "Adjustment: Duplicate top-up"
    assert entry.balance_after == Decimal("30.00")
    log = AuditLog.objects.get(action="balance_adjust")
    assert (log.user, str(log.ip_address), log.user_agent) == (admin_user, "10.1.2.3", "admin-ui")
    assert log.details == {"user_id": str(alice.pk), "amount": "-20.00", "reason": "Duplicate top-up"}


def test_adjustment_cannot_go_below_zero(alice, admin_user):
    fund(alice, "5")

    with pytest.raises(InsufficientFunds):
        services.balance_adjust(user=alice, amount=Decimal("-6"), reason="x", actor=services.Actor(user=admin_user))
    assert balance(alice) == Decimal("5.00")
    assert not AuditLog.objects.filter(action="balance_adjust").exists()


def test_balance_set_adjusts_by_the_difference(alice, admin_user):
    fund(alice, "40")

    entry = services.balance_set(user=alice, balance=Decimal("25.50"), reason="fix", actor=services.Actor())

    assert entry.amount == Decimal("-14.50")
    assert balance(alice) == Decimal("25.50")
    assert services.balance_set(user=alice, balance=Decimal("25.50"), reason="fix", actor=services.Actor()) is None


def test_wallet_audit_passes_on_a_consistent_ledger(alice, bob, capsys):
    fund(alice, "10")
    fund(bob, "3")

    call_command("wallet_audit")

    assert "Ledger consistent for 2 user(s)." in capsys.readouterr().out


def test_wallet_audit_fails_on_a_tampered_balance(alice):
    fund(alice, "10")
    User.objects.filter(pk=alice.pk).update(balance=Decimal("99"))

    with pytest.raises(CommandError, match="1 ledger problem"):
        call_command("wallet_audit")
    User.objects.filter(pk=alice.pk).update(balance=Decimal("10"))


def test_wallet_audit_fails_on_a_broken_chain(alice):
    fund(alice, "10")
    fund(alice, "5")
    Transaction.objects.filter(user=alice, seq=2).update(balance_after=Decimal("16"))

    with pytest.raises(CommandError):
        call_command("wallet_audit")
    Transaction.objects.filter(user=alice, seq=2).update(balance_after=Decimal("15"))


@pytest.mark.django_db(transaction=True)
def test_concurrent_debits_never_overdraw(alice):
    fund(alice, "70")
    outcomes: list[str] = []
    barrier = threading.Barrier(20)

    def debit():
        barrier.wait()
        try:
            services.balance_change(user_id=alice.pk, amount=Decimal("-10"), kind="purchase", description="race")
            outcomes.append("ok")
        except InsufficientFunds as exc:
            outcomes.append(exc.detail)
        finally:
            connection.close()

    threads = [threading.Thread(target=debit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("ok") == 7
    assert outcomes.count("Insufficient balance. Required: 10.00 ZNC, Available: 0.00 ZNC") == 13
    assert balance(alice) == Decimal("0.00")
    assert Transaction.objects.filter(user=alice, kind="purchase").count() == 7
    call_command("wallet_audit")


def test_saving_a_stale_user_object_keeps_the_ledger_balance(alice):
    stale = User.objects.get(pk=alice.pk)
    fund(alice, "25")

    stale.full_name = "Renamed while a deposit landed"
    stale.save()

    assert balance(alice) == Decimal("25.00")
    assert User.objects.get(pk=alice.pk).full_name == "Renamed while a deposit landed"
