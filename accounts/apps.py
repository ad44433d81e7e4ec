from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from accounts import checks, schema  # noqa: F401  register the deploy checks and the OpenAPI auth scheme
        from accounts.models import User
        from zenzefi import metrics

        post_migrate.connect(_create_cache_table, sender=self)
        metrics.state_gauge_register("total_users", "Active users", lambda: User.objects.filter(is_active=True).count())


def _create_cache_table(using="default", **kwargs) -> None:
    """``migrate`` also makes the database cache's table (the embedded default); a no-op with Redis."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)
