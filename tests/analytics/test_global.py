"""Business figures: /api/v1/analytics/admin/global, the dashboard's daily series and its CSV export."""

import csv
import datetime as dt
import io
import json
import uuid
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Sum
from django.utils import timezone
from rest_framework.test import APIClient

from access import services as access_services
from access.models import AccessToken, TierPeriod, TokenRenewal
from access.renewal import token_auto_renew_set, tokens_renew
from access.tiers import tier_set
from accounts.models import User
from accounts.services import user_create
from analytics.models import UsageDay
from analytics.selectors import business_daily, business_figures
from proxy.models import ProxySession
from tests.helpers import fund
from wallet.models import Payment, Transaction
from wallet.services import payment_capture

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)
FIRST = dt.date(2026, 6, 1)  # the month: 30 UTC days up to and including June 30
URL = "/api/v1/analytics/admin/global"


def at(moment: dt.datetime):
    return time_machine.travel(moment, tick=False)


def june(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, 6, day, hour, 0, tzinfo=dt.UTC)


def new_user(name: str, **fields) -> User:
    return user_create(email=f"{name}@example.com", username=name, password=None, **fields)


def paid(user: User, *, znc: str, money: str, currency: str) -> Payment:
    payment = Payment.objects.create(
        user=user,
        amount_znc=Decimal(znc),
        amount_money=Decimal(money),
        amount_minor=int(Decimal(money) * 100),
        currency=currency,
        rate=Decimal(money) / Decimal(znc),
        provider="yookassa" if currency == "RUB" else "stripe",
        provider_payment_id=f"pay-{uuid.uuid4().hex}",
    )
    assert payment_capture(payment_id=payment.pk)
    return payment


def usage(user: User, token: AccessToken, day: dt.date, requests: int, bytes_in: int, bytes_out: int) -> None:
    """What the proxy's flush leaves in the rollup for a token's day."""
    UsageDay.objects.create(
        user=user, token=token, date=day, requests=requests, bytes_in=bytes_in, bytes_out=bytes_out, sessions_started=1
    )


def ledger_sum(kind: str, start: dt.datetime, end: dt.datetime) -> Decimal:
    rows = Transaction.objects.filter(kind=kind, created_at__gte=start, created_at__lte=end)
    return rows.aggregate(s=Sum("amount"))["s"] or Decimal("0")


@pytest.fixture
def month():
    """A month of business through the real services, each at its moment in June 2026.

    Purchases in June: alice 24 h (18) + 168 h (100) + 12 h (10) + its renewal (10) + premium (10),
    bob 720 h (300) = 448; refund 100 (alice's unused 168 h); referral bonus 30 (bob, referred by alice,
    first purchase 300 > 100). May's 1 h purchase and top-up are outside the month.
    """
    with at(dt.datetime(2026, 5, 20, 9, 0, tzinfo=dt.UTC)):
        old = new_user("old")
        fund(old, "20")
        access_services.token_purchase(user=old, duration_hours=1)
        paid(old, znc="10", money="125.00", currency="RUB")
    with at(june(2)):
        alice = new_user("alice")
        bob = new_user("bob")
        User.objects.filter(pk=bob.pk).update(referred_by=alice)
        paid(alice, znc="500", money="6250.00", currency="RUB")
        paid(bob, znc="400", money="44.00", currency="USD")
    with at(june(3)):
        access_services.token_purchase(user=alice, duration_hours=24)
        spare = access_services.token_purchase(user=alice, duration_hours=168)
    with at(june(5)):
        bobs = access_services.token_purchase(user=bob, duration_hours=720)
        access_services.token_activate(token_id=bobs.pk)
    with at(june(10)):
        _, refund, _ = access_services.token_revoke(user=alice, token_id=spare.pk)
    with at(june(12, 8)):
        renewing = access_services.token_purchase(user=alice, duration_hours=12)
        access_services.token_activate(token_id=renewing.pk)
        token_auto_renew_set(user=alice, token_id=renewing.pk, enabled=True)
    with at(june(12, 19)):
        assert tokens_renew(now=june(12, 19)) == 1
    with at(june(20)):
        tier_set(user=alice, tier="premium")
    usage(alice, renewing, dt.date(2026, 6, 12), 40, 4_000, 36_000)
    usage(bob, bobs, dt.date(2026, 6, 29), 10, 1_000, 2_000)
    usage(bob, bobs, dt.date(2026, 6, 30), 25, 5_000, 90_000)
    usage(old, bobs, dt.date(2026, 5, 25), 99, 1, 1)  # outside the 30 days
    return {"alice": alice, "bob": bob, "refund": refund, "bobs": bobs}


