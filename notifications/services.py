"""Every write of notifications: facts from events and the token scan, e-mail, read marks, preferences.

A fact is recorded once: ``Notification`` is unique on (user, kind, key), so an
event handled twice or a scan that runs every minute adds nothing new. Its
e-mail is sent after commit by a Celery task, retried on SMTP errors; nothing
here ever lets a mail failure reach the business action that caused the fact.
"""

import datetime as dt
import logging
import uuid
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.exceptions import NotFound

from access.gifts import claim_url, gift_emailed, mail_code_open
from access.models import AccessToken, Gift, GiftStatus, Scope, TierSubscription
from access.prices import duration_label, token_price
from access.tiers import premium_price
from accounts.models import User
from events import consumers
from events.models import Event
from events.registry import moment, money
from notifications import kinds
from notifications.models import EmailQuota, EmailStatus, Kind, Notification, Preference
from notifications.selectors import email_enabled, language_of

logger = logging.getLogger(__name__)

CONSUMER = "notifications"
UNSUBSCRIBE_SALT = "notifications.unsubscribe"
# How long before expiry a token's owner is told, by duration (hours); 1 h tokens: never.
EXPIRY_NOTICE = {
    12: dt.timedelta(hours=3),
    24: dt.timedelta(hours=3),
    168: dt.timedelta(hours=24),
    720: dt.timedelta(hours=24),
}
RENEWAL_NOTICE_HOURS = 720
RENEWAL_NOTICE = dt.timedelta(hours=72)
# renewal_failed (of a token or of Premium) is what keeps access alive: it is mailed even past the daily limit.
CAP_EXEMPT = {Kind.RENEWAL_FAILED, Kind.TIER_RENEWAL_FAILED}
# A mail whose task never ran (broker down) is queued again by the scan after this long.
EMAIL_QUEUED_GRACE = dt.timedelta(minutes=2)
# A claimed mail whose retries all failed (a long SMTP outage) is tried again after this long.
EMAIL_RETRY_AFTER = dt.timedelta(hours=3)
EMAIL_GIVE_UP = dt.timedelta(days=2)


class NotificationNotFound(NotFound):
    default_detail = "Notification not found"


# --- Facts --------------------------------------------------------------------------------------


def notification_create(*, user_id, kind: str, key: str, data: dict) -> Notification | None:
    """Record a fact once; None when it was recorded before. Its e-mail goes out after commit."""
    try:
        # A savepoint: a duplicate leaves the caller's transaction usable.
        with transaction.atomic():
            row = Notification.objects.create(user_id=user_id, kind=kind, key=key[:200], data=data)
    except IntegrityError:
        if Notification.objects.filter(user_id=user_id, kind=kind, key=key[:200]).exists():
            return None
        raise
    # After commit: the task must see the row, and a rolled-back fact sends nothing.
    transaction.on_commit(lambda: email_enqueue(row.pk))
    return row


def _token_facts(token_id) -> tuple[str, str | None]:
    token = AccessToken.objects.filter(pk=token_id).first() if _is_uuid(token_id) else None
    if token is None:
        return "", None
    return token.secret_prefix, moment(token.expires_at)


def _on_charged(event: Event) -> None:
    data = event.data
    threshold = Decimal(settings.LOW_BALANCE_ZNC)
    after = Decimal(data["balance_after"])
    before = after + Decimal(data["amount"])
    # Only the debit that crosses the line: a balance back at or above it re-arms the notice.
    if before >= threshold > after:
        notification_create(
            user_id=event.user_id,
            kind=Kind.BALANCE_LOW,
            key=f"balance_low:{data['transaction_id']}",
            data={
                "transaction_id": data["transaction_id"],
                "balance_after": money(after),
                "threshold": money(threshold),
            },
        )


def _on_topped_up(event: Event) -> None:
    data = event.data
    if data.get("kind") == "referral_bonus":
        notification_create(
            user_id=event.user_id,
            kind=Kind.REFERRAL_BONUS,
            key=f"referral_bonus:{data['transaction_id']}",
            data={"transaction_id": data["transaction_id"], "amount": data["amount"]},
        )


def _on_renewed(event: Event) -> None:
    data = event.data
    prefix, _expires = _token_facts(data["token_id"])
    notification_create(
        user_id=event.user_id,
        kind=Kind.TOKEN_RENEWED,
        key=f"token_renewed:{data['token_id']}:{data.get('period')}",
        data={
            "token_id": data["token_id"],
            "prefix": prefix,
            "period": data.get("period"),
            "price": data.get("price"),
            "expires_at": data.get("expires_at"),
        },
    )


