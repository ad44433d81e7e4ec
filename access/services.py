"""Buying, activating, validating and revoking access tokens; bundles.

Money moves only through wallet.services.balance_change, inside the same
transaction as the token change it pays for or refunds.
"""

import asyncio
import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass
from decimal import ROUND_DOWN, Decimal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from access.crypto import secret_digest, secret_encrypt, secret_generate
from access.models import CENT, AccessToken, Bundle, Gift, GiftStatus, Scope
from access.prices import token_price, valid_durations
from accounts.models import User
from accounts.services import (
    INACTIVE_USER_KEY,
    audit_record,
    cache_forget,
    cache_repairs_after_outage,
    cache_repairs_due,
    user_is_blocked,
)
from events.registry import moment, money
from events.services import event_record
from wallet.models import Transaction
from wallet.services import SYSTEM, Actor, balance_change, referral_bonus_grant
from zenzefi import metrics, rediscache
from zenzefi.errors import Conflict, DomainError, NotFound

logger = logging.getLogger(__name__)

FACTS_CACHE_KEY = "access:token:{}"
# A digest no token has: remembered for TOKEN_UNKNOWN_CACHE_SECONDS so a spray of random secrets costs no query.
UNKNOWN_CACHE_KEY = "access:unknown:{}"


class InvalidDuration(DomainError):
    def __init__(self):
        super().__init__(f"Invalid duration. Must be one of: {valid_durations()}", field="duration_hours")


class InvalidScope(DomainError):
    def __init__(self):
        super().__init__(f"Invalid scope. Must be one of: {Scope.values}", field="scope")


class TokenNotFound(NotFound):
    default_detail = gettext_noop("Token not found or already revoked")


class BundleNotFound(NotFound):
    default_detail = gettext_noop("Bundle not found or inactive")


class TokenGiftPending(Conflict):
    default_detail = gettext_noop("This token is a pending gift: cancel the gift first to use or revoke it")


GIFT_PENDING_DETAIL = "This token is a pending gift: it works once its recipient accepts it"


def token_gift_pending(token_id) -> bool:
    """Whether the token is offered as a gift and not yet claimed (frozen: no proxy, no revoke, no activation)."""
    return Gift.objects.filter(token_id=token_id, status=GiftStatus.PENDING).exists()


# --- Facts the proxy needs, cached ------------------------------------------------------


@dataclass(frozen=True)
class TokenFacts:
    token_id: str
    user_id: str
    scope: str
    duration_hours: int
    activated_at: dt.datetime | None
    # Stored on the token (renewal moves it): the proxy never recomputes it from the duration.
    expires_at: dt.datetime | None = None
    # Offered as a gift and not yet claimed: the proxy refuses it. Such facts are never cached.
    gift_pending: bool = False

    def expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def seconds_left(self, now: dt.datetime) -> int | None:
        return None if self.expires_at is None else max(0, int((self.expires_at - now).total_seconds()))

    def dumps(self) -> str:
        data = asdict(self)
        for field in ("activated_at", "expires_at"):
            data[field] = data[field].isoformat() if data[field] else None
        return json.dumps(data)

    @classmethod
    def loads(cls, raw: str) -> "TokenFacts":
        data = json.loads(raw)
        for field in ("activated_at", "expires_at"):
            if data.get(field):
                data[field] = dt.datetime.fromisoformat(data[field])
        if data["activated_at"] and not data.get("expires_at"):
            # An entry cached before expiry was stored (it lives at most TOKEN_CACHE_SECONDS).
            data["expires_at"] = data["activated_at"] + dt.timedelta(hours=data["duration_hours"])
        return cls(**data)

    @classmethod
    def of(cls, token: AccessToken, *, gift_pending: bool = False) -> "TokenFacts":
        return cls(
            str(token.pk),
            str(token.user_id),
            token.scope,
            token.duration_hours,
            token.activated_at,
            token.expires_at,
            gift_pending,
        )


def _cache_key(digest: str) -> str:
    return FACTS_CACHE_KEY.format(digest)


def _unknown_key(digest: str) -> str:
    return UNKNOWN_CACHE_KEY.format(digest)


