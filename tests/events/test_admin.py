import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import AuditLog
from events import services
from events.models import Delivery, DeliveryAttempt, Event, Status, WebhookEndpoint
from tests.factories import UserFactory
from tests.helpers import html

pytestmark = pytest.mark.django_db

ENDPOINTS = "/admin/events/webhookendpoint/"
ATTEMPTS = "/admin/events/deliveryattempt/"
DELIVERIES = "/admin/events/delivery/"
EVENTS = "/admin/events/event/"


def listed(response) -> list:
    return [obj.pk for obj in response.context["cl"].result_list]


@pytest.fixture
def hooks(alice, bob, receiver):
    """Alice's endpoint with one succeeded ping and one failed, Bob's with none."""
    mine, _secret = services.endpoint_create(owner=alice, url=receiver.url("/alice"), events=["*"])
    theirs, _secret = services.endpoint_create(owner=bob, url=receiver.url("/bob"), events=["token.purchased"])
    receiver.answers = [200, 500]
    ok = services.endpoint_test(owner=alice, endpoint_id=mine.pk)
    services.delivery_run(delivery_id=ok.pk, number=1)
    failing = services.endpoint_test(owner=alice, endpoint_id=mine.pk)
    services.delivery_run(delivery_id=failing.pk, number=1)
    return {"mine": mine, "theirs": theirs, "ok": ok, "failing": failing}


@pytest.mark.parametrize("url", [ENDPOINTS, ATTEMPTS, DELIVERIES, EVENTS])
def test_lists_load_for_a_superuser(staff, hooks, url):
    response = staff.get(url)

    assert response.status_code == 200
    assert len(listed(response)) >= 2


def test_change_pages_are_read_only_and_never_show_the_secret(staff, hooks):
    mine = hooks["mine"]
    attempt = DeliveryAttempt.objects.filter(endpoint=mine).first()
    pages = {
        f"{ENDPOINTS}{mine.pk}/change/": mine.url,
        f"{ATTEMPTS}{attempt.pk}/change/": attempt.delivery.event_id,
        f"{DELIVERIES}{hooks['ok'].pk}/change/": hooks["ok"].event_id,
        f"{EVENTS}{hooks['ok'].event_id}/change/": "ping",
    }
    for url, shown in pages.items():
        response = staff.get(url)
        assert response.status_code == 200, url
        page = html(response)
        assert shown in page
        assert 'name="_save"' not in page
        assert mine.secret not in page
        assert mine.secret_encrypted not in page


@pytest.mark.parametrize("url", [ENDPOINTS, ATTEMPTS, DELIVERIES, EVENTS])
def test_nothing_can_be_added_or_deleted(staff, hooks, url):
    listing = staff.get(url)

    assert staff.get(f"{url}add/").status_code == 403
    assert "delete_selected" not in html(listing)
    assert f'href="{url}add/"' not in html(listing)


def test_endpoints_cannot_be_deleted(staff, hooks):
    mine = hooks["mine"]

    assert staff.post(f"{ENDPOINTS}{mine.pk}/delete/", {"post": "yes"}).status_code == 403
    staff.post(ENDPOINTS, {"action": "delete_selected", "_selected_action": [str(mine.pk)]})
    assert WebhookEndpoint.objects.filter(pk=mine.pk).exists()


def test_disable_action_disables_through_the_service(staff, admin_user, alice, hooks, receiver):
    mine, theirs = hooks["mine"], hooks["theirs"]
    off, _secret = services.endpoint_create(owner=alice, url=receiver.url("/off"), events=["*"])
    services.endpoint_update(owner=alice, endpoint_id=off.pk, changes={"enabled": False})
    selected = [str(mine.pk), str(theirs.pk), str(off.pk)]

    response = staff.post(ENDPOINTS, {"action": "disable", "_selected_action": selected}, follow=True)

    assert response.status_code == 200
    assert "2 endpoints disabled. 1 was already disabled." in html(response)
    for endpoint in (mine, theirs):
        endpoint.refresh_from_db()
        assert (endpoint.enabled, endpoint.disabled_reason) == (False, "disabled by an administrator")
        assert endpoint.disabled_at is not None
    off.refresh_from_db()
    assert off.disabled_reason == "disabled by its owner"
    # The failed ping was waiting for its retry: it ends as failed, never sent again.
    assert Delivery.objects.get(pk=hooks["failing"].pk).status == Status.FAILED
    entries = AuditLog.objects.filter(action="webhook_endpoint_admin_disable", user=admin_user)
    assert sorted(entries.values_list("resource_id", flat=True)) == sorted([str(mine.pk), str(theirs.pk)])


def test_staff_without_change_permission_has_no_disable_action(hooks):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookendpoint"))
    client = Client()
    client.force_login(viewer)

    response = client.get(ENDPOINTS)

    assert response.status_code == 200
    assert 'value="disable"' not in html(response)
    client.post(ENDPOINTS, {"action": "disable", "_selected_action": [str(hooks["mine"].pk)]})
    hooks["mine"].refresh_from_db()
    assert hooks["mine"].enabled


def test_filters_and_search(staff, hooks):
    mine, theirs = hooks["mine"], hooks["theirs"]
    services.endpoint_admin_disable(endpoint_id=theirs.pk)
    failed = DeliveryAttempt.objects.get(status=Status.FAILED)
    ok = DeliveryAttempt.objects.get(status=Status.SUCCEEDED)

    assert listed(staff.get(ENDPOINTS, {"enabled__exact": "0"})) == [theirs.pk]
    assert listed(staff.get(ENDPOINTS, {"q": "bob@example.com"})) == [theirs.pk]
    assert listed(staff.get(ENDPOINTS, {"q": "/alice"})) == [mine.pk]
    assert listed(staff.get(ATTEMPTS, {"status": "failed"})) == [failed.pk]
    assert listed(staff.get(ATTEMPTS, {"trigger": "manual"})) == []
    assert set(listed(staff.get(ATTEMPTS, {"event_type": "ping"}))) == {failed.pk, ok.pk}
    assert listed(staff.get(ATTEMPTS, {"event_type": "token.purchased"})) == []
    assert listed(staff.get(ATTEMPTS, {"q": ok.delivery.event_id})) == [ok.pk]
    assert listed(staff.get(ATTEMPTS, {"endpoint": str(mine.pk)})) == listed(staff.get(ATTEMPTS))
    assert listed(staff.get(DELIVERIES, {"status": "succeeded"})) == [hooks["ok"].pk]
    assert set(listed(staff.get(EVENTS, {"event_type": "ping"}))) == {hooks["ok"].event_id, hooks["failing"].event_id}
    assert listed(staff.get(EVENTS, {"q": "alice"})) == list(
        Event.objects.filter(user=mine.owner).order_by("-created_at").values_list("pk", flat=True)
    )
    created = mine.created_at
    by_day = {"created_at__year": created.year, "created_at__month": created.month, "created_at__day": created.day}
    assert set(listed(staff.get(ENDPOINTS, by_day))) == {mine.pk, theirs.pk}


def test_endpoint_list_links_to_its_delivery_log(staff, hooks):
    mine = hooks["mine"]

    assert f'href="{ATTEMPTS}?endpoint={mine.pk}"' in html(staff.get(ENDPOINTS))
