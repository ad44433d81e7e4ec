from django import template

from notifications import selectors
from notifications.forms import PreferencesForm

register = template.Library()


def _user(context):
    user = context.get("user")
    return user if user is not None and user.is_authenticated else None


@register.inclusion_tag("notifications/_bell.html", takes_context=True)
def notifications_bell(context) -> dict:
    """The navigation's bell: one indexed COUNT, only on pages that render it."""
    user = _user(context)
    return {"unread": selectors.unread_count(user) if user else 0, "request": context.get("request")}


@register.inclusion_tag("notifications/_preferences.html", takes_context=True)
def notification_preferences(context) -> dict:
    """The profile's e-mail settings per kind; the form posts to ``notifications:preferences``."""
    user = _user(context)
    form = PreferencesForm(preferences=selectors.preferences_of(user) if user else None)
    return {"form": form, "csrf_token": context.get("csrf_token"), "request": context.get("request")}
