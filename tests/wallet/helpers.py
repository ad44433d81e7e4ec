import json
from decimal import Decimal

from accounts.models import User
from wallet.providers.signing import sign
from wallet.services import balance_change


def fund(user, amount: str) -> None:
    balance_change(user_id=user.pk, amount=Decimal(amount), kind="deposit", description="Test funding")
    user.refresh_from_db()


def balance(user) -> Decimal:
    return User.objects.values_list("balance", flat=True).get(pk=user.pk)


def signed_webhook(api, payload: dict, *, secret: str | None = None):
    body = json.dumps(payload).encode()
    return api.post(
        "/api/v1/webhooks/payment",
        body,
        content_type="application/json",
        HTTP_X_SIGNATURE=sign(body, secret),
    )
