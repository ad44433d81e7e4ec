"""User-facing usage analytics: the daily rollup from the proxy's flush, the usage API and the Usage page."""

import datetime as dt
import io
import time
import uuid

import httpx
import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from access import services as access
from access.models import AccessToken
from accounts.models import User
from analytics.models import SessionDay, UsageDay
from analytics.services import usage_rollup
from proxy.models import ProxySession
from proxy.services import sessions_flush
from proxy.signals import sessions_flushed
from tests.helpers import fund, html, run_at_once

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 6, 15, 12, 0, tzinfo=dt.UTC)
URL = "/api/v1/analytics/usage"


def at(moment: dt.datetime):
    return time_machine.travel(moment, tick=False)


def buy(user, hours=24):
    # JWTs are issued at T0 (time_machine), which must come after the password was set.
    User.objects.filter(pk=user.pk).update(password_changed_at=T0 - dt.timedelta(days=60))
    fund(user, "500")
    return access.token_purchase(user=user, duration_hours=hours, scope="full")


def session_of(token, *, started, last, requests=0, bytes_in=0, bytes_out=0, ended=None, device="pc-0001"):
    return ProxySession.objects.create(
        token=token,
        user=token.user,
        device_id=device,
        ip_address="10.0.0.7",
        started_at=started,
        last_activity=last,
        ended_at=ended,
        request_count=requests,
        bytes_in=bytes_in,
        bytes_out=bytes_out,
    )


def flush_signal(*sessions):
    """What proxy.services.sessions_flush sends after writing the counters."""
    sessions_flushed.send_robust(sender=ProxySession, session_ids=[str(s.pk) for s in sessions])


def usage_day(token, day):
    return UsageDay.objects.get(token=token, date=day)


# --- the rollup -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_proxys_flush_run_twice_rolls_up_the_sessions_counters_once(gate, upstream, alice):
    token = buy(alice)
    with httpx.Client(base_url=gate.url + "/api/v1/proxy", timeout=30) as http:
        headers = {"X-Access-Token": token.secret, "X-Device-ID": "workshop-pc-0001"}
        for _ in range(3):
            assert http.get("/echo", headers=headers).status_code == 200
        assert http.get("/large?kb=32", headers=headers).status_code == 200
    time.sleep(1.3)  # the proxy adds byte counts to Redis once a second

    sessions_flush()
    sessions_flush()

    session = ProxySession.objects.get(token=token)
    today = session.last_activity.astimezone(dt.UTC).date()
    assert session.request_count == 4 and session.bytes_out > 32 * 1024
    day = usage_day(token, today)
    assert (day.user_id, day.requests, day.bytes_in, day.bytes_out, day.sessions_started) == (
        alice.pk,
        4,
        session.bytes_in,
        session.bytes_out,
        1,
    )
    assert day.session_seconds == int((session.last_activity - session.started_at).total_seconds())
    assert SessionDay.objects.filter(session=session).count() == 1
    assert UsageDay.objects.count() == 1


def test_a_rollup_sent_twice_equals_the_sum_of_the_sessions_counters(alice):
    token = buy(alice)
    started = T0 - dt.timedelta(hours=3)
    first = session_of(
        token,
        started=started,
        last=started + dt.timedelta(minutes=20),
        requests=40,
        bytes_in=4_000,
        bytes_out=90_000,
        ended=started + dt.timedelta(minutes=25),
    )
    second = session_of(
        token,
        started=T0 - dt.timedelta(minutes=30),
        last=T0,
        requests=7,
        bytes_in=700,
        bytes_out=9_000,
        device="pc-0002",
    )

    flush_signal(first, second)
    flush_signal(first, second)

    day = usage_day(token, T0.date())
    assert (day.requests, day.bytes_in, day.bytes_out, day.sessions_started) == (47, 4_700, 99_000, 2)
    assert day.session_seconds == 20 * 60 + 30 * 60
    assert UsageDay.objects.count() == 1 and SessionDay.objects.count() == 2


