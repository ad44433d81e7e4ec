"""The mock provider: our own checkout page, for development and demos.

Available only while ENABLE_MOCK_PAYMENTS is on. Its notifications are the
generic signed webhook (``POST /api/v1/webhooks/payment``).
"""

import uuid

from django.conf import settings
from django.urls import reverse

from wallet.providers import CreatedPayment, WebhookEvent
from wallet.providers.signing import parse_signed_webhook


class MockProvider:
    name = "mock"

    def create(self, payment) -> CreatedPayment:
        return CreatedPayment(
            provider_payment_id=f"MOCK_PAY_{uuid.uuid4()}",
            confirmation_url=settings.BACKEND_URL + reverse("wallet:checkout", args=[payment.pk]),
        )

    def parse_webhook(self, request) -> WebhookEvent:
        return parse_signed_webhook(request)
