"""The self-serve Premium API tier: upgrade, the limit at once, renewal, failure, downgrade, enterprise."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from access import tiers
from access.models import TierPeriod, TierSubscription
from accounts.models import AuditLog, User
from events.models import Event
from notifications import kinds
from notifications.models import Notification
from notifications.services import event_consume, tiers_scan
from tests.helpers import assert_ledger_consistent, balance, fund, html, messages_of, run_at_once
from wallet.models import Transaction

pytestmark = pytest.mark.django_db

# After the fixtures' users are created (real time), so their JWTs are not older than their password.
T0 = dt.datetime(2027, 1, 10, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
TIER = "/api/v1/users/me/tier"


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.RATE_LIMIT_API = "100/60"
    settings.RATE_LIMIT_API_PREMIUM = "500/60"
    settings.PREMIUM_PRICE_ZNC = Decimal("10.00")
    settings.PREMIUM_PERIOD_DAYS = 30


def iso(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def events(type_: str) -> list[dict]:
    return [e.data for e in Event.objects.filter(type=type_).order_by("created_at", "id")]


def tier_purchases(user) -> list[tuple[Decimal, str]]:
    rows = Transaction.objects.filter(user=user, description__startswith="Premium API tier").order_by("created_at")
    return list(rows.values_list("amount", "description"))


def notify(type_: str) -> None:
    """The notifications consumer takes the events (as its Celery task would, after commit)."""
    for event in Event.objects.filter(type=type_):
        event_consume(event_id=event.pk)


def logged_in(user) -> Client:
    """A portal session started at the clock's now (the fixtures' sessions would have expired by T0)."""
    client = Client()
    client.force_login(user)
    return client


def tier_of(user) -> str:
    return User.objects.values_list("rate_tier", flat=True).get(pk=user.pk)


# --- Upgrade and the limit -----------------------------------------------------------------------


def test_upgrade_charges_once_and_lifts_the_limit_at_once(as_user, alice, clock):
    fund(alice, "25")
    client = as_user(alice)

    free = [client.get(TIER) for _ in range(101)]
    assert [r.status_code for r in free] == [200] * 100 + [429]
    assert free[0].json() == {"tier": "free", "limit_per_minute": 100, "paid_until": None, "renews": False}
    assert free[-1]["X-RateLimit-Limit"] == "100"

    # The same minute: the portal's button (pages are not API-limited).
    page = logged_in(alice).post("/access/plan/", {"tier": "premium"}, follow=True)
    [message] = messages_of(page)
    assert message.startswith("You are on Premium now: 500 requests per minute until ")

    served = [client.get(TIER) for _ in range(5)]
    assert [r.status_code for r in served] == [200] * 5
    assert [r["X-RateLimit-Limit"] for r in served] == ["500"] * 5
    assert [r["X-RateLimit-Remaining"] for r in served] == ["399", "398", "397", "396", "395"]
    body = served[0].json()
    assert body == {"tier": "premium", "limit_per_minute": 500, "paid_until": body["paid_until"], "renews": True}
    assert iso(body["paid_until"]) == T0 + 30 * DAY

    assert tier_purchases(alice) == [(Decimal("-10.00"), "Premium API tier")]
    assert balance(alice) == Decimal("15.00")
    period = TierPeriod.objects.get(user=alice)
    assert (period.period, period.starts_at, period.ends_at, period.price) == (1, T0, T0 + 30 * DAY, Decimal("10.00"))
    assert period.transaction.balance_after == Decimal("15.00")
    subscription = TierSubscription.objects.get(user=alice)
    assert (subscription.paid_until, subscription.renews, subscription.renewal_failed_at) == (T0 + 30 * DAY, True, None)
    assert tier_of(alice) == "premium"
    assert events("tier.changed") == [
        {"from": "free", "to": "premium", "reason": "upgrade", "price": "10.00", "paid_until": "2027-02-09T12:00:00Z"}
    ]
    assert AuditLog.objects.filter(action="tier_upgrade", user=alice).count() == 1
    assert_ledger_consistent()


def test_upgrade_again_is_idempotent_and_free_schedules_the_way_back(as_user, alice, clock):
    fund(alice, "30")
    client = as_user(alice)

    first = client.put(TIER, {"tier": "premium"}, format="json")
    again = client.put(TIER, {"tier": "premium"}, format="json")
    down = client.put(TIER, {"tier": "free"}, format="json")
    down_again = client.put(TIER, {"tier": "free"}, format="json")
    back = client.put(TIER, {"tier": "premium"}, format="json")

    ends = "2027-02-09T12:00:00Z"
    premium = {"tier": "premium", "limit_per_minute": 500, "renews": True}
    assert [r.status_code for r in (first, again, down, down_again, back)] == [200] * 5
    assert {**first.json(), "paid_until": iso(first.json()["paid_until"])} == {**premium, "paid_until": T0 + 30 * DAY}
    assert again.json() == first.json()
    assert down.json() == {**first.json(), "renews": False} == down_again.json()
    assert back.json() == first.json()
    assert iso(back.json()["paid_until"]).isoformat().replace("+00:00", "Z") == ends
    assert tier_purchases(alice) == [(Decimal("-10.00"), "Premium API tier")]  # one charge, no refund
    assert balance(alice) == Decimal("20.00")
    assert TierPeriod.objects.count() == 1
    assert len(events("tier.changed")) == 1
    assert list(AuditLog.objects.filter(action="tier_renews").values_list("details__renews", flat=True)) == [
        False,
        True,
    ]
    assert_ledger_consistent()


def test_without_funds_402_writes_nothing(as_user, alice, clock):
    fund(alice, "9.99")

    response = as_user(alice).put(TIER, {"tier": "premium"}, format="json")

    assert response.status_code == 402
    assert response.json()["detail"] == "Insufficient balance. Required: 10.00 ZNC, Available: 9.99 ZNC"
    assert tier_of(alice) == "free"
    assert not TierSubscription.objects.exists()
    assert not TierPeriod.objects.exists()
    assert tier_purchases(alice) == []
    assert balance(alice) == Decimal("9.99")
    assert not Event.objects.filter(type__startswith="tier.").exists()
    assert not AuditLog.objects.filter(action__startswith="tier_").exists()
    assert_ledger_consistent()


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({"tier": "enterprise"}, "The enterprise tier is set by an administrator"),
        ({"tier": "gold"}, '"gold" is not a valid choice.'),
        ({}, "This field is required."),
    ],
)
def test_bad_input_is_400_and_writes_nothing(as_user, alice, payload, detail):
    fund(alice, "50")

    response = as_user(alice).put(TIER, payload, format="json")

    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert "tier" in response.json()
    assert (tier_of(alice), TierSubscription.objects.count(), balance(alice)) == ("free", 0, Decimal("50.00"))


def test_enterprise_cannot_change_its_tier_here(as_user, alice):
    fund(alice, "50")
    User.objects.filter(pk=alice.pk).update(rate_tier="enterprise")

    responses = [as_user(alice).put(TIER, {"tier": t}, format="json") for t in ("premium", "free")]

    assert [r.status_code for r in responses] == [400, 400]
    assert responses[0].json()["detail"] == "Your enterprise tier is set by an administrator: ask them to change it"
    assert (tier_of(alice), TierSubscription.objects.count(), balance(alice)) == ("enterprise", 0, Decimal("50.00"))


def test_anonymous_is_refused(api):
    assert api.get(TIER).status_code == 403
    assert api.put(TIER, {"tier": "premium"}, format="json").status_code == 403
    assert not TierSubscription.objects.exists()


# --- Enterprise ----------------------------------------------------------------------------------


def test_enterprise_is_unlimited_or_limited_by_the_admin_set_number(as_user, alice, bob):
    User.objects.filter(pk=alice.pk).update(rate_tier="enterprise")
    User.objects.filter(pk=bob.pk).update(rate_tier="enterprise", api_limit_per_minute=5)

    unlimited = [as_user(alice).get(TIER) for _ in range(300)]
    limited = [as_user(bob).get(TIER) for _ in range(6)]

    assert [r.status_code for r in unlimited] == [200] * 300
    assert "X-RateLimit-Limit" not in unlimited[-1]
    assert unlimited[0].json() == {"tier": "enterprise", "limit_per_minute": None, "paid_until": None, "renews": False}
    assert [r.status_code for r in limited] == [200] * 5 + [429]
    assert limited[0].json()["limit_per_minute"] == 5
    assert limited[-1]["X-RateLimit-Limit"] == "5"


# --- Renewal -------------------------------------------------------------------------------------


def test_renewal_after_30_days_charges_once(alice, clock):
    fund(alice, "30")
    tiers.tier_set(user=alice, tier="premium")

    clock.move_to(T0 + 29 * DAY - dt.timedelta(seconds=1))
    assert tiers.tiers_renew() == {"renewed": 0, "lapsed": 0}
    clock.move_to(T0 + 29 * DAY)
    assert tiers.tiers_renew() == {"renewed": 1, "lapsed": 0}
    assert tiers.tiers_renew() == {"renewed": 0, "lapsed": 0}
    clock.move_to(T0 + 30 * DAY)
    assert tiers.tiers_renew() == {"renewed": 0, "lapsed": 0}

    assert tier_purchases(alice) == [
        (Decimal("-10.00"), "Premium API tier"),
        (Decimal("-10.00"), "Premium API tier: period 2"),
    ]
    assert balance(alice) == Decimal("10.00")
    assert list(TierPeriod.objects.values_list("period", "starts_at", "ends_at")) == [
        (1, T0, T0 + 30 * DAY),
        (2, T0 + 30 * DAY, T0 + 60 * DAY),
    ]
    assert TierSubscription.objects.get(user=alice).paid_until == T0 + 60 * DAY
    assert tier_of(alice) == "premium"
    assert events("tier.renewed") == [{"period": 2, "price": "10.00", "paid_until": "2027-03-11T12:00:00Z"}]
    notify("tier.renewed")
    notify("tier.renewed")
    row = Notification.objects.get(user=alice)
    assert (row.kind, row.key) == ("tier_renewed", "tier_renewed:2")
    body = kinds.text(row.kind, row.data).body
    assert body == "Premium was renewed for 10.00 ZNC and now runs until 2027-03-11 12:00 UTC."
    assert_ledger_consistent()


def test_injected_clock_renews_without_moving_time(alice):
    fund(alice, "30")
    tiers.tier_set(user=alice, tier="premium", now=T0)

    assert tiers.tiers_renew(now=T0 + 28 * DAY) == {"renewed": 0, "lapsed": 0}
    assert tiers.tiers_renew(now=T0 + 29 * DAY + dt.timedelta(hours=1)) == {"renewed": 1, "lapsed": 0}
    assert TierSubscription.objects.get(user=alice).paid_until == T0 + 60 * DAY
    assert balance(alice) == Decimal("10.00")


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_charge_once(alice):
    fund(alice, "100")
    start = timezone.now() - dt.timedelta(days=29, hours=12)  # 12 hours of the period left: due
    tiers.tier_set(user=alice, tier="premium", now=start)
    results, errors = run_at_once([tiers.tiers_renew, tiers.tiers_renew])
    counts = [result["renewed"] for result in results]

    assert errors == []
    assert sorted(counts) == [0, 1]
    assert TierPeriod.objects.filter(user=alice).count() == 2
    assert len(tier_purchases(alice)) == 2
    assert balance(alice) == Decimal("80.00")
    assert TierSubscription.objects.get(user=alice).paid_until == start + 60 * DAY
    assert_ledger_consistent()


def test_failed_renewal_keeps_premium_to_the_end_then_free_with_one_notification(as_user, alice, clock):
    fund(alice, "15")
    tiers.tier_set(user=alice, tier="premium")

    for hours in (0, 1, 5, 23):
        clock.move_to(T0 + 29 * DAY + dt.timedelta(hours=hours))
        assert tiers.tiers_renew() == {"renewed": 0, "lapsed": 0}
    clock.move_to(T0 + 30 * DAY - dt.timedelta(seconds=1))
    assert tiers.tiers_renew() == {"renewed": 0, "lapsed": 0}
    assert tier_of(alice) == "premium"
    assert as_user(alice).get(TIER)["X-RateLimit-Limit"] == "500"

    assert events("tier.renewal_failed") == [
        {
            "reason": "insufficient_balance",
            "required": "10.00",
            "available": "5.00",
            "paid_until": "2027-02-09T12:00:00Z",
        }
    ]
    notify("tier.renewal_failed")
    notify("tier.renewal_failed")
    row = Notification.objects.get(user=alice)
    assert row.kind == "tier_renewal_failed"
    text = kinds.text(row.kind, row.data)
    assert text.title == "Premium could not be renewed: top up your balance"
    assert text.body == (
        "Premium could not be renewed: it needs 10.00 ZNC and your balance is 5.00 ZNC. "
        "It ends at 2027-02-09 12:00 UTC and your API limit goes back to Free. "
        "Top up at least 5.00 ZNC before then to keep it."
    )

    clock.move_to(T0 + 30 * DAY)
    assert tiers.tiers_renew() == {"renewed": 0, "lapsed": 1}
    assert tiers.tiers_renew() == {"renewed": 0, "lapsed": 0}
    assert tier_of(alice) == "free"
    response = as_user(alice).get(TIER)
    assert response.json() == {"tier": "free", "limit_per_minute": 100, "paid_until": None, "renews": False}
    assert response["X-RateLimit-Limit"] == "100"
    assert events("tier.changed")[-1] == {
        "from": "premium",
        "to": "free",
        "reason": "renewal_failed",
        "paid_until": "2027-02-09T12:00:00Z",
    }
    assert tier_purchases(alice) == [(Decimal("-10.00"), "Premium API tier")]
    assert Notification.objects.filter(user=alice).count() == 1
    assert balance(alice) == Decimal("5.00")
    assert_ledger_consistent()


def test_a_top_up_during_the_failure_lets_the_next_run_renew(alice, clock):
    fund(alice, "10")
    tiers.tier_set(user=alice, tier="premium")
    clock.move_to(T0 + 29 * DAY)
    assert tiers.tiers_renew()["renewed"] == 0

    fund(alice, "10")
    clock.move_to(T0 + 29 * DAY + dt.timedelta(hours=2))

    assert tiers.tiers_renew()["renewed"] == 1
    assert TierSubscription.objects.get(user=alice).renewal_failed_at is None
    assert len(events("tier.renewal_failed")) == 1
    assert balance(alice) == Decimal("0.00")


def test_the_reserve_and_the_master_switch_apply(alice, bob, clock):
    fund(alice, "30")
    fund(bob, "30")
    tiers.tier_set(user=alice, tier="premium")
    tiers.tier_set(user=bob, tier="premium")
    User.objects.filter(pk=alice.pk).update(renew_min_balance=Decimal("10.01"))  # 20 - 10 < 10.01
    User.objects.filter(pk=bob.pk).update(auto_renew_enabled=False)

    clock.move_to(T0 + 29 * DAY)
    assert tiers.tiers_renew() == {"renewed": 0, "lapsed": 0}
    assert [e["reason"] for e in events("tier.renewal_failed")] == ["below_reserve"]
    assert events("tier.renewal_failed")[0]["required"] == "20.01"
    clock.move_to(T0 + 30 * DAY)
    assert tiers.tiers_renew() == {"renewed": 0, "lapsed": 2}
    assert (tier_of(alice), tier_of(bob)) == ("free", "free")
    assert (balance(alice), balance(bob)) == (Decimal("20.00"), Decimal("20.00"))


def test_downgrade_takes_effect_at_the_end_of_the_period_without_refund(as_user, alice, clock):
    fund(alice, "30")
    client = as_user(alice)
    client.put(TIER, {"tier": "premium"}, format="json")
    clock.move_to(T0 + 10 * DAY)

    response = as_user(alice).put(TIER, {"tier": "free"}, format="json")

    assert response.json()["tier"] == "premium" and response.json()["renews"] is False
    assert response["X-RateLimit-Limit"] == "500"
    clock.move_to(T0 + 29 * DAY)
    assert tiers.tiers_renew() == {"renewed": 0, "lapsed": 0}
    assert tier_of(alice) == "premium"
    clock.move_to(T0 + 30 * DAY)
    assert tiers.tiers_renew() == {"renewed": 0, "lapsed": 1}
    assert tier_of(alice) == "free"
    assert as_user(alice).get(TIER).json() == {
        "tier": "free",
        "limit_per_minute": 100,
        "paid_until": None,
        "renews": False,
    }
    assert balance(alice) == Decimal("20.00")
    assert sorted(Transaction.objects.filter(user=alice).values_list("kind", flat=True)) == ["deposit", "purchase"]
    assert not events("tier.renewal_failed")
    assert events("tier.changed")[-1]["reason"] == "downgrade"

    # Later, upgrading again is a new paid period from then.
    clock.move_to(T0 + 40 * DAY)
    again = as_user(alice).put(TIER, {"tier": "premium"}, format="json").json()
    assert iso(again["paid_until"]) == T0 + 70 * DAY
    assert list(TierPeriod.objects.values_list("period", flat=True)) == [1, 2]
    assert tier_purchases(alice)[-1] == (Decimal("-10.00"), "Premium API tier: period 2")
    assert_ledger_consistent()


def test_an_admin_made_enterprise_is_neither_renewed_nor_lapsed(alice, clock):
    fund(alice, "30")
    tiers.tier_set(user=alice, tier="premium")
    User.objects.filter(pk=alice.pk).update(rate_tier="enterprise")

    clock.move_to(T0 + 29 * DAY)
    assert tiers.tiers_renew() == {"renewed": 0, "lapsed": 0}
    clock.move_to(T0 + 31 * DAY)
    assert tiers.tiers_renew() == {"renewed": 0, "lapsed": 0}
    assert tier_of(alice) == "enterprise"
    assert balance(alice) == Decimal("20.00")


# --- Reminder ------------------------------------------------------------------------------------


def test_renewal_reminder_comes_once_72_hours_before(alice, bob, clock):
    fund(alice, "30")
    fund(bob, "30")
    tiers.tier_set(user=alice, tier="premium")
    tiers.tier_set(user=bob, tier="premium")
    tiers.tier_set(user=bob, tier="free")  # not renewing: nothing to remind of
    User.objects.filter(pk=alice.pk).update(renew_min_balance=Decimal("5.00"))

    clock.move_to(T0 + 27 * DAY - dt.timedelta(seconds=1))
    assert tiers_scan() == 0
    clock.move_to(T0 + 27 * DAY)
    assert (tiers_scan(), tiers_scan()) == (1, 0)

    row = Notification.objects.get()
    assert (row.user_id, row.kind) == (alice.pk, "tier_renewal_upcoming")
    assert kinds.text(row.kind, row.data).body == (
        "Premium will be renewed automatically for 10.00 ZNC before it ends at 2027-02-09 12:00 UTC. "
        "Keep at least 15.00 ZNC on your balance for it."
    )


# --- Portal and admin ----------------------------------------------------------------------------


def test_plan_card_shows_tier_limit_and_this_minutes_usage(as_user, alice, portal):
    fund(alice, "25")
    for _ in range(3):
        as_user(alice).get("/api/v1/currency/balance")

    page = html(portal.get("/profile/"))

    assert "Free · 100 requests per minute" in page
    assert 'data-testid="plan-usage">3 of 100<' in page
    assert "Upgrade to Premium for 10.00 ZNC / 30 days" in page
    assert 'data-testid="plan-downgrade"' not in page
    assert as_user(alice).get(TIER)["X-RateLimit-Remaining"] == "96"  # the page did not count a hit


def test_plan_card_upgrade_then_switch_back(alice, clock):
    fund(alice, "25")
    portal = logged_in(alice)

    upgraded = portal.post("/access/plan/", {"tier": "premium"}, follow=True)
    assert upgraded.redirect_chain == [("/profile/#plan", 302)]
    page = html(upgraded)
    assert "Premium · 500 requests per minute" in page
    assert 'data-testid="plan-downgrade"' in page
    assert "renews automatically for 10.00 ZNC" in page

    down = portal.post("/access/plan/", {"tier": "free"}, follow=True)
    assert messages_of(down)[0].startswith("Premium stays until ")
    assert messages_of(down)[0].endswith(", then your plan goes back to Free. Nothing more is charged.")
    assert "back to Free" in html(down)
    assert 'data-testid="plan-keep"' in html(down)
    assert balance(alice) == Decimal("15.00")


def test_plan_card_shortfall_is_a_message_and_writes_nothing(portal, alice):
    fund(alice, "3")

    page = portal.post("/access/plan/", {"tier": "premium"}, follow=True)

    assert messages_of(page)[0].startswith("Not enough ZNC: the price is 10.00 ZNC, your balance is 3.00 ZNC.")
    assert (tier_of(alice), TierSubscription.objects.count(), balance(alice)) == ("free", 0, Decimal("3.00"))


def test_plan_card_in_russian(portal, alice):
    page = html(portal.get("/profile/", HTTP_ACCEPT_LANGUAGE="ru"))

    assert "Тариф" in page
    assert "Бесплатный · 100 запросов в минуту" in page
    assert "Перейти на Премиум за 10,00 ZNC / 30 дней" in page


def test_plan_post_needs_login_and_post(client, portal):
    assert client.post("/access/plan/", {"tier": "premium"}).status_code == 302
    assert portal.get("/access/plan/").status_code == 405
    assert not TierSubscription.objects.exists()


def admin_form_data(response) -> dict:
    """What the admin's change form would post back unchanged (a user with no inline rows)."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form.initial.get(name)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [getattr(v, "pk", v) for v in value]
        elif value is not None:
            data[name] = getattr(value, "pk", value)
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(k): v for k, v in management.initial.items()})
    return data


