from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccessConfig(AppConfig):
    name = "access"
    verbose_name = _("Access")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from access.selectors import usable_tokens
        from zenzefi import metrics

        metrics.state_gauge_register(
            "active_tokens", "Usable access tokens (not revoked, not expired)", lambda: usable_tokens().count()
        )
