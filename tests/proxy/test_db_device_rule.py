"""The device rule on the database, as the proxy runs it while Redis is unavailable."""

import datetime as dt

import pytest

from access import services as access
from proxy.models import ProxySession
from proxy.services import session_count_db, session_forget_db, session_touch_db
from tests.helpers import fund

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(alice):
    fund(alice, "50")
    return access.token_purchase(user=alice, duration_hours=12)


def touch(token, device):
    return session_touch_db(
        token_id=str(token.pk),
        user_id=str(token.user_id),
        device_id=device,
        ip="10.1.2.3",
        user_agent="t",
        mode="header",
    )


def test_same_device_counts_on_the_row_another_is_refused(token):
    first = touch(token, "device-A-000001")
    again = touch(token, "device-A-000001")
    other = touch(token, "device-B-000002")
    session_count_db(session_id=first.session_id, bytes_in=10, bytes_out=300)

    assert (first.outcome, first.stored, again.outcome, again.session_id) == ("new", True, "same", first.session_id)
    assert (other.outcome, other.other_device) == ("conflict", "device-A-000001")
    row = ProxySession.objects.get()
    assert (row.device_id, row.request_count, row.bytes_in, row.bytes_out) == ("device-A-000001", 2, 10, 300)


def test_an_idle_session_is_taken_over_with_its_counters(token, settings):
    first = touch(token, "device-A-000001")
    ProxySession.objects.filter(pk=first.session_id).update(
        last_activity=ProxySession.objects.get().last_activity
        - dt.timedelta(seconds=settings.SESSION_IDLE_TIMEOUT_SECONDS + 1)
    )

    taken = touch(token, "device-B-000002")

    assert taken.outcome == "new"
    old, new = ProxySession.objects.get(pk=first.session_id), ProxySession.objects.get(pk=taken.session_id)
    assert (old.end_reason, old.ended_at is not None, old.request_count) == ("taken over", True, 1)
    assert (new.device_id, new.ended_at) == ("device-B-000002", None)


def test_a_session_whose_first_request_never_reached_zenzefi_is_forgotten(token):
    first = touch(token, "device-A-000001")

    session_forget_db(session_id=first.session_id)

    assert not ProxySession.objects.exists()
    assert touch(token, "device-B-000002").outcome == "new"