def test_month_figures_equal_the_ledger(month, settings):
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    assert TokenRenewal.objects.count() == 1 and TierPeriod.objects.count() == 1  # both went through the ledger

    figures = business_figures(period="month", now=NOW)

    assert (figures["start_time"], figures["end_time"]) == (start, NOW)
    assert figures["revenue_znc"] == -ledger_sum("purchase", start, NOW) == Decimal("448.00")
    assert figures["refunds_znc"] == ledger_sum("refund", start, NOW) == month["refund"] == Decimal("100.00")
    assert figures["net_revenue_znc"] == Decimal("348.00")
    assert figures["referral_payouts_znc"] == ledger_sum("referral_bonus", start, NOW) == Decimal("30.00")
    assert figures["new_users"] == 2
    assert figures["token_purchases"] == 4  # 24 h, 168 h, 720 h, 12 h: the renewal is no new token
    assert figures["topups_by_currency"] == [
        {"currency": "RUB", "count": 1, "amount": Decimal("6250.00"), "amount_znc": Decimal("500.00")},
        {"currency": "USD", "count": 1, "amount": Decimal("44.00"), "amount_znc": Decimal("400.00")},
    ]
    assert figures["total_proxy_requests"] == 75
    assert figures["top_users"] == [
        {"user_id": month["bob"].pk, "username": "bob", "requests": 35, "bytes": 98_000},
        {"user_id": month["alice"].pk, "username": "alice", "requests": 40, "bytes": 40_000},
    ]
    assert (figures["dau"], figures["mau"]) == (1, 2)


def test_week_and_day_count_only_their_days(month):
    week = business_figures(period="week", now=NOW)
    assert week["start_time"] == dt.datetime(2026, 6, 24, tzinfo=dt.UTC)
    assert (week["revenue_znc"], week["refunds_znc"], week["referral_payouts_znc"]) == (Decimal("0.00"),) * 3
    assert (week["total_proxy_requests"], week["new_users"], week["topups_by_currency"]) == (35, 0, [])

    with at(june(20, 15)):
        day = business_figures(period="day", now=june(20, 15))
    assert day["start_time"] == june(19, 16)
    assert (day["revenue_znc"], day["net_revenue_znc"], day["token_purchases"]) == (
        Decimal("10.00"),
        Decimal("10.00"),
        0,
    )


def test_api_answers_the_figures_as_strings(month, as_user):
    with at(NOW):  # the JWT and its user are as old as the clock says
        owner = new_user("owner", is_staff=True, is_superuser=True)
        body = as_user(owner).get(URL, {"period": "month"}).json()

    assert body["period"] == "month"
    assert body["start_time"] == "2026-06-01T00:00:00Z" and body["end_time"] == "2026-06-30T12:00:00Z"
    assert (body["revenue_znc"], body["refunds_znc"], body["net_revenue_znc"]) == ("448.00", "100.00", "348.00")
    assert body["referral_payouts_znc"] == "30.00"
    assert body["topups_by_currency"][1] == {"currency": "USD", "count": 1, "amount": "44.00", "amount_znc": "400.00"}
    assert body["top_users"][0] == {"user_id": str(month["bob"].pk), "username": "bob", "requests": 35, "bytes": 98000}
    # New users: alice, bob and the owner who asks.
    assert (body["new_users"], body["token_purchases"], body["total_proxy_requests"]) == (3, 4, 75)
    assert (body["dau"], body["mau"], body["active_users_now"]) == (1, 2, 0)


def test_api_is_for_superusers_only(as_user, alice, admin_user):
    staff_only = user_create(email="staff@example.com", username="staff", password=None, is_staff=True)

    anonymous = APIClient().get(URL)  # as every API path without a JWT (the reference's HTTPBearer answer)
    assert (anonymous.status_code, anonymous.json()) == (403, {"detail": "Not authenticated"})
    refused = as_user(alice).get(URL)
    assert (refused.status_code, refused.json()) == (403, {"detail": "Superuser permissions required"})
    assert as_user(staff_only).get(URL).status_code == 403
    assert as_user(admin_user).get(URL + "/").status_code == 200


def test_api_refuses_an_unknown_period(as_user, admin_user):
    response = as_user(admin_user).get(URL, {"period": "year"})

    assert response.status_code == 400
    assert "period" in str(response.json())


