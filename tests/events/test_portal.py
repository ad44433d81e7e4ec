import json
import re

import pytest
from django.test import Client

from accounts.models import AuditLog
from events import services
from events.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from events.views import SECRET_SESSION_KEY
from tests.helpers import html, messages_of

pytestmark = pytest.mark.django_db

LIST = "/integrations/"
HOOK = "https://hooks.example.test/zenzefi"


def page_of(endpoint) -> str:
    return f"/integrations/{endpoint.pk}/"


@pytest.fixture
def no_dns(settings):
    """Private targets allowed, so the services never resolve the made-up host names of these tests."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True


@pytest.fixture
def endpoint(alice, no_dns):
    endpoint, _secret = services.endpoint_create(owner=alice, url=HOOK, events=["*"], description="ERP")
    return endpoint


@pytest.fixture
def hooked(alice, receiver):
    """Alice's endpoint pointing at the receiver, for tests that really deliver."""
    endpoint, _secret = services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    return endpoint


def send_test(portal, endpoint, capture):
    """Press "Send test event" with the after-commit delivery run, as in production (eager Celery)."""
    with capture(execute=True):
        response = portal.post(f"{page_of(endpoint)}test/")
    assert response.status_code == 302
    return response


# --- Who may see what ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "{id}/", "{id}/edit/", "{id}/delete/"])
def test_pages_need_a_login(endpoint, suffix):
    response = Client().get(LIST + suffix.format(id=endpoint.pk))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("action", ["enable", "disable", "test", "rotate-secret", "delete", "edit"])
def test_another_users_endpoint_is_404_and_unchanged(stranger, endpoint, action):
    before = WebhookEndpoint.objects.values().get(pk=endpoint.pk)
    data = {"url": "https://evil.example.test/", "all_events": "on"} if action == "edit" else {}

    response = stranger.post(f"{page_of(endpoint)}{action}/", data)

    assert response.status_code == 404
    assert WebhookEndpoint.objects.values().get(pk=endpoint.pk) == before
    assert not Event.objects.exists()
    assert SECRET_SESSION_KEY not in stranger.session


@pytest.mark.parametrize("suffix", ["", "edit/", "delete/"])
def test_another_users_endpoint_pages_are_404(stranger, endpoint, suffix):
    assert stranger.get(page_of(endpoint) + suffix).status_code == 404


