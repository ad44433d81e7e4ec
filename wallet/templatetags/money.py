"""``{% load money %}{{ payment.amount_money|money:payment.currency }}`` in the active language."""

from django import template

from wallet.formatting import money as format_money

register = template.Library()


@register.filter
def money(amount, currency: str) -> str:
    """An amount formatted for the page's language, rounded to the currency's minor unit; empty for no amount."""
    if amount is None or amount == "":
        return ""
    return format_money(amount, currency)


@register.filter
def money_exact(amount, currency: str) -> str:
    """Like ``money`` but keeps every significant digit: for prices of 1 ZNC (``$0.107``)."""
    if amount is None or amount == "":
        return ""
    return format_money(amount, currency, exact=True)
