import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import MinLengthValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

REFERRAL_CODE_LENGTH = 12
REFERRAL_CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, username, password=None, **extra):
        # Kept for Django's own tooling (createsuperuser, admin); product code
        # registers users through accounts.services.user_register.
        from accounts.services import user_create

        return user_create(email=email, username=username, password=password, **extra)

    def create_superuser(self, email, username, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, username, password, **extra)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(_("email"), max_length=254)
    username = models.CharField(_("username"), max_length=50, validators=[MinLengthValidator(3)])
    full_name = models.CharField(_("full name"), max_length=255, blank=True, default="")
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(_("staff"), default=False)

    class Tier(models.TextChoices):
        FREE = "free", _("Free")
        PREMIUM = "premium", _("Premium")
        ENTERPRISE = "enterprise", _("Enterprise")

    # API rate limit tier: RATE_LIMIT_API (free), RATE_LIMIT_API_PREMIUM, none for enterprise.
    rate_tier = models.CharField(_("API tier"), max_length=12, choices=Tier.choices, default=Tier.FREE)
    # Enterprise only: an admin-set API limit per minute; empty means unlimited.
    api_limit_per_minute = models.PositiveIntegerField(_("API requests per minute"), null=True, blank=True)
    # ISO 4217: the currency the wallet page offers first for top-ups (the ledger is always ZNC).
    preferred_currency = models.CharField(_("preferred currency"), max_length=3, default="RUB")
    # ZNC. Changed only by wallet.services.balance_change, which writes the
    # ledger row in the same transaction.
    balance = models.DecimalField(_("balance, ZNC"), max_digits=12, decimal_places=2, default=0, editable=False)
    referral_code = models.CharField(
        _("referral code"),
        max_length=REFERRAL_CODE_LENGTH,
        unique=True,
        editable=False,
        validators=[RegexValidator(r"^[A-Z0-9]{12}$")],
    )
    referred_by = models.ForeignKey(
        "self",
        verbose_name=_("referred by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="referrals",
    )
    # Auto-renewal (access.services): the master switch over every token's own switch, and the reserve a
    # renewal must leave on the balance.
    auto_renew_enabled = models.BooleanField(_("auto-renewal"), default=True)
    renew_min_balance = models.DecimalField(_("renewal reserve, ZNC"), max_digits=12, decimal_places=2, default=0)
    # The portal language the user last chose ("" = never chose): e-mails are written in it.
    language = models.CharField(_("language"), max_length=8, blank=True, default="")
    # JWTs issued before this moment are refused, so a password change logs
    # out every other device.
    password_changed_at = models.DateTimeField(default=timezone.now, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
            models.CheckConstraint(condition=~models.Q(referred_by=models.F("id")), name="user_no_self_referral"),
            models.CheckConstraint(condition=models.Q(balance__gte=0), name="user_balance_not_negative"),
        ]

    def __str__(self) -> str:
        return self.username

    def save(self, *args, **kwargs):
        # The balance is written only by wallet.services.balance_change, under
        # a row lock. A full save of a user loaded earlier (admin form,
        # password change) must not write back a stale balance.
        if not self._state.adding and kwargs.get("update_fields") is None and not kwargs.get("force_insert"):
            kwargs["update_fields"] = [
                f.attname for f in self._meta.concrete_fields if not f.primary_key and f.name != "balance"
            ]
        super().save(*args, **kwargs)

    def set_password(self, raw_password):
        super().set_password(raw_password)
        self.password_changed_at = timezone.now()


class AuditLog(models.Model):
    """Who did what to which object, from where. Written by accounts.services.audit_record."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        User, verbose_name=_("user"), null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_logs"
    )
    action = models.CharField(_("action"), max_length=64, db_index=True)
    resource_type = models.CharField(_("object type"), max_length=64, blank=True, default="")
    resource_id = models.CharField(_("object id"), max_length=64, blank=True, default="")
    details = models.JSONField(_("details"), default=dict, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True, default="")
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["resource_type", "resource_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action}"


class CacheRepair(models.Model):
    """A cache change that could not be made when the change behind it committed (the cache was down).

    Invalidations after a commit (a revoked token, a deactivated user) are best
    effort against the cache, but must not be lost: a stale entry would be
    honoured once the cache is back. So a failed one is written here and
    replayed by ``accounts.services.cache_repairs_replay``: in every process
    right after the circuit breaker sees Redis back, and by Celery beat.
    """

    key = models.CharField(_("cache key"), max_length=250, unique=True)
    delete = models.BooleanField(_("delete"), default=True)
    value = models.JSONField(_("value"), null=True, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("pending cache repair")
        verbose_name_plural = _("pending cache repairs")

    def __str__(self) -> str:
        return f"{'delete' if self.delete else 'set'} {self.key}"