def _cached(digest: str) -> tuple[str | None, bool]:
    """The cached facts and whether the digest is marked unknown, in one round trip (an outage reads as neither)."""
    found = rediscache.safe_get_many([_cache_key(digest), _unknown_key(digest)])
    return found.get(_cache_key(digest)), _unknown_key(digest) in found


def token_unknown_forget(digest: str) -> None:
    """A token now has this digest (created, or its secret rotated): drop an "unknown" mark when that commits.

    Random 64-character secrets make such a mark impossible in practice; dropping it keeps the rule exact."""
    transaction.on_commit(lambda: rediscache.safe_delete(_unknown_key(digest)))


def _cache_put(digest: str, facts: TokenFacts, now: dt.datetime) -> None:
    timeout = settings.TOKEN_CACHE_SECONDS
    if facts.expires_at is not None:
        # Never outlive the token: the entry is gone by the time the token expires.
        timeout = min(timeout, int((facts.expires_at - now).total_seconds()))
    if timeout > 0:
        rediscache.safe_set(_cache_key(digest), facts.dumps(), timeout=timeout)


def token_cache_drop(digest: str) -> None:
    """Drop the cached facts when the change commits. Never fails the committed change: if the cache
    is down, the deletion is kept in the database (``CacheRepair``) and replayed before the cache is
    trusted again, so a revoked token's stale entry is not honoured after the outage."""
    transaction.on_commit(lambda: cache_forget(_cache_key(digest)))


def token_validate(secret: str) -> TokenFacts | None:
    """The facts of a usable token, or None (unknown, revoked, expired, owner deactivated).

    Cache first, database on a miss. A digest no token has is remembered as
    unknown for TOKEN_UNKNOWN_CACHE_SECONDS (revoked and expired ones are not:
    they are asked each time, as before). Revocation and activation drop the cache
    entry when they commit; an entry never outlives the token's expiry and is
    re-checked against the clock and the owner's state on every read. A pending
    gift's facts say so (``gift_pending``) and are not cached: the proxy refuses
    them before any session is opened.
    """
    if not secret or len(secret) > 256:
        return None
    digest = secret_digest(secret)
    now = timezone.now()
    raw, unknown = _cached(digest)  # a cache outage is a miss: the database decides
    if cache_repairs_due():
        # The cache is back after an outage: make the invalidations it missed before trusting it.
        cache_repairs_after_outage()
        raw, unknown = _cached(digest)
    if unknown:
        return None
    if raw is not None:
        facts = TokenFacts.loads(raw)
        if facts.expired(now):
            rediscache.safe_delete(_cache_key(digest))
            return None
        if user_is_blocked(facts.user_id):
            return None
        return facts
    token = AccessToken.objects.select_related("user").filter(secret_digest=digest).first()
    if token is None:
        rediscache.safe_set(_unknown_key(digest), 1, timeout=settings.TOKEN_UNKNOWN_CACHE_SECONDS)
        return None
    if token.revoked_at is not None or not token.user.is_active:
        return None
    facts = TokenFacts.of(token)
    if facts.expired(now):
        return None
    if token.activated_at is None and token_gift_pending(token.pk):
        return TokenFacts.of(token, gift_pending=True)
    _cache_put(digest, facts, now)
    return facts


@dataclass(frozen=True)
class KnownToken:
    """What never changes about a token: whose it is, its id and its scope."""

    token_id: str
    user_id: str
    scope: str


# digest → KnownToken, per process: lets the proxy fetch a token's facts and its
# owner's state in one Redis round trip (and check the scope before it).
_KNOWN: dict[str, KnownToken] = {}


def token_known(digest: str) -> KnownToken | None:
    return _KNOWN.get(digest)


def _remember(digest: str, facts: TokenFacts) -> None:
    if len(_KNOWN) > 100_000:
        _KNOWN.clear()
    _KNOWN[digest] = KnownToken(facts.token_id, facts.user_id, facts.scope)


