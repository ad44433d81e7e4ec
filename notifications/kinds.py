"""What each kind says: a title, a body and a portal link, written from a notification's ``data``.

Rendered when shown (in the reader's active language), never stored as text, so one
row reads in English on the API and in Russian in a Russian mail or portal.
"""

import datetime as dt
from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext

from access.models import Scope
from access.prices import duration_label
from notifications.models import Kind


@dataclass(frozen=True)
class Text:
    title: str
    body: str
    link: str  # a portal path


def when(value: str | None) -> str:
    """An ISO-8601 moment as "2026-12-04 15:00 UTC"."""
    if not value:
        return "—"
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _link(name: str, key, fallback: str) -> str:
    """The page of one object, or the list when the id is missing or malformed (old or foreign data)."""
    try:
        return reverse(name, args=[key]) if key else reverse(fallback)
    except NoReverseMatch:
        return reverse(fallback)


def _token_link(data: dict) -> str:
    return _link("access:token", data.get("token_id"), "access:tokens")


def _token_expiring(data: dict) -> Text:
    return Text(
        gettext("Your access token expires soon"),
        gettext("Token %(prefix)s… expires at %(when)s. Buy a new token or turn on auto-renewal to keep your access.")
        % {"prefix": data.get("prefix", ""), "when": when(data.get("expires_at"))},
        _token_link(data),
    )


def _renewal_upcoming(data: dict) -> Text:
    return Text(
        gettext("Your access token renews soon"),
        gettext(
            "Token %(prefix)s… will be renewed automatically for %(price)s ZNC before it expires at %(when)s. "
            "Keep at least %(needed)s ZNC on your balance for it."
        )
        % {
            "prefix": data.get("prefix", ""),
            "when": when(data.get("expires_at")),
            "price": data.get("price"),
            "needed": data.get("needed"),
        },
        _token_link(data),
    )


def _token_renewed(data: dict) -> Text:
    return Text(
        gettext("Your access token was renewed"),
        gettext("Token %(prefix)s… was renewed for %(price)s ZNC and now runs until %(when)s.")
        % {"prefix": data.get("prefix", ""), "price": data.get("price"), "when": when(data.get("expires_at"))},
        _token_link(data),
    )


def _renewal_failed(data: dict) -> Text:
    if data.get("required") is None:
        return Text(
            gettext("Auto-renewal failed"),
            gettext(
                "Token %(prefix)s… could not be renewed: its duration is no longer on sale. "
                "Buy a new token before %(deadline)s to keep your access."
            )
            % {"prefix": data.get("prefix", ""), "deadline": when(data.get("deadline"))},
            reverse("access:buy"),
        )
    return Text(
        gettext("Auto-renewal failed: top up your balance"),
        gettext(
            "Token %(prefix)s… could not be renewed: it needs %(required)s ZNC and your balance is %(available)s ZNC. "
            "Top up at least %(top_up)s ZNC before %(deadline)s to keep your access."
        )
        % {
            "prefix": data.get("prefix", ""),
            "required": data.get("required"),
            "available": data.get("available"),
            "top_up": data.get("top_up"),
            "deadline": when(data.get("deadline")),
        },
        reverse("wallet:wallet"),
    )


def _balance_low(data: dict) -> Text:
    return Text(
        gettext("Your balance is low"),
        gettext("Your balance is %(balance)s ZNC, below %(threshold)s ZNC. Top up to keep buying and renewing access.")
        % {"balance": data.get("balance_after"), "threshold": data.get("threshold")},
        reverse("wallet:wallet"),
    )


def _referral_bonus(data: dict) -> Text:
    return Text(
        gettext("You received a referral bonus"),
        gettext("%(amount)s ZNC referral bonus was credited to your balance. Thank you for inviting a colleague!")
        % {"amount": data.get("amount")},
        reverse("accounts:referrals"),
    )


def _webhook_endpoint_disabled(data: dict) -> Text:
    return Text(
        gettext("A webhook endpoint was disabled"),
        gettext("Your webhook endpoint %(url)s was disabled (%(reason)s). Events are no longer sent to it.")
        % {"url": data.get("url"), "reason": data.get("reason")},
        _link("events:endpoint", data.get("endpoint_id"), "events:integrations"),
    )


