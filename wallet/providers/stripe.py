"""Stripe Checkout through the official SDK.

A top-up is a Checkout Session in payment mode, in the payment's currency and
amount (minor units); its ``cs_…`` id is the provider payment id. Webhooks are
trusted only with a valid ``Stripe-Signature`` (HMAC-SHA256 under
STRIPE_WEBHOOK_SECRET, at most five minutes old), and credit only when the
session's ``amount_total`` and ``currency`` are the payment's.
"""

# This module is wallet.providers.stripe; absolute imports make ``import stripe`` the SDK.
from __future__ import annotations

import logging

import stripe
from django.conf import settings

from wallet.errors import MalformedWebhook, PaymentsUnavailable, WebhookRejected
from wallet.providers import CreatedPayment, WebhookEvent, return_target

logger = logging.getLogger(__name__)

# Checkout Session events and what they say about the payment. "completed"
# means paid only when payment_status is "paid": with a delayed method (bank
# transfer, …) the money follows in an async_payment_* event.
_STATUSES = {
    "checkout.session.async_payment_succeeded": "succeeded",
    "checkout.session.expired": "canceled",
    "checkout.session.async_payment_failed": "failed",
}


class StripeProvider:
    name = "stripe"

    def __init__(self) -> None:
        # Checked when the provider is chosen, so an unconfigured shop writes no payment row (503).
        if not settings.STRIPE_SECRET_KEY:
            raise PaymentsUnavailable()

    def create(self, payment) -> CreatedPayment:
        session = stripe.checkout.Session.create(
            api_key=settings.STRIPE_SECRET_KEY,
            mode="payment",
            line_items=[
                {
                    "price_data": {
                        "currency": payment.currency.lower(),
                        "unit_amount": payment.amount_minor,
                        "product_data": {"name": f"{payment.amount_znc} ZNC"},
                    },
                    "quantity": 1,
                }
            ],
            success_url=return_target(payment),
            cancel_url=return_target(payment),
            client_reference_id=str(payment.pk),
            metadata={"payment_id": str(payment.pk)},
            # Our payment id: the SDK's retries (and ours) reuse one session, never open a second.
            idempotency_key=str(payment.pk),
        )
        return CreatedPayment(provider_payment_id=session.id, confirmation_url=session.url)

    def parse_webhook(self, request) -> WebhookEvent:
        """The Checkout Session a signed Stripe event is about, and what it says happened.

        Raises WebhookRejected unless the Stripe-Signature header verifies. Events
        other than the four checkout.session ones come back with status "ignored".
        """
        if not settings.STRIPE_WEBHOOK_SECRET:
            raise WebhookRejected("Webhook signing is not configured")
        try:
            event = stripe.Webhook.construct_event(
                request.body,
                request.headers.get("Stripe-Signature", ""),
                settings.STRIPE_WEBHOOK_SECRET,
                api_key=settings.STRIPE_SECRET_KEY,
            )
        except (stripe.SignatureVerificationError, ValueError):
            raise WebhookRejected("Invalid signature") from None
        try:
            event_type = event["type"]
            session = event["data"]["object"]
            session_id = session["id"]
        except (KeyError, TypeError):
            raise MalformedWebhook() from None
        if not isinstance(session_id, str) or not session_id:
            raise MalformedWebhook()
        if event_type == "checkout.session.completed":
            paid = "payment_status" in session and session["payment_status"] == "paid"
            status = "succeeded" if paid else "pending"
        else:
            status = _STATUSES.get(event_type, "ignored")
        # What the session charged, checked against the payment's frozen amount before anything is credited.
        # (Membership, not .get: the SDK's StripeObject keeps a key's absence apart from a None value.)
        amount_total = session["amount_total"] if "amount_total" in session else None  # noqa: SIM401
        currency = session["currency"] if "currency" in session else None  # noqa: SIM401
        if amount_total is not None and type(amount_total) is not int:
            raise MalformedWebhook()
        if currency is not None and not isinstance(currency, str):
            raise MalformedWebhook()
        return WebhookEvent(provider_payment_id=session_id, status=status, amount_minor=amount_total, currency=currency)
