"""The outbox of domain events, and the webhook endpoints and deliveries that carry them to integrators.

An ``Event`` is written in the transaction of the change it describes. Each
endpoint subscribed to its type gets a ``Delivery`` in that same transaction
(the outbox: nothing committed is forgotten), and every HTTP try of a delivery
is a ``DeliveryAttempt``.
"""

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

from zenzefi.keys import fernet

SECRET_PURPOSE = "webhook-secret"  # noqa: S105  the name of a derived key, not a secret


def event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


class Event(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=event_id, editable=False)
    type = models.CharField(_("type"), max_length=64, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="events"
    )
    data = models.JSONField(_("data"), encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(_("created"), db_index=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="event_user_created")]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class EventConsumption(models.Model):
    """An app above ``events`` handled this event (``events.consumers``): once per consumer and event."""

    consumer = models.CharField(max_length=40)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="consumptions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["consumer", "event"], name="consumption_unique")]

    def __str__(self) -> str:
        return f"{self.consumer}: {self.event_id}"


class WebhookEndpoint(models.Model):
    """Where an integrator wants events POSTed, signed with its secret (Standard Webhooks)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(_("URL"), max_length=2000)
    description = models.CharField(_("description"), max_length=255, blank=True, default="")
    # A list of event types, or ["*"] for all of them.
    events = models.JSONField(_("event types"), default=list)
    enabled = models.BooleanField(_("enabled"), default=True)
    # Fernet-encrypted "whsec_..." strings; the previous one signs alongside until it expires.
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(editable=False, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    disabled_at = models.DateTimeField(_("disabled"), null=True, blank=True)
    disabled_reason = models.CharField(_("disabled reason"), max_length=255, blank=True, default="")
    # Health: since when every attempt failed (null after a success), and exhausted deliveries in a row.
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    exhausted_in_row = models.PositiveIntegerField(_("exhausted deliveries in a row"), default=0)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "enabled"], name="endpoint_owner_enabled")]

    def __str__(self) -> str:
        return self.url

    @property
    def secret(self) -> str:
        return fernet(SECRET_PURPOSE).decrypt(self.secret_encrypted.encode()).decode()

    @property
    def previous_secret(self) -> str:
        if not self.previous_secret_encrypted:
            return ""
        return fernet(SECRET_PURPOSE).decrypt(self.previous_secret_encrypted.encode()).decode()

    def subscribes(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events


class Status(models.TextChoices):
    PENDING = "pending", _("pending")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")


class Delivery(models.Model):
    """One event on its way to one endpoint: pending until an attempt succeeds or the retries run out."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event = models.ForeignKey(Event, verbose_name=_("event"), on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, verbose_name=_("endpoint"), on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # Attempts made on the retry schedule (redeliveries not counted): the schedule's position.
    scheduled = models.PositiveSmallIntegerField(_("scheduled attempts"), default=0)
    # When the next scheduled attempt is due (null when none is: succeeded or failed).
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # When a task for the next attempt was handed to the broker; the outbox scan leaves it alone for a minute.
    queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_event_endpoint_unique")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="delivery_pending_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id}"


class DeliveryAttempt(models.Model):
    """One POST of a delivery (or its claim, while the request is in flight)."""

    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled", _("scheduled")
        MANUAL = "manual", _("redelivery")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    delivery = models.ForeignKey(
        Delivery, verbose_name=_("delivery"), on_delete=models.CASCADE, related_name="attempt_rows"
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, verbose_name=_("endpoint"), on_delete=models.CASCADE, related_name="attempts"
    )
    attempt = models.PositiveSmallIntegerField(_("attempt"))
    trigger = models.CharField(_("trigger"), max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULED)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    response_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    response_body = models.TextField(_("response body"), blank=True, default="")
    error = models.CharField(_("error"), max_length=255, blank=True, default="")
    duration_ms = models.PositiveIntegerField(_("duration, ms"), null=True, blank=True)
    # Set by the conditional update just before the POST: a task run twice for one attempt sends once.
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["-created_at", "-attempt"]
        # One row per attempt number: two workers claiming the same attempt collide here.
        constraints = [models.UniqueConstraint(fields=["delivery", "attempt"], name="attempt_delivery_number_unique")]
        indexes = [models.Index(fields=["endpoint", "-created_at"], name="attempt_endpoint_created")]

    def __str__(self) -> str:
        return f"#{self.attempt} {self.status}"
