"""Reads of analytics shared by the API and the pages, by subject (user usage reads live in analytics.usage)."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from access.models import AccessToken
from accounts.models import User
from analytics.models import UsageDay
from proxy.models import ProxySession
from wallet.models import CENT, Payment, Transaction

# --- Business figures ---------------------------------------------------------------------------------
#
# What the owner looks at: the ledger's purchases, refunds and referral payouts, top-ups by currency, new
# users, proxy use (the UsageDay rollup), daily and monthly active users. Periods are those of the user usage
# API (analytics.usage): ``day`` is the last 24 hours from the start of the hour 23 hours ago, ``week`` and
# ``month`` the last 7 and 30 UTC days including today; every figure counts what happened from ``start_time``
# to ``end_time`` (now).
#
# - ``revenue_znc``: ZNC spent on purchases (the ``purchase`` ledger rows: tokens, bundles, renewals, premium
#   tier periods), as a positive amount; ``refunds_znc`` the ``refund`` rows; ``net_revenue_znc`` the
#   difference; ``referral_payouts_znc`` the ``referral_bonus`` rows. Adjustments and deposits are not revenue.
# - ``token_purchases``: access tokens issued by a purchase (each token of a bundle counts, gifts too; a renewal
#   extends a token and is not a new one).
# - ``topups_by_currency``: succeeded payments, by the currency paid, by when they succeeded (mock top-ups
#   have no payment and are not here).
# - ``total_proxy_requests`` and ``top_users``: for ``week`` and ``month`` the UsageDay rollup (whole UTC days);
#   for ``day`` the sessions last active in the period (a session's counters are totals, so a session counts
#   whole in its last hour, as analytics.usage does).
# - ``dau``: distinct users with proxy requests on today's UTC date; ``mau``: on the last 30 UTC dates (both
#   from UsageDay, at most one flush old). ``active_users_now``: users with an open session active within
#   SESSION_IDLE_TIMEOUT_SECONDS.
#
# Each function runs a fixed number of queries whatever the data (tests/analytics/test_global.py).

PERIODS = {"day": 1, "week": 7, "month": 30}
MAU_DAYS = 30
TOP_USERS = 10
DAILY_DAYS = 30
ZERO = Decimal("0.00")


def _money(value) -> Decimal:
    return (value or ZERO).quantize(CENT)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def period_bounds(*, period: str, now: datetime) -> tuple[datetime, datetime]:
    """``(start, end)`` of a rolling period, aligned as the user usage API aligns it. KeyError for another."""
    days = PERIODS[period]
    now = now.astimezone(UTC)
    if period == "day":
        return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23), now
    return _midnight(now.date() - timedelta(days=days - 1)), now


def _ledger_aggregates() -> dict:
    return {
        "purchases": Sum("amount", filter=Q(kind=Transaction.Kind.PURCHASE)),
        "refunds": Sum("amount", filter=Q(kind=Transaction.Kind.REFUND)),
        "referral": Sum("amount", filter=Q(kind=Transaction.Kind.REFERRAL_BONUS)),
    }


def _ledger_figures(row: dict) -> dict[str, Decimal]:
    revenue = -_money(row["purchases"])  # purchases are debits: revenue is their negation
    refunds = _money(row["refunds"])
    return {
        "revenue_znc": revenue,
        "refunds_znc": refunds,
        "net_revenue_znc": revenue - refunds,
        "referral_payouts_znc": _money(row["referral"]),
    }


def _top_users_of(rows) -> list[dict]:
    return [
        {
            "user_id": row["user_id"],
            "username": row["user__username"],
            "requests": row["requests"] or 0,
            "bytes": row["bytes"] or 0,
        }
        for row in rows
    ]


def _proxy_use(*, period: str, start: datetime, end: datetime, limit: int) -> tuple[int, list[dict]]:
    """Total requests in the period and the users with the most traffic (two queries)."""
    if period == "day":
        rows = ProxySession.objects.filter(last_activity__gte=start, last_activity__lte=end)
        requests, traffic = "request_count", F("bytes_in") + F("bytes_out")
    else:
        rows = UsageDay.objects.filter(date__gte=start.date(), date__lte=end.date())
        requests, traffic = "requests", F("bytes_in") + F("bytes_out")
    total = rows.aggregate(n=Sum(requests))["n"] or 0
    top = (
        rows.values("user_id", "user__username")
        .annotate(requests=Sum(requests), bytes=Sum(traffic))
        .order_by("-bytes", "-requests", "user__username")[:limit]
    )
    return total, _top_users_of(top)


def business_figures(*, period: str, now: datetime | None = None) -> dict:
    """The owner's figures over a rolling ``period`` (``day``, ``week``, ``month``; KeyError otherwise), as
    ``/api/v1/analytics/admin/global`` answers them (see the module docstring). Eight queries."""
    now = (now or timezone.now()).astimezone(UTC)
    start, end = period_bounds(period=period, now=now)
    ledger = Transaction.objects.filter(created_at__gte=start, created_at__lte=end).aggregate(**_ledger_aggregates())
    topups = (
        Payment.objects.filter(status=Payment.Status.SUCCEEDED, completed_at__gte=start, completed_at__lte=end)
        .values("currency")
        .annotate(count=Count("id"), amount=Sum("amount_money"), amount_znc=Sum("amount_znc"))
        .order_by("currency")
    )
    total_requests, top_users = _proxy_use(period=period, start=start, end=end, limit=TOP_USERS)
    today = now.date()
    active = UsageDay.objects.filter(date__gt=today - timedelta(days=MAU_DAYS), date__lte=today, requests__gt=0)
    users = active.aggregate(dau=Count("user", distinct=True, filter=Q(date=today)), mau=Count("user", distinct=True))
    idle_since = now - timedelta(seconds=settings.SESSION_IDLE_TIMEOUT_SECONDS)
    return {
        "period": period,
        "start_time": start,
        "end_time": end,
        "new_users": User.objects.filter(created_at__gte=start, created_at__lte=end).count(),
        "token_purchases": AccessToken.objects.filter(created_at__gte=start, created_at__lte=end).count(),
        **_ledger_figures(ledger),
        "topups_by_currency": [
            {
                "currency": row["currency"].upper(),
                "count": row["count"],
                "amount": _money(row["amount"]),
                "amount_znc": _money(row["amount_znc"]),
            }
            for row in topups
        ],
        "total_proxy_requests": total_requests,
        "active_users_now": ProxySession.objects.filter(ended_at__isnull=True, last_activity__gte=idle_since)
        .values("user_id")
        .distinct()
        .count(),
        "dau": users["dau"],
        "mau": users["mau"],
        "top_users": top_users,
    }


def business_daily(*, days: int = DAILY_DAYS, now: datetime | None = None) -> list[dict]:
    """One row per UTC day, the last ``days`` days including today, oldest first: ``date``, ``revenue_znc``,
    ``refunds_znc``, ``net_revenue_znc``, ``referral_payouts_znc``, ``new_users``, ``token_purchases``,
    ``proxy_requests``, ``proxy_bytes``, ``dau`` (distinct users with proxy requests that day). Days
    without anything are zero rows. Four queries whatever the data."""
    now = (now or timezone.now()).astimezone(UTC)
    first = now.date() - timedelta(days=days - 1)
    start = _midnight(first)
    ledger = {
        row["day"]: _ledger_figures(row)
        for row in Transaction.objects.filter(created_at__gte=start, created_at__lte=now)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(**_ledger_aggregates())
    }
    users = dict(
        User.objects.filter(created_at__gte=start, created_at__lte=now)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    tokens = dict(
        AccessToken.objects.filter(created_at__gte=start, created_at__lte=now)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    usage = {
        row["date"]: row
        for row in UsageDay.objects.filter(date__gte=first, date__lte=now.date())
        .values("date")
        .annotate(
            requests_sum=Sum("requests"),
            bytes_sum=Sum(F("bytes_in") + F("bytes_out")),
            users=Count("user", distinct=True, filter=Q(requests__gt=0)),
        )
    }
    empty = _ledger_figures({"purchases": None, "refunds": None, "referral": None})
    rows = []
    for n in range(days):
        day = first + timedelta(days=n)
        use = usage.get(day, {})
        rows.append(
            {
                "date": day,
                **ledger.get(day, empty),
                "new_users": users.get(day, 0),
                "token_purchases": tokens.get(day, 0),
                "proxy_requests": use.get("requests_sum") or 0,
                "proxy_bytes": use.get("bytes_sum") or 0,
                "dau": use.get("users") or 0,
            }
        )
    return rows


def top_users_by_traffic(*, days: int = DAILY_DAYS, limit: int = TOP_USERS, now: datetime | None = None) -> list[dict]:
    """The ``limit`` users with the most proxy traffic over the last ``days`` UTC days (UsageDay): rows of
    ``user_id``, ``username``, ``requests``, ``bytes``, most bytes first. One query."""
    now = (now or timezone.now()).astimezone(UTC)
    rows = (
        UsageDay.objects.filter(date__gte=now.date() - timedelta(days=days - 1), date__lte=now.date())
        .values("user_id", "user__username")
        .annotate(requests=Sum("requests"), bytes=Sum(F("bytes_in") + F("bytes_out")))
        .order_by("-bytes", "-requests", "user__username")[:limit]
    )
    return _top_users_of(rows)


def dashboard_charts(*, tokens_by_duration: list[dict], now: datetime | None = None) -> dict:
    """The admin dashboard's chart data, JSON-ready (numbers, epoch seconds): the daily figures of the last 30
    days (revenue, refunds, DAU, proxy requests), purchases by duration (``tokens_by_duration`` as the
    dashboard already has them: rows of ``label`` and ``month``) and the top 10 users by traffic. Five queries."""
    daily = business_daily(now=now)
    top = top_users_by_traffic(now=now)
    return {
        "days": [int(_midnight(row["date"]).timestamp()) for row in daily],
        "revenue": [float(row["revenue_znc"]) for row in daily],
        "refunds": [float(row["refunds_znc"]) for row in daily],
        "dau": [row["dau"] for row in daily],
        "requests": [row["proxy_requests"] for row in daily],
        "durations": {
            "labels": [str(row["label"]) for row in tokens_by_duration],
            "counts": [row["month"] for row in tokens_by_duration],
        },
        "top_users": {
            "labels": [row["username"] for row in top],
            "bytes": [row["bytes"] for row in top],
            "requests": [row["requests"] for row in top],
        },
    }
