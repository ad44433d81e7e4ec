"""The self-serve Premium API tier: upgrade, downgrade at the end of the period, renewal and lapse.

``User.rate_tier`` is the effective tier the API limiter reads (``zenzefi.ratelimit.api_rate``); the
services here change it inside their own transactions, so the next request is limited by the new tier.
Premium costs ``PREMIUM_PRICE_ZNC`` per ``PREMIUM_PERIOD_DAYS``, charged from the balance (a ``purchase``
ledger row "Premium API tier"). It renews by the rules of token auto-renewal (``access.renewal``): within
``LONG_RENEWAL_LEAD`` (24 h) before ``paid_until``, at the current price, once per period (a unique
``TierPeriod`` per user and period), only while the owner's master switch is on and the balance after
the charge stays at or above their reserve. A failed renewal is reported once per episode; premium keeps
working until ``paid_until`` and then goes back to free. Enterprise is set by an admin only; neither
service touches it.

Lock order everywhere: the subscription row, then the user row (``balance_change`` locks it).
"""

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from access.models import LONG_RENEWAL_LEAD, TierPeriod, TierSubscription
from access.renewal import Outcome
from accounts.models import User
from events.registry import moment, money
from events.services import event_record
from wallet.models import Transaction
from wallet.services import SYSTEM, Actor, balance_change
from zenzefi.errors import DomainError
from zenzefi.ratelimit import Rate, api_rate

logger = logging.getLogger(__name__)

Tier = User.Tier
DESCRIPTION = "Premium API tier"


class TierNotSelfServe(DomainError):
    def __init__(self, detail: str):
        super().__init__(detail, field="tier")


def premium_price() -> Decimal:
    return Decimal(settings.PREMIUM_PRICE_ZNC).quantize(Decimal("0.01"))


def premium_period() -> dt.timedelta:
    return dt.timedelta(days=settings.PREMIUM_PERIOD_DAYS)


@dataclass(frozen=True)
class TierState:
    """What the API and the Plan card show. ``paid_until`` and ``renews`` speak of Premium only."""

    tier: str
    limit_per_minute: int | None
    paid_until: dt.datetime | None
    renews: bool
    renewal_failed_at: dt.datetime | None = None


def per_minute(rate: Rate | None) -> int | None:
    return None if rate is None else rate.count * 60 // rate.seconds


def tier_state(*, user: User) -> TierState:
    """The user's tier as it is now (read from the database, not from a possibly stale ``user``)."""
    user = User.objects.only("id", "rate_tier", "api_limit_per_minute").get(pk=user.pk)
    subscription = TierSubscription.objects.filter(user_id=user.pk).first()
    premium = user.rate_tier == Tier.PREMIUM and subscription is not None
    return TierState(
        tier=user.rate_tier,
        limit_per_minute=per_minute(api_rate(user)),
        paid_until=subscription.paid_until if premium else None,
        renews=bool(premium and subscription.renews),
        renewal_failed_at=subscription.renewal_failed_at if premium else None,
    )


def _subscription_lock(user_id, *, create: bool) -> TierSubscription | None:
    # Create the row if missing (a no-op when another request just did), then lock it: two upgrades of
    # one user at once serialise here, so only one of them charges.
    if create:
        TierSubscription.objects.bulk_create([TierSubscription(user_id=user_id)], ignore_conflicts=True)
    return TierSubscription.objects.select_for_update().filter(user_id=user_id).first()


def _period_charge(*, subscription: TierSubscription, starts_at: dt.datetime, price: Decimal) -> TierPeriod:
    """Debit one period and write its TierPeriod (InsufficientFunds from ``balance_change``: nothing written)."""
    last = TierPeriod.objects.filter(user_id=subscription.user_id).order_by("-period").values_list("period", flat=True)
    period = (last.first() or 0) + 1
    entry = balance_change(
        user_id=subscription.user_id,
        amount=-price,
        kind=Transaction.Kind.PURCHASE,
        description=DESCRIPTION if period == 1 else f"{DESCRIPTION}: period {period}",
    )
    return TierPeriod.objects.create(
        user_id=subscription.user_id,
        period=period,
        starts_at=starts_at,
        ends_at=starts_at + premium_period(),
        price=price,
        transaction=entry,
    )


