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
