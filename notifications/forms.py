from django import forms

from notifications.models import Kind


class PreferencesForm(forms.Form):
    """One "e-mail me" checkbox per kind (``email_<kind>``); an unticked box turns that kind's mail off."""

    def __init__(self, *args, preferences: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        for kind in Kind:
            on = (preferences or {}).get(kind.value, {"email": True})["email"]
            self.fields[f"email_{kind.value}"] = forms.BooleanField(label=kind.label, required=False, initial=on)

    def email_choices(self) -> dict[str, bool]:
        return {kind.value: self.cleaned_data[f"email_{kind.value}"] for kind in Kind}
