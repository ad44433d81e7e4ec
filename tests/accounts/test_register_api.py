import re

import pytest

from accounts import services
from accounts.models import AuditLog, User
from tests.factories import PASSWORD

URL = "/api/v1/auth/register"
STRONG = "Tr1cky-Passw0rd"


def register(api, suffix="", query="", **fields):
    body = {"email": "carol@example.com", "username": "carol", "password": STRONG, **fields}
    return api.post(f"{URL}{suffix}{query}", body, format="json")


@pytest.mark.django_db
def test_register_returns_the_reference_user_response(api):
    response = register(api, full_name="Carol Doe")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "email",
        "username",
        "full_name",
        "is_active",
        "is_superuser",
        "referral_code",
        "created_at",
        "updated_at",
    }
    user = User.objects.get()
    assert body["id"] == str(user.id)
    assert body["email"] == "carol@example.com"
    assert body["username"] == "carol"
    assert body["full_name"] == "Carol Doe"
    assert body["is_active"] is True
    assert body["is_superuser"] is False
    assert re.fullmatch(r"[A-Z0-9]{12}", body["referral_code"])
    assert user.password.startswith("argon2$")
    assert user.check_password(STRONG)


@pytest.mark.django_db
def test_register_works_with_trailing_slash(api):
    assert register(api, suffix="/").status_code == 201


@pytest.mark.django_db
def test_register_keeps_local_part_and_lowercases_domain(api):
    response = register(api, email="Carol.Doe@Example.COM")

    assert response.status_code == 201
    assert response.json()["email"] == "Carol.Doe@example.com"


@pytest.mark.django_db
def test_register_refuses_email_taken_in_other_case(api, alice):
    response = register(api, email="ALICE@Example.com")

    assert response.status_code == 400
    assert response.json()["detail"] == "Email already registered"
    assert response.json()["email"] == ["Email already registered"]
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_register_refuses_username_taken(api, alice):
    response = register(api, username="Alice")

    assert response.status_code == 400
    assert response.json()["detail"] == "Username already taken"
    assert User.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "shown"),
    [
        ("ali\u202eecila", "U+202E"),  # right-to-left override
        ("\u200bbob", "U+200B"),  # zero-width space
        ("bo\u200db", "U+200D"),  # zero-width joiner
        ("\ufeffcarol", "U+FEFF"),  # byte order mark
        ("car\u2066ol", "U+2066"),  # left-to-right isolate
        ("car\u00adol", "U+00AD"),  # soft hyphen
        ("car\tol", "U+0009"),  # a control character
    ],
)
def test_register_refuses_invisible_characters_in_the_username(api, username, shown):
    response = register(api, username=username)

    assert response.status_code == 400
    assert response.json()["username"] == [f"Username cannot contain invisible or control characters ({shown})."]
    assert response.json()["detail"].startswith("username: Username cannot contain invisible")
    assert not User.objects.exists()
    assert not AuditLog.objects.exists()


@pytest.mark.django_db
def test_register_stores_the_username_nfkc_normalised(api):
    response = register(api, username="\uff43\uff41\uff52\uff4f\uff4c\u2460")  # full-width "carol", circled 1

    assert response.status_code == 201
    assert response.json()["username"] == "carol1"
    assert User.objects.get().username == "carol1"


@pytest.mark.django_db
def test_a_full_width_look_alike_of_a_taken_username_is_refused(api, alice):
    response = register(api, username="\uff21\uff4c\uff49\uff43\uff45")  # full-width "Alice"

    assert response.status_code == 400
    assert response.json()["detail"] == "Username already taken"
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_login_by_a_full_width_username(api, alice):
    response = api.post(
        "/api/v1/auth/login", {"username": "\uff41\uff4c\uff49\uff43\uff45", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 200


@pytest.mark.django_db
def test_email_is_checked_before_username(api, alice):
    response = register(api, email="alice@example.com", username="alice")

    assert response.json()["detail"] == "Email already registered"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("password123", "This password is too common."),
        ("48151623420", "This password is entirely numeric."),
        ("carol123", "The password is too similar to the username."),
    ],
)
def test_register_refuses_weak_password(api, password, message):
    response = register(api, password=password)

    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert response.json()["password"]
    assert not User.objects.exists()
    assert not AuditLog.objects.exists()


@pytest.mark.django_db
def test_register_refuses_short_password_with_field_key(api):
    response = register(api, password="Ab1-")

    assert response.status_code == 400
    assert response.json()["password"] == ["Ensure this field has at least 8 characters."]
    assert response.json()["detail"] == "password: Ensure this field has at least 8 characters."
    assert not User.objects.exists()


@pytest.mark.django_db
def test_register_refuses_bad_input_with_field_keys(api):
    response = api.post(URL, {"email": "not-an-email", "username": "ab"}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["email"] == ["Enter a valid email address."]
    assert body["username"] == ["Ensure this field has at least 3 characters."]
    assert body["password"] == ["This field is required."]
    assert body["detail"]
    assert not User.objects.exists()


@pytest.mark.django_db
def test_register_refuses_unknown_referral_code(api, alice):
    response = register(api, query="?ref=NOSUCHCODE00")

    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid referral code"
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_register_refuses_code_of_inactive_referrer(api, alice):
    User.objects.filter(pk=alice.pk).update(is_active=False)

    response = register(api, query=f"?ref={alice.referral_code}")

    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid referral code"


@pytest.mark.django_db
@pytest.mark.parametrize("param", ["ref", "referral_code"])
def test_register_links_the_referrer(api, alice, param):
    response = register(api, query=f"?{param}={alice.referral_code}")

    assert response.status_code == 201
    carol = User.objects.get(username="carol")
    assert carol.referred_by_id == alice.id


@pytest.mark.django_db
def test_register_writes_an_audit_row(api):
    response = register(api)

    entry = AuditLog.objects.get(action="auth_register")
    assert str(entry.user_id) == response.json()["id"]
    assert entry.resource_type == "User"
    assert entry.resource_id == response.json()["id"]
    assert entry.ip_address == "127.0.0.1"


@pytest.mark.django_db
def test_referral_code_collision_is_retried(monkeypatch, alice):
    codes = iter([alice.referral_code, "NEWCODE00001"])
    monkeypatch.setattr(services, "referral_code_generate", lambda: next(codes))

    user = services.user_create(email="dave@example.com", username="dave", password=STRONG)

    assert user.referral_code == "NEWCODE00001"
    assert User.objects.filter(referral_code=alice.referral_code).count() == 1


@pytest.mark.django_db
def test_password_is_not_echoed_anywhere(api):
    response = register(api)

    assert STRONG not in response.content.decode()
    assert STRONG not in str(list(AuditLog.objects.values_list("details", flat=True)))
