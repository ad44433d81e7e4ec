"""The operator dashboard: analytics.dashboard.dashboard_figures and the admin index that shows it."""

import datetime as dt
import time
import uuid
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from access import services as access_services
from access.models import AccessToken
from accounts.models import User
from accounts.services import user_create
from analytics.dashboard import dashboard_figures
from proxy.models import ProxySession
from proxy.services import session_open
from tests.helpers import fund
from wallet.models import Payment
from wallet.services import SYSTEM, Actor, mock_deposit, payment_capture
from zenzefi.health import HEALTH_KEY

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 6, 15, 12, 0, tzinfo=dt.UTC)  # "now" in these tests
MIDNIGHT = dt.datetime(2025, 6, 15, tzinfo=dt.UTC)  # start of "today"


def at(moment: dt.datetime):
    return time_machine.travel(moment, tick=False)


def new_user(name: str, **fields) -> User:
    return user_create(email=f"{name}@example.com", username=name, password=None, **fields)


def paid_deposit(user: User, *, znc: str, money: str, currency: str = "RUB") -> Payment:
    """A provider top-up, credited by the real capture service (the provider itself is not involved)."""
    payment = Payment.objects.create(
        user=user,
        amount_znc=Decimal(znc),
        amount_money=Decimal(money),
        amount_minor=int(Decimal(money) * 100),
        currency=currency,
        rate=Decimal(money) / Decimal(znc),
        provider="yookassa",
        provider_payment_id=f"pay-{uuid.uuid4().hex}",
    )
    assert payment_capture(payment_id=payment.pk)
    return payment


def buy(user: User, hours: int) -> AccessToken:
    return access_services.token_purchase(user=user, duration_hours=hours)


def activate(token: AccessToken) -> None:
    assert access_services.token_activate(token_id=token.pk) is not None


def open_session(token: AccessToken) -> str:
    session_id = str(uuid.uuid4())
    session_open(
        session_id=session_id,
        token_id=str(token.pk),
        user_id=str(token.user_id),
        device_id=f"device-{session_id[:8]}",
        ip="10.0.0.7",
        user_agent="pytest",
        mode="header",
        started=time.time(),
    )
    return session_id