def test_traffic_across_midnight_utc_lands_on_both_days_and_sums_to_the_sessions_totals(alice):
    token = buy(alice)
    evening = dt.datetime(2025, 6, 14, 23, 50, tzinfo=dt.UTC)
    with at(dt.datetime(2025, 6, 14, 23, 59, 55, tzinfo=dt.UTC)):
        session = session_of(
            token,
            started=evening,
            last=evening + dt.timedelta(minutes=9, seconds=50),
            requests=10,
            bytes_in=1_000,
            bytes_out=50_000,
        )
        flush_signal(session)
    with at(dt.datetime(2025, 6, 15, 0, 0, 25, tzinfo=dt.UTC)):
        ProxySession.objects.filter(pk=session.pk).update(
            last_activity=dt.datetime(2025, 6, 15, 0, 0, 20, tzinfo=dt.UTC),
            request_count=25,
            bytes_in=2_500,
            bytes_out=80_000,
        )
        flush_signal(session)
        flush_signal(session)

    before, after = usage_day(token, dt.date(2025, 6, 14)), usage_day(token, dt.date(2025, 6, 15))
    assert (before.requests, before.bytes_in, before.bytes_out) == (10, 1_000, 50_000)
    assert (after.requests, after.bytes_in, after.bytes_out) == (15, 1_500, 30_000)
    assert before.requests + after.requests == 25
    assert before.bytes_in + after.bytes_in == 2_500 and before.bytes_out + after.bytes_out == 80_000
    # The session's time is split at midnight; it started on the first day only.
    assert (before.session_seconds, after.session_seconds) == (600, 20)
    assert (before.sessions_started, after.sessions_started) == (1, 0)
    totals = SessionDay.objects.filter(session=session).aggregate(r=Sum("requests"), s=Sum("seconds"))
    assert totals == {"r": 25, "s": 620}


def test_a_session_flushed_late_keeps_its_earlier_days_and_the_rollup_of_other_users_apart(alice, bob):
    mine, theirs = buy(alice), buy(bob)
    a = session_of(mine, started=T0, last=T0 + dt.timedelta(minutes=1), requests=3)
    b = session_of(theirs, started=T0, last=T0 + dt.timedelta(minutes=2), requests=5)

    usage_rollup(session_ids=[a.pk, b.pk, uuid.uuid4()])  # an unknown id is ignored

    assert usage_day(mine, T0.date()).user_id == alice.pk and usage_day(mine, T0.date()).requests == 3
    assert usage_day(theirs, T0.date()).user_id == bob.pk and usage_day(theirs, T0.date()).requests == 5


@pytest.mark.django_db(transaction=True)
def test_two_workers_rolling_up_the_same_sessions_write_the_same_rows(alice):
    token = buy(alice)
    sessions = [
        session_of(
            token,
            started=T0 + dt.timedelta(minutes=i),
            last=T0 + dt.timedelta(minutes=i, seconds=30),
            requests=i + 1,
            bytes_out=100,
            ended=T0 + dt.timedelta(minutes=i, seconds=31),
            device=f"pc-{i}",
        )
        for i in range(20)
    ]
    ids = [s.pk for s in sessions]
    _results, errors = run_at_once([lambda: usage_rollup(session_ids=ids)] * 2)

    assert errors == []
    day = usage_day(token, T0.date())
    assert (day.requests, day.bytes_out, day.sessions_started, day.session_seconds) == (210, 2_000, 20, 600)
    assert SessionDay.objects.count() == 20 and UsageDay.objects.count() == 1


def test_the_rebuild_command_rewrites_lost_rollup_rows(alice):
    token = buy(alice)
    now = timezone.now()
    session = session_of(token, started=now - dt.timedelta(minutes=5), last=now, requests=9, bytes_in=90)
    flush_signal(session)
    UsageDay.objects.all().delete()
    out = io.StringIO()

    call_command("usage_rollup", "--days", "2", stdout=out)

    assert "Rolled up 1 session(s)" in out.getvalue()
    day = usage_day(token, now.astimezone(dt.UTC).date())
    assert (day.requests, day.bytes_in, day.sessions_started) == (9, 90, 1)