@transaction.atomic
def tier_set(*, user: User, tier: str, actor: Actor = SYSTEM, now: dt.datetime | None = None) -> TierState:
    """Upgrade to premium, or schedule the way back to free; answers the tier as it is after.

    ``premium`` from free (or with no paid period running): charges ``PREMIUM_PRICE_ZNC`` at once
    (InsufficientFunds, 402, when the balance is short: nothing written), starts a period of
    ``PREMIUM_PERIOD_DAYS`` from now, sets ``rate_tier`` premium and renewal on; event ``tier.changed``.
    ``premium`` while premium: renewal back on if it was off, no charge (idempotent). ``free`` while
    premium: renewal off; premium stays until ``paid_until``, no refund. ``free`` while free: nothing.
    Enterprise users, and ``enterprise`` asked for: TierNotSelfServe (400). Audited when something changed.
    """
    now = now or timezone.now()
    if tier == Tier.ENTERPRISE:
        raise TierNotSelfServe("The enterprise tier is set by an administrator")
    if tier not in (Tier.FREE, Tier.PREMIUM):
        raise TierNotSelfServe('tier must be "premium" or "free"')
    subscription = _subscription_lock(user.pk, create=tier == Tier.PREMIUM)
    # Read under the subscription's lock: the task's lapse changes rate_tier holding the same lock.
    current = User.objects.values_list("rate_tier", flat=True).get(pk=user.pk)
    if current == Tier.ENTERPRISE:  # the row made above goes with the rollback
        raise TierNotSelfServe("Your enterprise tier is set by an administrator: ask them to change it")
    running = (
        current == Tier.PREMIUM
        and subscription is not None
        and subscription.paid_until is not None
        and subscription.paid_until > now
    )
    if tier == Tier.PREMIUM and not running:
        price = premium_price()
        period = _period_charge(subscription=subscription, starts_at=now, price=price)
        subscription.paid_until, subscription.renews, subscription.renewal_failed_at = period.ends_at, True, None
        subscription.save(update_fields=["paid_until", "renews", "renewal_failed_at", "updated_at"])
        User.objects.filter(pk=user.pk).update(rate_tier=Tier.PREMIUM)
        actor.audit("tier_upgrade", period, {"period": period.period, "price": str(price)})
        event_record(
            type="tier.changed",
            user=user.pk,
            data={
                "from": current,
                "to": Tier.PREMIUM,
                "reason": "upgrade",
                "price": money(price),
                "paid_until": moment(period.ends_at),
            },
        )
    elif running and subscription.renews != (tier == Tier.PREMIUM):
        subscription.renews = tier == Tier.PREMIUM
        subscription.renewal_failed_at = None  # a new decision starts a new failure episode
        subscription.save(update_fields=["renews", "renewal_failed_at", "updated_at"])
        actor.audit("tier_renews", subscription, {"renews": subscription.renews})
    state = tier_state(user=user)
    user.rate_tier = state.tier
    return state


# --- The beat task ------------------------------------------------------------------------------


def _due(now: dt.datetime) -> Q:
    """Renewing premium subscriptions within the lead time of their end (not yet ended)."""
    return Q(
        renews=True,
        paid_until__gt=now,
        paid_until__lte=now + LONG_RENEWAL_LEAD,
        user__rate_tier=Tier.PREMIUM,
        user__auto_renew_enabled=True,
        user__is_active=True,
    )


def _fail(subscription: TierSubscription, now: dt.datetime, reason: str, required: Decimal, available: Decimal):
    """Remember the failure; report it once per episode (the first failed run since the last success or choice)."""
    if subscription.renewal_failed_at is None:
        subscription.renewal_failed_at = now
        subscription.save(update_fields=["renewal_failed_at", "updated_at"])
        event_record(
            type="tier.renewal_failed",
            user=subscription.user_id,
            data={
                "reason": reason,
                "required": money(required),
                "available": money(available),
                "paid_until": moment(subscription.paid_until),
            },
        )
    return Outcome(False, reason)


