import time

import jwt
import pytest
from django.conf import settings

from accounts.models import AuditLog, User

URL = "/api/v1/auth/login"


def decode(token: str) -> dict:
    return jwt.decode(token, settings.SECRET_KEY, algorithms=["HS256"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "credentials",
    [
        {"email": "alice@example.com"},
        {"email": "ALICE@example.COM"},
        {"username": "alice"},
        {"email": "alice"},
    ],
    ids=["email", "email-other-case", "username-field", "username-in-email-field"],
)
def test_login_by_email_or_username(api, alice, password, credentials):
    response = api.post(URL, {**credentials, "password": password}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert decode(body["access_token"])["sub"] == str(alice.id)
    assert body["refresh_token"]


@pytest.mark.django_db
def test_jwt_claims(api, alice, password):
    before = int(time.time())
    body = api.post(URL, {"email": "alice@example.com", "password": password}, format="json").json()

    header = jwt.get_unverified_header(body["access_token"])
    claims = decode(body["access_token"])
    assert header["alg"] == "HS256"
    assert claims["sub"] == str(alice.id)
    assert claims["username"] == "alice"
    assert "email" not in claims
    assert "alice@example.com" not in str(claims)
    assert claims["exp"] - claims["iat"] == 60 * 60
    assert before <= claims["iat"] <= int(time.time())


@pytest.mark.django_db
def test_wrong_password_is_401_and_audited(api, alice):
    response = api.post(URL, {"email": "alice@example.com", "password": "wrong-password"}, format="json")

    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect email or password"}
    assert response["WWW-Authenticate"] == "Bearer"
    entry = AuditLog.objects.get(action="auth_login_failed")
    assert entry.user_id == alice.id
    assert entry.ip_address == "127.0.0.1"
    assert entry.details == {"identifier": "alice@example.com"}
    assert not AuditLog.objects.filter(action="auth_login").exists()


@pytest.mark.django_db
def test_unknown_email_is_401_and_audited_without_user(api):
    response = api.post(URL, {"email": "nobody@example.com", "password": "whatever-123"}, format="json")

    assert response.status_code == 401
    assert response.json()["detail"] == "Incorrect email or password"
    entry = AuditLog.objects.get(action="auth_login_failed")
    assert entry.user_id is None


@pytest.mark.django_db
def test_inactive_user_cannot_log_in(api, alice, password):
    User.objects.filter(pk=alice.pk).update(is_active=False)

    response = api.post(URL, {"email": "alice@example.com", "password": password}, format="json")

    assert response.status_code == 401
    assert response.json()["detail"] == "Incorrect email or password"


@pytest.mark.django_db
def test_successful_login_is_audited(api, alice, password):
    api.post(URL, {"email": "alice@example.com", "password": password}, format="json", HTTP_USER_AGENT="DTS/1.0")

    entry = AuditLog.objects.get(action="auth_login")
    assert entry.user_id == alice.id
    assert entry.resource_id == str(alice.id)
    assert entry.user_agent == "DTS/1.0"


@pytest.mark.django_db
def test_login_requires_password(api, alice):
    response = api.post(URL, {"email": "alice@example.com"}, format="json")

    assert response.status_code == 400
    assert response.json()["password"] == ["This field is required."]
    assert not AuditLog.objects.exists()


@pytest.mark.django_db
def test_login_rejects_form_encoding(api, alice, password):
    response = api.post(URL, {"email": "alice@example.com", "password": password})

    assert response.status_code == 415
    assert "detail" in response.json()


@pytest.mark.django_db
def test_refresh_returns_a_working_access_token(api, alice, password):
    pair = api.post(URL, {"email": "alice@example.com", "password": password}, format="json").json()

    response = api.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}, format="json")

    assert response.status_code == 200
    assert decode(response.json()["access_token"])["sub"] == str(alice.id)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access_token']}")
    assert api.get("/api/v1/users/me").json()["id"] == str(alice.id)


@pytest.mark.django_db
def test_refresh_refuses_an_access_token_and_garbage(api, alice, password):
    pair = api.post(URL, {"email": "alice@example.com", "password": password}, format="json").json()

    for bad in (pair["access_token"], "not-a-token"):
        response = api.post("/api/v1/auth/refresh/", {"refresh": bad}, format="json")
        assert response.status_code == 401
        assert response.json()["detail"] == "Invalid or expired refresh token"


@pytest.mark.django_db
def test_refresh_refuses_deleted_user(api, alice, password):
    pair = api.post(URL, {"email": "alice@example.com", "password": password}, format="json").json()
    User.objects.filter(pk=alice.pk).delete()

    response = api.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}, format="json")

    assert response.status_code == 401
