import re

import pytest
from playwright.sync_api import expect

from events.models import DeliveryAttempt, Event, WebhookEndpoint
from tests.events import conftest as events_fixtures
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The events tests' receiver: a real HTTP server on loopback, with Celery eager, so the live server's
# request itself sends the webhook once its transaction commits.
receiver = events_fixtures.receiver


def test_add_endpoint_test_it_and_redeliver(page, alice, receiver):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/login/")
    page.get_by_label("E-mail or username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # Alice adds an endpoint for every event type.
    page.get_by_test_id("nav-integrations").click()
    expect(page.get_by_test_id("endpoints-empty")).to_be_visible()
    page.get_by_label("Endpoint URL").fill(receiver.url())
    page.get_by_label("Description").fill("Workshop ERP")
    page.get_by_label("All events").check()
    page.get_by_test_id("endpoint-add").click()

    # Its secret is shown on the page that follows, once, with a working Copy button.
    expect(page).to_have_url(re.compile(r"/integrations/[0-9a-f-]{36}/$"))
    endpoint = WebhookEndpoint.objects.get(owner=alice)
    assert (endpoint.url, endpoint.events, endpoint.description) == (receiver.url(), ["*"], "Workshop ERP")
    expect(page.get_by_test_id("endpoint-secret")).to_have_value(endpoint.secret)
    page.get_by_test_id("copy-secret").click()
    expect(page.get_by_test_id("secret-copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == endpoint.secret
    page.reload()
    expect(page.get_by_test_id("secret-once")).to_have_count(0)
    assert endpoint.secret not in page.content()
    expect(page.get_by_test_id("log-empty")).to_be_visible()

    # A test event reaches the receiver and shows in the log as succeeded with 200.
    page.get_by_test_id("endpoint-test").click()
    message = page.locator(".message-success")
    expect(message).to_contain_text("sent. Its result appears in the delivery log.")
    event = Event.objects.get(user=alice, type="ping")
    expect(message).to_have_text(f"Test event {event.id} sent. Its result appears in the delivery log.")
    row = page.get_by_test_id("attempt-row")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-status", "succeeded")
    expect(row.get_by_test_id("attempt-event")).to_have_text(event.id)
    expect(row.get_by_test_id("attempt-code")).to_have_text("200")
    expect(row.get_by_test_id("attempt-status")).to_have_text("succeeded")

    # Redeliver: a second attempt of the same event, with the same webhook-id.
    row.get_by_test_id("attempt-redeliver").click()
    expect(page.locator(".message-success")).to_have_text(f"Event {event.id} sent again as attempt 2.")
    rows = page.get_by_test_id("attempt-row")
    expect(rows).to_have_count(2)
    expect(rows.first.get_by_test_id("attempt-number")).to_contain_text("2")
    expect(rows.first.get_by_test_id("attempt-number")).to_contain_text("redelivery")
    expect(rows.first).to_have_attribute("data-status", "succeeded")
    expect(rows.first.get_by_test_id("attempt-code")).to_have_text("200")
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [event.id, event.id]
    attempts = DeliveryAttempt.objects.filter(endpoint=endpoint).order_by("attempt")
    assert [(a.attempt, a.trigger, a.status, a.response_code) for a in attempts] == [
        (1, "scheduled", "succeeded", 200),
        (2, "manual", "succeeded", 200),
    ]

    # On a phone the page fits the screen; the log table scrolls inside its box.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("link", name="← Integrations").click()
    expect(page.get_by_test_id("endpoint-card")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # Deleting asks first, then the endpoint and its log are gone.
    card = page.get_by_test_id("endpoint-card")
    expect(card).to_have_attribute("data-status", "enabled")
    card.get_by_test_id("endpoint-delete").click()
    page.get_by_test_id("delete-confirm").click()
    expect(page).to_have_url(re.compile(r"/integrations/$"))
    expect(page.get_by_test_id("endpoints-empty")).to_be_visible()
    assert not WebhookEndpoint.objects.filter(owner=alice).exists()
