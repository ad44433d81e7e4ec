"""Every change of a ZNC balance, and the payments that lead to one.

The invariant kept here: for every user, ``balance == sum(transaction amounts)``,
``balance >= 0``, and each row's ``balance_after`` is the running total. Only
``balance_change`` writes ledger rows; everything else calls it.
"""

import logging
import uuid
from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.models import User
from accounts.services import SYSTEM, Actor, referral_bonus_key, user_active_changed
from events.registry import money
from events.services import event_record
from wallet import currencies
from wallet.errors import InsufficientFunds, InvalidAmount, PaymentNotFound, PaymentProviderError
from wallet.models import CENT, CurrencyRate, Payment, Transaction
from wallet.providers import WebhookEvent, get_provider
from zenzefi import metrics
from zenzefi.errors import DomainError

logger = logging.getLogger(__name__)


def _money(amount) -> Decimal:
    return Decimal(amount).quantize(CENT)


@transaction.atomic
def balance_change(
    *,
    user_id,
    amount: Decimal,
    kind: str,
    description: str,
    payment_id: str | None = None,
    idempotency_key: str | None = None,
) -> Transaction:
    """Add ``amount`` (signed) to the user's balance and write its ledger row.

    Keeps the ledger invariant. A debit that would leave the balance negative
    raises InsufficientFunds and writes nothing. With ``idempotency_key`` a
    repeated call returns the first call's row instead of writing another.
    """
    amount = _money(amount)
    if amount == 0:
        raise InvalidAmount("Amount must not be zero")
    # Lock the user's row: concurrent changes of one balance run one at a time.
    user = User.objects.select_for_update().only("id", "balance").get(pk=user_id)
    if idempotency_key:
        existing = Transaction.objects.filter(user_id=user.pk, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    new_balance = user.balance + amount
    if new_balance < 0:
        raise InsufficientFunds(required=-amount, available=user.balance)
    last = Transaction.objects.filter(user_id=user.pk).order_by("-seq").values_list("seq", flat=True).first() or 0
    entry = Transaction.objects.create(
        user_id=user.pk,
        seq=last + 1,
        amount=amount,
        kind=kind,
        description=description[:255],
        balance_after=new_balance,
        payment_id=payment_id,
        idempotency_key=idempotency_key,
    )
    User.objects.filter(pk=user.pk).update(balance=new_balance)
    metrics.on_commit(lambda: _count_money(kind, amount))
    facts = {"transaction_id": str(entry.pk), "amount": money(abs(amount)), "balance_after": money(new_balance)}
    if amount < 0:
        event_record(type="balance.charged", user=user.pk, data={**facts, "reason": entry.description, "kind": kind})
    else:
        event_record(type="balance.topped_up", user=user.pk, data={**facts, "kind": kind, "reason": entry.description})
    return entry


_ZNC_KINDS = {
    Transaction.Kind.DEPOSIT: "deposited",
    Transaction.Kind.PURCHASE: "spent",
    Transaction.Kind.REFUND: "refunded",
    Transaction.Kind.REFERRAL_BONUS: "bonus",
    Transaction.Kind.ADJUSTMENT: "adjusted",
}


def _count_money(kind: str, amount: Decimal) -> None:
    metrics.ZNC.labels(_ZNC_KINDS.get(kind, kind)).inc(float(abs(amount)))
    if kind == Transaction.Kind.DEPOSIT:
        metrics.BALANCE_DEPOSITS.inc()


def amount_check(amount: Decimal) -> Decimal:
    """A top-up amount within PAYMENT_MIN_ZNC..PAYMENT_MAX_ZNC, in whole cents."""
    amount = Decimal(amount)
    if amount != amount.quantize(CENT):
        raise InvalidAmount("Amount must have at most 2 decimal places", field="amount")
    if amount < settings.PAYMENT_MIN_ZNC or amount > settings.PAYMENT_MAX_ZNC:
        raise InvalidAmount(
            f"Amount must be between {settings.PAYMENT_MIN_ZNC} and {settings.PAYMENT_MAX_ZNC} ZNC", field="amount"
        )
    return _money(amount)


def mock_deposit(*, user: User, amount: Decimal, actor: Actor) -> Transaction:
    """Credit ZNC at once, without a provider (ENABLE_MOCK_PAYMENTS only; the caller checks).

    Each call is its own deposit with its own payment id.
    """
    amount = amount_check(amount)
    with transaction.atomic():
        entry = balance_change(
            user_id=user.pk,
            amount=amount,
            kind=Transaction.Kind.DEPOSIT,
            description=f"Mock purchase: {amount} ZNC",
            payment_id=f"MOCK_{uuid.uuid4().hex}",
        )
        actor.audit("currency_mock_deposit", entry, {"amount": str(amount), "balance_after": str(entry.balance_after)})
    return entry


@transaction.atomic
def balance_adjust(*, user: User, amount: Decimal, reason: str, actor: Actor) -> Transaction:
    """An admin's correction of a balance, as an ``adjustment`` row. Cannot go below zero."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidAmount("A reason is required", field="reason")
    entry = balance_change(
        user_id=user.pk, amount=amount, kind=Transaction.Kind.ADJUSTMENT, description=f"Adjustment: {reason}"
    )
    actor.audit("balance_adjust", entry, {"user_id": str(user.pk), "amount": str(entry.amount), "reason": reason})
    return entry


@transaction.atomic
def balance_set(*, user: User, balance: Decimal, reason: str, actor: Actor) -> Transaction | None:
    """Bring a balance to ``balance`` with one adjustment for the difference (none if equal)."""
    balance = _money(balance)
    if balance < 0:
        raise InvalidAmount("Balance cannot be negative", field="currency_balance")
    # Read the balance under the lock, so the difference is computed on the value it replaces.
    current = User.objects.select_for_update().values_list("balance", flat=True).get(pk=user.pk)
    if balance == current:
        return None
    return balance_adjust(user=user, amount=balance - current, reason=reason, actor=actor)


@transaction.atomic
def admin_user_update(
    *,
    user: User,
    actor: Actor,
    is_active: bool | None = None,
    is_superuser: bool | None = None,
    currency_balance: Decimal | None = None,
    reason: str = "",
) -> User:
    """An admin's change of a user. A new balance is an adjustment for the difference, never a bare write."""
    # Lock first: the flags and the balance are read and changed as one.
    user = User.objects.select_for_update().get(pk=user.pk)
    changed: dict[str, dict] = {}
    for field, value in (("is_active", is_active), ("is_superuser", is_superuser)):
        if value is not None and getattr(user, field) != value:
            changed[field] = {"old": getattr(user, field), "new": value}
            setattr(user, field, value)
    if changed:
        user.save(update_fields=[*changed, "updated_at"])
    if "is_active" in changed:
        user_active_changed(user_id=user.pk, is_active=user.is_active)
    if currency_balance is not None:
        old = user.balance
        entry = balance_set(user=user, balance=currency_balance, reason=reason or "set by admin", actor=actor)
        if entry is not None:
            changed["currency_balance"] = {"old": str(old), "new": str(entry.balance_after)}
    if changed:
        actor.audit("admin_user_update", user, {"changed_fields": changed})
    user.refresh_from_db()
    return user


def referral_bonus_grant(*, referee_id, amount: Decimal, actor: Actor = SYSTEM) -> Transaction | None:
    """Pay the referrer REFERRAL_BONUS_PERCENT of the referee's first purchase above REFERRAL_MIN_PURCHASE.

    Call it inside the purchase's transaction, after the debit (which holds the
    referee's row lock, so one referee's purchases cannot race here). At most
    one bonus per referee: its ledger row carries the referee's idempotency
    key, unique per referrer.
    """
    amount = _money(amount)
    if amount <= settings.REFERRAL_MIN_PURCHASE:
        return None
    referee = User.objects.only("id", "username", "referred_by_id").get(pk=referee_id)
    if referee.referred_by_id is None:
        return None
    key = referral_bonus_key(referee.pk)
    if Transaction.objects.filter(user_id=referee.referred_by_id, idempotency_key=key).exists():
        return None
    bonus = (amount * settings.REFERRAL_BONUS_PERCENT / 100).quantize(CENT, rounding=ROUND_HALF_EVEN)
    if bonus <= 0:
        return None
    entry = balance_change(
        user_id=referee.referred_by_id,
        amount=bonus,
        kind=Transaction.Kind.REFERRAL_BONUS,
        description=f"Referral bonus from {referee.username} (first purchase {amount} ZNC)",
        idempotency_key=key,
    )
    actor.audit("referral_bonus", entry, {"referee_id": str(referee.pk), "purchase": str(amount), "bonus": str(bonus)})
    return entry


def return_url_check(url: str | None) -> str:
    """A return URL on our own site (or PAYMENT_RETURN_HOSTS): no open redirect."""
    if not url:
        return ""
    from urllib.parse import urlsplit

    hosts = {urlsplit(settings.BACKEND_URL).netloc, *settings.PAYMENT_RETURN_HOSTS}
    hosts |= {h for h in settings.ALLOWED_HOSTS if h and not h.startswith((".", "*"))}
    if len(url) > 1024 or not url_has_allowed_host_and_scheme(url, allowed_hosts=hosts, require_https=False):
        raise InvalidAmount("return_url must point at this site", field="return_url")
    return url


def payment_create(
    *, user: User, amount_znc: Decimal, return_url: str | None, actor: Actor, currency: str = "RUB"
) -> Payment:
    """Open a top-up in ``currency`` at the provider routed for it and return it, pending.

    Freezes the currency, its rate (price of 1 ZNC now), the amount to pay in it
    (ROUND_HALF_UP to the minor unit, also in minor units) and ``amount_znc``:
    a later rate change never alters what this payment credits. A currency that
    is unknown, disabled or has no configured provider raises CurrencyUnavailable
    (400) and writes nothing. Nothing touches the ledger here. The payment row is
    committed first, the provider is called outside any transaction, then its id
    and page are stored. A provider failure marks the payment failed and raises
    PaymentProviderError.
    """
    amount = amount_check(amount_znc)
    return_url = return_url_check(return_url)
    rate = currencies.rate_for(currency)
    provider = get_provider(currencies.provider_name_for(rate.currency))
    amount_money = currencies.quote(rate, amount, rate.currency)
    payment = Payment.objects.create(
        user=user,
        amount_znc=amount,
        amount_money=amount_money,
        amount_minor=currencies.to_minor(amount_money, rate.currency),
        currency=rate.currency,
        rate=rate.znc_price,
        provider=provider.name,
        return_url=return_url,
    )
    try:
        created = provider.create(payment)
    except Exception as exc:
        logger.exception("payment provider %s failed to create payment %s", provider.name, payment.pk)
        Payment.objects.filter(pk=payment.pk, status=Payment.Status.PENDING).update(
            status=Payment.Status.FAILED, completed_at=timezone.now()
        )
        actor.audit("payment_failed", payment, {"provider": provider.name, "stage": "create"})
        metrics.PAYMENTS.labels(provider.name, "failed").inc()
        if isinstance(exc, DomainError):
            raise
        raise PaymentProviderError() from None
    Payment.objects.filter(pk=payment.pk).update(
        provider_payment_id=created.provider_payment_id, confirmation_url=created.confirmation_url
    )
    payment.refresh_from_db()
    metrics.PAYMENTS.labels(provider.name, "pending").inc()
    details = {
        "provider": provider.name,
        "amount_znc": str(amount),
        "currency": payment.currency,
        "rate": str(payment.rate),
        "amount": str(payment.amount_money),
    }
    if payment.currency == "RUB":
        details["amount_rub"] = str(payment.amount_money)
    actor.audit("payment_create", payment, details)
    return payment


_PRICE_PLACES = Decimal("0.000001")


@transaction.atomic
def currency_rate_set(*, currency: str, znc_price: Decimal, enabled: bool, actor: Actor) -> CurrencyRate:
    """An admin's price of 1 ZNC in ``currency`` and whether top-ups may use it; audited with old and new values.

    ``znc_price`` must be > 0 with at most 6 decimals, ``currency`` one of
    CURRENCIES (DomainError otherwise, nothing written). Payments already
    created keep the rate they froze.
    """
    code = (currency or "").strip().upper()
    if code not in currencies.CURRENCIES:
        raise DomainError(f"Unknown currency {code or '(none)'}", field="currency")
    try:
        price = Decimal(znc_price)
    except (ArithmeticError, TypeError, ValueError):
        raise DomainError("The price must be a number", field="znc_price") from None
    if not price.is_finite() or price <= 0:
        raise DomainError("The price must be greater than 0", field="znc_price")
    if price != price.quantize(_PRICE_PLACES, rounding=ROUND_HALF_EVEN):
        raise DomainError("The price must have at most 6 decimal places", field="znc_price")
    if price >= Decimal("1e8"):
        raise DomainError("The price is too large", field="znc_price")
    price = price.quantize(_PRICE_PLACES)
    # Lock the row: two admins saving at once must each see the value they replace, for the audit.
    rate = CurrencyRate.objects.select_for_update().filter(pk=code).first()
    old = None if rate is None else {"znc_price": str(rate.znc_price), "enabled": rate.enabled}
    if rate is None:
        rate = CurrencyRate(currency=code)
    rate.znc_price, rate.enabled, rate.updated_by = price, bool(enabled), actor.user
    rate.save()
    new = {"znc_price": str(rate.znc_price), "enabled": rate.enabled}
    actor.audit("currency_rate_set", rate, {"currency": code, "old": old, "new": new})
    return rate


def webhook_apply(*, event: WebhookEvent, provider: str | None, actor: Actor) -> bool:
    """Apply a verified provider event to its payment; True if it changed anything.

    ``provider`` None means the generic signed webhook, which names a payment
    by its provider id or by our own id. Unknown payments raise PaymentNotFound.
    """
    if event.status not in (Payment.Status.SUCCEEDED, Payment.Status.CANCELED, Payment.Status.FAILED):
        # Acknowledge what we do not act on, whatever it is about, so the provider stops redelivering it.
        actor.audit("webhook_ignored", None, {"provider": provider, "status": event.status})
        return False
    payments = Payment.objects.all() if provider is None else Payment.objects.filter(provider=provider)
    payment = payments.filter(provider_payment_id=event.provider_payment_id).first()
    if payment is None and provider is None:
        try:
            payment = payments.filter(pk=uuid.UUID(event.provider_payment_id)).first()
        except ValueError:
            payment = None
    if payment is None:
        actor.audit("webhook_unknown_payment", None, {"provider": provider, "payment_id": event.provider_payment_id})
        raise PaymentNotFound()
    source = f"webhook:{provider or 'generic'}"
    if event.status == Payment.Status.SUCCEEDED:
        return payment_capture(
            payment_id=payment.pk,
            actor=actor,
            source=source,
            reported_amount_minor=event.amount_minor,
            reported_currency=event.currency,
        )
    return payment_cancel(
        payment_id=payment.pk, actor=actor, source=source, failed=event.status == Payment.Status.FAILED
    )


@transaction.atomic
def payment_capture(
    *,
    payment_id,
    actor: Actor = SYSTEM,
    source: str = "webhook",
    reported_amount_minor: int | None = None,
    reported_currency: str | None = None,
) -> bool:
    """Mark a pending payment succeeded and credit its frozen ``amount_znc``, exactly once.

    What the provider reports as paid (``reported_amount_minor``, ``reported_currency``;
    None when it reports nothing, as the mock's own checkout) must equal the
    payment's frozen amount and currency. Otherwise nothing is credited and the
    payment ends ``mismatch`` (final; audited as ``payment_mismatch`` with both).
    Returns True when this call credited the deposit, False otherwise (already
    succeeded, canceled, failed or mismatched, or a mismatch now).
    """
    # Lock the payment: simultaneous deliveries of one webhook queue up here.
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    if payment.status != Payment.Status.PENDING:
        actor.audit("payment_capture_ignored", payment, {"status": payment.status, "source": source})
        return False
    amount_differs = reported_amount_minor is not None and reported_amount_minor != payment.amount_minor
    currency_differs = reported_currency is not None and reported_currency.upper() != payment.currency
    if amount_differs or currency_differs:
        _payment_mismatch(
            payment, actor=actor, source=source, amount_minor=reported_amount_minor, currency=reported_currency
        )
        return False
    try:
        with transaction.atomic():
            entry = balance_change(
                user_id=payment.user_id,
                amount=payment.amount_znc,
                kind=Transaction.Kind.DEPOSIT,
                description=f"Balance top-up: {payment.amount_znc} ZNC ({payment.provider})",
                payment_id=payment.provider_payment_id or str(payment.pk),
            )
    except IntegrityError:
        # The deposit for this provider payment exists already: never credit twice.
        logger.warning("deposit for payment %s already exists", payment.pk)
        return False
    Payment.objects.filter(pk=payment.pk).update(
        status=Payment.Status.SUCCEEDED, transaction=entry, completed_at=timezone.now()
    )
    metrics.on_commit(lambda: metrics.PAYMENTS.labels(payment.provider, "succeeded").inc())
    actor.audit(
        "payment_succeeded",
        payment,
        {"amount_znc": str(payment.amount_znc), "source": source, "balance_after": str(entry.balance_after)},
    )
    return True


def _payment_mismatch(payment: Payment, *, actor: Actor, source: str, amount_minor, currency) -> None:
    """Close a locked pending payment as ``mismatch``: the provider says another amount or currency was paid."""
    Payment.objects.filter(pk=payment.pk, status=Payment.Status.PENDING).update(
        status=Payment.Status.MISMATCH, completed_at=timezone.now()
    )
    expected = {"amount_minor": payment.amount_minor, "currency": payment.currency}
    reported = {"amount_minor": amount_minor, "currency": currency}
    logger.warning(
        "payment %s (%s): provider reported %s %s, expected %s %s; nothing credited",
        payment.pk,
        payment.provider,
        amount_minor,
        currency,
        payment.amount_minor,
        payment.currency,
    )
    actor.audit("payment_mismatch", payment, {"source": source, "expected": expected, "reported": reported})
    metrics.on_commit(lambda: metrics.PAYMENTS.labels(payment.provider, Payment.Status.MISMATCH.value).inc())


@transaction.atomic
def payment_cancel(*, payment_id, actor: Actor = SYSTEM, source: str = "webhook", failed: bool = False) -> bool:
    """Close a pending payment without crediting anything. True if this call closed it."""
    status = Payment.Status.FAILED if failed else Payment.Status.CANCELED
    changed = Payment.objects.filter(pk=payment_id, status=Payment.Status.PENDING).update(
        status=status, completed_at=timezone.now()
    )
    payment = Payment.objects.get(pk=payment_id)
    actor.audit(f"payment_{status}" if changed else "payment_cancel_ignored", payment, {"source": source})
    if changed:
        metrics.on_commit(lambda: metrics.PAYMENTS.labels(payment.provider, status).inc())
    return bool(changed)
