import pytest


@pytest.fixture
def mock_payments(settings):
    settings.ENABLE_MOCK_PAYMENTS = True
    settings.PAYMENT_PROVIDER = "mock"
    settings.PAYMENT_WEBHOOK_SECRET = "test-webhook-secret"
    return settings
