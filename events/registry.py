"""The event types integrators can subscribe to, and how their ``data`` is written.

Adding a type is one line in ``EVENT_TYPES``. ``data`` holds ids as strings,
money as "18.00" strings and times as ISO-8601 UTC.
"""

import datetime as dt
from decimal import Decimal

EVENT_TYPES: dict[str, str] = {
    "token.purchased": "A token was issued (one per token, bundles included)",
    "token.activated": "A token's clock started at its first use",
    "token.revoked": "A token was revoked by its owner or an admin",
    "balance.charged": "A ledger debit",
    "balance.topped_up": "A ledger credit: deposit, refund, referral bonus or adjustment",
    "session.started": "A device session began on the proxy",
    "session.ended": "A device session ended (idle, taken over, replaced, lost, token revoked)",
    "token.renewed": "An auto-renewing token was extended by one period and charged",
    "token.renewal_failed": "An auto-renewal could not be charged (balance short of price plus reserve)",
    "gift.sent": "You offered a token as a gift (a claim link was made)",
    "gift.claimed": "A gift you sent was accepted: the token now belongs to its recipient",
    "gift.declined": "A gift you sent was declined: the token is yours again",
    "gift.cancelled": "You (or an admin) cancelled a pending gift: the token is yours again",
    "gift.expired": "A gift you sent was not claimed in time: the token is yours again",
    "tier.changed": "Your API tier changed: upgraded to Premium, or back to Free when a paid period ended",
    "tier.renewed": "Your Premium API tier was renewed for another period and charged",
    "tier.renewal_failed": "Your Premium API tier could not be renewed (balance short of price plus reserve)",
    "webhook_endpoint.disabled": "One of your webhook endpoints was disabled (by you, an admin, or after failures)",
}

# Sent only by "send a test event"; not something to subscribe to.
PING = "ping"

ALL = "*"


def is_known(event_type: str) -> bool:
    return event_type in EVENT_TYPES or event_type == PING


def money(amount) -> str:
    return str(Decimal(amount).quantize(Decimal("0.01")))


def moment(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
