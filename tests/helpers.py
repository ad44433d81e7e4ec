import threading
from decimal import Decimal

from django.db import connection

from accounts.models import User
from wallet.services import balance_change


def fund(user, amount: str) -> None:
    """Give ``user`` ZNC through the ledger, as a deposit."""
    balance_change(user_id=user.pk, amount=Decimal(amount), kind="deposit", description="Test funding")
    user.refresh_from_db()


def balance(user) -> Decimal:
    return User.objects.values_list("balance", flat=True).get(pk=user.pk)


def assert_ledger_consistent() -> None:
    """The whole ledger passes the same audit as ``manage.py wallet_audit``."""
    from wallet.selectors import ledger_problems

    problems, _users = ledger_problems()
    assert problems == []


def html(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    """The texts of the messages a portal page shows."""
    return [str(m) for m in response.context["messages"]]


def run_at_once(calls) -> tuple[list, list]:
    """Run each callable in its own thread, all released together by a barrier (two workers, ten clicks).

    Returns (results, errors) in completion order; each thread closes its database connection.
    """
    barrier = threading.Barrier(len(calls))
    results, errors = [], []

    def worker(call):
        try:
            barrier.wait()
            results.append(call())
        except Exception as exc:  # reported to the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors
