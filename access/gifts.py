"""Gifts: an unactivated token handed to someone else through a single-use claim link.

A gift moves ownership, never money: no ledger row is written by sending, claiming,
declining, cancelling or expiring one, and a claimed gift's own period refunds nothing
(``access.services.refund_amount``), so gift-then-revoke cannot move ZNC between accounts.

Every transition locks the token row first, so a claim racing a cancel (or ten claims
of one code) changes the owner at most once. A claimed token gets a new secret: the
sender may have seen the old one and must not keep a way in.
"""

import datetime as dt
import hashlib
import hmac
import logging
import secrets

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_noop

from access.crypto import secret_digest, secret_encrypt, secret_generate
from access.models import AccessToken, Gift, GiftStatus, Scope
from access.services import TokenNotFound, token_cache_drop, token_gift_pending, token_purchase, token_unknown_forget
from accounts.models import User
from events.registry import moment
from events.services import event_record, task_send
from wallet.models import Transaction
from wallet.services import SYSTEM, Actor
from zenzefi import ratelimit
from zenzefi.errors import Conflict, DomainError, NotFound, RateLimited
from zenzefi.keys import derived_key, fernet

logger = logging.getLogger(__name__)

CODE_BYTES = 24  # 192 bits from secrets; token_urlsafe(24) is 32 characters
MESSAGE_MAX = 280
# The notifications app's task that mails the claim link to the recipient's address, sent by name. The code
# is never stored: the task's message carries it sealed (Fernet), so neither the broker nor a log shows it.
GIFT_MAIL_TASK = "notifications.send_gift_mail"


class GiftRefused(DomainError):
    """A gift that cannot be made from this token (activated, revoked, already offered)."""


class GiftNotFound(NotFound):
    default_detail = gettext_noop("Gift not found")


class GiftCodeInvalid(NotFound):
    default_detail = gettext_noop("This gift link is not valid")


class GiftUnavailable(Conflict):
    """A known code whose gift is no longer pending (claimed, declined, cancelled or expired)."""


def code_digest(code: str) -> str:
    return hmac.new(derived_key("gift-code"), code.encode(), hashlib.sha256).hexdigest()


def claim_path(code: str) -> str:
    return reverse("gifts:claim", args=[code])


def claim_url(code: str) -> str:
    return settings.BACKEND_URL + claim_path(code)


def claim_rate_check(ip: str | None) -> ratelimit.Decision | None:
    """Count one claim-code lookup from ``ip``; RateLimited (429) past ``RATE_LIMIT_GIFT_CLAIM``."""
    if not settings.RATE_LIMIT_ENABLED:
        return None
    decision = ratelimit.hit("gift_claim", ip or "unknown", ratelimit.Rate.parse(settings.RATE_LIMIT_GIFT_CLAIM))
    if not decision.allowed:
        raise decision.error("Too many gift link attempts. Please wait and try again.")
    return decision


def _message_clean(message: str | None) -> str:
    message = (message or "").strip()
    if len(message) > MESSAGE_MAX:
        raise DomainError(f"The message can have at most {MESSAGE_MAX} characters", field="message")
    return message


