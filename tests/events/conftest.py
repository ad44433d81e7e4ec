import pytest

from tests.servers import WebhookReceiver
from zenzefi.celery import app as celery_app


@pytest.fixture
def receiver(settings):
    """A webhook receiver on 127.0.0.1 (so plain http and private targets are allowed), and Celery tasks run
    in-process as they are published (``task_always_eager``)."""
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    with WebhookReceiver() as server:
        yield server
    celery_app.conf.task_always_eager = eager
