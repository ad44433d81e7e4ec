"""Reads of one user's own usage (the API ``/api/v1/analytics/usage`` and the ``/usage/`` page).

Periods are rolling and aligned to whole UTC hours or days: ``day`` is the last 24 hours (the current
hour and the 23 before it, one series point per hour), ``week`` and ``month`` are the last 7 and 30 UTC
days including today (one point per day). Empty hours and days are zero points.

Figures are as fresh as the proxy's last flush of the session counters (every SESSION_FLUSH_SECONDS,
10 s): the live counters in Redis are not added (reading them means scanning every open session's
state), so a figure is at most about 10 s old.

Where the numbers come from:
- ``week``/``month``: the UsageDay rollup (``analytics.services.usage_rollup``); ``sessions`` of a day
  are the sessions started that day.
- ``day``: the ProxySession rows themselves, because the rollup is daily. A session's traffic is counted
  in the hour of its last activity (the counters are totals per session), so a long session shows whole
  in its latest hour; ``sessions`` of an hour are the sessions started in it.
- ``total_sessions`` and ``avg_session_duration_minutes``: the sessions started in the period, and their
  average time from start to last activity. ``active_sessions``: the open ones now;
  ``active_tokens``: tokens activated and neither expired nor revoked.
"""

import uuid
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Avg, Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from access.models import AccessToken
from access.selectors import usable_tokens
from accounts.models import User
from analytics.models import UsageDay
from proxy.models import ProxySession

PERIODS = {"day": 1, "week": 7, "month": 30}
SESSIONS_SHOWN = 50


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _point(t: datetime, requests=0, bytes_=0, sessions=0) -> dict:
    return {"t": t, "requests": requests or 0, "bytes": bytes_ or 0, "sessions": sessions or 0}


def usage_of(*, user: User, period: str, token: AccessToken | None = None, now: datetime | None = None) -> dict:
    """The usage of ``user`` (only their own sessions) over a rolling ``period`` (``day``, ``week``, ``month``),
    optionally of one of their tokens: totals, a series and the split by token, as the API answers it.

    Raises KeyError for another period. Fixed number of queries whatever the data (five).
    """
    days = PERIODS[period]
    now = (now or timezone.now()).astimezone(UTC)
    sessions = ProxySession.objects.filter(user=user)
    if token is not None:
        sessions = sessions.filter(token=token)
    if period == "day":
        start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
        series, by_token = _hourly(sessions, start=start, now=now)
    else:
        first = now.date() - timedelta(days=days - 1)
        start = _midnight(first)
        rows = UsageDay.objects.filter(user=user, date__gte=first, date__lte=now.date())
        if token is not None:
            rows = rows.filter(token=token)
        series, by_token = _daily(rows, first=first, days=days)
    started = sessions.filter(started_at__gte=start, started_at__lte=now).aggregate(
        n=Count("pk"), avg=Avg(F("last_activity") - F("started_at"))
    )
    tokens = usable_tokens(AccessToken.objects.filter(user=user, activated_at__isnull=False))
    if token is not None:
        tokens = tokens.filter(pk=token.pk)
    avg = started["avg"]
    return {
        "period": period,
        "start_time": start,
        "end_time": now,
        "total_requests": sum(p["requests"] for p in series),
        "total_bytes_transferred": sum(p["bytes"] for p in series),
        "total_sessions": started["n"],
        "active_sessions": sessions.filter(ended_at__isnull=True).count(),
        "active_tokens": tokens.count(),
        "avg_session_duration_minutes": round(avg.total_seconds() / 60, 1) if avg else 0.0,
        "series": series,
        "by_token": by_token,
    }


def _daily(rows: QuerySet[UsageDay], *, first: date, days: int) -> tuple[list[dict], list[dict]]:
    per_day = {
        row["date"]: row
        for row in rows.values("date").annotate(
            requests=Sum("requests"), bytes=Sum(F("bytes_in") + F("bytes_out")), sessions=Sum("sessions_started")
        )
    }
    series = []
    for n in range(days):
        day = first + timedelta(days=n)
        row = per_day.get(day, {})
        series.append(_point(_midnight(day), row.get("requests"), row.get("bytes"), row.get("sessions")))
    by_token = [
        {
            "token_id": row["token_id"],
            "prefix": row["token__secret_prefix"],
            "requests": row["requests"] or 0,
            "bytes": row["bytes"] or 0,
            "sessions": row["sessions"] or 0,
        }
        for row in rows.values("token_id", "token__secret_prefix")
        .annotate(requests=Sum("requests"), bytes=Sum(F("bytes_in") + F("bytes_out")), sessions=Sum("sessions_started"))
        .order_by("-requests", "token__secret_prefix")
    ]
    return series, by_token


def _hourly(sessions: QuerySet[ProxySession], *, start: datetime, now: datetime) -> tuple[list[dict], list[dict]]:
    # One grouped query: per hour and token, the traffic of sessions last active in that hour and the
    # number of sessions started in it (the two buckets of a session can differ).
    in_window = Q(last_activity__gte=start, last_activity__lte=now)
    began = Q(started_at__gte=start, started_at__lte=now)
    rows = (
        sessions.filter(in_window | began)
        .annotate(hour=TruncHour("last_activity", tzinfo=UTC), began_hour=TruncHour("started_at", tzinfo=UTC))
        .values("hour", "began_hour", "token_id", "token__secret_prefix")
        .annotate(
            requests=Sum("request_count", filter=in_window),
            bytes=Sum(F("bytes_in") + F("bytes_out"), filter=in_window),
            active=Count("pk", filter=in_window),
            started=Count("pk", filter=began),
        )
    )
    hours = [start + timedelta(hours=n) for n in range(24)]
    series = {hour: _point(hour) for hour in hours}
    tokens: dict = {}
    for row in rows:
        if row["active"]:
            point = series.get(row["hour"])
            if point is not None:
                point["requests"] += row["requests"] or 0
                point["bytes"] += row["bytes"] or 0
            entry = tokens.setdefault(
                row["token_id"],
                {"token_id": row["token_id"], "prefix": row["token__secret_prefix"], "requests": 0, "bytes": 0},
            )
            entry["requests"] += row["requests"] or 0
            entry["bytes"] += row["bytes"] or 0
            entry["sessions"] = entry.get("sessions", 0) + row["active"]
        if row["started"] and row["began_hour"] in series:
            series[row["began_hour"]]["sessions"] += row["started"]
    by_token = sorted(
        ({"sessions": 0, **entry} for entry in tokens.values()), key=lambda e: (-e["requests"], e["prefix"])
    )
    return [series[hour] for hour in hours], by_token


def sessions_of(*, user: User, token: AccessToken | None = None, limit: int = SESSIONS_SHOWN) -> list[ProxySession]:
    """The user's latest device sessions (newest first), with their token, at most ``limit``."""
    sessions = ProxySession.objects.filter(user=user).select_related("token").order_by("-started_at")
    if token is not None:
        sessions = sessions.filter(token=token)
    return list(sessions[:limit])


def own_token(*, user: User, token_id) -> AccessToken | None:
    """The user's token with this id (a UUID or its text), or None: unknown, malformed or someone else's."""
    try:
        pk = token_id if isinstance(token_id, uuid.UUID) else uuid.UUID(str(token_id))
    except (ValueError, AttributeError):
        return None
    return AccessToken.objects.filter(pk=pk, user=user).first()
