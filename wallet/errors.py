from decimal import Decimal

from django.utils.translation import gettext_noop

from zenzefi.errors import DomainError


class InsufficientFunds(DomainError):
    status_code = 402

    def __init__(self, *, required: Decimal, available: Decimal):
        super().__init__(f"Insufficient balance. Required: {required:.2f} ZNC, Available: {available:.2f} ZNC")
        self.required = required
        self.available = available


class InvalidAmount(DomainError):
    pass


class PaymentNotFound(DomainError):
    status_code = 404
    default_detail = gettext_noop("Payment not found")


class PaymentProviderError(DomainError):
    status_code = 502
    default_detail = gettext_noop("The payment provider is unavailable. Please try again later.")


class PaymentsUnavailable(DomainError):
    status_code = 503
    default_detail = gettext_noop("Top-ups are not available right now.")


class WebhookRejected(DomainError):
    status_code = 401
    default_detail = gettext_noop("Invalid signature")


class MalformedWebhook(DomainError):
    default_detail = gettext_noop("Malformed webhook body")
