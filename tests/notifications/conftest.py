import socket
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import translation

from events.services import event_record
from zenzefi.celery import app as celery_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Recorder:
    """An aiosmtpd handler that keeps every envelope it accepts."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted"


class SmtpServer:
    """A real SMTP server on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(self):
        self.port = free_port()
        self.recorder = Recorder()
        self.controller = None

    def start(self) -> None:
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(e.original_content, policy=policy.default) for e in self.recorder.envelopes]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture(autouse=True)
def _site_language():
    """The test client leaves the last request's language active in this thread: later tests start in English."""
    yield
    translation.activate(django_settings.LANGUAGE_CODE)


@pytest.fixture
def smtp(settings):
    """Django's SMTP backend pointed at a real server of ours, and Celery tasks run as they are published."""
    server = SmtpServer()
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.BACKEND_URL = "https://gate.example.test"
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield server
    celery_app.conf.task_always_eager = eager
    server.stop()


@pytest.fixture
def record(django_capture_on_commit_callbacks):
    """Record a domain event as its service would (in a transaction), and run what its commit triggers."""

    def record_event(type: str, user, data: dict):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            return event_record(type=type, user=user, data=data)

    return record_event


def text_part(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_part(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()