# --- the usage API ------------------------------------------------------------------------------


@pytest.fixture
def two_users(alice, bob):
    mine, theirs = buy(alice), buy(bob)
    # Alice's token is running; Bob's was never activated.
    running = {"activated_at": T0 - dt.timedelta(days=3), "expires_at": T0 + dt.timedelta(hours=5)}
    AccessToken.objects.filter(pk=mine.pk).update(**running)
    t1 = T0 - dt.timedelta(days=2)
    s1 = session_of(
        mine,
        started=t1,
        last=t1 + dt.timedelta(minutes=10),
        requests=100,
        bytes_in=1_000,
        bytes_out=9_000,
        ended=t1 + dt.timedelta(minutes=11),
    )
    s2 = session_of(
        mine,
        started=T0 - dt.timedelta(minutes=40),
        last=T0 - dt.timedelta(minutes=10),
        requests=20,
        bytes_in=200,
        bytes_out=1_800,
        device="pc-0002",
    )
    s3 = session_of(
        theirs,
        started=T0 - dt.timedelta(hours=1),
        last=T0 - dt.timedelta(minutes=5),
        requests=777,
        bytes_in=7_000,
        bytes_out=70_000,
        device="bob-pc",
    )
    usage_rollup(session_ids=[s1.pk, s2.pk, s3.pk])
    return mine, theirs


def test_the_week_shows_alices_own_numbers_only(as_user, alice, two_users):
    mine, theirs = two_users
    with at(T0):
        body = as_user(alice).get(URL, {"period": "week"}).json()

    assert body["period"] == "week"
    assert body["start_time"] == "2025-06-09T00:00:00Z" and body["end_time"] == "2025-06-15T12:00:00Z"
    assert (body["total_requests"], body["total_bytes_transferred"], body["total_sessions"]) == (120, 12_000, 2)
    assert body["active_sessions"] == 1  # s2 is open
    assert body["active_tokens"] == 1
    assert body["avg_session_duration_minutes"] == 20.0  # (10 + 30) / 2
    assert len(body["series"]) == 7
    assert body["series"][-1] == {"t": "2025-06-15T00:00:00Z", "requests": 20, "bytes": 2_000, "sessions": 1}
    assert body["series"][-3] == {"t": "2025-06-13T00:00:00Z", "requests": 100, "bytes": 10_000, "sessions": 1}
    assert [p["requests"] for p in body["series"]] == [0, 0, 0, 0, 100, 0, 20]
    assert body["by_token"] == [
        {"token_id": str(mine.pk), "prefix": mine.secret_prefix, "requests": 120, "bytes": 12_000, "sessions": 2}
    ]
    assert str(theirs.pk) not in str(body) and 777 not in [p["requests"] for p in body["series"]]


def test_the_day_is_per_hour_from_the_sessions(as_user, alice, bob, two_users):
    with at(T0):
        body = as_user(alice).get(URL, {"period": "day"}).json()
        bobs = as_user(bob).get(URL + "/", {"period": "day"}).json()

    assert len(body["series"]) == 24
    assert body["start_time"] == "2025-06-14T13:00:00Z"
    assert body["series"][-2] == {"t": "2025-06-15T11:00:00Z", "requests": 20, "bytes": 2_000, "sessions": 1}
    assert (body["total_requests"], body["total_sessions"]) == (20, 1)
    assert (bobs["total_requests"], bobs["total_bytes_transferred"], bobs["total_sessions"]) == (777, 77_000, 1)


def test_a_month_of_one_token_and_the_tokens_of_others_are_404(as_user, alice, bob, two_users):
    mine, theirs = two_users
    with at(T0):
        client = as_user(alice)
        one = client.get(URL, {"period": "month", "token_id": str(mine.pk)})
        foreign = client.get(URL, {"token_id": str(theirs.pk)})
        malformed = client.get(URL, {"token_id": "not-a-uuid"})
        unknown = client.get(URL, {"token_id": str(uuid.uuid4())})
        bad = client.get(URL, {"period": "year"})

    assert one.status_code == 200 and len(one.json()["series"]) == 30 and one.json()["total_requests"] == 120
    for response in (foreign, malformed, unknown):
        assert response.status_code == 404 and response.json() == {"detail": "Token not found"}
    assert bad.status_code == 400 and "period" in bad.json()


