"""Every write of the accounts app: registration, profile changes, sign-in, audit."""

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts.models import REFERRAL_CODE_ALPHABET, REFERRAL_CODE_LENGTH, AuditLog, CacheRepair, User
from zenzefi import breaker, metrics, ratelimit, rediscache
from zenzefi.errors import DomainError
from zenzefi.net import request_ip

logger = logging.getLogger(__name__)

REFERRAL_CODE_ATTEMPTS = 10
# Marks a deactivated user in the cache, so every cached token of theirs is refused at once.
INACTIVE_USER_KEY = "accounts:inactive:{}"


def referral_bonus_key(referee_id) -> str:
    """The idempotency key of the one referral bonus a referee can earn their referrer."""
    return f"referral:{referee_id}"


class RegistrationError(DomainError):
    pass


class InvalidPassword(DomainError):
    pass


class LoginFailed(DomainError):
    status_code = 401
    default_detail = "Incorrect email or password"


def password_check(password: str, user: User) -> None:
    """Django's password validators, as a domain error on the ``password`` field."""
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise InvalidPassword(" ".join(exc.messages), field="password") from None


def referral_code_generate() -> str:
    return "".join(secrets.choice(REFERRAL_CODE_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))


def user_insert(user: User) -> User:
    """Insert a new user with a fresh unique referral code.

    The code is drawn at random; a collision (unique index) is retried with a
    new code inside a savepoint, up to REFERRAL_CODE_ATTEMPTS times.
    """
    for attempt in range(REFERRAL_CODE_ATTEMPTS):
        user.referral_code = referral_code_generate()
        try:
            with transaction.atomic():
                user.save(force_insert=True)
            return user
        except IntegrityError:
            if attempt + 1 < REFERRAL_CODE_ATTEMPTS and User.objects.filter(referral_code=user.referral_code).exists():
                continue
            raise
    raise AssertionError("unreachable")


def user_create(*, email: str, username: str, password: str | None, **fields: Any) -> User:
    user = User(email=User.objects.normalize_email(email.strip()), username=username.strip(), **fields)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    return user_insert(user)


def user_register(
    *,
    email: str,
    username: str,
    password: str,
    full_name: str = "",
    referral_code: str | None = None,
    ip: str | None = None,
    user_agent: str = "",
) -> User:
    """Register a new user, optionally referred by the owner of ``referral_code``.

    Checks, in the reference's order: e-mail taken, username taken, unknown
    referral code; the password against Django's validators. Any failure
    raises RegistrationError and writes nothing.
    """
    email = User.objects.normalize_email((email or "").strip())
    username = (username or "").strip()
    if User.objects.filter(email__iexact=email).exists():
        raise RegistrationError(gettext_noop("Email already registered"), field="email")
    if User.objects.filter(username__iexact=username).exists():
        raise RegistrationError(gettext_noop("Username already taken"), field="username")
    referrer = None
    if referral_code:
        referrer = User.objects.filter(referral_code=referral_code.strip().upper(), is_active=True).first()
        if referrer is None:
            raise RegistrationError(gettext_noop("Invalid referral code"), field="referral_code")
    password_check(password, User(email=email, username=username, full_name=full_name))
    try:
        with transaction.atomic():
            user = user_create(
                email=email, username=username, password=password, full_name=full_name or "", referred_by=referrer
            )
            audit_record(
                actor=user,
                action="auth_register",
                obj=user,
                ip=ip,
                user_agent=user_agent,
                details={"referred_by": str(referrer.pk) if referrer else None},
            )
    except IntegrityError:
        # Lost a race with a simultaneous registration of the same name.
        if User.objects.filter(email__iexact=email).exists():
            raise RegistrationError(gettext_noop("Email already registered"), field="email") from None
        raise RegistrationError(gettext_noop("Username already taken"), field="username") from None
    return user


def user_update(
    *, user: User, full_name: str | None = None, password: str | None = None, ip: str | None = None
) -> User:
    """Change the profile. A new password refuses every JWT issued before it."""
    changed = []
    if full_name is not None:
        user.full_name = full_name
        changed.append("full_name")
    if password is not None:
        password_check(password, user)
        user.set_password(password)
        changed += ["password", "password_changed_at"]
    if changed:
        user.save(update_fields=[*changed, "updated_at"])
        audit_record(
            actor=user,
            action="user_update",
            obj=user,
            ip=ip,
            details={"fields": [f for f in changed if f != "password_changed_at"]},
        )
    return user