def test_admin_sets_enterprise_with_a_limit(staff, alice):
    url = f"/admin/accounts/user/{alice.pk}/change/"
    form = html(staff.get(url))
    assert 'name="api_limit_per_minute"' in form and 'name="rate_tier"' in form

    data = {**admin_form_data(staff.get(url)), "rate_tier": "free", "api_limit_per_minute": "50"}
    wrong = staff.post(url, data)
    assert wrong.status_code == 200
    assert "Only an enterprise tier has an admin-set limit." in html(wrong)

    saved = staff.post(url, {**data, "rate_tier": "enterprise"})
    assert saved.status_code == 302
    alice.refresh_from_db()
    assert (alice.rate_tier, alice.api_limit_per_minute) == ("enterprise", 50)
    assert events("tier.changed") == [{"from": "free", "to": "enterprise", "reason": "admin"}]


def test_admin_shows_premium_periods_read_only(staff, alice):
    fund(alice, "20")
    tiers.tier_set(user=alice, tier="premium")

    assert staff.get("/admin/access/tierperiod/").status_code == 200
    assert staff.get("/admin/access/tiersubscription/").status_code == 200
    assert staff.get("/admin/access/tierperiod/add/").status_code == 403
    assert "Premium periods" in html(staff.get(f"/admin/accounts/user/{alice.pk}/change/"))