def test_active_users_now_are_the_open_sessions_within_the_idle_timeout(alice, bob, settings):
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 300
    fund(alice, "10")
    fund(bob, "10")
    now = timezone.now()
    for user, idle in ((alice, 60), (bob, 600)):
        token = access_services.token_purchase(user=user, duration_hours=1)
        ProxySession.objects.create(
            token=token, user=user, device_id="d1", started_at=now, last_activity=now - dt.timedelta(seconds=idle)
        )

    assert business_figures(period="day")["active_users_now"] == 1


def test_daily_rows_hold_each_day(month):
    rows = business_daily(now=NOW)

    assert [r["date"] for r in rows] == [FIRST + dt.timedelta(days=n) for n in range(30)]
    by_day = {r["date"].day: r for r in rows}
    assert (by_day[3]["revenue_znc"], by_day[3]["token_purchases"]) == (Decimal("118.00"), 2)
    assert (by_day[5]["revenue_znc"], by_day[5]["referral_payouts_znc"]) == (Decimal("300.00"), Decimal("30.00"))
    assert (by_day[10]["refunds_znc"], by_day[10]["net_revenue_znc"]) == (Decimal("100.00"), Decimal("-100.00"))
    assert by_day[12]["revenue_znc"] == Decimal("20.00")  # the 12 h token and its renewal
    assert by_day[2]["new_users"] == 2
    assert (by_day[30]["proxy_requests"], by_day[30]["proxy_bytes"], by_day[30]["dau"]) == (25, 95_000, 1)
    assert sum(r["revenue_znc"] for r in rows) == Decimal("448.00")
    assert by_day[15] == {
        "date": dt.date(2026, 6, 15),
        "revenue_znc": Decimal("0.00"),
        "refunds_znc": Decimal("0.00"),
        "net_revenue_znc": Decimal("0.00"),
        "referral_payouts_znc": Decimal("0.00"),
        "new_users": 0,
        "token_purchases": 0,
        "proxy_requests": 0,
        "proxy_bytes": 0,
        "dau": 0,
    }


# --- Fixed query counts -----------------------------------------------------------------------------------


