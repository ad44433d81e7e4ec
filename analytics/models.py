"""The read side: daily usage rollups kept from the proxy's session counters.

Both tables hold absolute totals, rewritten from the sessions' counters (never incremented), so a
rollup that runs twice, or on two workers, changes nothing.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class SessionDay(models.Model):
    """One device session's share of one UTC day: what it did that day (absolute, from its counters)."""

    session = models.ForeignKey("proxy.ProxySession", on_delete=models.CASCADE, related_name="+")
    date = models.DateField(_("date"))
    requests = models.PositiveBigIntegerField(_("requests"), default=0)
    bytes_in = models.PositiveBigIntegerField(_("bytes in"), default=0)
    bytes_out = models.PositiveBigIntegerField(_("bytes out"), default=0)
    seconds = models.PositiveIntegerField(_("session seconds"), default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "date"], name="session_day_once")]

    def __str__(self) -> str:
        return f"{self.session_id} {self.date}"


class UsageDay(models.Model):
    """One token's use on one UTC day: the sum of its sessions' SessionDay rows, plus sessions started."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="+"
    )
    token = models.ForeignKey("access.AccessToken", verbose_name=_("token"), on_delete=models.CASCADE, related_name="+")
    date = models.DateField(_("date"))
    requests = models.PositiveBigIntegerField(_("requests"), default=0)
    bytes_in = models.PositiveBigIntegerField(_("bytes in"), default=0)
    bytes_out = models.PositiveBigIntegerField(_("bytes out"), default=0)
    sessions_started = models.PositiveIntegerField(_("sessions started"), default=0)
    session_seconds = models.PositiveBigIntegerField(_("session seconds"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("usage day")
        verbose_name_plural = _("usage days")
        ordering = ["-date"]
        constraints = [models.UniqueConstraint(fields=["token", "date"], name="usage_day_once")]
        indexes = [models.Index(fields=["user", "date"], name="usage_day_user_date")]

    def __str__(self) -> str:
        return f"{self.token_id} {self.date}"
