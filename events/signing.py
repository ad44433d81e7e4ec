"""What goes on the wire: the body of an event and its Standard Webhooks headers.

The signature is made by the specification's own ``standardwebhooks`` package
over ``{webhook-id}.{webhook-timestamp}.{body}``, the exact bytes sent, so any
receiver can check it with the official library of its language.
"""

import base64
import datetime as dt
import json
import secrets

from standardwebhooks import Webhook

from events.registry import moment

SECRET_PREFIX = "whsec_"  # noqa: S105
SECRET_BYTES = 32
USER_AGENT = "ZenzefiGate-Webhooks/1.0"


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def body(event) -> bytes:
    """``{"id", "type", "created", "data"}``, made from the stored event, so every retry sends the same bytes."""
    document = {"id": event.id, "type": event.type, "created": moment(event.created_at), "data": event.data}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def headers(*, event_id: str, payload: bytes, signing_secrets: list[str], at: dt.datetime) -> dict[str, str]:
    """The headers of one attempt: one ``v1,`` signature per secret (two while a rotation overlaps)."""
    at = at.astimezone(dt.UTC)
    text = payload.decode()
    signatures = " ".join(Webhook(secret).sign(event_id, at, text) for secret in signing_secrets)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }
