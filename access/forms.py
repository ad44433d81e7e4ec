from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from access.gifts import MESSAGE_MAX
from access.models import Bundle, Scope
from access.prices import duration_label, valid_durations
from access.services import BUNDLE_FIELDS, bundle_check
from zenzefi.errors import DomainError


class AutoRenewalSettingsForm(forms.Form):
    """The profile's auto-renewal panel: the master switch and the reserve a renewal must leave."""

    enabled = forms.BooleanField(label=_("Renew my tokens automatically"), required=False)
    min_balance = forms.DecimalField(
        label=_("Keep at least, ZNC"),
        min_value=0,
        max_digits=12,
        decimal_places=2,
        help_text=_("A renewal runs only if your balance stays at least this much after it."),
    )


class GiftForm(forms.Form):
    """Who a gift is for (optional: without an address, the sender shares the link themselves) and a note."""

    recipient_email = forms.EmailField(
        label=_("Recipient's e-mail"),
        required=False,
        help_text=_("We e-mail the link there. Leave it empty to share the link yourself, e.g. in a messenger."),
        widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "name@example.com"}),
    )
    message = forms.CharField(
        label=_("Message"),
        required=False,
        max_length=MESSAGE_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": MESSAGE_MAX, "data-counter": ""}),
        help_text=_("Shown on the claim page, up to 280 characters."),
    )


# The fields ``services.bundle_check`` reads.
BUNDLE_CHECKED_FIELDS = ("duration_hours", "scope", "base_price", "total_price")


class TokenChoiceForm(forms.Form):
    """What the confirm step is about to buy: a sold duration and a known scope (from the query string)."""

    duration = forms.TypedChoiceField(label=_("Duration"), coerce=int, choices=())
    scope = forms.ChoiceField(label=_("Scope"), choices=Scope.choices)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Prices come from settings: read the durations when the form is built, not at import.
        self.fields["duration"].choices = [(hours, duration_label(hours)) for hours in valid_durations()]


class BundleAdminForm(forms.ModelForm):
    """The admin's bundle form; refuses what ``services.bundle_save`` would refuse, as field errors."""

    class Meta:
        model = Bundle
        fields = BUNDLE_FIELDS

    def clean(self):
        cleaned = super().clean()
        values = {}
        for field in BUNDLE_CHECKED_FIELDS:
            if field in self.fields:
                if field not in cleaned:
                    return cleaned  # the field's own error is already shown
                values[field] = cleaned[field]
            else:
                values[field] = getattr(self.instance, field)
        try:
            bundle_check(values)
        except DomainError as exc:
            # Service messages are English (the API's); the admin shows them translated.
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, gettext(exc.detail))
        return cleaned
