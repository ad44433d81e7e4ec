from django import template
from django.conf import settings
from django.utils.translation import gettext, ngettext

from access import tiers
from accounts.models import User
from zenzefi.ratelimit import api_rate, api_usage

register = template.Library()


def requests_per_minute(limit: int | None) -> str:
    if limit is None:
        return gettext("unlimited requests")
    return ngettext("%(count)s request per minute", "%(count)s requests per minute", limit) % {"count": limit}


@register.inclusion_tag("access/_plan.html", takes_context=True)
def plan_card(context) -> dict:
    """The profile's Plan card: tier, limit, this minute's API usage (read, not counted) and the buttons."""
    user = context.get("user")
    if user is None or not user.is_authenticated:
        return {"state": None}
    state = tiers.tier_state(user=user)
    rate = api_rate(user)
    premium_rate = api_rate(User(rate_tier=User.Tier.PREMIUM))
    return {
        "state": state,
        "tier_label": User.Tier(state.tier).label,
        "limit_text": requests_per_minute(state.limit_per_minute),
        "usage": api_usage(user, rate) if rate is not None and settings.RATE_LIMIT_ENABLED else None,
        "premium_limit_text": requests_per_minute(tiers.per_minute(premium_rate)),
        "price": tiers.premium_price(),
        "days": settings.PREMIUM_PERIOD_DAYS,
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }
