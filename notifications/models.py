"""Notifications: one row per fact (user, kind, key), shown in the portal and, unless opted out, e-mailed once."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    TOKEN_EXPIRING = "token_expiring", _("A token is about to expire")
    RENEWAL_UPCOMING = "renewal_upcoming", _("An auto-renewal is coming up")
    TOKEN_RENEWED = "token_renewed", _("A token was renewed")
    RENEWAL_FAILED = "renewal_failed", _("An auto-renewal failed")
    BALANCE_LOW = "balance_low", _("The balance is low")
    REFERRAL_BONUS = "referral_bonus", _("A referral bonus was credited")
    WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint_disabled", _("A webhook endpoint was disabled")
    GIFT_CLAIMED = "gift_claimed", _("A gift you sent was accepted")
    GIFT_DECLINED = "gift_declined", _("A gift you sent was declined")
    GIFT_EXPIRED = "gift_expired", _("A gift you sent was not claimed in time")
    TIER_RENEWAL_UPCOMING = "tier_renewal_upcoming", _("Your Premium API tier renews soon")
    TIER_RENEWED = "tier_renewed", _("Your Premium API tier was renewed")
    TIER_RENEWAL_FAILED = "tier_renewal_failed", _("Your Premium API tier could not be renewed")


class EmailStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    OPTED_OUT = "opted_out", _("not sent: e-mail turned off")
    CAPPED = "capped", _("not sent: daily limit reached")
    NO_ADDRESS = "no_address", _("not sent: no address")


class Notification(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(_("kind"), max_length=40, choices=Kind.choices)
    # What makes the fact unique within its kind, e.g. "token_expiring:<token id>:<expiry>".
    key = models.CharField(_("key"), max_length=200)
    # The facts the title and body are written from, in the reader's language when shown.
    data = models.JSONField(_("data"), encoder=DjangoJSONEncoder, default=dict)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    email_status = models.CharField(
        _("e-mail"), max_length=20, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    email_claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    emailed_at = models.DateTimeField(_("e-mailed"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "kind", "key"], name="notification_once")]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_user_created"),
            # The bell's COUNT reads only this.
            models.Index(fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread"),
            models.Index(
                fields=["created_at"],
                condition=Q(email_status__in=["pending", "sending"]),
                name="notification_mail_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"

    @property
    def read(self) -> bool:
        return self.read_at is not None


class Preference(models.Model):
    """A user's choice for one kind; no row means e-mail on."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=40, choices=Kind.choices)
    email = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="notification_preference_once")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}: {'on' if self.email else 'off'}"


class EmailQuota(models.Model):
    """E-mails sent to a user on one UTC day, counted against NOTIFY_EMAIL_PER_DAY by conditional update."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    sent = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="notification_quota_day")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.day}: {self.sent}"
