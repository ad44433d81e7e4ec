from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from events import registry


def event_type_choices() -> list[tuple[str, str]]:
    # The registry's descriptions are English; the catalogue translates them by their text.
    return [(name, gettext(description)) for name, description in registry.EVENT_TYPES.items()]


class EndpointForm(forms.Form):
    """What an endpoint is: where to POST and which events. ``services`` checks the URL itself (https, no private
    networks); this form only collects the fields."""

    url = forms.CharField(
        label=_("Endpoint URL"),
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks/zenzefi", "autocomplete": "off"}),
        help_text=_("Events are POSTed here as JSON, signed with the endpoint's secret. Only https addresses."),
    )
    description = forms.CharField(label=_("Description"), max_length=255, required=False)
    all_events = forms.BooleanField(
        label=_("All events"), required=False, help_text=_("Including event types added later.")
    )
    events = forms.MultipleChoiceField(
        label=_("Event types"), required=False, choices=event_type_choices, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, endpoint=None, **kwargs):
        if endpoint is not None:
            subscribed = endpoint.events
            kwargs["initial"] = {
                "url": endpoint.url,
                "description": endpoint.description,
                "all_events": registry.ALL in subscribed,
                "events": [] if registry.ALL in subscribed else subscribed,
            }
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("all_events") and not cleaned.get("events"):
            self.add_error("events", gettext("Choose at least one event type, or all events."))
        return cleaned

    def subscribed(self) -> list[str]:
        """The ``events`` list the services take: ``["*"]`` or the chosen types."""
        return [registry.ALL] if self.cleaned_data["all_events"] else self.cleaned_data["events"]
