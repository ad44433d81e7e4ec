"""Auto-renewal of access tokens: the owner's switches and the beat task's renewals.

A token renews when its owner switched auto-renewal on for it and their master
switch (``User.auto_renew_enabled``) is on, it is running (activated, not
revoked, not expired) and the owner is active. Renewal extends the same token
(same secret, scope and device binding): ``expires_at += duration``, charged at
the current list price of its duration (bundle tokens too), once per period,
only while the balance after the charge stays at or above the owner's reserve
(``User.renew_min_balance``). The task charges within the lead time before
expiry (``access.models.renewal_lead``) and tries again on each run until the
token expires; then ``tokens_expire`` turns its auto-renewal off.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from access.models import LONG_RENEWAL_LEAD, SHORT_RENEWAL_LEAD, AccessToken, TierSubscription, TokenRenewal
from access.prices import token_price
from access.services import TokenNotFound, token_cache_drop
from accounts.models import User
from accounts.services import audit_record
from events.registry import moment, money
from events.services import event_record
from wallet.models import Transaction
from wallet.services import SYSTEM, Actor, balance_change
from zenzefi.errors import DomainError

logger = logging.getLogger(__name__)


class TokenNotRenewable(DomainError):
    """Auto-renewal cannot be switched for a token that is over."""


class InvalidReserve(DomainError):
    def __init__(self, detail: str):
        super().__init__(detail, field="min_balance")


# --- The owner's switches ------------------------------------------------------------------------


@transaction.atomic
def token_auto_renew_set(*, user: User, token_id, enabled: bool, actor: Actor = SYSTEM) -> AccessToken:
    """Switch auto-renewal of one of the owner's tokens on or off.

    Someone else's or an unknown token: TokenNotFound (404). A revoked or expired token:
    TokenNotRenewable (400), nothing written. A ready (unused) token may be switched on: it renews
    once it runs. Switching clears a remembered renewal failure, so the next one is reported again.
    """
    # Lock the token: the renewal task reads auto_renew under the same lock.
    token = AccessToken.objects.select_for_update().filter(pk=token_id, user=user).first()
    if token is None:
        raise TokenNotFound("Token not found")
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenNotRenewable("Token is revoked: auto-renewal cannot be changed")
    if token.expires_at is not None and now >= token.expires_at:
        raise TokenNotRenewable("Token has expired: auto-renewal cannot be changed")
    if token.auto_renew != enabled:
        token.auto_renew = enabled
        token.renewal_failed_at = None
        token.save(update_fields=["auto_renew", "renewal_failed_at"])
        actor.audit("token_auto_renew", token, {"enabled": enabled})
    return token


def reserve_check(value) -> Decimal:
    """A renewal reserve: a number of ZNC, at least 0, with at most 2 decimal places (InvalidReserve otherwise)."""
    try:
        amount = Decimal(str(value).strip())
    except ArithmeticError:
        raise InvalidReserve('min_balance must be a number, e.g. "10.00"') from None
    if not amount.is_finite():
        raise InvalidReserve('min_balance must be a number, e.g. "10.00"')
    if amount < 0:
        raise InvalidReserve("min_balance must not be negative")
    if amount != amount.quantize(Decimal("0.01")):
        raise InvalidReserve("min_balance must have at most 2 decimal places")
    if amount >= Decimal("1e10"):
        raise InvalidReserve("min_balance is too large")
    return amount.quantize(Decimal("0.01"))


@transaction.atomic
def auto_renewal_settings_set(*, user: User, enabled: bool, min_balance, actor: Actor = SYSTEM) -> User:
    """Set the owner's master switch and renewal reserve (the balance a renewal must leave). Audited."""
    reserve = reserve_check(min_balance)
    User.objects.filter(pk=user.pk).update(auto_renew_enabled=enabled, renew_min_balance=reserve)
    # New settings start a new failure episode: the next failed renewal of any token (or Premium) is reported again.
    AccessToken.objects.filter(user=user, renewal_failed_at__isnull=False).update(renewal_failed_at=None)
    TierSubscription.objects.filter(user=user, renewal_failed_at__isnull=False).update(renewal_failed_at=None)
    user.auto_renew_enabled, user.renew_min_balance = enabled, reserve
    actor.audit("auto_renewal_settings", user, {"enabled": enabled, "min_balance": str(reserve)})
    return user


# --- The beat task ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    renewed: bool
    reason: str = ""


