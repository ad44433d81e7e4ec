"""Payment providers behind one small interface, chosen by PAYMENT_PROVIDER.

A provider creates a payment on its side (returning its id and the page the
user pays on) and turns a webhook request into a verified event. It never
touches the ledger: wallet.services does that.
"""

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from wallet.errors import MalformedWebhook


@dataclass(frozen=True)
class CreatedPayment:
    provider_payment_id: str
    confirmation_url: str


@dataclass(frozen=True)
class WebhookEvent:
    provider_payment_id: str
    status: str  # "succeeded" | "canceled" | "failed" | anything else (ignored)
    # What the provider says was paid, when it says so: checked against the payment's frozen amount and currency.
    amount_minor: int | None = None
    currency: str | None = None  # ISO 4217, upper case

    def __post_init__(self):
        # A provider's text is looked up in the database, which cannot hold NUL: refused as malformed, not a 500.
        if "\x00" in self.provider_payment_id or "\x00" in self.status:
            raise MalformedWebhook()
        if self.amount_minor is not None and (type(self.amount_minor) is not int or self.amount_minor < 0):
            raise MalformedWebhook()
        if self.currency is not None and not (isinstance(self.currency, str) and self.currency.isascii()):
            raise MalformedWebhook()
        if self.currency is not None:
            object.__setattr__(self, "currency", self.currency.strip().upper()[:8])


class PaymentProvider(Protocol):
    name: str

    def create(self, payment) -> CreatedPayment: ...

    def parse_webhook(self, request) -> WebhookEvent:
        """Verify the request and say what it reports; raise WebhookRejected if unverifiable."""
        ...


def return_target(payment) -> str:
    """Where the provider sends the user after paying: the caller's return_url, else our status page."""
    from django.urls import reverse

    return payment.return_url or settings.BACKEND_URL + reverse("wallet:payment", args=[payment.pk])


def get_provider(name: str | None = None) -> PaymentProvider:
    from wallet.errors import PaymentsUnavailable

    name = name or settings.PAYMENT_PROVIDER
    if name == "mock":
        from wallet.providers.mock import MockProvider

        if not settings.ENABLE_MOCK_PAYMENTS:
            raise PaymentsUnavailable()
        return MockProvider()
    if name == "yookassa":
        from wallet.providers.yookassa import YooKassaProvider

        return YooKassaProvider()
    if name == "stripe":
        from wallet.providers.stripe import StripeProvider

        return StripeProvider()
    raise PaymentsUnavailable()
