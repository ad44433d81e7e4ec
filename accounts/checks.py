"""Deployment checks of the accounts app (``manage.py check --deploy``)."""

from django.conf import settings
from django.core import checks

CONSOLE_EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"


@checks.register(checks.Tags.security, deploy=True)
def console_email_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Password-reset mails carry a sign-in link; the console backend would print it into the server log."""
    if settings.DEBUG or settings.EMAIL_BACKEND != CONSOLE_EMAIL_BACKEND:
        return []
    return [
        checks.Warning(
            "EMAIL_BACKEND is the console backend with DEBUG off: password-reset links would be written to the "
            "server log instead of being sent.",
            hint="Set EMAIL_URL to your mail server, e.g. smtp+tls://user:password@mail.example.com:587.",
            id="accounts.W001",
        )
    ]