def _on_renewal_failed(event: Event) -> None:
    """One notice per episode: every failed try before the same expiry is the same fact."""
    data = event.data
    prefix, expires = _token_facts(data["token_id"])
    deadline = data.get("expires_at") or expires
    # No price (the duration was taken off sale) means topping up cannot help: the text says so.
    required = Decimal(data["required"]) if data.get("required") is not None else None
    available = Decimal(data.get("available") or 0)
    notification_create(
        user_id=event.user_id,
        kind=Kind.RENEWAL_FAILED,
        key=f"renewal_failed:{data['token_id']}:{deadline}",
        data={
            "token_id": data["token_id"],
            "prefix": prefix,
            "reason": data.get("reason", ""),
            "required": money(required) if required is not None else None,
            "available": money(available),
            "top_up": money(max(required - available, Decimal(0))) if required is not None else None,
            "deadline": deadline,
        },
    )


def _on_tier_renewed(event: Event) -> None:
    data = event.data
    notification_create(
        user_id=event.user_id,
        kind=Kind.TIER_RENEWED,
        key=f"tier_renewed:{data.get('period')}",
        data={"period": data.get("period"), "price": data.get("price"), "paid_until": data.get("paid_until")},
    )


def _on_tier_renewal_failed(event: Event) -> None:
    """One notice per paid period: every failed try before the same end is the same fact."""
    data = event.data
    required, available = Decimal(data["required"]), Decimal(data.get("available") or 0)
    notification_create(
        user_id=event.user_id,
        kind=Kind.TIER_RENEWAL_FAILED,
        key=f"tier_renewal_failed:{data.get('paid_until')}",
        data={
            "reason": data.get("reason", ""),
            "required": money(required),
            "available": money(available),
            "top_up": money(max(required - available, Decimal(0))),
            "paid_until": data.get("paid_until"),
        },
    )


def _on_endpoint_disabled(event: Event) -> None:
    data = event.data
    notification_create(
        user_id=event.user_id,
        kind=Kind.WEBHOOK_ENDPOINT_DISABLED,
        key=f"webhook_endpoint_disabled:{data['endpoint_id']}:{event.pk}",
        data={"endpoint_id": data["endpoint_id"], "url": data.get("url", ""), "reason": data.get("reason", "")},
    )


def _gift_notify(event: Event, kind: str) -> None:
    """Tell the sender what became of their gift; the recipient (if any) is named by username, as they see it."""
    data = event.data
    facts = {
        "gift_id": data["gift_id"],
        "token_id": data.get("token_id"),
        "duration_hours": data.get("duration_hours"),
        "scope": data.get("scope"),
        "expires_at": data.get("expires_at"),
    }
    recipient_id = data.get("recipient_id")
    if recipient_id:
        facts["recipient_id"] = recipient_id
        recipient = User.objects.filter(pk=recipient_id).values_list("username", flat=True).first()
        facts["recipient"] = recipient or ""
    notification_create(user_id=event.user_id, kind=kind, key=f"{kind}:{data['gift_id']}", data=facts)


def _on_gift_claimed(event: Event) -> None:
    _gift_notify(event, Kind.GIFT_CLAIMED)


def _on_gift_declined(event: Event) -> None:
    _gift_notify(event, Kind.GIFT_DECLINED)


def _on_gift_expired(event: Event) -> None:
    _gift_notify(event, Kind.GIFT_EXPIRED)


# gift.sent and gift.cancelled tell the sender nothing: both were their own acts.
_HANDLERS = {
    "balance.charged": _on_charged,
    "balance.topped_up": _on_topped_up,
    "token.renewed": _on_renewed,
    "token.renewal_failed": _on_renewal_failed,
    "tier.renewed": _on_tier_renewed,
    "tier.renewal_failed": _on_tier_renewal_failed,
    "webhook_endpoint.disabled": _on_endpoint_disabled,
    "gift.claimed": _on_gift_claimed,
    "gift.declined": _on_gift_declined,
    "gift.expired": _on_gift_expired,
}


def event_handle(event: Event) -> None:
    """The consumer's handler (``events.consumers``): runs once per event, in the consumption's transaction."""
    handler = _HANDLERS.get(event.type)
    if handler is not None:
        handler(event)


def event_consume(*, event_id: str) -> bool:
    return consumers.consume(CONSUMER, event_id, event_handle)