def test_unknown_endpoint_is_404(portal, no_dns):
    assert portal.get("/integrations/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_list_shows_only_my_endpoints(portal, endpoint, bob):
    services.endpoint_create(owner=bob, url="https://bob.example.test/hook", events=["*"])

    response = portal.get(LIST)

    assert response.status_code == 200
    assert [e.pk for e in response.context["endpoints"]] == [endpoint.pk]
    assert HOOK in html(response)
    assert "bob.example.test" not in html(response)
    assert 'data-testid="nav-integrations"' in html(response)


def test_list_query_count_does_not_grow_with_endpoints(portal, alice, no_dns, django_assert_max_num_queries):
    for n in range(5):
        services.endpoint_create(owner=alice, url=f"https://h{n}.example.test/", events=["token.purchased"])

    with django_assert_max_num_queries(8):
        response = portal.get(LIST)

    assert len(response.context["endpoints"]) == 5


# --- Adding, and the secret shown once -------------------------------------------------------------


def test_add_shows_the_secret_once(portal, alice, no_dns):
    response = portal.post(
        LIST,
        {"url": HOOK, "description": "Warehouse", "events": ["token.purchased", "token.revoked"]},
    )

    endpoint = WebhookEndpoint.objects.get(owner=alice)
    assert response.status_code == 302
    assert response["Location"] == page_of(endpoint)
    assert (endpoint.url, endpoint.description, endpoint.events) == (
        HOOK,
        "Warehouse",
        ["token.purchased", "token.revoked"],
    )
    assert endpoint.enabled
    assert AuditLog.objects.filter(action="webhook_endpoint_create", resource_id=str(endpoint.pk), user=alice).exists()

    shown = portal.get(page_of(endpoint))
    assert shown["Cache-Control"].startswith("max-age=0")
    assert re.search(rf'value="{re.escape(endpoint.secret)}"', html(shown))
    assert endpoint.secret.startswith("whsec_")
    assert "Endpoint added. Copy its signing secret now: it is shown only once." in messages_of(shown)
    assert SECRET_SESSION_KEY not in portal.session

    for again in (portal.get(page_of(endpoint)), portal.get(LIST)):
        assert endpoint.secret not in html(again)
        assert 'data-testid="secret-once"' not in html(again)


def test_add_for_all_events_stores_the_wildcard(portal, alice, no_dns):
    portal.post(LIST, {"url": HOOK, "all_events": "on", "events": ["token.purchased"]})

    assert WebhookEndpoint.objects.get(owner=alice).events == ["*"]


def test_add_with_http_url_shows_the_error_and_writes_nothing(portal, alice, no_dns):
    response = portal.post(LIST, {"url": "http://hooks.example.test/", "all_events": "on", "description": "x"})

    assert response.status_code == 200
    assert messages_of(response) == ["The URL must use https"]
    assert not WebhookEndpoint.objects.exists()
    assert not AuditLog.objects.filter(action="webhook_endpoint_create").exists()
    assert SECRET_SESSION_KEY not in portal.session
    # The form keeps what was typed.
    assert 'value="http://hooks.example.test/"' in html(response)


def test_add_with_private_target_is_refused(portal, settings, alice):
    settings.WEBHOOKS_ALLOW_PRIVATE = False

    response = portal.post(LIST, {"url": "https://127.0.0.1/hook", "all_events": "on"})

    assert messages_of(response) == ["Webhooks are not sent to private networks: 127.0.0.1 is a loopback address"]
    assert not WebhookEndpoint.objects.exists()


def test_add_without_event_types_is_a_form_error(portal, no_dns):
    response = portal.post(LIST, {"url": HOOK})

    assert response.status_code == 200
    assert response.context["form"].errors == {"events": ["Choose at least one event type, or all events."]}
    assert not WebhookEndpoint.objects.exists()


def test_add_past_the_limit_says_so(portal, alice, settings, no_dns):
    settings.WEBHOOKS_MAX_ENDPOINTS = 1
    services.endpoint_create(owner=alice, url=HOOK, events=["*"])

    response = portal.post(LIST, {"url": "https://second.example.test/", "all_events": "on"})

    assert messages_of(response) == ["At most 1 webhook endpoints per user"]
    assert WebhookEndpoint.objects.filter(owner=alice).count() == 1


def test_edit_changes_url_and_events_and_keeps_the_secret(portal, endpoint):
    secret = endpoint.secret
    form = portal.get(f"{page_of(endpoint)}edit/")
    assert form.context["form"].initial == {"url": HOOK, "description": "ERP", "all_events": True, "events": []}

    response = portal.post(
        f"{page_of(endpoint)}edit/", {"url": "https://new.example.test/", "events": ["balance.charged"]}
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events, endpoint.description) == (
        "https://new.example.test/",
        ["balance.charged"],
        "",
    )
    assert endpoint.secret == secret


def test_edit_to_a_bad_url_changes_nothing(portal, endpoint):
    response = portal.post(f"{page_of(endpoint)}edit/", {"url": "ftp://x.example.test/", "all_events": "on"})

    assert response.status_code == 200
    assert messages_of(response) == ["The URL must use https"]
    endpoint.refresh_from_db()
    assert endpoint.url == HOOK


# --- Enable, disable, test, rotate, delete ---------------------------------------------------------


def test_disable_and_enable_from_the_list(portal, alice, endpoint):
    response = portal.post(f"{page_of(endpoint)}disable/", {"next": "list"}, follow=True)

    assert response.redirect_chain == [(LIST, 302)]
    assert messages_of(response) == ["Endpoint disabled. No events are sent to it until you enable it again."]
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "disabled by its owner")
    page = html(response)
    assert 'data-status="disabled"' in page
    assert 'data-disabled-by="owner"' in page
    assert "You disabled this endpoint on" in page
    assert 'data-testid="auto-disabled-notice"' not in page

    response = portal.post(f"{page_of(endpoint)}enable/", follow=True)

    assert response.redirect_chain == [(page_of(endpoint), 302)]
    assert messages_of(response) == ["Endpoint enabled. New events are sent to it again."]
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at) == (True, "", None)


def test_send_test_event_delivers_a_ping(portal, alice, hooked, receiver, django_capture_on_commit_callbacks):
    response = send_test(portal, hooked, django_capture_on_commit_callbacks)

    event = Event.objects.get(user=alice)
    assert event.type == "ping"
    assert response["Location"] == page_of(hooked)
    assert len(receiver.requests) == 1
    sent = receiver.requests[0]
    assert sent["headers"]["webhook-id"] == event.id
    assert sent["headers"]["webhook-signature"].startswith("v1,")
    assert json.loads(sent["body"])["type"] == "ping"

    log = portal.get(page_of(hooked))
    assert messages_of(log) == [f"Test event {event.id} sent. Its result appears in the delivery log."]
    (row,) = log.context["page"].object_list
    assert (row.delivery.event_id, row.attempt, row.status, row.response_code) == (event.id, 1, "succeeded", 200)
    assert row.duration_ms is not None
    page = html(log)
    assert f'data-testid="attempt-event">{event.id}<' in page
    assert 'data-status="succeeded"' in page
    assert 'data-testid="attempt-code">200<' in page


def test_send_test_event_to_a_disabled_endpoint_is_an_error(portal, alice, endpoint):
    services.endpoint_update(owner=alice, endpoint_id=endpoint.pk, changes={"enabled": False})

    response = portal.post(f"{page_of(endpoint)}test/", follow=True)

    assert messages_of(response) == ["Webhook endpoint is disabled; enable it first"]
    assert list(Event.objects.values_list("type", flat=True)) == ["webhook_endpoint.disabled"]
    assert not Delivery.objects.exists()


def test_rotate_shows_the_new_secret_once(portal, endpoint):
    old = endpoint.secret

    response = portal.post(f"{page_of(endpoint)}rotate-secret/", follow=True)

    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.previous_secret == old
    page = html(response)
    assert f'value="{endpoint.secret}"' in page
    assert "The old secret keeps working for 24 hours" in page
    assert messages_of(response) == ["New signing secret made. Copy it now: it is shown only once."]
    assert endpoint.secret not in html(portal.get(page_of(endpoint)))


def test_rotate_from_the_list_shows_the_secret_on_the_list(portal, endpoint):
    response = portal.post(f"{page_of(endpoint)}rotate-secret/", {"next": "list"}, follow=True)

    endpoint.refresh_from_db()
    assert response.redirect_chain == [(LIST, 302)]
    assert f'value="{endpoint.secret}"' in html(response)
    assert endpoint.secret not in html(portal.get(LIST))


def test_delete_asks_first(portal, alice, endpoint):
    confirm = portal.get(f"{page_of(endpoint)}delete/")

    assert confirm.status_code == 200
    assert "Delete this endpoint?" in html(confirm)
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()

    response = portal.post(f"{page_of(endpoint)}delete/", follow=True)

    assert response.redirect_chain == [(LIST, 302)]
    assert messages_of(response) == [f"Endpoint {HOOK} deleted with its delivery log."]
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert AuditLog.objects.filter(action="webhook_endpoint_delete", resource_id=str(endpoint.pk)).exists()
    assert portal.post(f"{page_of(endpoint)}delete/").status_code == 404


def test_actions_need_post(portal, endpoint):
    for action in ("enable", "disable", "test", "rotate-secret"):
        assert portal.get(f"{page_of(endpoint)}{action}/").status_code == 405
    assert not Event.objects.exists()


# --- The delivery log and redelivery ----------------------------------------------------------------


def test_redeliver_sends_the_same_webhook_id_again(portal, alice, hooked, receiver, django_capture_on_commit_callbacks):
    send_test(portal, hooked, django_capture_on_commit_callbacks)
    first = DeliveryAttempt.objects.get(endpoint=hooked)

    with django_capture_on_commit_callbacks(execute=True):
        response = portal.post(f"{page_of(hooked)}deliveries/{first.pk}/redeliver/", {"page": "1"})

    assert response.status_code == 302
    assert response["Location"] == f"{page_of(hooked)}?page=1"
    event = Event.objects.get(user=alice)
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [event.id, event.id]
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]
    log = portal.get(page_of(hooked))
    assert messages_of(log) == [
        f"Test event {event.id} sent. Its result appears in the delivery log.",
        f"Event {event.id} sent again as attempt 2.",
    ]
    rows = [(r.attempt, r.trigger, r.status, r.response_code) for r in log.context["page"].object_list]
    assert rows == [(2, "manual", "succeeded", 200), (1, "scheduled", "succeeded", 200)]
    assert AuditLog.objects.filter(action="webhook_redeliver", resource_id=str(hooked.pk)).count() == 1