def _gift_facts(data: dict) -> dict:
    """The gift's recipient, duration and scope, in the reader's language (old or odd data reads as a dash)."""
    hours, scope = data.get("duration_hours"), data.get("scope")
    return {
        "recipient": data.get("recipient") or "—",
        "duration": duration_label(hours) if isinstance(hours, int) else "—",
        "scope": Scope(scope).label if scope in Scope.values else "—",
        "when": when(data.get("expires_at")),
    }


def _gift_claimed(data: dict) -> Text:
    # The token is the recipient's now: the sender's link is their Gifts page, not the token's.
    return Text(
        gettext("Your gift was accepted"),
        gettext("%(recipient)s accepted your gift: the token for %(duration)s (%(scope)s) is theirs now.")
        % _gift_facts(data),
        reverse("gifts:list"),
    )


def _gift_declined(data: dict) -> Text:
    return Text(
        gettext("Your gift was declined: the token is yours again"),
        gettext(
            "%(recipient)s declined your gift, a token for %(duration)s (%(scope)s). "
            "The token is back in your tokens, still unused: use it, give it again or revoke it."
        )
        % _gift_facts(data),
        _token_link(data),
    )


def _gift_expired(data: dict) -> Text:
    return Text(
        gettext("Your gift was not claimed in time: the token is yours again"),
        gettext(
            "Nobody claimed your gift, a token for %(duration)s (%(scope)s), by %(when)s. "
            "The token is back in your tokens, still unused: use it, give it again or revoke it."
        )
        % _gift_facts(data),
        _token_link(data),
    )


def _tier_renewal_upcoming(data: dict) -> Text:
    return Text(
        gettext("Your Premium API tier renews soon"),
        gettext(
            "Premium will be renewed automatically for %(price)s ZNC before it ends at %(when)s. "
            "Keep at least %(needed)s ZNC on your balance for it."
        )
        % {"price": data.get("price"), "needed": data.get("needed"), "when": when(data.get("paid_until"))},
        reverse("accounts:profile") + "#plan",
    )


def _tier_renewed(data: dict) -> Text:
    return Text(
        gettext("Your Premium API tier was renewed"),
        gettext("Premium was renewed for %(price)s ZNC and now runs until %(when)s.")
        % {"price": data.get("price"), "when": when(data.get("paid_until"))},
        reverse("accounts:profile") + "#plan",
    )


def _tier_renewal_failed(data: dict) -> Text:
    return Text(
        gettext("Premium could not be renewed: top up your balance"),
        gettext(
            "Premium could not be renewed: it needs %(required)s ZNC and your balance is %(available)s ZNC. "
            "It ends at %(when)s and your API limit goes back to Free. "
            "Top up at least %(top_up)s ZNC before then to keep it."
        )
        % {
            "required": data.get("required"),
            "available": data.get("available"),
            "top_up": data.get("top_up"),
            "when": when(data.get("paid_until")),
        },
        reverse("wallet:wallet"),
    )


_TEXTS = {
    Kind.TOKEN_EXPIRING: _token_expiring,
    Kind.RENEWAL_UPCOMING: _renewal_upcoming,
    Kind.TOKEN_RENEWED: _token_renewed,
    Kind.RENEWAL_FAILED: _renewal_failed,
    Kind.BALANCE_LOW: _balance_low,
    Kind.REFERRAL_BONUS: _referral_bonus,
    Kind.WEBHOOK_ENDPOINT_DISABLED: _webhook_endpoint_disabled,
    Kind.GIFT_CLAIMED: _gift_claimed,
    Kind.GIFT_DECLINED: _gift_declined,
    Kind.GIFT_EXPIRED: _gift_expired,
    Kind.TIER_RENEWAL_UPCOMING: _tier_renewal_upcoming,
    Kind.TIER_RENEWED: _tier_renewed,
    Kind.TIER_RENEWAL_FAILED: _tier_renewal_failed,
}


def text(kind: str, data: dict) -> Text:
    return _TEXTS[kind](data)
