from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from wallet.models import Transaction

PRESETS = [Decimal(v) for v in ("50", "100", "150", "300", "500", "1000")]


class TopUpForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount, ZNC"),
        max_digits=12,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    # Any code is accepted here: whether it can be paid in now is payment_create's answer (CurrencyUnavailable),
    # so a currency disabled while the page was open gets the same message as the API's.
    currency = forms.CharField(label=_("Pay in"), max_length=3, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["amount"]
        field.widget.attrs.update(min=settings.PAYMENT_MIN_ZNC, max=settings.PAYMENT_MAX_ZNC)

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if not settings.PAYMENT_MIN_ZNC <= amount <= settings.PAYMENT_MAX_ZNC:
            raise forms.ValidationError(
                _("Choose an amount from %(min)s to %(max)s ZNC."),
                params={"min": settings.PAYMENT_MIN_ZNC, "max": settings.PAYMENT_MAX_ZNC},
            )
        return amount

    def clean_currency(self):
        return (self.cleaned_data["currency"] or "RUB").strip().upper()


class HistoryFilterForm(forms.Form):
    type = forms.ChoiceField(label=_("Type"), required=False, choices=[("", _("All types")), *Transaction.Kind.choices])


class AdjustBalanceForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount, ZNC"),
        max_digits=12,
        decimal_places=2,
        help_text=_("Positive adds ZNC, negative takes them away. The balance cannot go below zero."),
    )
    reason = forms.CharField(label=_("Reason"), max_length=200)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError(_("The amount must not be zero."))
        return amount