@pytest.fixture
def history(settings):
    """A month of business, written through the services at the moments it happened.

    Expected figures at T0 (rate 12.5 RUB per ZNC):
    - deposits: today 100 + 30 + 5 = 135; 30 days + 200 + 50 + 7 = 392; the 40-day-old 500 is out.
    - paid: today 300 RUB and 6 EUR; 30 days 800 RUB and 6 EUR; pending, mismatched (11 USD) and 40-day-old
      payments are out; the mismatched one is the dashboard's one mismatch.
    - spent: today 1 + 10 + 48.60 = 59.60; 30 days + 100 + 10 + 1 + 18 = 188.60.
    - refunded: today 10 (dave's 12 h) + 18 (old's token bought 40 days ago); 30 days + 1 = 29.
    - tokens sold: today 1 h, 12 h, 3 x 24 h (bundle); 30 days + 168 h, 12 h, 1 h, 24 h.
    - usable: carol's running 24 h, the bundle's activated and unactivated ones (3); running 2.
    """
    settings.ZNC_TO_RUB_RATE = Decimal("12.5")
    with at(T0 - dt.timedelta(days=40)):
        old = new_user("old")
        paid_deposit(old, znc="500", money="5000.00")
        old_token = buy(old, 24)

    with at(T0 - dt.timedelta(days=10)):
        carol = new_user("carol")
        mock_deposit(user=carol, amount=Decimal("200"), actor=SYSTEM)
        for hours in (168, 12):  # both expire long before T0
            activate(buy(carol, hours))

    with at(T0 - dt.timedelta(days=5)):
        access_services.token_revoke(user=carol, token_id=buy(carol, 1).pk)  # unactivated: 1 ZNC back

    with at(T0 - dt.timedelta(days=1)):
        paid_deposit(carol, znc="50", money="500.00")
    with at(T0 - dt.timedelta(hours=23)):  # yesterday 13:00: runs until today 13:00
        carol_running = buy(carol, 24)
        activate(carol_running)

    with at(MIDNIGHT - dt.timedelta(seconds=1)):  # the last second of yesterday
        new_user("erin")
        fund(carol, "7")

    with at(MIDNIGHT):  # the first moment of today
        dave = new_user("dave")
        fund(dave, "100")

    with at(T0 - dt.timedelta(hours=2)):
        paid_deposit(dave, znc="30", money="300.00")
        paid_deposit(dave, znc="5", money="6.00", currency="EUR")
        Payment.objects.create(
            user=dave, amount_znc=100, amount_money=1000, amount_minor=100000, rate=10, provider="yookassa"
        )  # still pending
        mismatched = Payment.objects.create(
            user=dave,
            amount_znc=100,
            amount_money=Decimal("11.00"),
            amount_minor=1100,
            currency="USD",
            rate=Decimal("0.11"),
            provider="stripe",
            provider_payment_id="cs_mismatched",
        )
        # The provider reports 10.00 USD paid for an 11.00 USD payment: nothing credited, not counted as paid.
        payment_capture(payment_id=mismatched.pk, reported_amount_minor=1000, reported_currency="USD")
        dave_hour = buy(dave, 1)
        access_services.token_revoke(user=dave, token_id=buy(dave, 12).pk)  # unactivated: 10 ZNC back
        bundle = access_services.bundle_save(
            bundle=None,
            changes={
                "name": "Trio",
                "token_count": 3,
                "duration_hours": 24,
                "scope": "full",
                "discount_percent": Decimal("10.00"),
                "base_price": Decimal("54.00"),
                "total_price": Decimal("48.60"),
            },
            actor=SYSTEM,
        )
        _, bundle_tokens, _ = access_services.bundle_purchase(user=dave, bundle_id=bundle.pk)

    with at(T0 - dt.timedelta(hours=1)):
        activate(dave_hour)  # expires exactly at T0: no longer usable then
        activate(bundle_tokens[0])
        access_services.token_force_revoke(token_id=bundle_tokens[2].pk, actor=Actor())
        open_session(bundle_tokens[0])
        ProxySession.objects.filter(token=bundle_tokens[0]).update(ended_at=timezone.now(), end_reason="test")

    with at(T0 - dt.timedelta(minutes=30)):
        access_services.token_revoke(user=old, token_id=old_token.pk)  # bought 40 days ago, refunded today
        open_session(carol_running)
        open_session(dave_hour)  # its token has expired since, the session has not been closed yet

    return {"carol_running": carol_running, "bundle_tokens": bundle_tokens}


def test_figures_split_today_and_the_last_30_days(history):
    with at(T0):
        figures = dashboard_figures()

    assert figures["today"] == {
        "deposited_znc": Decimal("135.00"),
        "deposited_rub": Decimal("1687.50"),
        "paid": {"RUB": Decimal("300.00"), "USD": Decimal("0.00"), "EUR": Decimal("6.00")},
        "spent_znc": Decimal("59.60"),
        "refunded_znc": Decimal("28.00"),
        "new_users": 1,
        "tokens_sold": 5,
    }
    assert figures["month"] == {
        "deposited_znc": Decimal("392.00"),
        "deposited_rub": Decimal("4900.00"),
        "paid": {"RUB": Decimal("800.00"), "USD": Decimal("0.00"), "EUR": Decimal("6.00")},
        "spent_znc": Decimal("188.60"),
        "refunded_znc": Decimal("29.00"),
        "new_users": 3,
        "tokens_sold": 9,
    }
    assert figures["payments_mismatched"] == 1
    assert [(row["currency"], row["today"], row["month"]) for row in figures["paid_by_currency"]] == [
        ("RUB", Decimal("300.00"), Decimal("800.00")),
        ("USD", Decimal("0.00"), Decimal("0.00")),
        ("EUR", Decimal("6.00"), Decimal("6.00")),
    ]
    assert figures["today_start"] == MIDNIGHT
    assert figures["month_start"] == T0 - dt.timedelta(days=30)