def _live_tokens(*, durations, now: dt.datetime, lead: dt.timedelta):
    return (
        AccessToken.objects.filter(
            duration_hours__in=durations,
            activated_at__isnull=False,
            revoked_at__isnull=True,
            expired_at__isnull=True,
            user__is_active=True,
        )
        .filter(expires_at__gt=now, expires_at__lte=now + lead)
        .select_related("user")
        .order_by("expires_at")
    )


def _renews(token: AccessToken) -> bool:
    return bool(token.auto_renew and token.user.auto_renew_enabled)


def _renewal_covered(token: AccessToken) -> bool:
    """The renewal will go through: on, and the balance holds the price above the owner's reserve."""
    price = token_price(token.duration_hours)
    return _renews(token) and price is not None and token.user.balance - price >= token.user.renew_min_balance


def _create_new(candidates: list[tuple[AccessToken, str, dict]], kind: str) -> int:
    keys = [key for _token, key, _data in candidates]
    seen = set(Notification.objects.filter(kind=kind, key__in=keys).values_list("key", flat=True))
    created = 0
    for token, key, data in candidates:
        if key not in seen:
            with transaction.atomic():
                created += notification_create(user_id=token.user_id, kind=kind, key=key, data=data) is not None
    return created


def tokens_scan(*, now: dt.datetime | None = None) -> dict:
    """Every minute: ``token_expiring`` and ``renewal_upcoming`` for the tokens now inside their notice window."""
    now = now or timezone.now()
    expiring = []
    for hours, lead in EXPIRY_NOTICE.items():
        for token in _live_tokens(durations=[hours], now=now, lead=lead):
            if _renewal_covered(token):
                continue  # it will run on; renewal_failed speaks if it does not
            ends = moment(token.expires_at)
            data = {"token_id": str(token.pk), "prefix": token.secret_prefix, "expires_at": ends}
            expiring.append((token, f"token_expiring:{token.pk}:{ends}", data))
    upcoming = []
    for token in _live_tokens(durations=[RENEWAL_NOTICE_HOURS], now=now, lead=RENEWAL_NOTICE):
        if not _renews(token):
            continue
        ends, price = moment(token.expires_at), token_price(token.duration_hours)
        data = {
            "token_id": str(token.pk),
            "prefix": token.secret_prefix,
            "expires_at": ends,
            "price": money(price),
            "needed": money(price + token.user.renew_min_balance),
        }
        upcoming.append((token, f"renewal_upcoming:{token.pk}:{ends}", data))
    return {
        "token_expiring": _create_new(expiring, Kind.TOKEN_EXPIRING),
        "renewal_upcoming": _create_new(upcoming, Kind.RENEWAL_UPCOMING),
    }


def tiers_scan(*, now: dt.datetime | None = None) -> int:
    """Every minute: ``tier_renewal_upcoming`` for the renewing Premium tiers within RENEWAL_NOTICE of their end."""
    now = now or timezone.now()
    due = (
        TierSubscription.objects.filter(
            renews=True,
            paid_until__gt=now,
            paid_until__lte=now + RENEWAL_NOTICE,
            user__rate_tier=User.Tier.PREMIUM,
            user__auto_renew_enabled=True,
            user__is_active=True,
        )
        .select_related("user")
        .order_by("paid_until")
    )
    price = premium_price()
    candidates = []
    for subscription in due:
        ends = moment(subscription.paid_until)
        data = {"paid_until": ends, "price": money(price), "needed": money(price + subscription.user.renew_min_balance)}
        candidates.append((subscription, f"tier_renewal_upcoming:{subscription.user_id}:{ends}", data))
    return _create_new(candidates, Kind.TIER_RENEWAL_UPCOMING)


# --- E-mail ---------------------------------------------------------------------------------------


def email_enqueue(notification_id: int) -> bool:
    """Hand one mail to Celery; a broker failure is logged, never raised (the scan queues it later)."""
    from notifications.tasks import send_email

    try:
        send_email.apply_async(args=(notification_id,), retry=False)
    except Exception as exc:  # the business action has committed: nothing may undo or fail it now
        logger.warning("notification mail %s not queued (%s); the scan queues it", notification_id, type(exc).__name__)
        return False
    return True