@transaction.atomic
def tier_renew(*, user_id, now: dt.datetime | None = None) -> Outcome | None:
    """Charge the next Premium period of one user and move ``paid_until`` by one period.

    None when there is nothing to do: another worker holds the subscription, or it is not due (already
    renewed, renewal off, master switch off, not premium, owner deactivated). Writes, in one transaction,
    the ``purchase`` ledger row, the ``TierPeriod`` (unique per user and period: never charged twice) and
    the new ``paid_until``. A balance short of price + reserve writes no money: the failure is remembered
    and ``tier.renewal_failed`` recorded once per episode. Side effects: ``tier.renewed`` event, audit row.
    """
    now = now or timezone.now()
    # Skip a subscription another worker holds: that worker renews it.
    subscription = (
        TierSubscription.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(_due(now), user_id=user_id)
        .first()
    )
    if subscription is None:
        return None
    owner = User.objects.select_for_update().only("id", "balance", "renew_min_balance").get(pk=user_id)
    price, reserve = premium_price(), owner.renew_min_balance
    if owner.balance - price < reserve:
        reason = "insufficient_balance" if owner.balance < price else "below_reserve"
        return _fail(subscription, now, reason, price + reserve, owner.balance)
    period = _period_charge(subscription=subscription, starts_at=subscription.paid_until, price=price)
    subscription.paid_until, subscription.renewal_failed_at = period.ends_at, None
    subscription.save(update_fields=["paid_until", "renewal_failed_at", "updated_at"])
    SYSTEM.audit("tier_renew", period, {"user_id": str(user_id), "period": period.period, "price": str(price)})
    event_record(
        type="tier.renewed",
        user=user_id,
        data={"period": period.period, "price": money(price), "paid_until": moment(period.ends_at)},
    )
    return Outcome(True)


@transaction.atomic
def tier_lapse(*, user_id, now: dt.datetime | None = None) -> bool:
    """Back to free for a premium user whose paid period is over; False when not (or no longer) due."""
    now = now or timezone.now()
    subscription = (
        TierSubscription.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(user_id=user_id, paid_until__lte=now, user__rate_tier=Tier.PREMIUM)
        .first()
    )
    if subscription is None:
        return False
    # Conditional update: an admin who just made the user enterprise keeps that.
    if User.objects.filter(pk=user_id, rate_tier=Tier.PREMIUM).update(rate_tier=Tier.FREE) != 1:
        return False
    reason = "downgrade" if not subscription.renews else "renewal_failed"
    ended = subscription.paid_until
    subscription.renews, subscription.renewal_failed_at = False, None
    subscription.save(update_fields=["renews", "renewal_failed_at", "updated_at"])
    SYSTEM.audit("tier_lapse", subscription, {"reason": reason, "paid_until": moment(ended)})
    event_record(
        type="tier.changed",
        user=user_id,
        data={"from": Tier.PREMIUM, "to": Tier.FREE, "reason": reason, "paid_until": moment(ended)},
    )
    return True


def tiers_renew(*, now: dt.datetime | None = None) -> dict:
    """Every 5 minutes: renew the premium subscriptions that are due, then end the ones whose time is up.

    Safe on two workers at once: each subscription is handled under its row lock (a locked one is
    skipped), and the unique (user, period) row stops a second charge.
    """
    now = now or timezone.now()
    counts = {"renewed": 0, "lapsed": 0}
    for user_id in TierSubscription.objects.filter(_due(now)).order_by("paid_until").values_list("pk", flat=True):
        try:
            outcome = tier_renew(user_id=user_id, now=now)
        except Exception:  # one bad subscription must not stop the others
            logger.exception("tier renewal failed", extra={"user_id": str(user_id)})
            continue
        counts["renewed"] += bool(outcome and outcome.renewed)
    over = TierSubscription.objects.filter(paid_until__lte=now, user__rate_tier=Tier.PREMIUM)
    for user_id in over.values_list("pk", flat=True):
        try:
            counts["lapsed"] += tier_lapse(user_id=user_id, now=now)
        except Exception:
            logger.exception("tier lapse failed", extra={"user_id": str(user_id)})
    return counts
