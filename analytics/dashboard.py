"""The operator dashboard's figures: revenue and usage today and over 30 days, the current state, health.

A selector (reads only), shown on the Django admin index by analytics.admin.
Periods: "today" starts at UTC midnight, "30 days" is the rolling 30 days (720 h)
before ``now``; both end at ``now``. Each group of figures is one aggregate
query, so the cost does not grow with the data (see tests/analytics/test_dashboard.py).
"""

import datetime as dt
import logging
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from access.models import AccessToken
from access.prices import duration_label
from access.selectors import usable_tokens
from accounts.models import User
from proxy.models import ProxySession
from wallet.currencies import CURRENCIES
from wallet.models import CENT, Payment, Transaction
from zenzefi.health import HEALTH_KEY

logger = logging.getLogger(__name__)

PERIOD_DAYS = 30
ZERO = Decimal("0.00")
# The report is refreshed every HEALTH_CHECK_INTERVAL s; /health re-checks after 2.4 intervals (zenzefi.health).
HEALTH_STALE_INTERVALS = 2.4
# Status words of zenzefi.health, with a label and a tone (ok / warn / bad) for the page.
HEALTH_STATUSES = {
    "healthy": (_("Healthy"), "ok"),
    "degraded": (_("Degraded"), "warn"),
    "unhealthy": (_("Unhealthy"), "bad"),
    "up": (_("Up"), "ok"),
    "down": (_("Down"), "bad"),
}
HEALTH_CHECKS = {"database": _("Database"), "redis": _("Redis"), "cache": _("Cache"), "zenzefi": _("Zenzefi")}
# The embedded default's shared cache (no Redis), by the backend its check reports (zenzefi.health).
CACHE_LABELS = {"database": _("Cache (database)"), "file": _("Cache (files)")}


def _sum(value) -> Decimal:
    return (value or ZERO).quantize(CENT)


