import pytest
from django.core.management import call_command


@pytest.fixture(autouse=True)
def _ledger_audited(request):
    """After every wallet test, the whole ledger must pass ``wallet_audit``."""
    yield
    if (
        "db" in request.fixturenames
        or "transactional_db" in request.fixturenames
        or request.node.get_closest_marker("django_db")
    ):
        call_command("wallet_audit", verbosity=0)


@pytest.fixture
def mock_payments(settings):
    settings.ENABLE_MOCK_PAYMENTS = True
    settings.PAYMENT_PROVIDER = "mock"
    settings.PAYMENT_WEBHOOK_SECRET = "test-webhook-secret"
    return settings
