import json

from tests.helpers import balance, fund
from wallet.providers.signing import sign


def signed_webhook(api, payload: dict, *, secret: str | None = None):
    body = json.dumps(payload).encode()
    return api.post(
        "/api/v1/webhooks/payment",
        body,
        content_type="application/json",
        HTTP_X_SIGNATURE=sign(body, secret),
    )


__all__ = ["balance", "fund", "signed_webhook"]
