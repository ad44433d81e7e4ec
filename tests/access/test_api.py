import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from access import services
from access.models import AccessToken, Bundle
from accounts.models import AuditLog
from tests.helpers import balance, fund
from wallet.models import Transaction

pytestmark = pytest.mark.django_db

TOKEN_FIELDS = {
    "id",
    "token",
    "duration_hours",
    "scope",
    "cost_znc",
    "created_at",
    "expires_at",
    "activated_at",
    "is_active",
    "status",
    "revoked_at",
    "auto_renew",
    "renewals",
    "next_renewal_at",
    "gifted_by",
    "gift_pending",
}


def test_purchase_returns_the_token_response(as_user, alice):
    fund(alice, "30")

    response = as_user(alice).post(
        "/api/v1/tokens/purchase", {"duration_hours": 12, "scope": "certificates_only"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == TOKEN_FIELDS
    token = AccessToken.objects.get()
    assert body["id"] == str(token.pk)
    assert body["token"] == token.secret
    assert len(body["token"]) == 64
    assert (body["duration_hours"], body["scope"], body["cost_znc"]) == (12, "certificates_only", "10.00")
    assert (body["activated_at"], body["expires_at"], body["is_active"], body["status"]) == (None, None, True, "ready")
    assert balance(alice) == Decimal("20.00")
    assert AuditLog.objects.filter(action="token_purchase", user=alice, resource_id=str(token.pk)).exists()


def test_purchase_defaults_to_full_scope(as_user, alice):
    fund(alice, "1")

    assert (
        as_user(alice).post("/api/v1/tokens/purchase/", {"duration_hours": 1}, format="json").json()["scope"] == "full"
    )


def test_purchase_without_money_is_402(as_user, alice):
    response = as_user(alice).post("/api/v1/tokens/purchase", {"duration_hours": 24}, format="json")

    assert response.status_code == 402
    assert response.json() == {"detail": "Insufficient balance. Required: 18.00 ZNC, Available: 0.00 ZNC"}
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"duration_hours": 2}, "Invalid duration. Must be one of: [1, 12, 24, 168, 720]"),
        ({"duration_hours": 0}, "duration_hours: Ensure this value is greater than or equal to 1."),
        ({"duration_hours": 1, "scope": "admin"}, 'scope: "admin" is not a valid choice.'),
        ({}, "duration_hours: This field is required."),
    ],
)
def test_purchase_bad_input_is_400(as_user, alice, body, detail):
    fund(alice, "50")

    response = as_user(alice).post("/api/v1/tokens/purchase", body, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert not AccessToken.objects.exists()
    assert balance(alice) == Decimal("50.00")


def test_my_tokens_newest_first_and_active_only(as_user, alice, bob):
    fund(alice, "50")
    fund(bob, "50")
    old = services.token_purchase(user=alice, duration_hours=1)
    revoked = services.token_purchase(user=alice, duration_hours=1)
    services.token_revoke(user=alice, token_id=revoked.pk)
    fresh = services.token_purchase(user=alice, duration_hours=12)
    services.token_purchase(user=bob, duration_hours=1)
    with time_machine.travel(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)):
        services.token_activate(token_id=old.pk)  # activated two hours ago: expired now
    client = as_user(alice)

    everything = client.get("/api/v1/tokens/my-tokens", {"active_only": "false"}).json()
    active = client.get("/api/v1/tokens/my-tokens", {"active_only": "true"}).json()

    assert [t["id"] for t in everything] == [str(fresh.pk), str(revoked.pk), str(old.pk)]
    assert [t["status"] for t in everything] == ["ready", "revoked", "expired"]
    assert [t["id"] for t in active] == [str(fresh.pk)]


def test_my_tokens_lists_only_usable_tokens_by_default(as_user, alice):
    fund(alice, "50")
    expired = services.token_purchase(user=alice, duration_hours=1)
    revoked = services.token_purchase(user=alice, duration_hours=1)
    services.token_revoke(user=alice, token_id=revoked.pk)
    running = services.token_purchase(user=alice, duration_hours=12)
    ready = services.token_purchase(user=alice, duration_hours=1)
    with time_machine.travel(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)):
        services.token_activate(token_id=expired.pk)
    services.token_activate(token_id=running.pk)

    response = as_user(alice).get("/api/v1/tokens/my-tokens")

    assert response.status_code == 200
    body = response.json()
    assert [(t["id"], t["status"], t["is_active"]) for t in body] == [
        (str(ready.pk), "ready", True),
        (str(running.pk), "active", True),
    ]


def test_my_tokens_schema_documents_active_only_default_true(api):
    schema = api.get("/api/schema", {"format": "json"}).json()

    parameters = schema["paths"]["/api/v1/tokens/my-tokens/"]["get"]["parameters"]
    (parameter,) = [p for p in parameters if p["name"] == "active_only"]
    assert parameter["in"] == "query"
    assert parameter["schema"] == {"type": "boolean", "default": True}


