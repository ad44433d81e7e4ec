"""Events, webhook endpoints, deliveries and their attempts in Django admin: read-only.

The one change an admin makes is switching endpoints off, as an action through
``services.endpoint_admin_disable`` (which audits it). An endpoint's secret never
appears here: the admin's HTML ends up in browser caches and screenshots.
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import ReadOnlyAdmin
from accounts.services import actor_of
from events import registry, services
from events.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint


class EventTypeFilter(admin.SimpleListFilter):
    """The registry's types (and the test ping) rather than a scan of the distinct values of a large table."""

    title = _("event type")
    parameter_name = "event_type"
    field = "type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in [*registry.EVENT_TYPES, registry.PING]]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class DeliveryEventTypeFilter(EventTypeFilter):
    field = "event__type"


class AttemptEventTypeFilter(EventTypeFilter):
    field = "delivery__event__type"


def _log_link(endpoint: WebhookEndpoint):
    url = reverse("admin:events_deliveryattempt_changelist") + f"?endpoint={endpoint.pk}"
    return format_html('<a href="{}">{}</a>', url, gettext("delivery log"))


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = (
        "url",
        "owner",
        "enabled",
        "disabled_reason",
        "failing_since",
        "exhausted_in_row",
        "created_at",
        "log",
    )
    list_filter = ("enabled", "created_at")
    search_fields = ("url", "description", "owner__email", "owner__username", "id")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    # Listed explicitly: never the encrypted secrets.
    fields = (
        "id",
        "owner",
        "url",
        "description",
        "events",
        "enabled",
        "disabled_at",
        "disabled_reason",
        "failing_since",
        "exhausted_in_row",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
        "log",
    )
    readonly_fields = fields
    actions = ["disable"]

    @admin.display(description=_("deliveries"))
    def log(self, obj: WebhookEndpoint):
        return _log_link(obj)

    def has_disable_permission(self, request) -> bool:
        return request.user.has_perm("events.change_webhookendpoint")

    @admin.action(description=_("Disable selected endpoints"), permissions=["disable"])
    def disable(self, request, queryset: QuerySet[WebhookEndpoint]):
        actor = actor_of(request)
        # Already disabled ones keep their reason: the owner should still see why they went off.
        endpoint_ids = list(queryset.filter(enabled=True).values_list("pk", flat=True))
        for endpoint_id in endpoint_ids:
            services.endpoint_admin_disable(endpoint_id=endpoint_id, actor=actor)
        skipped = queryset.count() - len(endpoint_ids)
        message = ngettext("%(count)d endpoint disabled.", "%(count)d endpoints disabled.", len(endpoint_ids)) % {
            "count": len(endpoint_ids)
        }
        if skipped:
            message += " " + ngettext(
                "%(count)d was already disabled.", "%(count)d were already disabled.", skipped
            ) % {"count": skipped}
        self.message_user(request, message, messages.SUCCESS)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "id", "type", "user")
    list_filter = (EventTypeFilter, "created_at")
    search_fields = ("id", "user__email", "user__username")
    list_select_related = ("user",)
    date_hierarchy = "created_at"


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "event", "endpoint", "status", "attempts", "scheduled", "next_attempt_at")
    list_filter = ("status", DeliveryEventTypeFilter, "created_at")
    search_fields = ("event__id", "endpoint__url", "endpoint__owner__email", "endpoint__owner__username")
    list_select_related = ("event", "endpoint")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "event",
        "endpoint",
        "status",
        "attempts",
        "scheduled",
        "next_attempt_at",
        "queued_at",
        "created_at",
    )
    readonly_fields = fields


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "event_id",
        "event_type",
        "endpoint",
        "attempt",
        "trigger",
        "status",
        "response_code",
        "duration_ms",
        "error",
    )
    list_filter = ("status", "trigger", AttemptEventTypeFilter, "created_at")
    search_fields = (
        "delivery__event__id",
        "endpoint__url",
        "endpoint__owner__email",
        "endpoint__owner__username",
    )
    list_select_related = ("delivery__event", "endpoint")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "delivery",
        "event_id",
        "event_type",
        "endpoint",
        "attempt",
        "trigger",
        "status",
        "response_code",
        "response_body",
        "error",
        "duration_ms",
        "started_at",
        "next_attempt_at",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description=_("event ID"), ordering="delivery__event_id")
    def event_id(self, obj: DeliveryAttempt) -> str:
        return obj.delivery.event_id

    @admin.display(description=_("event type"), ordering="delivery__event__type")
    def event_type(self, obj: DeliveryAttempt) -> str:
        return obj.delivery.event.type