def _quota_take(user_id, day: dt.date) -> bool:
    EmailQuota.objects.bulk_create([EmailQuota(user_id=user_id, day=day)], ignore_conflicts=True)
    # Conditional update: two mails racing for the last slot cannot both get it.
    return (
        EmailQuota.objects.filter(user_id=user_id, day=day, sent__lt=settings.NOTIFY_EMAIL_PER_DAY).update(
            sent=F("sent") + 1
        )
        == 1
    )


@transaction.atomic
def _email_claim(notification_id: int) -> str:
    """Decide once whether this mail goes out: SENDING (send it now), else why not."""
    # Lock the row: two tasks for one notification decide (and count it against the limit) once.
    row = Notification.objects.select_for_update().filter(pk=notification_id).first()
    if row is None:
        return "missing"
    if row.email_status not in (EmailStatus.PENDING, EmailStatus.SENDING):
        return row.email_status
    user = User.objects.only("email", "is_active").get(pk=row.user_id)
    now = timezone.now()
    if not user.email or not user.is_active:
        status = EmailStatus.NO_ADDRESS
    elif not email_enabled(row.user_id, row.kind):
        status = EmailStatus.OPTED_OUT
    elif row.email_status == EmailStatus.SENDING:
        return EmailStatus.SENDING  # a retry: counted when first claimed
    elif row.kind not in CAP_EXEMPT and not _quota_take(row.user_id, now.date()):
        status = EmailStatus.CAPPED
    else:
        status = EmailStatus.SENDING
    row.email_status, row.email_claimed_at = status, now
    row.save(update_fields=["email_status", "email_claimed_at"])
    return status


def unsubscribe_url(*, user_id, kind: str) -> str:
    token = signing.dumps({"u": str(user_id), "k": kind}, salt=UNSUBSCRIBE_SALT, compress=True)
    return settings.BACKEND_URL + reverse("notifications:unsubscribe", args=[token])


