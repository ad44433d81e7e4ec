import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from accounts.tokens import jwt_pair
from tests.factories import PASSWORD, UserFactory
from tests.servers import ThreadServer, fake_zenzefi
from zenzefi import breaker


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with an empty Redis database (rate-limit windows, caches) and a closed breaker."""
    breaker.redis.reset()
    cache.clear()
    yield
    breaker.redis.reset()
    cache.clear()


@pytest.fixture(autouse=True)
def _site_language():
    """A page rendered in Russian leaves Russian active in the thread: every test starts and ends in English."""
    translation.activate(django_settings.LANGUAGE_CODE)
    yield
    translation.activate(django_settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _ledger_audited(request):
    """After every test that used the database, the whole ledger must pass ``wallet_audit``."""
    uses_db = request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(request.fixturenames)
    if uses_db:
        # Set the database up before this fixture, so it is still there when this one finishes.
        request.getfixturevalue("_django_db_helper")
    yield
    if uses_db:
        call_command("wallet_audit", verbosity=0)


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def alice(db):
    return UserFactory(email="alice@example.com", username="alice", full_name="Alice Buyer")


@pytest.fixture
def bob(db):
    return UserFactory(email="bob@example.com", username="bob", full_name="Bob Other")


@pytest.fixture
def admin_user(db):
    return UserFactory(email="admin@example.com", username="admin", is_staff=True, is_superuser=True)


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def portal(alice):
    """A browser session of Alice's for the portal's pages."""
    return _logged_in(alice)


@pytest.fixture
def stranger(bob):
    return _logged_in(bob)


@pytest.fixture
def staff(admin_user):
    return _logged_in(admin_user)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def as_user(api):
    """An API client sending a fresh JWT of the given user."""

    def login(user):
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_pair(user)['access_token']}")
        return api

    return login


@pytest.fixture(scope="session")
def zenzefi_url():
    with fake_zenzefi() as (_process, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def gate(_release_test_database):
    """Our ASGI app (proxy + Django) on loopback, sharing this process's settings and test database."""
    with ThreadServer() as server:
        yield server


@pytest.fixture(scope="session")
def _release_test_database(django_db_setup, django_db_blocker):
    """Server threads keep database connections open; close them so the test database can be dropped."""
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def upstream(settings, zenzefi_url):
    settings.ZENZEFI_TARGET_URL = zenzefi_url
    return zenzefi_url
