"""HMAC-SHA256 signatures of the generic payment webhook (``X-Signature``)."""

import hashlib
import hmac

from django.conf import settings

from wallet.errors import MalformedWebhook, WebhookRejected
from wallet.providers import WebhookEvent
from zenzefi.parsers import json_loads


def sign(body: bytes, secret: str | None = None) -> str:
    key = (secret if secret is not None else settings.PAYMENT_WEBHOOK_SECRET).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(body: bytes, signature: str | None) -> None:
    """Raise WebhookRejected unless ``signature`` is the HMAC of ``body`` under PAYMENT_WEBHOOK_SECRET."""
    if not settings.PAYMENT_WEBHOOK_SECRET:
        raise WebhookRejected("Webhook signing is not configured")
    signature = (signature or "").strip().removeprefix("sha256=")
    if not signature or not hmac.compare_digest(sign(body), signature):
        raise WebhookRejected("Invalid signature")


def parse_signed_webhook(request) -> WebhookEvent:
    """The generic webhook: ``{payment_id, status, amount_minor?, currency?}`` signed with X-Signature.

    ``amount_minor`` (an integer: cents) and ``currency`` (ISO 4217) are optional;
    when sent, a ``succeeded`` credits only if they equal the payment's own.
    """
    verify(request.body, request.headers.get("X-Signature"))
    try:
        data = json_loads(request.body)
        amount_minor = data.get("amount_minor")
        currency = data.get("currency")
        if amount_minor is not None and type(amount_minor) is not int:
            raise MalformedWebhook()
        return WebhookEvent(
            provider_payment_id=str(data["payment_id"]),
            status=str(data["status"]),
            amount_minor=amount_minor,
            currency=None if currency is None else str(currency),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise MalformedWebhook() from None