def test_the_usage_api_needs_a_login(api):
    assert api.get(URL).status_code == 403  # as every API path without credentials (the reference's)


# --- query counts -----------------------------------------------------------------------------


def many_sessions(user, n: int):
    token = buy(user, hours=720)
    rows = [
        ProxySession(
            token=token,
            user=user,
            device_id=f"pc-{i:04d}",
            ip_address="10.0.0.9",
            started_at=T0 - dt.timedelta(days=i % 30, hours=1),
            last_activity=T0 - dt.timedelta(days=i % 30, minutes=30),
            ended_at=T0 - dt.timedelta(days=i % 30, minutes=29),
            request_count=10,
            bytes_in=100,
            bytes_out=1_000,
        )
        for i in range(n)
    ]
    ProxySession.objects.bulk_create(rows)
    usage_rollup(session_ids=[row.pk for row in rows])
    return token


@pytest.mark.parametrize("n", [1, 1000])
def test_the_api_and_the_page_make_a_fixed_number_of_queries(n, as_user, portal, alice, django_assert_num_queries):
    token = many_sessions(alice, n)
    with at(T0):
        client = as_user(alice)
        with django_assert_num_queries(6):  # user, series, by token, sessions started, open sessions, tokens
            body = client.get(URL, {"period": "month"}).json()
        with django_assert_num_queries(6):  # user, the token asked for, per hour, started, open, tokens
            client.get(URL, {"period": "day", "token_id": str(token.pk)})
        # session, user, notification bell; series, by token, sessions started, open, active tokens,
        # sessions shown, tokens left
        with django_assert_num_queries(10):
            page = portal.get("/usage/")
    assert body["total_requests"] == 10 * n and body["total_sessions"] == n
    assert html(page).count('data-testid="usage-session-row"') == min(n, 50)


# --- the Usage page -----------------------------------------------------------------------------


def test_the_usage_page_shows_charts_data_sessions_and_time_left(portal, alice, two_users):
    mine, _theirs = two_users
    with at(T0):
        response = portal.get("/usage/")
    page = html(response)
    assert response.status_code == 200
    assert 'id="usage-data"' in page and "uPlot.iife.min.js" in page and "js/usage.js" in page
    data = response.context["chart"]
    assert len(data["t"]) == 30 and sum(data["requests"]) == 120 and sum(data["bytes"]) == 12_000
    assert page.count('data-testid="usage-session-row"') == 2 and "bob-pc" not in page
    assert "pc-0002" in page and "10.0.0.7" in page
    assert page.count('data-testid="usage-token"') == 1 and mine.secret_prefix in page
    assert 'data-testid="nav-usage"' in page and 'aria-current="page"' in page


def test_the_usage_page_of_one_token_and_of_someone_elses(portal, alice, two_users):
    mine, theirs = two_users
    with at(T0):
        one = portal.get("/usage/", {"token": str(mine.pk)})
        foreign = portal.get("/usage/", {"token": str(theirs.pk)})
        malformed = portal.get("/usage/", {"token": "x"})
    assert one.status_code == 200 and sum(one.context["chart"]["requests"]) == 120
    assert foreign.status_code == 404 and malformed.status_code == 404


def test_the_usage_page_empty_state_in_russian(portal, alice):
    response = portal.get("/usage/", HTTP_ACCEPT_LANGUAGE="ru")
    page = html(response)
    assert response.status_code == 200
    assert 'data-testid="usage-empty"' in page and 'id="usage-data"' not in page
    assert "Использование" in page


def test_the_usage_page_needs_a_login(client):
    response = client.get("/usage/")
    assert response.status_code == 302 and "/login/" in response["Location"]
