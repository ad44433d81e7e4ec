"""Money amounts as people read them: ``money(Decimal("1500"), "RUB", "ru")`` → ``1 500,00 ₽``.

Babel's CLDR patterns for the language (non-breaking spaces where CLDR puts them), with one
addition: CLDR's currency spacing, which Babel does not apply and browsers (ICU) do. Where the
symbol is a letter code next to a digit (English shows the rouble as ``RUB``), a non-breaking
space goes between them — ``RUB 1,500.00``, as ``Intl.NumberFormat("en", {style: "currency",
currency: "RUB"})`` writes it in static/js/topup.js, so the server's first render and the
script's updates read the same.
"""

import re
from decimal import ROUND_HALF_UP, Decimal

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision
from django.utils.translation import get_language, to_locale

NBSP = "\xa0"
DEFAULT_LOCALE = "en"
_CODE_BEFORE_DIGIT = re.compile(r"([A-Za-z])(?=[\d])")
_DIGIT_BEFORE_CODE = re.compile(r"(\d)(?=[A-Za-z])")


def babel_locale(language: str | None) -> Locale:
    """The Babel locale of a Django language code (``ru``, ``en-us``); English when unknown."""
    try:
        return Locale.parse(to_locale(language or DEFAULT_LOCALE))
    except (ValueError, UnknownLocaleError):
        return Locale.parse(DEFAULT_LOCALE)


def money(amount: Decimal | int | str, currency: str, language: str | None = None, *, exact: bool = False) -> str:
    """``amount`` of ``currency`` (ISO 4217) in ``language``'s format; the active language by default.

    Rounded half up to the currency's minor unit, unless ``exact``: then every significant digit stays (a
    price of 1 ZNC such as ``$0.107``), with at least the minor unit's (``$0.10``, not ``$0.1``).
    """
    value = Decimal(amount)
    code = currency.upper()
    # Babel rounds half to even; money here rounds half up, like wallet.currencies.quote.
    value = (
        value.normalize() if exact else value.quantize(Decimal(1).scaleb(-get_currency_precision(code)), ROUND_HALF_UP)
    )
    text = format_currency(value, code, locale=babel_locale(language or get_language()), decimal_quantization=not exact)
    text = _CODE_BEFORE_DIGIT.sub(r"\1" + NBSP, text)
    return _DIGIT_BEFORE_CODE.sub(r"\1" + NBSP, text)
