"""YooKassa (ЮKassa) through its official SDK.

A notification is not trusted by its body: anyone can POST one. Its payment
id is looked up at YooKassa (``GET /v3/payments/<id>``) and the status YooKassa
returns is the one reported; the body only says which payment to look at.
An optional address allowlist (YOOKASSA_WEBHOOK_IPS) turns strangers away
before that call is made.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from decimal import Decimal
from functools import lru_cache

import yookassa
from django.conf import settings
from yookassa.domain.exceptions import NotFoundError

from wallet.errors import MalformedWebhook, PaymentProviderError, PaymentsUnavailable, WebhookRejected
from wallet.providers import CreatedPayment, WebhookEvent, return_target
from zenzefi.net import request_ip
from zenzefi.parsers import json_loads

logger = logging.getLogger(__name__)

# YooKassa's ids look like "2d1b7c39-000f-5000-8000-1f8f0c2c1f0a". The id goes
# into the API path, so anything else ("../refunds/...") is refused outright.
_PAYMENT_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}")


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in spec if item.strip())


def _address_allowed(address: str | None, spec: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in _networks(spec))


class YooKassaProvider:
    name = "yookassa"

    def __init__(self) -> None:
        # Checked when the provider is chosen, so an unconfigured shop writes no payment row (503).
        if not settings.YOOKASSA_SHOP_ID or not settings.YOOKASSA_SECRET_KEY:
            raise PaymentsUnavailable()

    @staticmethod
    def _configure() -> None:
        # The SDK keeps its credentials in class attributes; set them on every call so a
        # settings change (or another caller's configure) never leaves stale ones behind.
        yookassa.Configuration.configure(settings.YOOKASSA_SHOP_ID, settings.YOOKASSA_SECRET_KEY)

    def create(self, payment) -> CreatedPayment:
        self._configure()
        response = yookassa.Payment.create(
            {
                "amount": {"value": f"{payment.amount_money:.2f}", "currency": payment.currency},
                "capture": True,
                "confirmation": {"type": "redirect", "return_url": return_target(payment)},
                "description": f"Zenzefi Gate: {payment.amount_znc} ZNC",
                "metadata": {"payment_id": str(payment.pk)},
            },
            # Our payment id: a retried call returns the same YooKassa payment, never a second one.
            idempotency_key=str(payment.pk),
        )
        return CreatedPayment(provider_payment_id=response.id, confirmation_url=response.confirmation.confirmation_url)

    def parse_webhook(self, request) -> WebhookEvent:
        """The status YooKassa itself reports for the notification's payment.

        Raises WebhookRejected for a sender outside YOOKASSA_WEBHOOK_IPS or a payment
        YooKassa does not know, MalformedWebhook for a body that is not a payment
        notification, and PaymentProviderError (502, so YooKassa retries) when
        YooKassa cannot be asked.
        """
        allowed = tuple(settings.YOOKASSA_WEBHOOK_IPS)
        if allowed and not _address_allowed(request_ip(request), allowed):
            raise WebhookRejected("Webhook source not allowed")
        payment_id = _notified_payment_id(request.body)
        self._configure()
        try:
            fetched = yookassa.Payment.find_one(payment_id)
        except NotFoundError:
            raise WebhookRejected("Unknown payment") from None
        except Exception:
            # Network errors surface from the SDK as assorted exceptions (even AttributeError).
            logger.exception("YooKassa lookup of payment %s failed", payment_id)
            raise PaymentProviderError() from None
        if fetched.id != payment_id:
            logger.error("YooKassa returned payment %s when asked for %s", fetched.id, payment_id)
            raise WebhookRejected("Unknown payment")
        amount_minor, currency = _reported_amount(fetched)
        status = str(fetched.status or "")
        return WebhookEvent(provider_payment_id=payment_id, status=status, amount_minor=amount_minor, currency=currency)


def _reported_amount(fetched) -> tuple[int | None, str | None]:
    """The amount YooKassa reports for a payment (``amount.value`` in kopecks, ``amount.currency``), if any."""
    amount = getattr(fetched, "amount", None)
    if amount is None or amount.value is None:
        return None, None
    try:
        value = Decimal(str(amount.value))
    except ArithmeticError:
        raise MalformedWebhook() from None
    minor = value.scaleb(2)
    if not minor.is_finite() or minor != minor.to_integral_value() or minor < 0:
        raise MalformedWebhook()
    return int(minor), str(amount.currency or "")


def _notified_payment_id(body: bytes) -> str:
    """The payment id of a ``payment.*`` notification body, or MalformedWebhook."""
    try:
        data = json_loads(body)
        event = data["event"]
        payment_id = data["object"]["id"]
    except (ValueError, KeyError, TypeError):
        raise MalformedWebhook() from None
    # Only payment notifications carry a payment id: a refund's object id is a refund.
    if data.get("type") != "notification" or not isinstance(event, str) or not event.startswith("payment."):
        raise MalformedWebhook()
    if not isinstance(payment_id, str) or not _PAYMENT_ID.fullmatch(payment_id):
        raise MalformedWebhook()
    return payment_id