def _email_clean(email: str | None) -> str:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    email = (email or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise DomainError("Enter a valid recipient e-mail address", field="recipient_email") from None
    return User.objects.normalize_email(email)


def _limits_check(sender: User, now: dt.datetime) -> None:
    """GIFT_MAX_PER_DAY per rolling 24 h (429) and GIFT_MAX_PENDING at once (400). The sender's row is locked."""
    sent = Gift.objects.filter(sender=sender, created_at__gt=now - dt.timedelta(days=1))
    if sent.count() >= settings.GIFT_MAX_PER_DAY:
        oldest = sent.order_by("created_at").values_list("created_at", flat=True).first()
        retry = max(1, int((oldest + dt.timedelta(days=1) - now).total_seconds()))
        raise RateLimited(
            f"You can send at most {settings.GIFT_MAX_PER_DAY} gifts a day. Try again later.",
            limit=settings.GIFT_MAX_PER_DAY,
            retry_after=retry,
            reset=int(now.timestamp()) + retry,
        )
    if Gift.objects.filter(sender=sender, status=GiftStatus.PENDING).count() >= settings.GIFT_MAX_PENDING:
        raise DomainError(
            f"You have {settings.GIFT_MAX_PENDING} gifts waiting to be claimed. "
            "Wait for them to be claimed or cancel some first."
        )


def _mail_recipient(gift: Gift, code: str) -> None:
    if gift.recipient_email:
        gift_id, sealed = str(gift.pk), fernet("gift-mail").encrypt(code.encode()).decode()
        transaction.on_commit(lambda: task_send(GIFT_MAIL_TASK, (gift_id, sealed)))


def mail_code_open(sealed: str) -> str | None:
    """The claim code a mail task carries, or None if it was tampered with or is older than the claim period."""
    try:
        return fernet("gift-mail").decrypt(sealed.encode(), ttl=settings.GIFT_CLAIM_DAYS * 86400).decode()
    except InvalidToken:
        return None


def _gift_data(gift: Gift, token: AccessToken, **extra) -> dict:
    return {
        "gift_id": str(gift.pk),
        "token_id": str(token.pk),
        "sender_id": str(gift.sender_id),
        "duration_hours": token.duration_hours,
        "scope": token.scope,
        "expires_at": moment(gift.expires_at),
        **extra,
    }


def _offer(*, sender: User, token: AccessToken, recipient_email: str, message: str, actor: Actor) -> tuple[Gift, str]:
    now = timezone.now()
    code = secrets.token_urlsafe(CODE_BYTES)
    gift = Gift.objects.create(
        token=token,
        sender=sender,
        recipient_email=recipient_email,
        message=message,
        code_digest=code_digest(code),
        created_at=now,
        expires_at=now + dt.timedelta(days=settings.GIFT_CLAIM_DAYS),
    )
    token_cache_drop(token.secret_digest)  # the proxy's cached facts did not know it is frozen
    actor.audit(
        "gift_send",
        gift,
        {"token_id": str(token.pk), "recipient_email": recipient_email, "expires_at": moment(gift.expires_at)},
    )
    event_record(
        type="gift.sent", user=sender.pk, data=_gift_data(gift, token, has_recipient_email=bool(recipient_email))
    )
    _mail_recipient(gift, code)
    return gift, code


@transaction.atomic
def gift_send(
    *, user: User, token_id, recipient_email: str = "", message: str = "", actor: Actor = SYSTEM
) -> tuple[Gift, str]:
    """Offer one of ``user``'s unactivated, unrevoked tokens as a gift. Returns (gift, claim code).

    The code is returned only here; the database keeps its digest. Nothing is written on a refusal.
    """
    message, recipient_email = _message_clean(message), _email_clean(recipient_email)
    sender = User.objects.select_for_update().get(pk=user.pk)  # orders this sender's gifts: the limits hold
    token = AccessToken.objects.select_for_update().filter(pk=token_id, user=sender).first()
    if token is None:
        raise TokenNotFound("Token not found")
    if token.revoked_at is not None:
        raise GiftRefused("A revoked token cannot be given as a gift")
    if token.activated_at is not None:
        raise GiftRefused("Only a token that has never been used can be given as a gift")
    if token_gift_pending(token.pk):
        raise GiftRefused("This token is already a pending gift")
    _limits_check(sender, timezone.now())
    return _offer(sender=sender, token=token, recipient_email=recipient_email, message=message, actor=actor)


@transaction.atomic
def gift_buy(
    *,
    user: User,
    duration_hours: int,
    scope: str = Scope.FULL,
    recipient_email: str = "",
    message: str = "",
    actor: Actor = SYSTEM,
) -> tuple[Gift, str]:
    """Buy a token and offer it as a gift in one transaction: both happen, or neither (402 writes nothing)."""
    message, recipient_email = _message_clean(message), _email_clean(recipient_email)
    sender = User.objects.select_for_update().get(pk=user.pk)
    _limits_check(sender, timezone.now())
    token = token_purchase(user=sender, duration_hours=duration_hours, scope=scope, actor=actor)
    return _offer(sender=sender, token=token, recipient_email=recipient_email, message=message, actor=actor)


def gift_by_code(code: str) -> Gift:
    """The gift a claim code names (any status), or GiftCodeInvalid (404)."""
    if not code or len(code) > 128:
        raise GiftCodeInvalid()
    gift = Gift.objects.select_related("token", "sender", "recipient").filter(code_digest=code_digest(code)).first()
    if gift is None:
        raise GiftCodeInvalid()
    return gift


def _unavailable(gift: Gift, now: dt.datetime | None) -> GiftUnavailable | None:
    """Why a gift can no longer be acted on, or None; with ``now``, a pending gift past its claim time is over too."""
    if gift.status == GiftStatus.PENDING and now is not None and now >= gift.expires_at:
        return GiftUnavailable("This gift link has expired")
    return {
        GiftStatus.CLAIMED: GiftUnavailable("This gift has already been claimed"),
        GiftStatus.DECLINED: GiftUnavailable("This gift was declined"),
        GiftStatus.CANCELLED: GiftUnavailable("This gift was cancelled by its sender"),
        GiftStatus.EXPIRED: GiftUnavailable("This gift link has expired"),
    }.get(gift.status)


def _locked_pending(gift_id, now: dt.datetime | None) -> tuple[Gift, AccessToken]:
    """Lock the gift's token, then re-read the gift: whoever locks first decides, the others see its outcome.

    With ``now``, a pending gift past its claim time is refused too (claims); without, it is not (a sender may
    take back a gift the expiry task has not swept yet).
    """
    token_id = Gift.objects.values_list("token_id", flat=True).get(pk=gift_id)
    token = AccessToken.objects.select_for_update().get(pk=token_id)
    gift = Gift.objects.select_for_update().select_related("sender").get(pk=gift_id)
    refusal = _unavailable(gift, now)
    if refusal is not None:
        raise refusal
    return gift, token


def _referral_through_gift(recipient: User, gift: Gift, actor: Actor) -> bool:
    """A new account (joined after the gift was sent, no referrer, nothing bought) becomes the sender's referral."""
    if recipient.referred_by_id is not None or recipient.created_at < gift.created_at:
        return False
    if Transaction.objects.filter(user=recipient, kind=Transaction.Kind.PURCHASE).exists():
        return False
    changed = User.objects.filter(pk=recipient.pk, referred_by__isnull=True).update(referred_by=gift.sender_id)
    if changed:
        recipient.referred_by_id = gift.sender_id
        actor.audit("referral_via_gift", recipient, {"referrer_id": str(gift.sender_id), "gift_id": str(gift.pk)})
    return bool(changed)


@transaction.atomic
def gift_claim(*, user: User, code: str, accept: bool, actor: Actor = SYSTEM) -> Gift:
    """Accept (the token becomes ``user``'s, with a new secret) or decline (it goes back to the sender).

    A code works once: a used, cancelled, declined or expired one is refused (409) and changes nothing.
    The sender cannot claim (or decline) their own gift.
    """
    now = timezone.now()
    found = gift_by_code(code)
    if found.sender_id == user.pk:
        raise DomainError("You cannot claim your own gift. Cancel it on the Gifts page instead.")
    gift, token = _locked_pending(found.pk, now)
    gift.recipient = user
    gift.finished_at = now
    if not accept:
        gift.status = GiftStatus.DECLINED
        gift.save(update_fields=["status", "recipient", "finished_at"])
        token_cache_drop(token.secret_digest)
        actor.audit("gift_decline", gift, {"token_id": str(token.pk), "recipient_id": str(user.pk)})
        event_record(type="gift.declined", user=gift.sender_id, data=_gift_data(gift, token, recipient_id=str(user.pk)))
        return gift
    gift.status = GiftStatus.CLAIMED
    gift.save(update_fields=["status", "recipient", "finished_at"])
    old_digest = token.secret_digest
    secret = secret_generate()
    token.user = user
    token.gifted_by_id = gift.sender_id
    token.gifted_at = now
    token.secret_encrypted = secret_encrypt(secret)
    token.secret_digest = secret_digest(secret)
    token.secret_prefix = secret[:8]
    token.auto_renew = False  # the recipient decides whether their balance pays for more
    token.renewal_failed_at = None
    token.save(
        update_fields=[
            "user",
            "gifted_by",
            "gifted_at",
            "secret_encrypted",
            "secret_digest",
            "secret_prefix",
            "auto_renew",
            "renewal_failed_at",
        ]
    )
    token_cache_drop(old_digest)
    token_unknown_forget(token.secret_digest)
    referral = _referral_through_gift(user, gift, actor)
    actor.audit(
        "gift_claim",
        gift,
        {
            "token_id": str(token.pk),
            "recipient_id": str(user.pk),
            "sender_id": str(gift.sender_id),
            "referral": referral,
        },
    )
    event_record(type="gift.claimed", user=gift.sender_id, data=_gift_data(gift, token, recipient_id=str(user.pk)))
    return gift


@transaction.atomic
def gift_cancel(*, user: User, gift_id, actor: Actor = SYSTEM) -> Gift:
    """The sender takes a pending gift back: the token is theirs again, unchanged. 404 if not theirs."""
    if not Gift.objects.filter(pk=gift_id, sender=user).exists():
        raise GiftNotFound()
    return _cancel(gift_id=gift_id, actor=actor, by="sender")


@transaction.atomic
def gift_admin_cancel(*, gift_id, actor: Actor) -> Gift:
    """An admin cancels a pending gift (e.g. a link shared by mistake); the token returns to its sender."""
    if not Gift.objects.filter(pk=gift_id).exists():
        raise GiftNotFound()
    return _cancel(gift_id=gift_id, actor=actor, by="admin")


def _cancel(*, gift_id, actor: Actor, by: str) -> Gift:
    gift, token = _locked_pending(gift_id, None)
    gift.status = GiftStatus.CANCELLED
    gift.finished_at = timezone.now()
    gift.save(update_fields=["status", "finished_at"])
    token_cache_drop(token.secret_digest)
    actor.audit("gift_cancel", gift, {"token_id": str(token.pk), "by": by})
    event_record(type="gift.cancelled", user=gift.sender_id, data=_gift_data(gift, token, by=by))
    return gift


def gifts_expire(*, now: dt.datetime | None = None) -> int:
    """Return the tokens of gifts unclaimed past their time to their senders. Idempotent (safe twice, two workers)."""
    now = now or timezone.now()
    expired = 0
    due = Gift.objects.filter(status=GiftStatus.PENDING, expires_at__lte=now).values_list("pk", flat=True)
    for gift_id in list(due[:1000]):
        with transaction.atomic():
            try:
                gift, token = _locked_pending(gift_id, None)
            except GiftUnavailable:
                continue  # claimed or cancelled at the last moment, or expired by another run
            gift.status = GiftStatus.EXPIRED
            gift.finished_at = now
            gift.save(update_fields=["status", "finished_at"])
            token_cache_drop(token.secret_digest)
            SYSTEM.audit("gift_expire", gift, {"token_id": str(token.pk)})
            event_record(type="gift.expired", user=gift.sender_id, data=_gift_data(gift, token))
            expired += 1
    return expired


def gift_emailed(*, gift_id) -> None:
    """The recipient's mail was handed to the SMTP server (shown to the sender)."""
    Gift.objects.filter(pk=gift_id, emailed_at__isnull=True).update(emailed_at=timezone.now())
