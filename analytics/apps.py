from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = _("Analytics")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib import admin

        from analytics.admin import dashboard_install

        # The operator dashboard on /admin/; runs before any URLconf reads admin.site.urls.
        dashboard_install(admin.site)

        from analytics.services import usage_rollup_on_flush
        from proxy.signals import sessions_flushed

        # The daily usage rollup follows every flush of the proxy's session counters.
        sessions_flushed.connect(usage_rollup_on_flush, dispatch_uid="analytics.usage_rollup")