def _due(now: dt.datetime) -> Q:
    """Running tokens whose expiry is within their lead time (the durations split at 24 h, as renewal_lead)."""
    return Q(
        auto_renew=True,
        revoked_at__isnull=True,
        activated_at__isnull=False,
        expires_at__gt=now,
        user__auto_renew_enabled=True,
        user__is_active=True,
    ) & (
        Q(duration_hours__lte=24, expires_at__lte=now + SHORT_RENEWAL_LEAD)
        | Q(duration_hours__gt=24, expires_at__lte=now + LONG_RENEWAL_LEAD)
    )


def _fail(token: AccessToken, now: dt.datetime, reason: str, required: Decimal | None, available: Decimal) -> Outcome:
    """Remember the failure on the token; report it once per episode (the first failed run since the last success)."""
    if token.renewal_failed_at is None:
        token.renewal_failed_at = now
        token.save(update_fields=["renewal_failed_at"])
        event_record(
            type="token.renewal_failed",
            user=token.user_id,
            data={
                "token_id": str(token.pk),
                "reason": reason,
                "required": money(required) if required is not None else None,
                "available": money(available),
            },
        )
    return Outcome(False, reason)


@transaction.atomic
def token_renew(*, token_id, now: dt.datetime | None = None) -> Outcome | None:
    """Charge one auto-renewing token for its next period and move its expiry by one duration.

    None when there is nothing to do: another worker holds the token, or it is no longer due
    (already renewed for the coming period, switched off, revoked, expired, owner deactivated).
    Keeps the ledger invariant; writes, in one transaction, the ``purchase`` ledger row, the
    ``TokenRenewal`` row (unique per token and period: never charged twice) and the new expiry.
    A balance short of price + reserve writes no money: the failure is remembered on the token
    and ``token.renewal_failed`` recorded once per episode. Side effects: ``token.renewed`` event,
    audit row, and the proxy's cached facts dropped on commit so it sees the new expiry.
    """
    now = now or timezone.now()
    # Lock the token, skipping one another worker holds: that worker renews it. Lock order: token, then user
    # (as token_revoke does), so the two never deadlock.
    token = (
        AccessToken.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(_due(now), pk=token_id)
        .select_related("user")
        .first()
    )
    if token is None:
        return None
    owner = User.objects.select_for_update().only("id", "balance", "renew_min_balance").get(pk=token.user_id)
    price = token_price(token.duration_hours)
    if price is None:  # the duration was taken off sale: nothing to charge for the same period
        return _fail(token, now, "duration_not_on_sale", None, owner.balance)
    reserve = owner.renew_min_balance
    if owner.balance - price < reserve:
        reason = "insufficient_balance" if owner.balance < price else "below_reserve"
        return _fail(token, now, reason, price + reserve, owner.balance)
    period = token.renewals.count() + 2
    entry = balance_change(
        user_id=owner.pk,
        amount=-price,
        kind=Transaction.Kind.PURCHASE,
        description=f"Token renewal: {token.duration_hours}h, period {period}",
    )
    TokenRenewal.objects.create(token=token, period=period, price=price, transaction=entry)
    token.expires_at += token.duration
    token.renewal_failed_at = None
    token.save(update_fields=["expires_at", "renewal_failed_at"])
    token_cache_drop(token.secret_digest)
    audit_record(
        actor=None,
        action="token_renew",
        obj=token,
        details={"user_id": str(token.user_id), "period": period, "price": str(price)},
    )
    event_record(
        type="token.renewed",
        user=token.user_id,
        data={
            "token_id": str(token.pk),
            "period": period,
            "price": money(price),
            "expires_at": moment(token.expires_at),
        },
    )
    return Outcome(True)


def tokens_renew(*, now: dt.datetime | None = None) -> int:
    """Every 5 minutes: renew each token that is due. Returns how many this run renewed.

    Safe on two workers at once: each token is renewed under its row lock (a locked one is
    skipped) and the unique (token, period) row stops a second charge. Tokens already renewed
    for the coming period are not due, so they cost nothing but the one query.
    """
    now = now or timezone.now()
    renewed = 0
    for token_id in AccessToken.objects.filter(_due(now)).order_by("expires_at").values_list("pk", flat=True):
        try:
            outcome = token_renew(token_id=token_id, now=now)
        except Exception:  # one bad token must not stop the others' renewals
            logger.exception("token renewal failed", extra={"token_id": str(token_id)})
            continue
        renewed += bool(outcome and outcome.renewed)
    return renewed
