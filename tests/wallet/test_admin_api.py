from decimal import Decimal

import pytest

from accounts.models import AuditLog, User
from tests.wallet.helpers import balance, fund
from wallet.models import Transaction

pytestmark = pytest.mark.django_db


def test_admin_users_list(as_user, admin_user, alice, bob):
    fund(alice, "12.5")

    response = as_user(admin_user).get("/api/v1/admin/users", {"search": "ALICE"})

    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["limit"], body["offset"]) == (1, 50, 0)
    item = body["items"][0]
    assert set(item) == {
        "id",
        "email",
        "username",
        "full_name",
        "is_active",
        "is_superuser",
        "currency_balance",
        "created_at",
        "updated_at",
    }
    assert (item["email"], item["currency_balance"]) == ("alice@example.com", "12.50")


def test_admin_users_filter_and_paging(as_user, admin_user, alice, bob):
    User.objects.filter(pk=bob.pk).update(is_active=False)
    client = as_user(admin_user)

    inactive = client.get("/api/v1/admin/users", {"is_active": "false"}).json()
    page = client.get("/api/v1/admin/users/", {"limit": 1, "skip": 1}).json()

    assert [u["username"] for u in inactive["items"]] == ["bob"]
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (3, 1, 1, 1)


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_admin_users_limit_bounds(as_user, admin_user, limit):
    response = as_user(admin_user).get("/api/v1/admin/users", {"limit": limit})

    assert response.status_code == 400
    assert "limit" in response.json()


@pytest.mark.parametrize("path", ["/api/v1/admin/users", "/api/v1/admin/audit-logs"])
def test_admin_endpoints_need_a_superuser(api, as_user, alice, path):
    anonymous = api.get(path)
    ordinary = as_user(alice).get(path)

    assert anonymous.status_code == 403
    assert ordinary.status_code == 403
    assert ordinary.json() == {"detail": "Superuser permissions required"}


def test_patch_balance_goes_through_an_adjustment(as_user, admin_user, alice):
    fund(alice, "30")

    response = as_user(admin_user).patch(
        f"/api/v1/admin/users/{alice.pk}", {"currency_balance": "100.00"}, format="json", HTTP_USER_AGENT="ops-cli"
    )

    assert response.status_code == 200
    assert response.json()["currency_balance"] == "100.00"
    entry = Transaction.objects.get(user=alice, kind="adjustment")
    assert (entry.amount, entry.balance_after) == (Decimal("70.00"), Decimal("100.00"))
    log = AuditLog.objects.get(action="admin_user_update")
    assert log.user == admin_user
    assert log.user_agent == "ops-cli"
    assert log.details == {"changed_fields": {"currency_balance": {"old": "30.00", "new": "100.00"}}}


def test_patch_negative_balance_is_refused(as_user, admin_user, alice):
    fund(alice, "30")

    response = as_user(admin_user).patch(f"/api/v1/admin/users/{alice.pk}", {"currency_balance": "-5"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "Balance cannot be negative"
    assert balance(alice) == Decimal("30.00")
    assert not Transaction.objects.filter(kind="adjustment").exists()


def test_patch_flags(as_user, admin_user, alice):
    response = as_user(admin_user).patch(
        f"/api/v1/admin/users/{alice.pk}", {"is_active": False, "is_superuser": None}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    alice.refresh_from_db()
    assert alice.is_active is False
    assert alice.is_superuser is False
    assert AuditLog.objects.get(action="admin_user_update").details == {
        "changed_fields": {"is_active": {"old": True, "new": False}}
    }


@pytest.mark.parametrize("user_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_patch_unknown_user_is_404(as_user, admin_user, user_id):
    response = as_user(admin_user).patch(f"/api/v1/admin/users/{user_id}", {"is_active": False}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "User not found"}


def test_audit_logs_list_and_filters(as_user, admin_user, alice, api, password):
    api.post("/api/v1/auth/login", {"email": "alice@example.com", "password": "wrong-one"}, format="json")
    client = as_user(admin_user)

    body = client.get("/api/v1/admin/audit-logs", {"user_id": str(alice.pk), "action": "auth_login_failed"}).json()

    assert body["total"] == 1
    item = body["items"][0]
    assert (item["action"], item["user_email"], item["user_username"]) == (
        "auth_login_failed",
        "alice@example.com",
        "alice",
    )
    assert item["ip_address"] == "127.0.0.1"
    assert item["resource_type"] == "User"
