import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

CENT = Decimal("0.01")


class Transaction(models.Model):
    """One row of the ZNC ledger. A user's balance is the sum of their rows."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", _("Top-up")
        PURCHASE = "purchase", _("Purchase")
        REFUND = "refund", _("Refund")
        REFERRAL_BONUS = "referral_bonus", _("Referral bonus")
        ADJUSTMENT = "adjustment", _("Adjustment")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.PROTECT, related_name="transactions"
    )
    # Position in the user's ledger (1, 2, 3, ...); unique, so two writers that
    # skipped the row lock would collide instead of forking the ledger.
    seq = models.PositiveIntegerField(_("number"))
    amount = models.DecimalField(_("amount, ZNC"), max_digits=12, decimal_places=2)
    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices, db_column="transaction_type")
    description = models.CharField(_("description"), max_length=255)
    balance_after = models.DecimalField(_("balance after"), max_digits=12, decimal_places=2)
    payment_id = models.CharField(_("payment id"), max_length=128, null=True, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=128, null=True, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("transaction")
        verbose_name_plural = _("transactions")
        ordering = ["-created_at", "-seq"]
        constraints = [
            models.UniqueConstraint(fields=["user", "seq"], name="transaction_user_seq_unique"),
            # A provider's payment is credited at most once.
            models.UniqueConstraint(
                fields=["payment_id"], condition=models.Q(kind="deposit"), name="transaction_deposit_payment_unique"
            ),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="transaction_idempotency_unique",
            ),
            models.CheckConstraint(condition=~models.Q(amount=0), name="transaction_amount_not_zero"),
            models.CheckConstraint(
                condition=models.Q(balance_after__gte=0), name="transaction_balance_after_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["user", "-created_at"], name="transaction_user_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount:+} ZNC"


class Payment(models.Model):
    """A top-up at a payment provider. Not a ledger row until it succeeds."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        CANCELED = "canceled", _("Canceled")
        FAILED = "failed", _("Failed")
        # The provider reported another amount or currency than the one frozen here: nothing credited.
        MISMATCH = "mismatch", _("Amount mismatch")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.PROTECT, related_name="payments"
    )
    amount_znc = models.DecimalField(_("amount, ZNC"), max_digits=12, decimal_places=2)
    # Frozen at creation: what the user pays (in ``currency``, and in its minor units) for ``amount_znc``,
    # at ``rate`` (the price of 1 ZNC then). A later rate change never touches a payment.
    amount_money = models.DecimalField(_("amount to pay"), max_digits=14, decimal_places=2)
    amount_minor = models.BigIntegerField(_("amount in minor units"))
    currency = models.CharField(_("currency"), max_length=3, default="RUB")
    rate = models.DecimalField(_("price of 1 ZNC"), max_digits=14, decimal_places=6)
    provider = models.CharField(_("provider"), max_length=20)
    provider_payment_id = models.CharField(_("provider payment id"), max_length=128, null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    confirmation_url = models.URLField(_("payment page"), max_length=1024, blank=True, default="")
    return_url = models.CharField(_("return URL"), max_length=1024, blank=True, default="")
    transaction = models.OneToOneField(
        Transaction,
        verbose_name=_("ledger row"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payment",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_payment_id"],
                condition=models.Q(provider_payment_id__isnull=False),
                name="payment_provider_id_unique",
            ),
            models.CheckConstraint(condition=models.Q(amount_znc__gt=0), name="payment_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.amount_znc} ZNC ({self.get_status_display()})"

    @property
    def is_final(self) -> bool:
        return self.status != self.Status.PENDING


class CurrencyRate(models.Model):
    """The price of 1 ZNC in a currency a top-up can be paid in. Set by an admin; no live feed."""

    currency = models.CharField(_("currency"), max_length=3, primary_key=True)  # ISO 4217
    znc_price = models.DecimalField(_("price of 1 ZNC"), max_digits=14, decimal_places=6)
    enabled = models.BooleanField(_("enabled"), default=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("currency rate")
        verbose_name_plural = _("currency rates")
        ordering = ["currency"]
        constraints = [models.CheckConstraint(condition=models.Q(znc_price__gt=0), name="currency_rate_positive")]

    def __str__(self) -> str:
        return f"1 ZNC = {self.znc_price.normalize():f} {self.currency}"
