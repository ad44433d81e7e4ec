import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from access.crypto import secret_decrypt

CENT = Decimal("0.01")


class Scope(models.TextChoices):
    FULL = "full", _("Full access")
    CERTIFICATES_ONLY = "certificates_only", _("Certificates only")


class TokenStatus(models.TextChoices):
    READY = "ready", _("Ready")
    ACTIVE = "active", _("Active")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


def _russian_active() -> bool:
    return (get_language() or "").split("-")[0] == "ru"


# How long before expiry the renewal task charges the next period.
SHORT_RENEWAL_LEAD = timedelta(minutes=60)
LONG_RENEWAL_LEAD = timedelta(hours=24)


def renewal_lead(duration_hours: int) -> timedelta:
    """60 minutes for tokens of up to 24 h, 24 hours for the longer ones (7 and 30 days)."""
    return SHORT_RENEWAL_LEAD if duration_hours <= 24 else LONG_RENEWAL_LEAD


class Bundle(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("name"), max_length=100)
    # Shown to Russian-speaking users; empty means "use the English text". The API's name/description stay English.
    name_ru = models.CharField(_("name in Russian"), max_length=100, blank=True, default="")
    description = models.TextField(_("description"), blank=True, default="")
    description_ru = models.TextField(_("description in Russian"), blank=True, default="")
    token_count = models.PositiveIntegerField(_("tokens"), validators=[MinValueValidator(1), MaxValueValidator(1000)])
    duration_hours = models.PositiveIntegerField(_("duration, hours"))
    scope = models.CharField(_("scope"), max_length=20, choices=Scope.choices, default=Scope.FULL)
    discount_percent = models.DecimalField(
        _("discount, %"), max_digits=5, decimal_places=2, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    base_price = models.DecimalField(_("base price, ZNC"), max_digits=12, decimal_places=2)
    total_price = models.DecimalField(_("price, ZNC"), max_digits=12, decimal_places=2)
    is_active = models.BooleanField(_("on sale"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("bundle")
        verbose_name_plural = _("bundles")
        ordering = ["total_price"]
        constraints = [
            models.CheckConstraint(condition=models.Q(token_count__gt=0), name="bundle_token_count_positive"),
            models.CheckConstraint(
                condition=models.Q(discount_percent__gte=0, discount_percent__lte=100), name="bundle_discount_range"
            ),
            models.CheckConstraint(condition=models.Q(total_price__gt=0), name="bundle_total_positive"),
            models.CheckConstraint(
                condition=models.Q(total_price__lte=models.F("base_price")), name="bundle_total_not_above_base"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        """The name in the active language; the English one when there is no Russian text."""
        return self.name_ru if self.name_ru and _russian_active() else self.name

    @property
    def display_description(self) -> str:
        """The description in the active language; the English one when there is no Russian text."""
        return self.description_ru if self.description_ru and _russian_active() else self.description

    @property
    def savings(self) -> Decimal:
        return (self.base_price or Decimal(0)) - (self.total_price or Decimal(0))

    @property
    def price_per_token(self) -> Decimal:
        if not self.token_count or self.total_price is None:
            return Decimal("0.00")
        return (self.total_price / self.token_count).quantize(CENT)


class AccessToken(models.Model):
    """Time-limited access to Zenzefi. The secret is stored only encrypted; see access.crypto."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.PROTECT, related_name="access_tokens"
    )
    secret_encrypted = models.TextField(editable=False)
    secret_digest = models.CharField(max_length=64, unique=True, editable=False)
    secret_prefix = models.CharField(_("token prefix"), max_length=8, editable=False)
    duration_hours = models.PositiveIntegerField(_("duration, hours"))
    scope = models.CharField(_("scope"), max_length=20, choices=Scope.choices)
    cost_znc = models.DecimalField(_("price paid, ZNC"), max_digits=12, decimal_places=2)
    bundle = models.ForeignKey(
        Bundle, verbose_name=_("bundle"), null=True, blank=True, on_delete=models.SET_NULL, related_name="tokens"
    )
    purchase = models.ForeignKey(
        "wallet.Transaction", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("revoked by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoke_reason = models.CharField(_("revoke reason"), max_length=200, blank=True, default="")
    # When the time is up: activated_at + duration, set at activation and moved on by each renewal.
    # Every reader (status, validation, the proxy's cached facts, refunds) uses this column.
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True, editable=False)
    # Set by the expiry task once the token's time is up (the status derives from expires_at either way).
    expired_at = models.DateTimeField(_("expired"), null=True, blank=True, editable=False)
    refund = models.ForeignKey(
        "wallet.Transaction", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    auto_renew = models.BooleanField(_("auto-renew"), default=False)
    # The first failed renewal attempt of the current failure episode (balance short); cleared by a renewal or
    # by switching auto-renewal: token.renewal_failed is recorded once per episode, not on every run.
    renewal_failed_at = models.DateTimeField(_("renewal failed"), null=True, blank=True, editable=False)
    # Set when a gift of this token is claimed: who gave it and when. A claimed gift's own period is not
    # refundable (see access.services.refund_amount).
    gifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("gifted by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    gifted_at = models.DateTimeField(_("gift claimed"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("access token")
        verbose_name_plural = _("access tokens")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="token_user_created"),
            models.Index(fields=["expires_at"], name="token_expires"),
        ]
        constraints = [models.CheckConstraint(condition=models.Q(cost_znc__gte=0), name="token_cost_not_negative")]

    def __str__(self) -> str:
        return f"{self.secret_prefix}… ({self.duration_hours} h, {self.scope})"

    @property
    def secret(self) -> str:
        return secret_decrypt(self.secret_encrypted)

    @property
    def duration(self) -> timedelta:
        return timedelta(hours=self.duration_hours)

    @property
    def renewal_lead(self) -> timedelta:
        return renewal_lead(self.duration_hours)

    @property
    def will_renew(self) -> bool:
        """Auto-renewal is on for this running token and its owner's master switch is on (balance aside)."""
        return (
            self.auto_renew
            and self.user.auto_renew_enabled
            and self.revoked_at is None
            and self.expires_at is not None
            and timezone.now() < self.expires_at
        )

    @property
    def next_renewal_at(self) -> datetime | None:
        """When the renewal task will charge the next period: ``expires_at`` − lead time; None unless it will renew."""
        return self.expires_at - self.renewal_lead if self.will_renew else None

    def status_at(self, now: datetime) -> str:
        if self.revoked_at:
            return TokenStatus.REVOKED
        if self.activated_at is None:
            return TokenStatus.READY
        return TokenStatus.ACTIVE if now < self.expires_at else TokenStatus.EXPIRED

    @property
    def status(self) -> str:
        return self.status_at(timezone.now())

    @property
    def is_usable(self) -> bool:
        return self.status in (TokenStatus.READY, TokenStatus.ACTIVE)

    def seconds_left(self, now: datetime | None = None) -> int | None:
        if self.activated_at is None:
            return None
        return max(0, int((self.expires_at - (now or timezone.now())).total_seconds()))


class TokenRenewal(models.Model):
    """One paid period of an auto-renewed token after its first (period 1 is the purchase).

    Unique per token and period: a second run of the task, or a second worker, cannot charge twice.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token = models.ForeignKey(AccessToken, verbose_name=_("token"), on_delete=models.PROTECT, related_name="renewals")
    period = models.PositiveIntegerField(_("period"))
    price = models.DecimalField(_("price, ZNC"), max_digits=12, decimal_places=2)
    transaction = models.OneToOneField(
        "wallet.Transaction", verbose_name=_("ledger row"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("token renewal")
        verbose_name_plural = _("token renewals")
        ordering = ["token", "period"]
        constraints = [
            models.UniqueConstraint(fields=["token", "period"], name="token_renewal_once_per_period"),
            models.CheckConstraint(condition=models.Q(period__gte=2), name="token_renewal_period_after_first"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="token_renewal_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.token_id}: period {self.period}"


class GiftStatus(models.TextChoices):
    PENDING = "pending", pgettext_lazy("gift status", "Pending")
    CLAIMED = "claimed", pgettext_lazy("gift status", "Claimed")
    DECLINED = "declined", pgettext_lazy("gift status", "Declined")
    CANCELLED = "cancelled", pgettext_lazy("gift status", "Cancelled")
    EXPIRED = "expired", pgettext_lazy("gift status", "Expired")


class Gift(models.Model):
    """An unactivated token offered to someone through a single-use claim link.

    While pending, the token is frozen (the proxy refuses it, its owner cannot revoke it). The claim code
    is stored only as a keyed digest; the sender sees it once. At most one pending gift per token.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token = models.ForeignKey(AccessToken, verbose_name=_("token"), on_delete=models.PROTECT, related_name="gifts")
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("sender"), on_delete=models.PROTECT, related_name="gifts_sent"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="gifts_received",
    )
    recipient_email = models.EmailField(_("recipient e-mail"), blank=True, default="")
    message = models.CharField(_("message"), max_length=280, blank=True, default="")
    code_digest = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(_("status"), max_length=20, choices=GiftStatus.choices, default=GiftStatus.PENDING)
    created_at = models.DateTimeField(_("sent"), default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(_("claim by"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    emailed_at = models.DateTimeField(_("e-mailed"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("gift")
        verbose_name_plural = _("gifts")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["sender", "-created_at"], name="gift_sender_created"),
            models.Index(fields=["expires_at"], condition=models.Q(status="pending"), name="gift_pending_expiry"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["token"], condition=models.Q(status="pending"), name="gift_one_pending"),
            models.CheckConstraint(
                condition=models.Q(status="pending") | models.Q(finished_at__isnull=False), name="gift_finished_time"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="claimed") | models.Q(recipient__isnull=False), name="gift_claimed_by"
            ),
        ]

    def __str__(self) -> str:
        return f"gift {self.pk} ({self.status})"


class TierSubscription(models.Model):
    """A user's self-serve Premium API tier: what is paid for and whether it renews (access.tiers).

    ``User.rate_tier`` stays the effective tier the limiter reads; this row holds the billing state only.
    Premium is paid up to ``paid_until``; ``renews`` false means it goes back to free then (a downgrade
    takes effect at the end of the period). ``renewal_failed_at`` remembers the current failure episode,
    so a failed renewal is reported once.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="tier_subscription",
    )
    paid_until = models.DateTimeField(_("paid until"), null=True, blank=True)
    renews = models.BooleanField(_("renews"), default=False)
    renewal_failed_at = models.DateTimeField(_("renewal failed"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("Premium subscription")
        verbose_name_plural = _("Premium subscriptions")
        indexes = [models.Index(fields=["paid_until"], name="tier_subscription_paid_until")]

    def __str__(self) -> str:
        return f"{self.user_id}: paid until {self.paid_until}"


class TierPeriod(models.Model):
    """One paid Premium period (the upgrade's and each renewal's). Unique per user and period: never charged twice."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.PROTECT, related_name="tier_periods"
    )
    period = models.PositiveIntegerField(_("period"))
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    price = models.DecimalField(_("price, ZNC"), max_digits=12, decimal_places=2)
    transaction = models.OneToOneField(
        "wallet.Transaction", verbose_name=_("ledger row"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("Premium period")
        verbose_name_plural = _("Premium periods")
        ordering = ["user", "period"]
        constraints = [
            models.UniqueConstraint(fields=["user", "period"], name="tier_period_once"),
            models.CheckConstraint(condition=models.Q(period__gte=1), name="tier_period_positive"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="tier_period_price_not_negative"),
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="tier_period_order"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: period {self.period}"
