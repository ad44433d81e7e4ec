"""wallet.formatting.money and the ``money`` template filters: the exact characters Babel writes.

Babel (CLDR) separates groups and the Russian currency sign with U+00A0 (no-break space); the
English rouble is the code with a no-break space added (CLDR currency spacing, as browsers write it).
"""

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

from wallet.formatting import money

NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("amount", "currency", "language", "expected"),
    [
        ("1500", "RUB", "ru", f"1{NBSP}500,00{NBSP}₽"),
        ("15", "EUR", "ru", f"15,00{NBSP}€"),
        ("15", "USD", "ru", f"15,00{NBSP}$"),
        ("16.5", "USD", "ru", f"16,50{NBSP}$"),
        ("15", "USD", "en", "$15.00"),
        ("15", "EUR", "en", "€15.00"),
        ("1500", "USD", "en", "$1,500.00"),
        ("1500", "RUB", "en", f"RUB{NBSP}1,500.00"),
        ("0", "RUB", "en", f"RUB{NBSP}0.00"),
        ("1234567.891", "EUR", "en", "€1,234,567.89"),
        ("1234567.891", "EUR", "ru", f"1{NBSP}234{NBSP}567,89{NBSP}€"),
        ("15", "usd", "en-us", "$15.00"),  # a regional Django code and a lower-case currency
    ],
)
def test_money_in_the_language(amount, currency, language, expected):
    assert money(Decimal(amount), currency, language) == expected


def test_money_rounds_half_up_to_the_minor_unit():
    assert money(Decimal("0.105"), "USD", "en") == "$0.11"
    assert money(Decimal("0.125"), "EUR", "ru") == f"0,13{NBSP}€"


@pytest.mark.parametrize(
    ("amount", "currency", "language", "expected"),
    [
        ("0.107000", "USD", "en", "$0.107"),
        ("0.110000", "USD", "en", "$0.11"),
        ("10.000000", "RUB", "ru", f"10,00{NBSP}₽"),
        ("0.333000", "EUR", "ru", f"0,333{NBSP}€"),
        ("1000", "RUB", "en", f"RUB{NBSP}1,000.00"),
    ],
)
def test_exact_money_keeps_every_significant_digit(amount, currency, language, expected):
    assert money(Decimal(amount), currency, language, exact=True) == expected


def test_unknown_language_falls_back_to_english():
    assert money(Decimal("15"), "EUR", "xx") == "€15.00"


def test_money_uses_the_active_language_by_default():
    with translation.override("ru"):
        assert money(Decimal("1500"), "RUB") == f"1{NBSP}500,00{NBSP}₽"
    with translation.override("en"):
        assert money(Decimal("1500"), "RUB") == f"RUB{NBSP}1,500.00"


def test_template_filters_in_the_active_language():
    template = Template(
        "{% load money %}{{ amount|money:currency }}|{{ price|money_exact:currency }}|{{ none|money:currency }}"
    )
    context = {"amount": Decimal("11.00"), "price": Decimal("0.110000"), "none": None, "currency": "USD"}

    with translation.override("en"):
        assert template.render(Context(context)) == "$11.00|$0.11|"
    with translation.override("ru"):
        assert template.render(Context(context)) == f"11,00{NBSP}$|0,11{NBSP}$|"