def test_revoke_api_shape(as_user, alice):
    fund(alice, "20")
    token = services.token_purchase(user=alice, duration_hours=24)

    response = as_user(alice).delete(f"/api/v1/tokens/{token.pk}")

    assert response.status_code == 200
    assert response.json() == {
        "revoked": True,
        "refund_amount": "18.00",
        "new_balance": "20.00",
        "message": "Token revoked. Refund: 18.00 ZNC. New balance: 20.00 ZNC.",
    }


@pytest.mark.parametrize("who", ["bob", "again", "garbage"])
def test_revoke_not_found_cases_write_nothing(as_user, alice, bob, who):
    fund(alice, "20")
    token = services.token_purchase(user=alice, duration_hours=24)
    if who == "again":
        services.token_revoke(user=alice, token_id=token.pk)
    client = as_user(bob if who == "bob" else alice)
    url = "/api/v1/tokens/not-a-uuid" if who == "garbage" else f"/api/v1/tokens/{token.pk}"
    refunds_before = Transaction.objects.filter(kind="refund").count()

    response = client.delete(url)

    assert response.status_code == 404
    assert response.json() == {"detail": "Token not found or already revoked"}
    assert Transaction.objects.filter(kind="refund").count() == refunds_before


def test_token_endpoints_need_a_jwt(api):
    assert api.get("/api/v1/tokens/my-tokens").status_code == 403
    assert api.post("/api/v1/tokens/purchase", {"duration_hours": 1}, format="json").status_code == 403


def test_bundles_are_public_and_sorted(api):
    response = api.get("/api/v1/bundles/")
    no_slash = api.get("/api/v1/bundles")

    assert response.status_code == 200
    items = response.json()["items"]
    assert no_slash.json() == response.json()
    assert [b["total_price"] for b in items] == ["81.00", "153.00", "153.00", "1600.00"]
    starter = items[0]
    assert (starter["name"], starter["savings"], starter["price_per_token"], starter["discount_percent"]) == (
        "Starter Pack",
        "9.00",
        "16.20",
        "10.00",
    )
    detail = api.get(f"/api/v1/bundles/{starter['id']}")
    assert detail.json() == starter


def test_inactive_bundle_hidden_unless_asked(api):
    bundle = Bundle.objects.get(name="Pro Bundle")
    Bundle.objects.filter(pk=bundle.pk).update(is_active=False)

    active = api.get("/api/v1/bundles/").json()["items"]
    everything = api.get("/api/v1/bundles/", {"active_only": "false"}).json()["items"]
    detail = api.get(f"/api/v1/bundles/{bundle.pk}")

    assert "Pro Bundle" not in [b["name"] for b in active]
    assert "Pro Bundle" in [b["name"] for b in everything]
    assert detail.status_code == 404
    assert detail.json() == {"detail": "Bundle not found or inactive"}


def test_bundle_purchase_api(as_user, alice):
    fund(alice, "100")
    bundle = Bundle.objects.get(name="Starter Pack")

    response = as_user(alice).post(f"/api/v1/bundles/{bundle.pk}/purchase")

    assert response.status_code == 200
    body = response.json()
    assert (body["bundle_name"], body["tokens_generated"], body["cost_znc"], body["new_balance"]) == (
        "Starter Pack",
        5,
        "81.00",
        "19.00",
    )
    assert len({t["token"] for t in body["tokens"]}) == 5
    assert {t["cost_znc"] for t in body["tokens"]} == {"16.20"}


def test_bundle_purchase_reads_its_tokens_gifts_and_renewals_once(as_user, alice):
    fund(alice, "100")
    bundle = Bundle.objects.get(name="Starter Pack")

    with CaptureQueriesContext(connection) as queries:
        body = as_user(alice).post(f"/api/v1/bundles/{bundle.pk}/purchase").json()

    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and "access_gift" in q["sql"]]
    assert len(reads) == 1  # the annotation of all five, not one query per token
    assert {t["id"] for t in body["tokens"]} == {str(pk) for pk in AccessToken.objects.values_list("pk", flat=True)}
    assert [t["created_at"] for t in body["tokens"]] == sorted(t["created_at"] for t in body["tokens"])  # as issued
    assert {(t["gift_pending"], t["gifted_by"], t["renewals"]) for t in body["tokens"]} == {(False, None, 0)}


def test_bundle_purchase_api_errors(as_user, alice):
    bundle = Bundle.objects.get(name="Starter Pack")

    poor = as_user(alice).post(f"/api/v1/bundles/{bundle.pk}/purchase")
    missing = as_user(alice).post("/api/v1/bundles/00000000-0000-0000-0000-000000000000/purchase")

    assert poor.status_code == 402
    assert poor.json()["detail"] == "Insufficient balance. Required: 81.00 ZNC, Available: 0.00 ZNC"
    assert missing.status_code == 404


BUNDLE = {
    "name": "Weekend",
    "description": "Two days",
    "token_count": 2,
    "duration_hours": 24,
    "scope": "full",
    "discount_percent": "5",
    "base_price": "36.00",
    "total_price": "34.20",
}


