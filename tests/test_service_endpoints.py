import datetime as dt
import json
import re

import pytest


@pytest.mark.django_db
def test_health_has_the_shape_the_desktop_client_reads(client, upstream):
    response = client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    stamp = dt.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert body["timestamp"].endswith("Z")
    assert abs((dt.datetime.now(dt.UTC) - stamp).total_seconds()) < 60


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/docs", "/docs/", "/redoc", "/admin/login/"])
def test_documentation_and_admin_pages_answer(client, path):
    response = client.get(path)

    assert response.status_code == 200
    assert b"cdn" not in response.content.lower()


@pytest.mark.django_db
def test_openapi_schema_lists_the_auth_endpoints(client):
    response = client.get("/api/schema", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/users/me"):
        assert any(p.rstrip("/") == path for p in paths), path
    assert "bearerAuth" in response.json()["components"]["securitySchemes"]


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/yaml"])
def test_openapi_json_path_answers_json(client, accept):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}

    response = client.get("/openapi.json", **headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = json.loads(response.content)
    assert document == client.get("/api/schema", {"format": "json"}).json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Zenzefi Gate API"


@pytest.mark.django_db
def test_api_schema_keeps_content_negotiation(client):
    as_yaml = client.get("/api/schema", HTTP_ACCEPT="application/yaml")
    as_json = client.get("/api/schema", HTTP_ACCEPT="application/json")

    assert as_yaml["Content-Type"].startswith("application/yaml")
    assert as_yaml.content.startswith(b"openapi: 3.")
    assert as_json["Content-Type"] == "application/json"
    assert as_json.json()["openapi"].startswith("3.")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "brand", "index_title", "apps"),
    [
        ("ru", "Zenzefi Gate · админка", "Администрирование", ["Доступ", "Кошелёк", "Прокси", "Учётные записи"]),
        ("en", "Zenzefi Gate · admin", "Administration", ["Access", "Accounts", "Proxy", "Wallet"]),
    ],
)
def test_admin_index_is_branded_and_names_the_apps_in_the_users_language(
    client, admin_user, language, brand, index_title, apps
):
    client.force_login(admin_user)
    client.cookies["django_language"] = language

    response = client.get("/admin/")

    assert response.status_code == 200
    page = response.content.decode()
    assert f"<title>{index_title} | {brand}</title>" in page
    assert f'<div id="site-name"><a href="/admin/">{brand}</a></div>' in page
    assert f"<h1>{index_title}</h1>" in page
    assert "Django administration" not in page and "Администрирование Django" not in page
    captions = re.findall(r'<a href="/admin/(access|accounts|proxy|wallet)/" class="section"[^>]*>([^<]+)</a>', page)
    assert sorted(name for _label, name in captions) == apps


@pytest.mark.django_db
def test_admin_login_page_is_branded_in_russian(client):
    response = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="ru")

    page = response.content.decode()
    assert '<div id="site-name"><a href="/admin/">Zenzefi Gate · админка</a></div>' in page
    assert "Django administration" not in page and "Администрирование Django" not in page


@pytest.mark.django_db
def test_admin_user_search_and_read_only_audit(client, admin_user, alice, bob):
    client.force_login(admin_user)

    found = client.get("/admin/accounts/user/", {"q": "alice"})
    audit_add = client.get("/admin/accounts/auditlog/add/")

    assert found.status_code == 200
    html = found.content.decode()
    assert "alice@example.com" in html
    assert "bob@example.com" not in html
    assert audit_add.status_code == 403
    assert client.get("/admin/accounts/user/", {"is_active__exact": "1"}).status_code == 200


@pytest.mark.django_db
def test_admin_can_create_a_user_with_referral_code(client, admin_user):
    client.force_login(admin_user)

    response = client.post(
        "/admin/accounts/user/add/",
        {
            "email": "frank@example.com",
            "username": "frank",
            "password1": "Frank-Secret-12",
            "password2": "Frank-Secret-12",
            "usable_password": "true",
        },
    )

    assert response.status_code == 302
    from accounts.models import User

    frank = User.objects.get(username="frank")
    assert len(frank.referral_code) == 12
    assert frank.check_password("Frank-Secret-12")
