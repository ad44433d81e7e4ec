"""Apps above ``events`` consume committed events once each, through ``events.consumers``."""

import datetime as dt
from decimal import Decimal

import pytest
from celery import shared_task
from django.utils import timezone

from events import consumers
from events.models import Event, EventConsumption
from wallet import services as wallet

pytestmark = pytest.mark.django_db

seen: list[tuple[str, str]] = []


def handler(event):
    seen.append((event.type, event.data["kind"]))


@shared_task(name="tests.consume_event")
def consume_event(event_id: str) -> bool:
    return consumers.consume("tests", event_id, handler)


@pytest.fixture
def consumer(receiver):  # the receiver fixture runs Celery tasks eagerly
    seen.clear()
    consumers.register("tests", "tests.consume_event")
    yield
    consumers._tasks.pop("tests")


def test_a_committed_event_reaches_the_consumer_once(consumer, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        wallet.mock_deposit(user=alice, amount=Decimal("5"), actor=wallet.SYSTEM)
    assert seen == [("balance.topped_up", "deposit")]
    event = Event.objects.get()
    assert consume_event(event.pk) is False  # a second run of the task
    assert seen == [("balance.topped_up", "deposit")]
    assert EventConsumption.objects.filter(consumer="tests", event=event).count() == 1


def test_a_rolled_back_change_reaches_no_consumer(consumer, alice, django_capture_on_commit_callbacks):
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True):
        from django.db import transaction

        with transaction.atomic():
            wallet.mock_deposit(user=alice, amount=Decimal("5"), actor=wallet.SYSTEM)
            raise RuntimeError("after the credit")
    assert seen == [] and Event.objects.count() == 0


def test_pending_finds_what_the_task_never_handled(consumer, alice):
    wallet.mock_deposit(user=alice, amount=Decimal("5"), actor=wallet.SYSTEM)  # no on-commit hooks here
    event = Event.objects.get()
    assert consumers.pending("tests") == []  # its task gets a minute
    later = timezone.now() + dt.timedelta(seconds=61)
    assert consumers.pending("tests", now=later) == [event.pk]
    assert consumers.pending("other", now=later) == [event.pk]
    consume_event(event.pk)
    assert consumers.pending("tests", now=later) == []
    assert consumers.pending("tests", now=later + dt.timedelta(days=2)) == []  # older than the lookback
    assert seen == [("balance.topped_up", "deposit")]


def test_a_handler_failure_leaves_the_event_pending(consumer, alice):
    wallet.mock_deposit(user=alice, amount=Decimal("5"), actor=wallet.SYSTEM)
    event = Event.objects.get()

    def broken(_event):
        raise ValueError("handler bug")

    with pytest.raises(ValueError):
        consumers.consume("tests", event.pk, broken)
    assert not EventConsumption.objects.filter(consumer="tests").exists()
    assert consumers.pending("tests", now=timezone.now() + dt.timedelta(seconds=61)) == [event.pk]