def test_superuser_creates_patches_and_soft_deletes_a_bundle(as_user, admin_user):
    client = as_user(admin_user)

    created = client.post("/api/v1/bundles/", BUNDLE, format="json")
    bundle_id = created.json()["id"]
    patched = client.patch(f"/api/v1/bundles/{bundle_id}", {"total_price": "30.00", "name": None}, format="json")
    deleted = client.delete(f"/api/v1/bundles/{bundle_id}")

    assert created.status_code == 201
    assert (created.json()["savings"], created.json()["price_per_token"]) == ("1.80", "17.10")
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["total_price"]) == ("Weekend", "30.00")
    assert deleted.status_code == 204
    assert Bundle.objects.get(pk=bundle_id).is_active is False
    actions = list(
        AuditLog.objects.filter(resource_id=bundle_id).order_by("created_at").values_list("action", flat=True)
    )
    assert actions == ["bundle_create", "bundle_update", "bundle_delete"]


def test_bundle_api_keeps_english_texts_and_carries_the_russian_ones(as_user, admin_user, api):
    client = as_user(admin_user)

    created = client.post("/api/v1/bundles/", {**BUNDLE, "name_ru": "Выходные"}, format="json")
    bundle_id = created.json()["id"]
    patched = client.patch(f"/api/v1/bundles/{bundle_id}", {"description_ru": "Два дня"}, format="json")
    listed = {b["name"]: b for b in api.get("/api/v1/bundles/", HTTP_ACCEPT_LANGUAGE="ru").json()["items"]}

    assert created.status_code == 201
    assert (created.json()["name"], created.json()["name_ru"], created.json()["description_ru"]) == (
        "Weekend",
        "Выходные",
        "",
    )
    assert (patched.json()["name_ru"], patched.json()["description"], patched.json()["description_ru"]) == (
        "Выходные",
        "Two days",
        "Два дня",
    )
    starter = listed["Starter Pack"]
    assert (starter["description"], starter["name_ru"]) == (
        "5 tokens of 24 hours: try the service for a working week.",
        "Стартовый",
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scope": "everything"}, "scope"),
        ({"duration_hours": 5}, "duration_hours"),
        ({"discount_percent": "101"}, "discount_percent"),
        ({"total_price": "40.00"}, "total_price"),
        ({"token_count": 0}, "token_count"),
        ({"base_price": "0"}, "base_price"),
    ],
)
def test_bundle_validation(as_user, admin_user, change, field):
    response = as_user(admin_user).post("/api/v1/bundles/", {**BUNDLE, **change}, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Bundle.objects.filter(name="Weekend").exists()


def test_bundle_changes_need_a_superuser(as_user, api, alice):
    bundle = Bundle.objects.get(name="Starter Pack")

    assert api.post("/api/v1/bundles/", BUNDLE, format="json").status_code == 403
    assert as_user(alice).post("/api/v1/bundles/", BUNDLE, format="json").status_code == 403
    assert as_user(alice).delete(f"/api/v1/bundles/{bundle.pk}").status_code == 403
    assert Bundle.objects.get(pk=bundle.pk).is_active is True


def test_admin_tokens_list_shows_a_prefix_only(as_user, admin_user, alice, bob):
    fund(alice, "50")
    fund(bob, "50")
    mine = services.token_purchase(user=alice, duration_hours=12)
    services.token_purchase(user=bob, duration_hours=1)
    revoked = services.token_purchase(user=alice, duration_hours=1)
    services.token_revoke(user=alice, token_id=revoked.pk)
    client = as_user(admin_user)

    response = client.get("/api/v1/admin/tokens", {"user_id": str(alice.pk)})
    everything = client.get("/api/v1/admin/tokens", {"active_only": "false", "limit": 10})

    body = response.json()
    assert (body["total"], body["limit"], body["offset"]) == (1, 50, 0)
    item = body["items"][0]
    assert item["id"] == str(mine.pk)
    assert item["token"] == f"{mine.secret[:8]}…"
    assert item["token_prefix"] == mine.secret[:8]
    assert (item["user_email"], item["user_username"], item["cost_znc"]) == ("alice@example.com", "alice", "10.00")
    assert mine.secret not in response.content.decode()
    assert everything.json()["total"] == 3
    assert mine.secret not in everything.content.decode()


def test_admin_force_revoke_api(as_user, admin_user, alice):
    fund(alice, "10")
    token = services.token_purchase(user=alice, duration_hours=12)

    response = as_user(admin_user).delete(f"/api/v1/admin/tokens/{token.pk}")
    missing = as_user(admin_user).delete("/api/v1/admin/tokens/00000000-0000-0000-0000-000000000000")
    ordinary = as_user(alice).delete(f"/api/v1/admin/tokens/{token.pk}")

    assert response.json() == {
        "revoked": True,
        "token_id": str(token.pk),
        "message": f"Token {token.pk} revoked successfully (no refund issued)",
    }
    assert balance(alice) == Decimal("0.00")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Token not found"}
    assert ordinary.status_code == 403