def email_message(row: Notification) -> EmailMultiAlternatives:
    """The mail of one notification, in its user's language, with RFC 8058 one-click unsubscribe headers."""
    user = row.user
    with translation.override(language_of(user)):
        text = kinds.text(row.kind, row.data)
        context = {
            "user": user,
            "language": translation.get_language(),
            "title": text.title,
            "body": text.body,
            "link": settings.BACKEND_URL + text.link,
            "kind_label": Kind(row.kind).label,
            "unsubscribe_url": unsubscribe_url(user_id=user.pk, kind=row.kind),
            "preferences_url": settings.BACKEND_URL + reverse("accounts:profile"),
        }
        body = render_to_string("notifications/email/notification.txt", context)
        html = render_to_string("notifications/email/notification.html", context)
        subject = f"{text.title} · Zenzefi Gate"
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        to=[user.email],
        headers={
            "List-Unsubscribe": f"<{context['unsubscribe_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def email_send(*, notification_id: int) -> str:
    """Send one notification's mail at most once (SMTP errors raise: the task retries them).

    Skipped, and marked why, when the user opted out of the kind, has no address
    or reached NOTIFY_EMAIL_PER_DAY (renewal_failed is exempt from the limit).
    """
    status = _email_claim(notification_id)
    if status != EmailStatus.SENDING:
        return status
    row = Notification.objects.select_related("user").get(pk=notification_id)
    email_message(row).send()  # outside any transaction: SMTP may be slow
    Notification.objects.filter(pk=notification_id, email_status=EmailStatus.SENDING).update(
        email_status=EmailStatus.SENT, emailed_at=timezone.now()
    )
    return EmailStatus.SENT


def gift_mail_message(gift: Gift, code: str) -> EmailMultiAlternatives:
    """The claim link for a gift's recipient, in the sender's language (the recipient may have no account yet).

    It carries the link, never the token. No List-Unsubscribe: it is a one-off mail, not a subscription.
    """
    sender = gift.sender
    with translation.override(language_of(sender)):
        context = {
            "language": translation.get_language(),
            "sender": sender.username,
            "duration": duration_label(gift.token.duration_hours),
            "scope": Scope(gift.token.scope).label,
            "message": gift.message,
            "claim_url": claim_url(code),
            "claim_by": kinds.when(moment(gift.expires_at)),
        }
        subject = translation.gettext("%(sender)s sent you Zenzefi access") % {"sender": sender.username}
        body = render_to_string("notifications/email/gift.txt", context)
        html = render_to_string("notifications/email/gift.html", context)
    message = EmailMultiAlternatives(subject=subject, body=body, to=[gift.recipient_email])
    message.attach_alternative(html, "text/html")
    return message


def gift_mail_send(*, gift_id: str, sealed: str) -> str:
    """Mail a pending gift's claim link to the address its sender entered, once; what happened is returned.

    Skipped when the gift is gone or no longer pending, has no address, was mailed before (a retried or
    duplicated task) or the sealed code does not open. SMTP errors raise (the task retries them); the gift
    committed before this ran, so a failure here never touches it. Only the gift id is ever logged.
    """
    gift = Gift.objects.select_related("sender", "token").filter(pk=gift_id).first() if _is_uuid(gift_id) else None
    if gift is None:
        return "missing"
    if gift.status != GiftStatus.PENDING:
        return gift.status
    if not gift.recipient_email:
        return EmailStatus.NO_ADDRESS
    if gift.emailed_at is not None:
        return EmailStatus.SENT
    code = mail_code_open(sealed)
    if code is None:
        logger.warning("gift %s: the mail task's code does not open (tampered with or too old); not mailed", gift.pk)
        return "invalid"
    gift_mail_message(gift, code).send()  # outside any transaction: SMTP may be slow
    gift_emailed(gift_id=gift.pk)
    return EmailStatus.SENT


def email_rescan(*, now: dt.datetime | None = None) -> int:
    """Queue again the mails whose task was lost, and those whose retries ran out in a long SMTP outage."""
    now = now or timezone.now()
    lost = Notification.objects.filter(
        email_status=EmailStatus.PENDING, created_at__lt=now - EMAIL_QUEUED_GRACE, created_at__gte=now - EMAIL_GIVE_UP
    )
    stuck = Notification.objects.filter(
        email_status=EmailStatus.SENDING,
        email_claimed_at__lt=now - EMAIL_RETRY_AFTER,
        created_at__gte=now - EMAIL_GIVE_UP,
    )
    ids = list(lost.values_list("pk", flat=True)[:500]) + list(stuck.values_list("pk", flat=True)[:500])
    if stuck.exists():
        # Re-claimed by the next try; moving the mark keeps one stuck mail from being queued every minute.
        Notification.objects.filter(pk__in=ids, email_status=EmailStatus.SENDING).update(email_claimed_at=now)
    for pk in ids:
        email_enqueue(pk)
    return len(ids)


def scan(*, now: dt.datetime | None = None) -> dict:
    """The beat task's work: missed events, the token windows, and mails that never went out."""
    handled = sum(event_consume(event_id=pk) for pk in consumers.pending(CONSUMER, now=now))
    # Yesterday's counts are the last ones a retry could still be charged against.
    EmailQuota.objects.filter(day__lt=(now or timezone.now()).date() - dt.timedelta(days=1)).delete()
    return {
        "events": handled,
        **tokens_scan(now=now),
        "tier_renewal_upcoming": tiers_scan(now=now),
        "emails": email_rescan(now=now),
    }


# --- Reading, preferences, unsubscribing, language ------------------------------------------------


def notification_read(*, user, notification_id) -> Notification:
    key = str(notification_id)
    # Ids are positive 64-bit integers: anything else is simply not found.
    row = (
        Notification.objects.filter(user=user, pk=key).first()
        if key.isascii() and key.isdigit() and len(key) <= 18
        else None
    )
    if row is None:
        raise NotificationNotFound()
    if row.read_at is None:
        Notification.objects.filter(pk=row.pk, read_at__isnull=True).update(read_at=timezone.now())
        row.refresh_from_db(fields=["read_at"])
    return row


def notifications_read_all(*, user) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


@transaction.atomic
def preferences_set(*, user, email: dict[str, bool]) -> None:
    """Turn e-mail on or off per kind (kinds not named keep their setting). The caller checks the kinds."""
    for kind, on in email.items():
        Preference.objects.update_or_create(user=user, kind=kind, defaults={"email": bool(on)})


def unsubscribe_read(token: str) -> tuple[User, str] | None:
    """The user and kind of a signed unsubscribe link; None when forged, tampered with or stale."""
    try:
        claims = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(claims, dict) or claims.get("k") not in Kind.values:
        return None
    user = User.objects.filter(pk=claims.get("u")).first() if _is_uuid(claims.get("u")) else None
    return None if user is None else (user, claims["k"])


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def user_language_set(*, user, language: str) -> None:
    """Remember the portal language the user chose: their mails are written in it."""
    if language in dict(settings.LANGUAGES) and user.language != language:
        User.objects.filter(pk=user.pk).update(language=language)
        user.language = language
