from decimal import Decimal

from django.db.models import Sum

from accounts.models import User
from wallet.models import Transaction


def ledger_problems() -> tuple[list[str], int]:
    """Every breach of the ledger invariant, and the number of users checked.

    Per user: balance == sum(amounts), balance >= 0, rows numbered 1..n, and
    each row's balance_after == previous balance_after + amount.
    """
    problems = []
    sums = dict(Transaction.objects.values("user_id").annotate(total=Sum("amount")).values_list("user_id", "total"))
    users = 0
    for user_id, balance in User.objects.values_list("id", "balance").iterator():
        users += 1
        total = sums.get(user_id) or Decimal("0")
        if balance != total:
            problems.append(f"user {user_id}: balance {balance} != sum of transactions {total}")
        if balance < 0:
            problems.append(f"user {user_id}: negative balance {balance}")
    running: dict = {}
    rows = Transaction.objects.order_by("user_id", "seq").values_list("user_id", "seq", "amount", "balance_after")
    for user_id, seq, amount, balance_after in rows.iterator():
        previous_seq, previous_balance = running.get(user_id, (0, Decimal("0")))
        if seq != previous_seq + 1:
            problems.append(f"user {user_id}: row {seq} follows row {previous_seq}")
        if balance_after != previous_balance + amount:
            problems.append(f"user {user_id}: row {seq} balance_after {balance_after} != {previous_balance} + {amount}")
        running[user_id] = (seq, balance_after)
    return problems, users