def test_redeliver_an_attempt_of_another_endpoint_is_404(portal, alice, hooked, receiver, stranger, bob):
    delivery = services.endpoint_test(owner=alice, endpoint_id=hooked.pk)
    services.delivery_run(delivery_id=delivery.pk, number=1)
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    other, _secret = services.endpoint_create(owner=alice, url=receiver.url("/other"), events=["*"])
    bobs, _secret = services.endpoint_create(owner=bob, url=receiver.url("/bob"), events=["*"])

    assert portal.post(f"{page_of(other)}deliveries/{attempt.pk}/redeliver/").status_code == 404
    assert stranger.post(f"{page_of(hooked)}deliveries/{attempt.pk}/redeliver/").status_code == 404
    assert stranger.post(f"{page_of(bobs)}deliveries/{attempt.pk}/redeliver/").status_code == 404
    assert DeliveryAttempt.objects.count() == 1
    assert len(receiver.requests) == 1


def test_redeliver_on_a_disabled_endpoint_is_an_error(portal, alice, hooked, receiver):
    delivery = services.endpoint_test(owner=alice, endpoint_id=hooked.pk)
    services.delivery_run(delivery_id=delivery.pk, number=1)
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    services.endpoint_update(owner=alice, endpoint_id=hooked.pk, changes={"enabled": False})

    response = portal.post(f"{page_of(hooked)}deliveries/{attempt.pk}/redeliver/", follow=True)

    assert messages_of(response) == ["Webhook endpoint is disabled; enable it first"]
    assert DeliveryAttempt.objects.count() == 1
    assert 'data-testid="attempt-redeliver"' not in html(response)


def test_log_is_paginated_newest_first(portal, alice, hooked, receiver):
    for _ in range(26):
        delivery = services.endpoint_test(owner=alice, endpoint_id=hooked.pk)
        services.delivery_run(delivery_id=delivery.pk, number=1)
    newest = DeliveryAttempt.objects.order_by("-created_at").first()
    oldest = DeliveryAttempt.objects.order_by("created_at").first()

    first = portal.get(page_of(hooked))
    second = portal.get(page_of(hooked) + "?page=2")

    assert len(first.context["page"].object_list) == 25
    assert first.context["page"].object_list[0].pk == newest.pk
    assert "Page 1 of 2" in html(first)
    assert [row.pk for row in second.context["page"].object_list] == [oldest.pk]


def test_failed_attempt_shows_code_error_and_next_retry(portal, alice, hooked, receiver):
    receiver.answers = [500]
    delivery = services.endpoint_test(owner=alice, endpoint_id=hooked.pk)
    services.delivery_run(delivery_id=delivery.pk, number=1)

    response = portal.get(page_of(hooked))

    (row,) = response.context["page"].object_list
    assert (row.status, row.response_code) == ("failed", 500)
    assert row.next_attempt_at is not None
    page = html(response)
    assert 'data-testid="attempt-code">500<' in page
    assert 'data-testid="failing-notice"' in page


def test_endpoint_disabled_by_failures_tells_the_owner(portal, alice, hooked, receiver, settings):
    settings.WEBHOOKS_DISABLE_AFTER_EXHAUSTED = 1
    receiver.answers = [503] * len(services.RETRY_SCHEDULE)
    delivery = services.endpoint_test(owner=alice, endpoint_id=hooked.pk)
    for attempt in range(1, len(services.RETRY_SCHEDULE) + 1):
        services.delivery_run(delivery_id=delivery.pk, number=attempt)
    hooked.refresh_from_db()
    assert (hooked.enabled, hooked.disabled_reason) == (False, "1 deliveries in a row failed after all retries")

    listing = html(portal.get(LIST))
    detail = html(portal.get(page_of(hooked)))

    assert 'data-testid="auto-disabled-notice"' in listing
    assert "An endpoint was disabled automatically because its deliveries kept failing." in listing
    for page in (listing, detail):
        assert 'data-disabled-by="failures"' in page
        assert "Disabled automatically after failing deliveries" in page
        assert "1 delivery in a row failed after all retries" in page


def test_admin_disable_shows_its_reason(portal, alice, endpoint):
    services.endpoint_admin_disable(endpoint_id=endpoint.pk)

    page = html(portal.get(page_of(endpoint)))

    assert 'data-disabled-by="other"' in page
    assert "disabled by an administrator" in page
    assert 'data-testid="auto-disabled-notice"' not in html(portal.get(LIST))


def test_pages_in_russian(portal, endpoint):
    portal.cookies["django_language"] = "ru"

    listing = html(portal.get(LIST))
    detail = html(portal.get(page_of(endpoint)))

    assert "Интеграции" in listing
    assert "Добавить эндпоинт" in listing
    assert "Журнал доставок" in detail