def token_cache_keys(digest: str, user_id: str) -> tuple[str, str]:
    """The Redis keys of a token's cached facts and of its owner's "deactivated" mark."""
    return cache.make_key(_cache_key(digest)), cache.make_key(INACTIVE_USER_KEY.format(user_id))


def facts_from_cache(raw: bytes | None) -> TokenFacts | None:
    """Facts read straight from Redis (Django's JSON-encoded cache value); None if absent or expired."""
    if raw is None:
        return None
    facts = TokenFacts.loads(json.loads(raw))
    return None if facts.expired(timezone.now()) else facts


# (event loop, digest) → the database read in flight for it: concurrent cache misses share one query.
_INFLIGHT: dict[tuple, asyncio.Task] = {}


async def _validate_once(digest: str, secret: str) -> TokenFacts | None:
    """token_validate in a thread, at most one at a time per digest in this process; the others await it.

    Shielded: a waiter that is cancelled (its client went away) does not cancel the read the others await.
    """
    key = (asyncio.get_running_loop(), digest)
    task = _INFLIGHT.get(key)
    if task is None:
        task = asyncio.ensure_future(sync_to_async(token_validate, thread_sensitive=False)(secret))
        _INFLIGHT[key] = task

        def finished(done: asyncio.Task) -> None:
            _INFLIGHT.pop(key, None)
            if not done.cancelled():
                done.exception()  # retrieved: no "never retrieved" warning if every waiter went away

        task.add_done_callback(finished)
    return await asyncio.shield(task)


async def token_validate_async(secret: str) -> TokenFacts | None:
    """token_validate for the async proxy: Redis only on a warm path, the database on a miss."""
    from zenzefi import aioredis

    if not secret or len(secret) > 256:
        return None
    digest = secret_digest(secret)
    if not aioredis.usable():
        return await _validate_once(digest, secret)
    redis = aioredis.client()
    known = _KNOWN.get(digest)
    # Known: its facts and its owner's "deactivated" mark; otherwise its facts and the "unknown digest" mark.
    keys = (
        list(token_cache_keys(digest, known.user_id))
        if known
        else [cache.make_key(_cache_key(digest)), cache.make_key(_unknown_key(digest))]
    )
    try:
        values = await aioredis.call(redis.mget(keys))
    except Exception:  # Redis down (the breaker logs it): the database still knows
        return await _validate_once(digest, secret)
    if cache_repairs_due():  # Redis is back after an outage: token_validate repairs it, then decides
        return await _validate_once(digest, secret)
    if values[0] is None:
        if known is None and values[1] is not None:
            return None  # no token has this digest (asked less than TOKEN_UNKNOWN_CACHE_SECONDS ago)
        facts = await _validate_once(digest, secret)
        if facts is not None and not facts.gift_pending:
            _remember(digest, facts)
        return facts
    facts = facts_from_cache(values[0])
    if facts is None:
        return None
    if known is None:
        _remember(digest, facts)
        try:
            blocked = await aioredis.call(redis.get(token_cache_keys(digest, facts.user_id)[1]))
        except Exception:
            return await _validate_once(digest, secret)
    else:
        blocked = values[1]
    return None if blocked else facts


@transaction.atomic
def token_activate(*, token_id) -> TokenFacts | None:
    """Start a token's clock at its first use, once; None if it can no longer be used.

    The row lock makes two simultaneous first requests activate once, and
    orders activation against a revoke of the same token.
    """
    token = AccessToken.objects.select_for_update().select_related("user").filter(pk=token_id).first()
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return None
    if token.activated_at is None and token_gift_pending(token.pk):
        return None  # offered as a gift after the request's check: its first use belongs to the recipient
    now = timezone.now()
    if token.activated_at is None:
        token.activated_at = now
        token.expires_at = now + token.duration
        token.save(update_fields=["activated_at", "expires_at"])
        token_cache_drop(token.secret_digest)
        audit_record(actor=None, action="token_activate", obj=token, details={"user_id": str(token.user_id)})
        event_record(
            type="token.activated",
            user=token.user_id,
            data={"token_id": str(token.pk), "activated_at": moment(now), "expires_at": moment(token.expires_at)},
        )
    facts = TokenFacts.of(token)
    return None if facts.expired(now) else facts


