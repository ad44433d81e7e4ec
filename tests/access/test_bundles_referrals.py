from decimal import Decimal

import pytest

from access import services
from access.models import AccessToken, Bundle
from accounts.models import AuditLog
from tests.factories import UserFactory
from tests.helpers import balance, fund
from wallet.errors import InsufficientFunds
from wallet.models import Transaction
from wallet.services import Actor

pytestmark = pytest.mark.django_db


def test_default_bundles_exist_after_migrate():
    rows = list(
        Bundle.objects.order_by("total_price", "name").values_list(
            "name", "token_count", "duration_hours", "scope", "discount_percent", "base_price", "total_price"
        )
    )

    assert rows == [
        ("Starter Pack", 5, 24, "full", Decimal("10.00"), Decimal("90.00"), Decimal("81.00")),
        ("Certificates Bundle", 10, 24, "certificates_only", Decimal("15.00"), Decimal("180.00"), Decimal("153.00")),
        ("Pro Bundle", 10, 24, "full", Decimal("15.00"), Decimal("180.00"), Decimal("153.00")),
        ("Ultimate Package", 20, 168, "full", Decimal("20.00"), Decimal("2000.00"), Decimal("1600.00")),
    ]
    starter = Bundle.objects.get(name="Starter Pack")
    assert (starter.savings, starter.price_per_token) == (Decimal("9.00"), Decimal("16.20"))


@pytest.mark.parametrize(
    ("total", "count", "shares"),
    [("81.00", 5, ["16.20"] * 5), ("100.00", 3, ["33.34", "33.33", "33.33"]), ("0.05", 2, ["0.03", "0.02"])],
)
def test_bundle_shares_add_up_exactly(total, count, shares):
    result = services.bundle_shares(Decimal(total), count)

    assert result == [Decimal(s) for s in shares]
    assert sum(result) == Decimal(total)


def test_bundle_purchase_debits_once_and_creates_all_tokens(alice):
    fund(alice, "100")
    bundle = Bundle.objects.get(name="Starter Pack")

    _, tokens, entry = services.bundle_purchase(user=alice, bundle_id=bundle.pk)

    assert entry.amount == Decimal("-81.00")
    assert entry.description == "Bundle purchase: Starter Pack (5 tokens x 24h)"
    assert Transaction.objects.filter(user=alice, kind="purchase").count() == 1
    assert AccessToken.objects.filter(user=alice, bundle=bundle, purchase=entry).count() == 5
    assert {t.cost_znc for t in tokens} == {Decimal("16.20")}
    assert balance(alice) == Decimal("19.00")
    assert AuditLog.objects.get(action="bundle_purchase").details["cost"] == "81.00"


def test_bundle_purchase_failing_midway_leaves_nothing(alice, monkeypatch):
    fund(alice, "200")
    bundle = Bundle.objects.get(name="Pro Bundle")
    real = services.secret_generate
    calls = {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] == 7:
            raise RuntimeError("disk full")
        return real()

    monkeypatch.setattr(services, "secret_generate", flaky)

    with pytest.raises(RuntimeError):
        services.bundle_purchase(user=alice, bundle_id=bundle.pk)

    assert calls["n"] == 7
    assert not AccessToken.objects.exists()
    assert not Transaction.objects.filter(kind="purchase").exists()
    assert balance(alice) == Decimal("200.00")


def test_bundle_purchase_without_funds_writes_nothing(alice):
    fund(alice, "80.99")

    with pytest.raises(InsufficientFunds) as error:
        services.bundle_purchase(user=alice, bundle_id=Bundle.objects.get(name="Starter Pack").pk)

    assert error.value.detail == "Insufficient balance. Required: 81.00 ZNC, Available: 80.99 ZNC"
    assert not AccessToken.objects.exists()


def test_inactive_bundle_cannot_be_bought(alice):
    fund(alice, "100")
    bundle = Bundle.objects.get(name="Starter Pack")
    Bundle.objects.filter(pk=bundle.pk).update(is_active=False)

    with pytest.raises(services.BundleNotFound):
        services.bundle_purchase(user=alice, bundle_id=bundle.pk)
    assert balance(alice) == Decimal("100.00")


@pytest.fixture
def referee(alice):
    return UserFactory(username="carol", email="carol@example.com", referred_by=alice)


def bonuses(user):
    return list(Transaction.objects.filter(user=user, kind="referral_bonus").values_list("amount", flat=True))


def test_first_purchase_above_100_pays_the_referrer_10_percent_once(alice, referee):
    fund(referee, "2000")

    services.bundle_purchase(user=referee, bundle_id=Bundle.objects.get(name="Pro Bundle").pk)
    services.bundle_purchase(user=referee, bundle_id=Bundle.objects.get(name="Certificates Bundle").pk)

    assert bonuses(alice) == [Decimal("15.30")]
    entry = Transaction.objects.get(user=alice, kind="referral_bonus")
    assert entry.description == "Referral bonus from carol (first purchase 153.00 ZNC)"
    assert balance(alice) == Decimal("15.30")
    assert AuditLog.objects.filter(action="referral_bonus", resource_id=str(entry.pk)).count() == 1


def test_a_purchase_of_exactly_100_does_not_qualify(alice, referee):
    fund(referee, "500")

    services.token_purchase(user=referee, duration_hours=168)  # 100.00
    assert bonuses(alice) == []

    services.token_purchase(user=referee, duration_hours=720)  # 300.00: the first above 100
    assert bonuses(alice) == [Decimal("30.00")]


def test_small_purchases_and_unreferred_users_earn_nothing(alice, bob, referee):
    fund(referee, "100")
    fund(bob, "500")

    services.token_purchase(user=referee, duration_hours=24)
    services.token_purchase(user=bob, duration_hours=720)

    assert bonuses(alice) == []
    assert Transaction.objects.filter(kind="referral_bonus").count() == 0


def test_bonus_is_in_the_purchase_transaction(alice, referee, monkeypatch):
    fund(referee, "500")

    def broken_audit(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(Actor, "audit", lambda *a, **k: broken_audit())

    with pytest.raises(RuntimeError):
        services.token_purchase(user=referee, duration_hours=720)

    # The purchase failed after the bonus was written: both are gone together.
    assert bonuses(alice) == []
    assert balance(referee) == Decimal("500.00")
    assert not AccessToken.objects.exists()


def test_referrals_api(as_user, alice, referee, bob):
    other = UserFactory(username="dave", email="dave@example.com", referred_by=alice)
    fund(referee, "200")
    services.bundle_purchase(user=referee, bundle_id=Bundle.objects.get(name="Pro Bundle").pk)

    body = as_user(alice).get("/api/v1/users/me/referrals").json()

    assert body["referral_code"] == alice.referral_code
    assert body["total_referrals"] == 2
    assert body["qualifying_referrals"] == 1
    assert body["total_bonus_earned"] == 15.3
    assert body["referral_link"] == f"http://localhost:8000/register/?ref={alice.referral_code}"
    flags = {u["username"]: u["has_made_qualifying_purchase"] for u in body["referred_users"]}
    assert flags == {"carol": True, "dave": False}
    assert str(other.id) in {u["id"] for u in body["referred_users"]}
