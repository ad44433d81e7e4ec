import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ProxySession(models.Model):
    """One device's use of a token, from its first request until it goes idle or is taken over.

    Live counters are kept in Redis by the proxy and written here by
    proxy.services.sessions_flush.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token = models.ForeignKey(
        "access.AccessToken", verbose_name=_("token"), on_delete=models.CASCADE, related_name="sessions"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="proxy_sessions"
    )
    device_id = models.CharField(_("device"), max_length=255)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True, default="")
    mode = models.CharField(_("mode"), max_length=10, default="header")
    started_at = models.DateTimeField(_("started"))
    last_activity = models.DateTimeField(_("last activity"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    end_reason = models.CharField(_("end reason"), max_length=40, blank=True, default="")
    request_count = models.PositiveBigIntegerField(_("requests"), default=0)
    bytes_in = models.PositiveBigIntegerField(_("bytes in"), default=0)
    bytes_out = models.PositiveBigIntegerField(_("bytes out"), default=0)

    class Meta:
        verbose_name = _("proxy session")
        verbose_name_plural = _("proxy sessions")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["token", "-started_at"], name="session_token_started")]
        constraints = [
            # One open session per token: the database backs up the Redis device rule.
            models.UniqueConstraint(
                fields=["token"], condition=models.Q(ended_at__isnull=True), name="one_open_session"
            )
        ]

    def __str__(self) -> str:
        return f"{self.device_id[:8]}… {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.ended_at is None