# --- Buying -------------------------------------------------------------------------------


def _new_token(*, user_id, duration_hours: int, scope: str, cost: Decimal, purchase: Transaction, bundle=None):
    secret = secret_generate()
    token = AccessToken.objects.create(
        user_id=user_id,
        secret_encrypted=secret_encrypt(secret),
        secret_digest=secret_digest(secret),
        secret_prefix=secret[:8],
        duration_hours=duration_hours,
        scope=scope,
        cost_znc=cost,
        purchase=purchase,
        bundle=bundle,
    )
    token_unknown_forget(token.secret_digest)
    event_record(
        type="token.purchased",
        user=user_id,
        data={
            "token_id": str(token.pk),
            "duration_hours": duration_hours,
            "scope": scope,
            "cost_znc": money(cost),
            "bundle_id": str(bundle.pk) if bundle else None,
        },
    )
    return token


@transaction.atomic
def token_purchase(*, user: User, duration_hours: int, scope: str = Scope.FULL, actor: Actor = SYSTEM) -> AccessToken:
    """Debit the list price and issue one unactivated token.

    Keeps the ledger invariant; on InsufficientFunds (402) nothing is written.
    Same transaction: the referrer's bonus when this purchase qualifies.
    """
    price = token_price(duration_hours)
    if price is None:
        raise InvalidDuration()
    if scope not in Scope.values:
        raise InvalidScope()
    entry = balance_change(
        user_id=user.pk,
        amount=-price,
        kind=Transaction.Kind.PURCHASE,
        description=f"Token purchase: {duration_hours}h ({scope})",
    )
    token = _new_token(user_id=user.pk, duration_hours=duration_hours, scope=scope, cost=price, purchase=entry)
    referral_bonus_grant(referee_id=user.pk, amount=price)
    metrics.on_commit(lambda: metrics.TOKEN_PURCHASES.labels(str(duration_hours)).inc())
    actor.audit("token_purchase", token, {"duration_hours": duration_hours, "scope": scope, "cost": str(price)})
    return token


def bundle_shares(total: Decimal, count: int) -> list[Decimal]:
    """Split ``total`` into ``count`` cent amounts that add up to it exactly (the first ones get the odd cents)."""
    base = (total / count).quantize(CENT, rounding=ROUND_DOWN)
    odd_cents = int((total - base * count) / CENT)
    return [base + CENT if i < odd_cents else base for i in range(count)]


@transaction.atomic
def bundle_purchase(*, user: User, bundle_id, actor: Actor = SYSTEM) -> tuple[Bundle, list[AccessToken], Transaction]:
    """Debit the bundle's price once and issue all its tokens, or nothing at all.

    Each token remembers its share of the price (refunds use it). Same
    transaction: the referrer's bonus on the bundle price when it qualifies.
    """
    bundle = Bundle.objects.filter(pk=bundle_id, is_active=True).first()
    if bundle is None:
        raise BundleNotFound()
    entry = balance_change(
        user_id=user.pk,
        amount=-bundle.total_price,
        kind=Transaction.Kind.PURCHASE,
        description=f"Bundle purchase: {bundle.name} ({bundle.token_count} tokens x {bundle.duration_hours}h)",
    )
    tokens = [
        _new_token(
            user_id=user.pk,
            duration_hours=bundle.duration_hours,
            scope=bundle.scope,
            cost=share,
            purchase=entry,
            bundle=bundle,
        )
        for share in bundle_shares(bundle.total_price, bundle.token_count)
    ]
    referral_bonus_grant(referee_id=user.pk, amount=bundle.total_price)
    metrics.on_commit(lambda: metrics.TOKEN_PURCHASES.labels(str(bundle.duration_hours)).inc(len(tokens)))
    actor.audit(
        "bundle_purchase",
        bundle,
        {"tokens": [str(t.pk) for t in tokens], "cost": str(bundle.total_price), "transaction": str(entry.pk)},
    )
    return bundle, tokens, entry


# --- Revoking ------------------------------------------------------------------------------


