from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProxyConfig(AppConfig):
    name = "proxy"
    verbose_name = _("Proxy")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from proxy.models import ProxySession
        from zenzefi import metrics

        metrics.state_gauge_register(
            "active_sessions",
            "Open proxy device sessions",
            lambda: ProxySession.objects.filter(ended_at__isnull=True).count(),
        )
