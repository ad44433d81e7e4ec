"""Token prices and durations (ZNC), from settings TOKEN_PRICE_*."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils.translation import ngettext

from wallet.currencies import rub_price


def duration_label(hours: int) -> str:
    if hours % 24 == 0 and hours >= 168:
        days = hours // 24
        return ngettext("%(count)d day", "%(count)d days", days) % {"count": days}
    return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}


def valid_durations() -> list[int]:
    return sorted(settings.TOKEN_PRICES)


def token_price(duration_hours: int) -> Decimal | None:
    price = settings.TOKEN_PRICES.get(duration_hours)
    return None if price is None else Decimal(price).quantize(Decimal("0.01"))


def rub_rate() -> Decimal:
    """What 1 ZNC costs in roubles: the admin-set RUB rate (``ZNC_TO_RUB_RATE`` until one is set)."""
    return rub_price()


def price_table() -> list[dict]:
    """One row per duration: hours, label, price, price per hour and the price in roubles."""
    rub = rub_rate()
    rows = []
    for hours in valid_durations():
        price = token_price(hours)
        rows.append(
            {
                "hours": hours,
                "label": duration_label(hours),
                "price": price,
                "per_hour": (price / hours).quantize(Decimal("0.01")),
                "rub": (price * rub).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
            }
        )
    return rows