def preferred_currency_set(*, user: User, currency: str, ip: str | None = None) -> bool:
    """Remember the currency ``user`` tops up in (the wallet page offers it first); True if it changed.

    Only the preference: whether the currency can be paid in is the wallet's question
    (wallet.currencies), asked before this is called. A conditional update, so an unchanged
    preference writes nothing and is not audited.
    """
    code = (currency or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise DomainError("A currency is a three-letter ISO 4217 code", field="preferred_currency")
    changed = (
        User.objects.filter(pk=user.pk)
        .exclude(preferred_currency=code)
        .update(preferred_currency=code, updated_at=timezone.now())
    )
    user.preferred_currency = code
    if changed:
        audit_record(actor=user, action="user_update", obj=user, ip=ip, details={"fields": ["preferred_currency"]})
    return bool(changed)


def user_active_changed(*, user_id, is_active: bool) -> None:
    """Publish a change of ``is_active`` to the cache (after the commit that made it; never fails)."""
    key = INACTIVE_USER_KEY.format(user_id)
    transaction.on_commit(lambda: cache_forget(key) if is_active else cache_publish(key, 1))


def user_is_blocked(user_id) -> bool:
    return bool(rediscache.safe_get(INACTIVE_USER_KEY.format(user_id)))


# --- Cache changes that must survive a cache outage ------------------------------------------


def cache_forget(key: str) -> None:
    """Delete a cache entry after a commit; if the cache is down, keep the deletion for replay."""
    if not rediscache.safe_delete(key):
        _cache_repair(key, delete=True, value=None)


def cache_publish(key: str, value) -> None:
    """Set a (timeless) cache entry after a commit; if the cache is down, keep it for replay."""
    if not rediscache.safe_set(key, value, timeout=None):
        _cache_repair(key, delete=False, value=value)


def _cache_repair(key: str, *, delete: bool, value) -> None:
    try:
        CacheRepair.objects.update_or_create(
            key=key, defaults={"delete": delete, "value": value, "created_at": timezone.now()}
        )
    except Exception:  # the change itself committed; never turn it into an error
        logger.exception("could not record a pending cache repair")
        return
    logger.warning("cache unavailable: a cache change is kept for replay")


def cache_repairs_replay() -> int:
    """Make the pending cache changes; the ones that succeed are deleted. Safe to run anywhere, any time."""
    done = 0
    for repair in CacheRepair.objects.order_by("created_at")[:1000]:
        made = rediscache.safe_delete(repair.key) if repair.delete else rediscache.safe_set(repair.key, repair.value)
        if not made:
            break  # still down: the rest waits for the next run
        CacheRepair.objects.filter(pk=repair.pk, created_at=repair.created_at).delete()
        done += 1
    return done


_repaired_after = 0


def cache_repairs_due() -> bool:
    return breaker.redis.recoveries != _repaired_after


def cache_repairs_after_outage() -> None:
    """Once per recovery of Redis in this process (``zenzefi.breaker``): replay before trusting the cache."""
    global _repaired_after
    if not cache_repairs_due():
        return
    _repaired_after = breaker.redis.recoveries
    try:
        cache_repairs_replay()
    except Exception:
        logger.exception("cache repairs could not be replayed")


def _login_rate() -> ratelimit.Rate:
    return ratelimit.Rate.parse(settings.RATE_LIMIT_LOGIN_FAILURES)


def auth_login(*, identifier: str, password: str, request=None, ip: str | None = None, user_agent: str = "") -> User:
    """Check credentials given as e-mail or username.

    Failed attempts are counted per account (the identifier, lower-cased);
    past RATE_LIMIT_LOGIN_FAILURES the account refuses attempts with
    RateLimited until the window frees up. Success and failure are audited.
    """
    identifier = (identifier or "").strip()
    account_key = identifier.lower()
    if settings.RATE_LIMIT_ENABLED:
        decision = ratelimit.check("login-fail", account_key, _login_rate())
        if not decision.allowed:
            metrics.AUTH_ATTEMPTS.labels("blocked").inc()
            metrics.RATE_LIMITED.labels("login-fail").inc()
            audit_record(
                actor=None,
                action="auth_login_blocked",
                ip=ip,
                user_agent=user_agent,
                details={"identifier": identifier},
            )
            raise decision.error(gettext_noop("Too many failed login attempts for this account. Try again later."))
    user = authenticate(request, username=identifier, password=password)
    if user is None:
        if settings.RATE_LIMIT_ENABLED:
            ratelimit.hit("login-fail", account_key, _login_rate())
        known = (
            User.objects.filter(email__iexact=identifier).first()
            or User.objects.filter(username__iexact=identifier).first()
        )
        audit_record(
            actor=known,
            action="auth_login_failed",
            obj=known,
            ip=ip,
            user_agent=user_agent,
            details={"identifier": identifier},
        )
        metrics.AUTH_ATTEMPTS.labels("failure").inc()
        raise LoginFailed()
    metrics.AUTH_ATTEMPTS.labels("success").inc()
    audit_record(actor=user, action="auth_login", obj=user, ip=ip, user_agent=user_agent)
    return user


def audit_record(
    *,
    actor: User | None,
    action: str,
    obj: Model | None = None,
    ip: str | None = None,
    user_agent: str = "",
    details: dict | None = None,
) -> AuditLog:
    """Append one audit row. Never pass secrets in ``details``."""
    return AuditLog.objects.create(
        user=actor if actor is not None and actor.pk else None,
        action=action,
        resource_type=type(obj).__name__ if obj is not None else "",
        resource_id=str(obj.pk) if obj is not None else "",
        ip_address=ip or None,
        user_agent=(user_agent or "")[:512],
        details=details or {},
    )


def audit_prune(*, older_than_days: int | None = None) -> int:
    """Delete audit rows older than AUDIT_RETENTION_DAYS. Idempotent; returns how many went."""
    from datetime import timedelta

    from django.utils import timezone

    days = older_than_days if older_than_days is not None else settings.AUDIT_RETENTION_DAYS
    deleted, _ = AuditLog.objects.filter(created_at__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted


@dataclass(frozen=True)
class Actor:
    """Who asked for a change, for the audit log."""

    user: User | None = None
    ip: str | None = None
    user_agent: str = ""

    def audit(self, action: str, obj, details: dict) -> None:
        audit_record(actor=self.user, action=action, obj=obj, ip=self.ip, user_agent=self.user_agent, details=details)


SYSTEM = Actor()


def actor_of(request) -> Actor:
    """The Actor for a DRF or Django request: its user (if signed in), IP and User-Agent."""
    user = getattr(request, "user", None)
    return Actor(
        user=user if user is not None and user.is_authenticated else None,
        ip=request_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )
