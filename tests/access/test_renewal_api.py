"""The auto-renewal API: PATCH /tokens/{id}, /users/me/auto-renewal, and the renewal fields of token responses."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from access import services
from access.models import AccessToken
from access.renewal import tokens_renew
from accounts.models import AuditLog, User
from tests.helpers import fund

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


@pytest.fixture
def token(alice):
    fund(alice, "100")
    return services.token_purchase(user=alice, duration_hours=12)


def patch(client, token_id, body):
    return client.patch(f"/api/v1/tokens/{token_id}", body, format="json")


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def test_owner_switches_auto_renewal_on_and_the_response_is_the_token(as_user, alice, token):
    services.token_activate(token_id=token.pk)
    token.refresh_from_db()

    response = patch(as_user(alice), token.pk, {"auto_renew": True})

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(token.pk) and body["token"] == token.secret
    assert (body["auto_renew"], body["renewals"]) == (True, 0)
    assert dt.datetime.fromisoformat(body["next_renewal_at"]) == token.expires_at - H  # 60 min before expiry
    assert dt.datetime.fromisoformat(body["expires_at"]) == token.activated_at + 12 * H
    token.refresh_from_db()
    assert token.auto_renew is True
    assert AuditLog.objects.filter(action="token_auto_renew", user=alice).count() == 1

    off = patch(as_user(alice), token.pk, {"auto_renew": False})
    assert (off.status_code, off.json()["auto_renew"], off.json()["next_renewal_at"]) == (200, False, None)


def test_a_ready_token_may_be_switched_on_and_renews_once_it_runs(as_user, alice, token):
    response = patch(as_user(alice), token.pk, {"auto_renew": True})

    assert (response.status_code, response.json()["auto_renew"], response.json()["next_renewal_at"]) == (
        200,
        True,
        None,
    )


def test_someone_elses_or_an_unknown_token_is_404_and_unchanged(as_user, bob, token):
    for token_id in (token.pk, "00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = patch(as_user(bob), token_id, {"auto_renew": True})
        assert (response.status_code, response.json()["detail"]) == (404, "Token not found")
    token.refresh_from_db()
    assert token.auto_renew is False


def test_without_credentials_is_403_as_every_api_call(api, token):
    assert patch(api, token.pk, {"auto_renew": True}).status_code == 403
    assert api.get("/api/v1/users/me/auto-renewal").status_code == 403
    token.refresh_from_db()
    assert token.auto_renew is False


def test_revoked_or_expired_token_is_400_with_a_detail(as_user, alice, token):
    expired = services.token_purchase(user=alice, duration_hours=1)
    with time_machine.travel(T0, tick=False):
        services.token_activate(token_id=expired.pk)
    services.token_revoke(user=alice, token_id=token.pk)

    revoked = patch(as_user(alice), token.pk, {"auto_renew": True})
    gone = patch(as_user(alice), expired.pk, {"auto_renew": True})

    assert (revoked.status_code, revoked.json()["detail"]) == (400, "Token is revoked: auto-renewal cannot be changed")
    assert (gone.status_code, gone.json()["detail"]) == (400, "Token has expired: auto-renewal cannot be changed")
    assert not AccessToken.objects.filter(auto_renew=True).exists()


@pytest.mark.parametrize("body", [{}, {"auto_renew": "maybe"}, {"auto_renew": None}])
def test_bad_patch_body_is_400(as_user, alice, token, body):
    response = patch(as_user(alice), token.pk, body)

    assert response.status_code == 400
    assert "auto_renew" in response.json() and response.json()["detail"]
    token.refresh_from_db()
    assert token.auto_renew is False


def test_token_responses_count_renewals(as_user, alice, token, django_assert_max_num_queries):
    services.token_activate(token_id=token.pk)
    patch(as_user(alice), token.pk, {"auto_renew": True})
    for _ in range(3):
        services.token_purchase(user=alice, duration_hours=1)
    token.refresh_from_db()
    first_expiry = token.expires_at
    tokens_renew(now=first_expiry - H)

    one = as_user(alice).get(f"/api/v1/tokens/{token.pk}").json()
    with django_assert_max_num_queries(6):
        mine = as_user(alice).get("/api/v1/tokens/my-tokens").json()

    assert (one["renewals"], one["expires_at"], one["next_renewal_at"]) == (
        1,
        iso(first_expiry + 12 * H),
        iso(first_expiry + 11 * H),
    )
    assert [t["renewals"] for t in mine] == [0, 0, 0, 1]
    assert {t["auto_renew"] for t in mine[:3]} == {False}


def test_master_switch_off_hides_the_next_renewal(as_user, alice, token):
    services.token_activate(token_id=token.pk)
    patch(as_user(alice), token.pk, {"auto_renew": True})
    User.objects.filter(pk=alice.pk).update(auto_renew_enabled=False)

    body = as_user(alice).get(f"/api/v1/tokens/{token.pk}").json()

    assert (body["auto_renew"], body["next_renewal_at"]) == (True, None)


def test_purchase_and_admin_responses_have_the_renewal_fields(as_user, alice, admin_user):
    fund(alice, "20")
    bought = as_user(alice).post("/api/v1/tokens/purchase", {"duration_hours": 1}, format="json").json()
    listed = as_user(admin_user).get("/api/v1/admin/tokens").json()

    assert {k: bought[k] for k in ("auto_renew", "renewals", "next_renewal_at")} == {
        "auto_renew": False,
        "renewals": 0,
        "next_renewal_at": None,
    }
    assert {k: listed["items"][0][k] for k in ("auto_renew", "renewals", "next_renewal_at")} == {
        "auto_renew": False,
        "renewals": 0,
        "next_renewal_at": None,
    }


# --- /users/me/auto-renewal ----------------------------------------------------------------------


def test_get_settings_defaults(as_user, alice):
    response = as_user(alice).get("/api/v1/users/me/auto-renewal")

    assert (response.status_code, response.json()) == (200, {"enabled": True, "min_balance": "0.00"})


@pytest.mark.parametrize("amount", ["12.50", 12.5, "0", 7])
def test_put_settings(as_user, alice, amount):
    response = as_user(alice).put(
        "/api/v1/users/me/auto-renewal", {"enabled": False, "min_balance": amount}, format="json"
    )

    expected = f"{Decimal(str(amount)):.2f}"
    assert (response.status_code, response.json()) == (200, {"enabled": False, "min_balance": expected})
    alice.refresh_from_db()
    assert (alice.auto_renew_enabled, alice.renew_min_balance) == (False, Decimal(expected))
    assert as_user(alice).get("/api/v1/users/me/auto-renewal").json() == {"enabled": False, "min_balance": expected}
    assert AuditLog.objects.filter(action="auto_renewal_settings", user=alice).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"enabled": True, "min_balance": "-0.01"}, "min_balance"),
        ({"enabled": True, "min_balance": "1.005"}, "min_balance"),
        ({"enabled": True, "min_balance": "lots"}, "min_balance"),
        ({"enabled": True, "min_balance": "NaN"}, "min_balance"),
        ({"enabled": True}, "min_balance"),
        ({"min_balance": "1.00"}, "enabled"),
        ({"enabled": "perhaps", "min_balance": "1.00"}, "enabled"),
    ],
)
def test_put_bad_settings_is_400_and_writes_nothing(as_user, alice, body, field):
    response = as_user(alice).put("/api/v1/users/me/auto-renewal", body, format="json")

    assert response.status_code == 400
    assert field in response.json() and response.json()["detail"].startswith(f"{field}:")
    alice.refresh_from_db()
    assert (alice.auto_renew_enabled, alice.renew_min_balance) == (True, Decimal("0.00"))
