"""The currencies a top-up can be paid in, their ZNC prices and the provider that takes each.

The ledger is in ZNC only; a currency lives in a payment, frozen when it is
created (``wallet.services.payment_create``). Amounts in a currency are rounded
ROUND_HALF_UP to its minor unit; the ZNC credited is always exactly the ZNC asked for.
"""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils.translation import gettext, gettext_noop

from wallet.errors import PaymentsUnavailable
from wallet.models import CurrencyRate
from zenzefi.errors import DomainError

CURRENCIES = ("RUB", "USD", "EUR")
MINOR_UNITS = {"RUB": 2, "USD": 2, "EUR": 2}
# Providers that can take a currency; a provider not listed here takes any.
PROVIDER_CURRENCIES = {"yookassa": {"RUB"}}


UNAVAILABLE = gettext_noop("Currency %(currency)s is not available. Available: %(available)s")


class CurrencyUnavailable(DomainError):
    """A currency that is unknown, disabled or has no configured provider (400; the API's detail is English)."""

    def __init__(self, currency: str, available_codes: list[str]):
        self.currency = currency
        self.available_codes = available_codes
        super().__init__(UNAVAILABLE % self._params(), field="currency")

    def _params(self) -> dict:
        return {"currency": self.currency, "available": ", ".join(self.available_codes) or "—"}

    def message(self) -> str:
        """The detail in the active language, for pages."""
        return gettext(UNAVAILABLE) % self._params()


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of the currency: Decimal("0.01") for two decimals."""
    return Decimal(1).scaleb(-MINOR_UNITS[currency])


def quote(rate: CurrencyRate | Decimal, amount_znc: Decimal, currency: str) -> Decimal:
    """What ``amount_znc`` costs in ``currency`` at ``rate`` (the price of 1 ZNC), ROUND_HALF_UP to the minor unit."""
    price = rate.znc_price if isinstance(rate, CurrencyRate) else Decimal(rate)
    return (Decimal(amount_znc) * price).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def to_minor(amount: Decimal, currency: str) -> int:
    """An amount already rounded to the minor unit, in minor units (cents): 1.00 USD → 100."""
    return int(amount.scaleb(MINOR_UNITS[currency]).to_integral_value())


def provider_name_for(currency: str) -> str:
    """The provider that takes payments in ``currency``: the mock for all of them, else PAYMENT_PROVIDER_BY_CURRENCY.

    Empty when none is routed (or the routed one cannot take that currency).
    """
    if settings.PAYMENT_PROVIDER == "mock":
        return "mock"
    name = settings.PAYMENT_PROVIDER_BY_CURRENCY.get(currency, "")
    if name in PROVIDER_CURRENCIES and currency not in PROVIDER_CURRENCIES[name]:
        return ""
    return name


def provider_configured(currency: str) -> bool:
    """Whether the provider routed for ``currency`` can take payments now (its keys are set)."""
    from wallet.providers import get_provider

    name = provider_name_for(currency)
    if not name:
        return False
    try:
        get_provider(name)
    except PaymentsUnavailable:
        return False
    return True


def _rates() -> dict[str, CurrencyRate]:
    rates = {rate.currency: rate for rate in CurrencyRate.objects.filter(currency__in=CURRENCIES)}
    # The migration writes the RUB row; until it exists (a flushed test database) RUB is at ZNC_TO_RUB_RATE.
    rates.setdefault("RUB", CurrencyRate(currency="RUB", znc_price=settings.ZNC_TO_RUB_RATE, enabled=True))
    return rates


def rub_price() -> Decimal:
    """The price of 1 ZNC in roubles now (the admin-set RUB rate), for the prices shown before a payment exists."""
    return _rates()["RUB"].znc_price


def _order(rate: CurrencyRate) -> tuple[bool, str]:
    return (rate.currency != "RUB", rate.currency)


def available() -> list[CurrencyRate]:
    """Enabled currencies whose provider is configured: RUB first, then alphabetical."""
    return sorted(
        (rate for rate in _rates().values() if rate.enabled and provider_configured(rate.currency)), key=_order
    )


def rate_for(currency: str) -> CurrencyRate:
    """The rate a payment in ``currency`` is made at.

    CurrencyUnavailable (400, naming the available ones) for an unknown, disabled
    or unrouted currency; PaymentsUnavailable (503) when none is available at all.
    """
    code = (currency or "").strip().upper()
    rates = available()
    if not rates:
        # No currency can be paid in at all (no provider configured): the service is down, not the request wrong.
        raise PaymentsUnavailable()
    for rate in rates:
        if rate.currency == code:
            return rate
    raise CurrencyUnavailable(code or "(none)", [rate.currency for rate in rates])


def presets(rate: CurrencyRate) -> list[dict]:
    """The wallet's preset ZNC amounts with their price in the rate's currency."""
    from wallet.forms import PRESETS  # here: the wallet's forms may well use this module

    return [{"amount_znc": znc, "amount": quote(rate, znc, rate.currency)} for znc in PRESETS]