def _period_prices(token: AccessToken) -> list[Decimal]:
    """What was paid for each period, in order: period 1 is the purchase, the others its renewals.

    A claimed gift's first period was paid by its sender, so it is worth nothing to refund to its owner.
    """
    first = Decimal("0.00") if token.gifted_by_id else token.cost_znc
    return [first, *token.renewals.order_by("period").values_list("price", flat=True)]


def refund_amount(token: AccessToken, now: dt.datetime) -> Decimal:
    """What the owner gets back: for each paid period, its price × its unused share, rounded down to the cent.

    Not yet activated: everything paid (nothing for a claimed gift). Period k runs from
    activated_at + (k−1)·duration for one duration;
    its unused part is what lies after ``now`` (a period not yet begun refunds in full, one that is over
    refunds nothing). Without renewals this is paid × remaining / duration.
    """
    if token.activated_at is None:
        return _period_prices(token)[0]
    duration = token.duration
    total = Decimal("0.00")
    for index, price in enumerate(_period_prices(token)):
        start = token.activated_at + index * duration
        unused = min(duration, max(dt.timedelta(0), start + duration - max(now, start)))
        share = Decimal(unused.total_seconds()) / Decimal(duration.total_seconds())
        total += (price * share).quantize(CENT, rounding=ROUND_DOWN)
    return total


@transaction.atomic
def token_revoke(*, user: User, token_id, actor: Actor = SYSTEM) -> tuple[AccessToken, Decimal, Decimal]:
    """The owner stops a token and gets the unused part of its price back as a ``refund`` row.

    Returns (token, refund, new balance). Someone else's, unknown or already
    revoked token: TokenNotFound (404) and nothing written. The validation
    cache entry is dropped when this commits.
    """
    # Lock the token: a simultaneous first use (activation) or second revoke waits for us.
    token = AccessToken.objects.select_for_update().filter(pk=token_id, user=user, revoked_at__isnull=True).first()
    if token is None:
        raise TokenNotFound()
    if token_gift_pending(token.pk):
        raise TokenGiftPending()
    now = timezone.now()
    refund = refund_amount(token, now)
    if refund > 0:
        if token.activated_at is None:
            description = f"Token refund: {token.duration_hours}h (not activated)"
        else:
            unused = (token.expires_at - now).total_seconds() / 3600
            description = f"Token refund: {unused:.1f}h unused"
        token.refund = balance_change(
            user_id=user.pk, amount=refund, kind=Transaction.Kind.REFUND, description=description
        )
    token.revoked_at = now
    token.revoked_by = user
    token.revoke_reason = "revoked by owner"
    token.save(update_fields=["revoked_at", "revoked_by", "revoke_reason", "refund"])
    token_cache_drop(token.secret_digest)
    metrics.on_commit(metrics.TOKEN_REVOCATIONS.inc)
    actor.audit("token_revoke", token, {"refund": str(refund), "activated": token.activated_at is not None})
    event_record(
        type="token.revoked", user=user.pk, data={"token_id": str(token.pk), "refund_znc": money(refund), "by": "owner"}
    )
    new_balance = User.objects.values_list("balance", flat=True).get(pk=user.pk)
    return token, refund, new_balance


@transaction.atomic
def token_force_revoke(*, token_id, actor: Actor, reason: str = "revoked by admin") -> AccessToken:
    """An admin stops any token at once. No refund. Revoking a revoked token changes nothing."""
    token = AccessToken.objects.select_for_update().filter(pk=token_id).first()
    if token is None:
        raise NotFound("Token not found")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.revoked_by = actor.user
        token.revoke_reason = reason[:200]
        token.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        token_cache_drop(token.secret_digest)
        metrics.on_commit(metrics.TOKEN_REVOCATIONS.inc)
        for gift in Gift.objects.select_for_update().filter(token=token, status=GiftStatus.PENDING):
            # A revoked token is no gift: its link stops working (the sender keeps nothing either way).
            gift.status, gift.finished_at = GiftStatus.CANCELLED, token.revoked_at
            gift.save(update_fields=["status", "finished_at"])
            actor.audit("gift_cancel", gift, {"token_id": str(token.pk), "by": "admin_force_revoke"})
            event_record(
                type="gift.cancelled",
                user=gift.sender_id,
                data={
                    "gift_id": str(gift.pk),
                    "token_id": str(token.pk),
                    "sender_id": str(gift.sender_id),
                    "by": "admin",
                },
            )
        event_record(
            type="token.revoked",
            user=token.user_id,
            data={"token_id": str(token.pk), "refund_znc": "0.00", "by": "admin"},
        )
    actor.audit("admin_force_revoke", token, {"refund_amount": "0.00", "force_revoke": True, "reason": reason})
    return token


