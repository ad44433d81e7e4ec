import pytest
from django.db import connection

from tests.servers import ThreadServer, fake_zenzefi


@pytest.fixture(scope="session")
def zenzefi_url():
    with fake_zenzefi() as (_process, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def gate(django_db_setup, django_db_blocker):
    """Our ASGI app (proxy + Django) on loopback, sharing this process's settings and test database."""
    with ThreadServer() as server:
        yield server
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        # The server's worker threads keep connections open; let the test database be dropped.
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def upstream(settings, zenzefi_url):
    settings.ZENZEFI_TARGET_URL = zenzefi_url
    return zenzefi_url
