from django import template

from notifications import selectors
from notifications.forms import PreferencesForm

register = template.Library()


@register.inclusion_tag("notifications/_bell.html", takes_context=True)
def notifications_bell(context) -> dict:
    """The navigation's bell: one indexed COUNT, only on pages that render it."""
    request = context["request"]
    return {"unread": selectors.unread_count(request.user), "request": request}


@register.inclusion_tag("notifications/_preferences.html", takes_context=True)
def notification_preferences(context) -> dict:
    request = context["request"]
    form = PreferencesForm(preferences=selectors.preferences_of(request.user))
    return {"form": form, "csrf_token": context.get("csrf_token"), "request": request}