def test_tokens_sold_are_grouped_by_duration_with_bundle_tokens(history):
    with at(T0):
        rows = dashboard_figures()["tokens_by_duration"]

    assert [(r["duration_hours"], r["label"], r["today"], r["month"], r["month_bundled"]) for r in rows] == [
        (1, "1 hour", 1, 2, 0),
        (12, "12 hours", 1, 2, 0),
        (24, "24 hours", 3, 4, 3),
        (168, "7 days", 0, 1, 0),
    ]


def test_current_figures_exclude_revoked_and_expired_tokens(history):
    with at(T0):
        figures = dashboard_figures()

    # Usable: carol's 24 h (running), bundle token 0 (running), bundle token 1 (not activated).
    # Not: bundle token 2 (force-revoked), dave's 1 h (expired exactly at T0), everything older or revoked.
    assert figures["tokens_active"] == 3
    assert figures["tokens_running"] == 2
    assert figures["sessions_open"] == 2
    assert figures["users_total"] == 4
    assert ProxySession.objects.count() == 3


def test_an_explicit_now_moves_the_periods(history):
    """Yesterday's view: today's rows are not counted yet."""
    yesterday_evening = MIDNIGHT - dt.timedelta(seconds=1)
    with at(T0):
        figures = dashboard_figures(now=yesterday_evening)

    assert figures["today"]["deposited_znc"] == Decimal("57.00")  # carol: 50 at 12:00, 7 at 23:59:59
    assert figures["today"]["paid"] == {"RUB": Decimal("500.00"), "USD": Decimal("0.00"), "EUR": Decimal("0.00")}
    assert figures["today"]["new_users"] == 1  # erin
    assert figures["month"]["deposited_znc"] == Decimal("257.00")
    assert figures["month"]["tokens_sold"] == 4


def test_empty_database_gives_zeros_and_no_health():
    figures = dashboard_figures()

    for period in ("today", "month"):
        assert figures[period] == {
            "deposited_znc": Decimal("0.00"),
            "deposited_rub": Decimal("0.00"),
            "paid": {"RUB": Decimal("0.00"), "USD": Decimal("0.00"), "EUR": Decimal("0.00")},
            "spent_znc": Decimal("0.00"),
            "refunded_znc": Decimal("0.00"),
            "new_users": 0,
            "tokens_sold": 0,
        }
    assert figures["tokens_by_duration"] == []
    assert figures["payments_mismatched"] == 0
    assert (figures["tokens_active"], figures["tokens_running"], figures["sessions_open"]) == (0, 0, 0)
    assert figures["users_total"] == 0
    assert figures["health"] is None
    assert cache.get(HEALTH_KEY) is None  # nothing was checked inline


def test_figures_take_a_fixed_number_of_queries(history, django_assert_max_num_queries):
    with at(T0), django_assert_max_num_queries(7):
        dashboard_figures()


def fake_report(*, checked_at: dt.datetime, zenzefi: str = "down") -> dict:
    return {
        "status": "degraded" if zenzefi == "down" else "healthy",
        "timestamp": checked_at.isoformat().replace("+00:00", "Z"),
        "checked_at": checked_at.timestamp(),
        "checks": {
            "database": {"status": "up", "latency_ms": 1.25, "error": None},
            "redis": {"status": "up", "latency_ms": 0.4, "error": None},
            "zenzefi": {
                "status": zenzefi,
                "latency_ms": 2003.5,
                "error": "ConnectTimeout" if zenzefi == "down" else None,
            },
        },
        "overall": {"healthy_count": 2, "total_count": 3},
    }


def test_health_comes_from_the_cached_report():
    cache.set(HEALTH_KEY, fake_report(checked_at=T0 - dt.timedelta(seconds=20)))

    health = dashboard_figures(now=T0)["health"]

    assert health["status"] == "degraded"
    assert health["tone"] == "warn"
    assert health["checked_at"] == T0 - dt.timedelta(seconds=20)
    assert health["age_seconds"] == 20
    assert health["stale"] is False
    assert [(c["name"], c["status"], c["tone"], c["latency_ms"], c["error"]) for c in health["checks"]] == [
        ("database", "up", "ok", 1.25, None),
        ("redis", "up", "ok", 0.4, None),
        ("zenzefi", "down", "bad", 2003.5, "ConnectTimeout"),
    ]