def _bulk_history(n: int) -> None:
    """``n`` ledger rows (alternating top-ups and purchases, numbered and balanced as the audit wants),
    ``n`` ended proxy sessions and ``n`` UsageDay rows, spread over the month."""
    users = [new_user(f"bulk{i}") for i in range(max(1, n // 25))]
    tokens = AccessToken.objects.bulk_create(
        AccessToken(
            user=user,
            secret_encrypted="-",
            secret_digest=uuid.uuid4().hex,
            secret_prefix=f"zg{i:04d}",
            duration_hours=1,
            scope="full",
            cost_znc=Decimal("1.00"),
        )
        for i, user in enumerate(users)
    )
    now = timezone.now()
    rows, balance = [], Decimal("0")
    for seq in range(1, n + 1):
        amount = Decimal("2.00") if seq % 2 else Decimal("-1.00")
        balance += amount
        kind = Transaction.Kind.DEPOSIT if seq % 2 else Transaction.Kind.PURCHASE
        rows.append(
            Transaction(user=users[0], seq=seq, amount=amount, kind=kind, description="bulk", balance_after=balance)
        )
    Transaction.objects.bulk_create(rows)
    User.objects.filter(pk=users[0].pk).update(balance=balance)
    Transaction.objects.filter(user=users[0]).update(created_at=now - dt.timedelta(hours=1))
    ProxySession.objects.bulk_create(
        ProxySession(
            token=tokens[i % len(tokens)],
            user=users[i % len(users)],
            device_id=f"d{i}",
            started_at=now - dt.timedelta(minutes=i + 5),
            last_activity=now - dt.timedelta(minutes=i),
            ended_at=now,
            request_count=i,
        )
        for i in range(n)
    )
    UsageDay.objects.bulk_create(
        UsageDay(
            user=users[i // 25 % len(users)],
            token=tokens[i // 25 % len(tokens)],
            date=now.date() - dt.timedelta(days=i % 25),
            requests=i,
            bytes_in=i,
            bytes_out=i,
        )
        for i in range(n)
    )


@pytest.mark.parametrize("n", [1, 1000])
@pytest.mark.parametrize("period", ["day", "month"])
def test_figures_take_a_fixed_number_of_queries(n, period, django_assert_num_queries):
    _bulk_history(n)

    with django_assert_num_queries(8):
        figures = business_figures(period=period)
    assert figures["total_proxy_requests"] > 0 or n == 1
    with django_assert_num_queries(4):
        rows = business_daily()
    assert sum(r["proxy_requests"] for r in rows) == sum(range(n))


@pytest.mark.parametrize("n", [1, 1000])
def test_the_api_takes_a_fixed_number_of_queries(n, as_user, admin_user, django_assert_num_queries):
    _bulk_history(n)
    client = as_user(admin_user)

    with django_assert_num_queries(9):  # the caller, then the eight figures
        assert client.get(URL, {"period": "month"}).status_code == 200


@pytest.mark.parametrize("n", [1, 1000])
def test_the_dashboard_page_takes_a_fixed_number_of_queries(n, admin_user, client, django_assert_num_queries):
    _bulk_history(n)
    client.force_login(admin_user)

    # The same whatever the data: the session and its user, the dashboard's seven figures, the charts' five.
    with django_assert_num_queries(14):
        response = client.get("/admin/")
    assert response.status_code == 200
    assert sum(response.context["dashboard_charts"]["requests"]) == sum(range(n))


# --- The charts -----------------------------------------------------------------------------------------


def test_dashboard_embeds_the_chart_data(month, client):
    with at(NOW):
        owner = new_user("owner", is_staff=True, is_superuser=True)
        client.force_login(owner)
        page = client.get("/admin/").content.decode()

    charts = page.split('data-testid="dashboard-charts"')[1]
    for chart in ("revenue", "durations", "dau", "requests", "top-users"):
        assert f'id="zg-chart-{chart}"' in charts
    assert "vendor/uplot/1.6.32/uPlot.iife.min.js" in charts and "js/admin-charts.js" in charts
    assert "vendor/uplot/1.6.32/uPlot.min.css" in page
    assert 'href="/admin/analytics/daily.csv"' in charts
    data = json.loads(charts.split('<script id="zg-charts-data" type="application/json">')[1].split("</script>")[0])
    assert data["days"][0] == int(dt.datetime(2026, 6, 1, tzinfo=dt.UTC).timestamp()) and len(data["days"]) == 30
    assert data["revenue"][2] == 118.0 and data["refunds"][9] == 100.0 and sum(data["revenue"]) == 448.0
    assert data["dau"][-1] == 1 and data["requests"][-1] == 25 and data["requests"][11] == 40
    assert data["durations"] == {"labels": ["12 hours", "24 hours", "7 days", "30 days"], "counts": [1, 1, 1, 1]}
    assert data["top_users"] == {"labels": ["bob", "alice"], "bytes": [98_000, 40_000], "requests": [35, 40]}


def test_dashboard_charts_speak_russian(client):
    with at(NOW):
        owner = new_user("owner", is_staff=True, is_superuser=True)
        client.force_login(owner)
        page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    charts = page.split('data-testid="dashboard-charts"')[1]
    assert "Выручка и возвраты по дням, ZNC" in charts
    assert "Суточная аудитория" in charts
    assert "Данные по дням (CSV)" in charts


# --- CSV export ------------------------------------------------------------------------------------------


def test_csv_has_one_row_per_day_with_the_figures(month, admin_user, client):
    client.force_login(admin_user)
    with at(NOW):
        response = client.get("/admin/analytics/daily.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="zenzefi-daily-2026-06-01-2026-06-30.csv"'
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == [
        "date",
        "revenue_znc",
        "refunds_znc",
        "net_revenue_znc",
        "referral_payouts_znc",
        "new_users",
        "token_purchases",
        "proxy_requests",
        "proxy_bytes",
        "dau",
    ]
    assert len(table) == 31 and [r[0] for r in table[1:]] == [str(FIRST + dt.timedelta(days=n)) for n in range(30)]
    assert table[3] == ["2026-06-03", "118.00", "0.00", "118.00", "0.00", "0", "2", "0", "0", "0"]
    assert table[10] == ["2026-06-10", "0.00", "100.00", "-100.00", "0.00", "0", "0", "0", "0", "0"]
    assert table[30] == ["2026-06-30", "0.00", "0.00", "0.00", "0.00", "0", "0", "25", "95000", "1"]
    assert sum(Decimal(r[1]) for r in table[1:]) == Decimal("448.00")


def test_csv_is_for_staff_only(portal, client):
    assert portal.get("/admin/analytics/daily.csv").status_code == 302  # to the admin login
    assert client.get("/admin/analytics/daily.csv").status_code == 302