def _period_bounds(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    today = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today, now - dt.timedelta(days=PERIOD_DAYS)


def _ledger(now: dt.datetime, today: dt.datetime, month: dt.datetime) -> dict[str, dict]:
    kinds = {
        "deposited_znc": Transaction.Kind.DEPOSIT,
        "spent_znc": Transaction.Kind.PURCHASE,
        "refunded_znc": Transaction.Kind.REFUND,
    }
    aggregates = {}
    for name, kind in kinds.items():
        aggregates[f"today_{name}"] = Sum("amount", filter=Q(kind=kind, created_at__gte=today))
        aggregates[f"month_{name}"] = Sum("amount", filter=Q(kind=kind))
    row = Transaction.objects.filter(created_at__gte=month, created_at__lte=now).aggregate(**aggregates)
    periods = {}
    for period in ("today", "month"):
        deposited = _sum(row[f"{period}_deposited_znc"])
        periods[period] = {
            "deposited_znc": deposited,
            "deposited_rub": (deposited * settings.ZNC_TO_RUB_RATE).quantize(CENT),
            "spent_znc": -_sum(row[f"{period}_spent_znc"]),  # purchases are debits: shown as a positive amount
            "refunded_znc": _sum(row[f"{period}_refunded_znc"]),
        }
    return periods


def _paid(now: dt.datetime, today: dt.datetime, month: dt.datetime) -> tuple[dict[str, dict[str, Decimal]], int]:
    """Money actually received, per currency, by when the payment succeeded (mock top-ups have no payment),
    and the number of mismatched payments (all of them: each waits for support, whatever its age).

    One query: the mismatched rows ride along with the period's succeeded ones.
    """
    succeeded = Q(status=Payment.Status.SUCCEEDED)
    rows = (
        Payment.objects.filter(
            (succeeded & Q(completed_at__gte=month, completed_at__lte=now)) | Q(status=Payment.Status.MISMATCH)
        )
        .values("currency")
        .annotate(
            today=Sum("amount_money", filter=succeeded & Q(completed_at__gte=today)),
            month=Sum("amount_money", filter=succeeded),
            mismatched=Count("id", filter=Q(status=Payment.Status.MISMATCH)),
        )
        .order_by("currency")
    )
    # Every currency a top-up can be paid in is listed, at zero when nothing came in.
    paid = {period: dict.fromkeys(CURRENCIES, ZERO) for period in ("today", "month")}
    mismatched = 0
    for row in rows:
        currency = row["currency"].upper()
        mismatched += row["mismatched"]
        for period in ("today", "month"):
            paid[period][currency] = paid[period].get(currency, ZERO) + _sum(row[period])
    return paid, mismatched


def _tokens_sold(now: dt.datetime, today: dt.datetime, month: dt.datetime) -> list[dict]:
    rows = (
        AccessToken.objects.filter(created_at__gte=month, created_at__lte=now)
        .values("duration_hours")
        .annotate(
            today=Count("id", filter=Q(created_at__gte=today)),
            month=Count("id"),
            month_bundled=Count("id", filter=Q(bundle__isnull=False)),
        )
        .order_by("duration_hours")
    )
    return [
        {
            "duration_hours": row["duration_hours"],
            "label": duration_label(row["duration_hours"]),
            "today": row["today"],
            "month": row["month"],
            "month_bundled": row["month_bundled"],
        }
        for row in rows
    ]


def _users(now: dt.datetime, today: dt.datetime, month: dt.datetime) -> dict[str, int]:
    return User.objects.aggregate(
        total=Count("id"),
        today=Count("id", filter=Q(created_at__gte=today, created_at__lte=now)),
        month=Count("id", filter=Q(created_at__gte=month, created_at__lte=now)),
    )


def _health_status(status: str | None) -> dict:
    label, tone = HEALTH_STATUSES.get(status or "", (status or _("Unknown"), "unknown"))
    return {"status": status, "status_label": label, "tone": tone}


def _checked_at(report: dict) -> dt.datetime | None:
    """When the report was made: its epoch ``checked_at``, else its ISO ``timestamp``; None if neither parses."""
    try:
        if report.get("checked_at") is not None:
            return dt.datetime.fromtimestamp(float(report["checked_at"]), tz=dt.UTC)
        moment = dt.datetime.fromisoformat(str(report["timestamp"]))
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _check_label(name: str, check: dict):
    if name == "cache":
        return CACHE_LABELS.get(check.get("backend"), HEALTH_CHECKS["cache"])
    return HEALTH_CHECKS.get(name, name)


def _health(now: dt.datetime) -> dict | None:
    """The report the beat task cached, or None. Never runs the checks: a dashboard view must stay fast."""
    try:
        report = cache.get(HEALTH_KEY)
    except Exception:  # the cache (Redis, or the database table) is down: the page still renders, without health
        logger.warning("could not read the health report")
        report = None
    if not isinstance(report, dict) or "status" not in report:
        return None
    checked_at = _checked_at(report)
    max_age = dt.timedelta(seconds=settings.HEALTH_CHECK_INTERVAL * HEALTH_STALE_INTERVALS)
    checks = [
        {
            "name": name,
            "label": _check_label(name, check),
            **_health_status(check.get("status")),
            "latency_ms": check.get("latency_ms"),
            "error": check.get("error"),
        }
        for name, check in (report.get("checks") or {}).items()
        if isinstance(check, dict)
    ]
    return {
        **_health_status(report["status"]),
        "checked_at": checked_at,
        "age_seconds": max(0, int((now - checked_at).total_seconds())) if checked_at else None,
        "stale": checked_at is None or now - checked_at > max_age,
        "checks": checks,
    }


def dashboard_figures(*, now: dt.datetime | None = None) -> dict:
    """Revenue and usage for today (since UTC midnight) and the last 30 days, the current state, and health.

    Returns ``today`` and ``month`` (each: ``deposited_znc``, ``deposited_rub`` at
    ZNC_TO_RUB_RATE, ``paid`` = money from succeeded payments per currency (every
    one of wallet.currencies.CURRENCIES present, RUB first), ``spent_znc``
    (purchases, positive), ``refunded_znc``, ``new_users``, ``tokens_sold``);
    ``tokens_by_duration`` (rows of ``duration_hours``, ``label``, ``today``,
    ``month``, ``month_bundled``, bundle tokens included); ``tokens_active``
    (usable: not revoked, not expired), ``tokens_running`` (of those, activated),
    ``sessions_open``, ``users_total``, ``paid_by_currency`` (the same ``paid``,
    as rows of ``currency``, ``today``, ``month``), ``payments_mismatched``
    (payments whose provider reported another amount or currency: nothing
    credited, waiting for support); ``health`` (the cached report, or None before
    the first check). ``now`` moves the period boundaries; the current figures
    are always as of the clock (access.selectors.usable_tokens reads it). Seven queries
    whatever the data.
    """
    now = now or timezone.now()
    today, month = _period_bounds(now)
    periods = _ledger(now, today, month)
    paid, mismatched = _paid(now, today, month)
    tokens_by_duration = _tokens_sold(now, today, month)
    users = _users(now, today, month)
    for period in ("today", "month"):
        periods[period]["paid"] = paid[period]
        periods[period]["new_users"] = users[period]
        periods[period]["tokens_sold"] = sum(row[period] for row in tokens_by_duration)
    tokens = usable_tokens().aggregate(active=Count("id"), running=Count("id", filter=Q(activated_at__isnull=False)))
    return {
        "now": now,
        "today_start": today,
        "month_start": month,
        "period_days": PERIOD_DAYS,
        "today": periods["today"],
        "month": periods["month"],
        "tokens_by_duration": tokens_by_duration,
        "tokens_active": tokens["active"],
        "tokens_running": tokens["running"],
        "sessions_open": ProxySession.objects.filter(ended_at__isnull=True).count(),
        "users_total": users["total"],
        "paid_by_currency": [
            {"currency": currency, "today": paid["today"][currency], "month": amount}
            for currency, amount in paid["month"].items()
        ],
        "payments_mismatched": mismatched,
        "health": _health(now),
    }
