"""Writes of analytics: the daily usage rollup kept from the proxy's session counters.

The proxy's flush (``proxy.services.sessions_flush``, every SESSION_FLUSH_SECONDS) writes absolute counters to
ProxySession rows and sends ``proxy.signals.sessions_flushed``; ``usage_rollup`` (connected in
``analytics.apps``) turns them into SessionDay and UsageDay rows. Every value written is absolute, recomputed
from the rows, so a rollup run twice, or by two workers at once, writes the same numbers.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from analytics.models import SessionDay, UsageDay
from proxy.models import ProxySession

# A session longer than this many days (impossible with the idle timeout, but rows can be edited) gets
# session seconds on its last MAX_SESSION_DAYS days only.
MAX_SESSION_DAYS = 31
USAGE_DAY_FIELDS = ["user", "requests", "bytes_in", "bytes_out", "sessions_started", "session_seconds", "updated_at"]


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _overlap_seconds(session: ProxySession, day: date) -> int:
    """Seconds of started_at..last_activity that fall on the UTC ``day``."""
    start, end = _day_bounds(day)
    lo, hi = max(session.started_at, start), min(session.last_activity, end)
    return max(0, int((hi - lo).total_seconds()))


def _session_days(session: ProxySession) -> list[date]:
    first, last = session.started_at.astimezone(UTC).date(), session.last_activity.astimezone(UTC).date()
    first = min(max(first, last - timedelta(days=MAX_SESSION_DAYS - 1)), last)  # edited rows: never no day
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@transaction.atomic
def usage_rollup(*, session_ids: Iterable) -> int:
    """Rewrite the SessionDay rows of these sessions and the UsageDay rows of their (token, day)s.

    Keeps: for each session, the sum of its SessionDay rows == its counters (request_count, bytes_in,
    bytes_out); the day of ``last_activity`` (UTC) holds what the earlier days don't, so traffic flushed
    after midnight lands on the new day and the earlier days keep what they had. Each SessionDay's
    ``seconds`` is the session's overlap (started_at..last_activity) with that day. Each UsageDay is the
    sum of the SessionDay rows of its token's sessions that day, and ``sessions_started`` counts the
    token's sessions that started that day. Returns the number of UsageDay rows written.
    """
    ids = sorted({str(pk) for pk in session_ids})
    if not ids:
        return 0
    tokens = sorted({str(t) for t in ProxySession.objects.filter(pk__in=ids).values_list("token_id", flat=True)})
    if not tokens:
        return 0
    # One rollup per token at a time (advisory locks, in a fixed order so two workers cannot deadlock):
    # a worker rewriting a token's day reads the SessionDay rows the other one has already committed.
    # SQLite (the embedded default) has one writer at a time anyway.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext('analytics.usage:' || t)) FROM unnest(%s::text[]) AS t "
                "ORDER BY t",
                [tokens],
            )
    sessions = list(ProxySession.objects.filter(pk__in=ids).order_by("pk"))
    earlier: dict[str, list[dict]] = {}
    for row in SessionDay.objects.filter(session__in=sessions).values(
        "session_id", "date", "requests", "bytes_in", "bytes_out"
    ):
        earlier.setdefault(str(row["session_id"]), []).append(row)

    rows_today, rows_before, pairs = [], [], set()
    for session in sessions:
        days = _session_days(session)
        today = days[-1]
        held = {"requests": 0, "bytes_in": 0, "bytes_out": 0}
        for row in earlier.get(str(session.pk), []):
            if row["date"] < today:
                for field in held:
                    held[field] += row[field]
        for day in days[:-1]:
            rows_before.append(SessionDay(session=session, date=day, seconds=_overlap_seconds(session, day)))
        rows_today.append(
            SessionDay(
                session=session,
                date=today,
                requests=max(0, session.request_count - held["requests"]),
                bytes_in=max(0, session.bytes_in - held["bytes_in"]),
                bytes_out=max(0, session.bytes_out - held["bytes_out"]),
                seconds=_overlap_seconds(session, today),
            )
        )
        pairs.update((session.token_id, day) for day in days)
    if rows_before:  # earlier days: only their seconds can still change (the session ran past midnight)
        SessionDay.objects.bulk_create(
            rows_before, update_conflicts=True, unique_fields=["session", "date"], update_fields=["seconds"]
        )
    SessionDay.objects.bulk_create(
        rows_today,
        update_conflicts=True,
        unique_fields=["session", "date"],
        update_fields=["requests", "bytes_in", "bytes_out", "seconds"],
    )
    return usage_days_recompute(pairs=pairs, users={s.token_id: s.user_id for s in sessions})


def usage_days_recompute(*, pairs: set[tuple], users: dict | None = None) -> int:
    """Rewrite UsageDay for each (token_id, date) in ``pairs`` from the SessionDay and ProxySession rows.

    ``users`` maps token ids to the user the row belongs to (the sessions' user); tokens missing from it
    take the user of their sessions that day.
    """
    if not pairs:
        return 0
    tokens = {token for token, _ in pairs}
    dates = {day for _, day in pairs}
    sums = (
        SessionDay.objects.filter(session__token_id__in=tokens, date__in=dates)
        .values("session__token_id", "date")
        .annotate(
            requests=Sum("requests"),
            bytes_in=Sum("bytes_in"),
            bytes_out=Sum("bytes_out"),
            seconds=Sum("seconds"),
        )
    )
    totals = {(row["session__token_id"], row["date"]): row for row in sums}
    started = (
        ProxySession.objects.filter(token_id__in=tokens)
        .annotate(day=TruncDate("started_at", tzinfo=UTC))
        .filter(day__in=dates)
        .values("token_id", "day", "user_id")
        .annotate(n=Count("pk"))
    )
    counts: dict[tuple, int] = {}
    owners = dict(users or {})
    for row in started:
        counts[(row["token_id"], row["day"])] = counts.get((row["token_id"], row["day"]), 0) + row["n"]
        owners.setdefault(row["token_id"], row["user_id"])
    missing = tokens - owners.keys()
    if missing:
        owners.update(ProxySession.objects.filter(token_id__in=missing).values_list("token_id", "user_id").distinct())
    rows = []
    for token, day in sorted(pairs, key=lambda pair: (str(pair[0]), pair[1])):
        total = totals.get((token, day), {})
        rows.append(
            UsageDay(
                user_id=owners[token],
                token_id=token,
                date=day,
                requests=total.get("requests") or 0,
                bytes_in=total.get("bytes_in") or 0,
                bytes_out=total.get("bytes_out") or 0,
                session_seconds=total.get("seconds") or 0,
                sessions_started=counts.get((token, day), 0),
            )
        )
    UsageDay.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["token", "date"],
        update_fields=USAGE_DAY_FIELDS,
    )
    return len(rows)


def usage_rollup_on_flush(sender, *, session_ids, **kwargs) -> None:
    """Receiver of ``proxy.signals.sessions_flushed`` (connected in ``analytics.apps``)."""
    usage_rollup(session_ids=session_ids)
