"""Every API operation's real answers match the OpenAPI schema we publish, and none is a 500.

Schemathesis generates a few requests per operation from ``/openapi.json`` and
sends them to the whole ASGI application on loopback, as a user (an admin for
the admin operations) who owns tokens, payments and ledger rows, with path
parameters pointing at real objects so the answers are real bodies. Bounded to
a few examples per operation so the suite stays fast.
"""

from decimal import Decimal

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from access import gifts
from access import services as access
from access.models import Bundle
from accounts.models import User
from accounts.tokens import jwt_pair
from events import services as events
from notifications.models import Notification
from tests.factories import UserFactory
from tests.helpers import fund
from wallet import services as wallet
from wallet.services import Actor

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = 4  # per operation: ~10 s for the whole schema
CONFIG = {
    # Deterministic: CI sends the same requests every run; no example database is written.
    "generation": {"mode": "positive", "max-examples": EXAMPLES, "deterministic": True, "database": "none"},
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
}


@pytest.fixture
def world(settings, upstream):
    """Objects for the path parameters, and who calls what."""
    settings.RATE_LIMIT_ENABLED = False
    settings.ENABLE_MOCK_PAYMENTS = True
    settings.PAYMENT_PROVIDER = "mock"
    # Configured providers, so their webhooks answer what they make of a request, not 503 "not available".
    settings.PAYMENT_WEBHOOK_SECRET = "s3cret-for-tests"
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_test_x", "whsec_test_x"
    settings.YOOKASSA_SHOP_ID, settings.YOOKASSA_SECRET_KEY = "506751", "test_SECRET"
    alice = UserFactory(email="alice@example.com", username="alice")
    admin = UserFactory(email="admin@example.com", username="admin", is_staff=True, is_superuser=True)
    # Whom the admin's PATCH /admin/users/{id} changes, so alice and the admin keep their access.
    target = UserFactory(email="bob@example.com", username="bob")
    fund(alice, "100000")
    ready = access.token_purchase(user=alice, duration_hours=24, scope="certificates_only")
    access.token_purchase(user=alice, duration_hours=1)
    active = access.token_purchase(user=alice, duration_hours=12)
    access.token_activate(token_id=active.pk)
    bundle = Bundle.objects.create(
        name="Test bundle", token_count=2, duration_hours=1, scope="full", discount_percent=0, base_price=2,
        total_price=2,
    )  # fmt: skip
    payment = wallet.payment_create(user=alice, amount_znc=Decimal(10), return_url=None, actor=Actor(user=alice))
    # A webhook endpoint (nothing listens there) with one queued test delivery; no worker runs here.
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    endpoint, _secret = events.endpoint_create(owner=alice, url="https://127.0.0.1:9/hook", events=["*"])
    delivery = events.endpoint_test(owner=alice, endpoint_id=endpoint.pk)
    # A pending gift of its own token: cancelled by a generated POST, previewed, claimed (its own: 400).
    gift, code = gifts.gift_send(user=alice, token_id=access.token_purchase(user=alice, duration_hours=1).pk)
    notification = Notification.objects.create(
        user=alice, kind="balance_low", key="balance_low:test", data={"balance_after": "9.00", "threshold": "10.00"}
    )
    return {
        "users": {"alice": alice.pk, "admin": admin.pk},
        "path": {
            "token_id": ready.pk,
            "bundle_id": bundle.pk,
            "payment_id": payment.pk,
            "user_id": target.pk,
            "endpoint_id": endpoint.pk,
            "delivery_id": delivery.pk,
            "notification_id": notification.pk,
            "gift_id": gift.pk,
            "code": code,
        },
    }


@pytest.fixture
def api_schema(gate, world):
    return schemathesis.openapi.from_url(gate.url + "/openapi.json", config=schemathesis.Config.from_dict(CONFIG))


schema = schemathesis.pytest.from_fixture("api_schema")


def _caller(case) -> str:
    """The admin for the admin operations and for changing bundles, alice for the rest."""
    path = case.operation.path
    changes_bundles = path.startswith("/api/v1/bundles") and case.method != "GET" and "/purchase" not in path
    admin_only = path.startswith(("/api/v1/admin/", "/api/v1/analytics/admin/"))
    return "admin" if admin_only or changes_bundles else "alice"


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
def test_responses_match_the_schema(case, gate, world):
    for name in case.path_parameters or {}:
        case.path_parameters[name] = str(world["path"][name])
    # A fresh token each call: a generated PATCH /users/me may have changed alice's password.
    user = User.objects.get(pk=world["users"][_caller(case)])
    headers = {"Authorization": f"Bearer {jwt_pair(user)['access_token']}"}

    case.call_and_validate(base_url=gate.url, headers=headers, checks=[response_schema_conformance, not_a_server_error])