def test_an_old_health_report_is_marked_stale(settings):
    settings.HEALTH_CHECK_INTERVAL = 50
    cache.set(HEALTH_KEY, fake_report(checked_at=T0 - dt.timedelta(seconds=121), zenzefi="up"))

    health = dashboard_figures(now=T0)["health"]

    assert (health["status"], health["tone"], health["stale"]) == ("healthy", "ok", True)


# --- The admin index page ---------------------------------------------------------------


def page(client: Client) -> str:
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def operator():
    with at(T0 - dt.timedelta(days=60)):
        user = new_user("operator", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def test_admin_index_shows_the_dashboard_above_the_app_list(history, operator, django_assert_max_num_queries):
    cache.set(HEALTH_KEY, fake_report(checked_at=T0 - dt.timedelta(seconds=20)))

    with at(T0), django_assert_max_num_queries(15):  # 10, and the five of the charts
        html = page(operator)

    dashboard, apps = html.split('id="content-main"')
    assert "Business at a glance" in dashboard
    for figure in ("135.00", "1,687.50", "392.00", "4,900.00"):
        assert figure in dashboard
    # Money received per currency, formatted by Babel for the admin's language; USD listed at zero.
    paid = dashboard.split('id="zg-paid"')[1].split("</table>")[0]
    for currency, today, month in (
        ("RUB", "RUB\xa0300.00", "RUB\xa0800.00"),
        ("USD", "$0.00", "$0.00"),
        ("EUR", "€6.00", "€6.00"),
    ):
        cells = [
            f'<th scope="row">{currency}</th>',
            f'<td class="zg-num">{today}</td>',
            f'<td class="zg-num">{month}</td>',
        ]
        assert "\n            ".join(cells) in paid
    assert (
        'data-testid="dashboard-mismatched"><a href="/admin/wallet/payment/?status__exact=mismatch">1</a>' in dashboard
    )
    for figure in ("59.60", "188.60", "refunded 28.00 ZNC", "refunded 29.00 ZNC"):
        assert figure in dashboard
    assert '<th scope="row">7 days</th>' in dashboard
    assert 'href="/admin/proxy/proxysession/?ended_at__isempty=1">2</a>' in dashboard
    assert 'href="/admin/access/accesstoken/?status=active">2</a>' in dashboard
    # Health: overall, per check, latency, error, age.
    assert 'zg-status zg-tone-warn">Degraded<' in dashboard
    assert 'zg-status zg-tone-bad">Down<' in dashboard
    assert "ConnectTimeout" in dashboard
    assert "2,003.5 ms" in dashboard
    assert "Checked 2025-06-15 11:59:40 UTC, 20 seconds ago." in dashboard
    assert "css/admin-dashboard" in html
    # Django's own index is still there, below.
    for link in ("/admin/access/accesstoken/", "/admin/wallet/transaction/", "/admin/accounts/user/"):
        assert f'href="{link}"' in apps
    assert "Recent actions" in apps


def test_admin_index_without_a_health_report_does_not_run_checks(operator):
    html = page(operator)

    assert "No health check yet" in html
    assert "Business at a glance" in html
    assert cache.get(HEALTH_KEY) is None


def test_staff_without_money_permissions_see_only_the_app_list():
    clerk = new_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_accesstoken"))
    client = Client()
    client.force_login(clerk)

    html = page(client)

    assert "Business at a glance" not in html
    assert 'href="/admin/access/accesstoken/"' in html


def test_anonymous_is_sent_to_the_admin_login():
    response = Client().get("/admin/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"


def test_a_user_who_is_not_staff_is_sent_to_the_admin_login():
    client = Client()
    client.force_login(new_user("plain"))

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"


def test_admin_index_flags_a_stale_health_report(operator, settings):
    settings.HEALTH_CHECK_INTERVAL = 50
    cache.set(HEALTH_KEY, fake_report(checked_at=T0 - dt.timedelta(minutes=5), zenzefi="up"))

    with at(T0):
        html = page(operator)

    assert 'zg-status zg-tone-ok">Healthy<' in html
    assert "Checked 2025-06-15 11:55:00 UTC, 5\xa0minutes ago." in html
    assert "Stale: the periodic check (Celery beat) has not refreshed it." in html
