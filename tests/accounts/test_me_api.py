import datetime as dt

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import AuditLog, User
from accounts.tokens import jwt_pair

URL = "/api/v1/users/me"


@pytest.mark.django_db
def test_me_returns_the_user(as_user, alice):
    response = as_user(alice).get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(alice.id)
    assert body["email"] == "alice@example.com"
    assert body["username"] == "alice"
    assert body["full_name"] == "Alice Buyer"
    assert body["referral_code"] == alice.referral_code
    assert "password" not in body


@pytest.mark.django_db
def test_me_works_with_trailing_slash(as_user, alice):
    assert as_user(alice).get(URL + "/").status_code == 200


@pytest.mark.django_db
def test_me_without_token(api):
    response = api.get(URL)

    assert response.status_code == 403
    assert response.json() == {"detail": "Not authenticated"}


@pytest.mark.django_db
def test_me_with_expired_token(api, alice):
    token = AccessToken.for_user(alice)
    token.set_iat(at_time=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    token.set_exp(from_time=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), lifetime=dt.timedelta(minutes=60))
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api.get(URL)

    assert response.status_code == 401
    assert response.json() == {"detail": "Could not validate credentials"}
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer not.a.jwt", "Bearer ", "Bearer a b"])
def test_me_with_garbage_token(api, header):
    api.credentials(HTTP_AUTHORIZATION=header)

    response = api.get(URL)

    assert response.status_code == 401
    assert response.json() == {"detail": "Could not validate credentials"}


@pytest.mark.django_db
def test_me_with_another_scheme(api, alice):
    api.credentials(HTTP_AUTHORIZATION="Basic YWxpY2U6eA==")

    response = api.get(URL)

    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid authentication credentials"}


@pytest.mark.django_db
def test_me_with_token_signed_by_another_key(api, alice):
    import jwt

    forged = jwt.encode({"sub": str(alice.id), "exp": 9999999999, "iat": 1}, "another-key-" * 4, algorithm="HS256")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")

    response = api.get(URL)

    assert response.status_code == 401
    assert response.json()["detail"] == "Could not validate credentials"


@pytest.mark.django_db
def test_me_for_deleted_user(as_user, alice):
    client = as_user(alice)
    User.objects.filter(pk=alice.pk).delete()

    response = client.get(URL)

    assert response.status_code == 401
    assert response.json()["detail"] == "User not found"


@pytest.mark.django_db
def test_me_for_inactive_user(as_user, alice):
    client = as_user(alice)
    User.objects.filter(pk=alice.pk).update(is_active=False)

    response = client.get(URL)

    assert response.status_code == 403
    assert response.json()["detail"] == "Inactive user"


@pytest.mark.django_db
def test_patch_full_name(as_user, alice):
    response = as_user(alice).patch(URL, {"full_name": "Alice Renamed"}, format="json")

    assert response.status_code == 200
    assert response.json()["full_name"] == "Alice Renamed"
    alice.refresh_from_db()
    assert alice.full_name == "Alice Renamed"


@pytest.mark.django_db
def test_patch_null_fields_change_nothing(as_user, alice, password):
    response = as_user(alice).patch(URL, {"full_name": None, "password": None}, format="json")

    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.full_name == "Alice Buyer"
    assert alice.check_password(password)


@pytest.mark.django_db
def test_tokens_issued_before_a_password_change_are_refused(api, alice):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_pair(alice)['access_token']}")
    assert api.get(URL).status_code == 200

    User.objects.filter(pk=alice.pk).update(password_changed_at=alice.password_changed_at + dt.timedelta(seconds=5))

    response = api.get(URL)
    assert response.status_code == 401
    assert response.json()["detail"] == "Could not validate credentials"


@pytest.mark.django_db
def test_patch_password_refuses_old_refresh_token_and_keeps_new_login(api, as_user, alice, password, monkeypatch):
    old = jwt_pair(alice)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    monkeypatch.setattr("django.utils.timezone.now", lambda: later)
    client = as_user(alice)

    response = client.patch(URL, {"password": "Brand-New-Secret-9"}, format="json")

    assert response.status_code == 200
    monkeypatch.undo()
    alice.refresh_from_db()
    assert alice.check_password("Brand-New-Secret-9")
    refreshed = api.post("/api/v1/auth/refresh", {"refresh_token": old["refresh_token"]}, format="json")
    assert refreshed.status_code == 401
    api.credentials()
    login = api.post("/api/v1/auth/login", {"email": "alice@example.com", "password": password}, format="json")
    assert login.status_code == 401
    assert AuditLog.objects.filter(action="user_update", user=alice, details={"fields": ["password"]}).exists()


@pytest.mark.django_db
def test_patch_weak_password_is_refused_and_changes_nothing(as_user, alice, password):
    response = as_user(alice).patch(URL, {"password": "12345678"}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()
    assert response.json()["detail"]
    alice.refresh_from_db()
    assert alice.check_password(password)