# --- Bundles (admin) ---------------------------------------------------------------------------


BUNDLE_FIELDS = (
    "name",
    "name_ru",
    "description",
    "description_ru",
    "token_count",
    "duration_hours",
    "scope",
    "discount_percent",
    "base_price",
    "total_price",
    "is_active",
)


def bundle_check(values: dict) -> None:
    """The rules the reference lacks: a sold duration, a known scope, positive counts and prices, total ≤ base.

    Checks the fields present in ``values`` (the admin form passes the ones it has not validated itself).
    """
    if "duration_hours" in values and values["duration_hours"] not in valid_durations():
        raise InvalidDuration()
    if "scope" in values and values["scope"] not in Scope.values:
        raise InvalidScope()
    if "token_count" in values and (values["token_count"] or 0) < 1:
        raise DomainError("token_count must be at least 1", field="token_count")
    discount = values.get("discount_percent", 0)
    if discount is None or not 0 <= discount <= 100:
        raise DomainError("discount_percent must be between 0 and 100", field="discount_percent")
    base, total = values.get("base_price"), values.get("total_price")
    if base is None or total is None or base <= 0 or total <= 0:
        raise DomainError("Prices must be greater than 0", field="total_price")
    if total > base:
        raise DomainError("total_price must not exceed base_price", field="total_price")


@transaction.atomic
def bundle_save(*, bundle: Bundle | None, changes: dict, actor: Actor) -> Bundle:
    """Create a bundle (``bundle`` None) or change some of its fields; audited."""
    creating = bundle is None
    bundle = bundle or Bundle()
    before = {f: getattr(bundle, f) for f in BUNDLE_FIELDS}
    for field, value in changes.items():
        setattr(bundle, field, value)
    bundle_check({f: getattr(bundle, f) for f in BUNDLE_FIELDS})
    bundle.save()
    diff = {f: {"old": str(before[f]), "new": str(getattr(bundle, f))} for f in changes if before[f] != changes[f]}
    actor.audit("bundle_create" if creating else "bundle_update", bundle, {"changed_fields": diff})
    return bundle


@transaction.atomic
def bundle_deactivate(*, bundle: Bundle, actor: Actor) -> Bundle:
    """Soft delete: the bundle leaves the shop; tokens already sold keep working."""
    if bundle.is_active:
        bundle.is_active = False
        bundle.save(update_fields=["is_active", "updated_at"])
    actor.audit("bundle_delete", bundle, {})
    return bundle


def tokens_expire(*, now: dt.datetime | None = None) -> int:
    """Mark tokens whose time is up, turn their auto-renewal off and drop them from the validation cache.

    Idempotent: returns how many were marked by this call (a second run at once marks none).
    """
    now = now or timezone.now()
    marked = 0
    due = AccessToken.objects.filter(expires_at__lte=now, revoked_at__isnull=True, expired_at__isnull=True)
    for token in due.only("id", "secret_digest", "expires_at"):
        # Conditional update: on two workers at once, each token is marked once. An expired token does not
        # come back by itself, so its auto-renewal ends with it.
        marked_now = AccessToken.objects.filter(pk=token.pk, expired_at__isnull=True, expires_at__lte=now).update(
            expired_at=token.expires_at, auto_renew=False, renewal_failed_at=None
        )
        if marked_now:
            rediscache.safe_delete(_cache_key(token.secret_digest))  # expired entries also check the clock
            marked += 1
    return marked
