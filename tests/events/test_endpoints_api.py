"""``/api/v1/webhook-endpoints``: managing endpoints, the secret shown once, validation, ownership."""

import json
from decimal import Decimal

import pytest
from standardwebhooks.webhooks import Webhook

from accounts.models import AuditLog
from events.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from events.registry import EVENT_TYPES
from wallet import services as wallet

pytestmark = pytest.mark.django_db

BASE = "/api/v1/webhook-endpoints"


@pytest.fixture
def client(as_user, alice):
    return as_user(alice)


def create(client, url, events=("*",), **extra):
    return client.post(BASE, {"url": url, "events": list(events), **extra}, format="json")


def test_create_shows_the_secret_once(client, receiver, alice):
    response = create(client, receiver.url(), ["token.purchased", "balance.charged"], description="ERP")
    assert response.status_code == 201
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["url"] == receiver.url()
    assert body["events"] == ["token.purchased", "balance.charged"]
    assert (body["description"], body["enabled"], body["status"], body["disabled_reason"]) == (
        "ERP",
        True,
        "enabled",
        "",
    )
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert endpoint.owner == alice and endpoint.secret == body["secret"]
    # Stored encrypted, never answered again.
    assert body["secret"] not in endpoint.secret_encrypted
    assert "secret" not in client.get(f"{BASE}/{endpoint.pk}").json()
    assert all("secret" not in item for item in client.get(BASE).json())
    assert AuditLog.objects.filter(action="webhook_endpoint_create").count() == 1
    assert body["secret"] not in json.dumps(list(AuditLog.objects.values("details")))


def test_list_get_patch_delete(client, receiver):
    first = create(client, receiver.url("/one")).json()
    second = create(client, receiver.url("/two"), ["session.started"]).json()
    assert [e["id"] for e in client.get(BASE).json()] == [second["id"], first["id"]]
    assert client.get(f"{BASE}/{first['id']}").json()["url"] == receiver.url("/one")

    changed = client.patch(
        f"{BASE}/{first['id']}",
        {"url": receiver.url("/new"), "events": ["token.revoked"], "description": "d", "enabled": False},
        format="json",
    )
    assert changed.status_code == 200
    body = changed.json()
    assert (body["url"], body["events"], body["description"]) == (receiver.url("/new"), ["token.revoked"], "d")
    assert (body["enabled"], body["status"], body["disabled_reason"]) == (False, "disabled", "disabled by its owner")
    again = client.patch(f"{BASE}/{first['id']}", {"enabled": True}, format="json").json()
    assert (again["enabled"], again["disabled_reason"], again["disabled_at"]) == (True, "", None)

    assert client.delete(f"{BASE}/{first['id']}").status_code == 204
    assert client.get(f"{BASE}/{first['id']}").status_code == 404
    assert [e["id"] for e in client.get(BASE).json()] == [second["id"]]


def test_unknown_event_types_are_refused_with_the_valid_ones_listed(client, receiver):
    response = create(client, receiver.url(), ["token.purchased", "token.exploded"])
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("Unknown event types: token.exploded. Valid types: ")
    assert all(t in detail for t in EVENT_TYPES)
    assert create(client, receiver.url(), []).status_code == 400
    assert create(client, receiver.url(), ["ping"]).status_code == 400
    assert client.post(BASE, {"url": receiver.url(), "events": "token.purchased"}, format="json").status_code == 400
    assert WebhookEndpoint.objects.count() == 0


def test_star_subscribes_to_everything(client, receiver):
    assert create(client, receiver.url(), ["token.purchased", "*"]).json()["events"] == ["*"]


@pytest.mark.parametrize(
    "url, detail",
    [
        ("http://example.com/hook", "The URL must use https"),
        ("ftp://example.com/hook", "The URL must use https"),
        ("https:///hook", "The URL has no host"),
        ("https://user:pw@example.com/hook", "The URL must not contain a user name or password"),
        ("https://10.0.0.1/hook", "Webhooks are not sent to private networks: 10.0.0.1 is a private address"),
        ("https://127.0.0.1/hook", "Webhooks are not sent to private networks: 127.0.0.1 is a loopback address"),
        ("https://169.254.169.254/x", "Webhooks are not sent to private networks: 169.254.169.254 is a link-local"),
        ("https://[::1]/hook", "Webhooks are not sent to private networks: ::1 is a loopback address"),
        ("https://224.0.0.1/hook", "Webhooks are not sent to private networks: 224.0.0.1 is a multicast address"),
        ("https://localhost/hook", "Webhooks are not sent to private networks: localhost resolves to"),
        ("not a url", "The URL must use https"),
    ],
)
def test_bad_or_private_urls_are_refused(client, url, detail):
    response = create(client, url)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)
    assert response.json()["url"] == [response.json()["detail"]]
    assert WebhookEndpoint.objects.count() == 0


def test_private_targets_and_http_pass_with_the_settings(client, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    assert create(client, "https://10.0.0.1/hook").status_code == 201
    assert create(client, "http://10.0.0.1/hook").status_code == 400
    settings.WEBHOOKS_ALLOW_HTTP = True
    assert create(client, "http://10.0.0.1/hook").status_code == 201


def test_a_public_https_url_is_accepted_without_the_settings(client):
    assert create(client, "https://93.184.215.14/webhooks/zenzefi").status_code == 201


def test_at_most_ten_endpoints(client, receiver):
    for n in range(10):
        assert create(client, receiver.url(f"/{n}")).status_code == 201
    response = create(client, receiver.url("/11"))
    assert response.status_code == 400
    assert response.json()["detail"] == "At most 10 webhook endpoints per user"
    assert WebhookEndpoint.objects.count() == 10


def test_the_test_event_is_a_signed_ping(client, receiver, django_capture_on_commit_callbacks):
    endpoint = create(client, receiver.url()).json()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{BASE}/{endpoint['id']}/test")
    assert response.status_code == 202
    body = response.json()
    assert body["event_type"] == "ping" and body["status"] == "pending" and body["event_id"].startswith("evt_")
    (request,) = receiver.requests
    sent = Webhook(endpoint["secret"]).verify(request["body"], request["headers"])
    assert sent["type"] == "ping" and sent["id"] == body["event_id"] == request["headers"]["webhook-id"]
    assert sent["data"]["endpoint_id"] == endpoint["id"]
    log = client.get(f"{BASE}/{endpoint['id']}/deliveries").json()
    assert [(i["event_type"], i["status"], i["response_code"]) for i in log["items"]] == [("ping", "succeeded", 200)]


def test_a_ping_goes_only_to_the_endpoint_tested(client, receiver, django_capture_on_commit_callbacks):
    tested = create(client, receiver.url("/tested")).json()
    create(client, receiver.url("/other"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{BASE}/{tested['id']}/test")
    assert [r["path"] for r in receiver.requests] == ["/tested"]


def test_redeliver_sends_the_same_event_again(client, receiver, alice, django_capture_on_commit_callbacks):
    endpoint = create(client, receiver.url()).json()
    with django_capture_on_commit_callbacks(execute=True):
        wallet.mock_deposit(user=alice, amount=Decimal("5"), actor=wallet.SYSTEM)
    attempt = client.get(f"{BASE}/{endpoint['id']}/deliveries").json()["items"][0]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{BASE}/{endpoint['id']}/deliveries/{attempt['id']}/redeliver")
    assert response.status_code == 202
    assert response.json()["event_id"] == attempt["event_id"]
    first, second = receiver.requests
    assert first["body"] == second["body"]
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == attempt["event_id"]
    log = client.get(f"{BASE}/{endpoint['id']}/deliveries").json()
    assert [(i["attempt"], i["trigger"], i["status"]) for i in log["items"]] == [
        (2, "manual", "succeeded"),
        (1, "scheduled", "succeeded"),
    ]
    # The delivery's own id works too.
    with django_capture_on_commit_callbacks(execute=True):
        by_delivery = client.post(f"{BASE}/{endpoint['id']}/deliveries/{attempt['delivery_id']}/redeliver")
    assert by_delivery.status_code == 202 and len(receiver.requests) == 3


def test_deliveries_are_paginated_newest_first(client, receiver, alice, django_capture_on_commit_callbacks):
    endpoint = create(client, receiver.url()).json()
    for amount in ("1", "2", "3"):
        with django_capture_on_commit_callbacks(execute=True):
            wallet.mock_deposit(user=alice, amount=Decimal(amount), actor=wallet.SYSTEM)
    page = client.get(f"{BASE}/{endpoint['id']}/deliveries?limit=2&offset=1").json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (3, 2, 1, 2)
    events = list(Event.objects.order_by("-created_at").values_list("id", flat=True))
    assert [i["event_id"] for i in page["items"]] == events[1:3]
    assert client.get(f"{BASE}/{endpoint['id']}/deliveries?limit=0").status_code == 400


def test_someone_elses_endpoint_is_404_everywhere(as_user, alice, bob, receiver, django_capture_on_commit_callbacks):
    endpoint = create(as_user(alice), receiver.url()).json()
    with django_capture_on_commit_callbacks(execute=True):
        wallet.mock_deposit(user=alice, amount=Decimal("5"), actor=wallet.SYSTEM)
    attempt = DeliveryAttempt.objects.get()
    other = as_user(bob)
    url = f"{BASE}/{endpoint['id']}"
    answers = [
        other.get(url),
        other.patch(url, {"enabled": False}, format="json"),
        other.delete(url),
        other.post(f"{url}/rotate-secret"),
        other.post(f"{url}/test"),
        other.get(f"{url}/deliveries"),
        other.post(f"{url}/deliveries/{attempt.pk}/redeliver"),
    ]
    assert [a.status_code for a in answers] == [404] * 7
    assert {a.json()["detail"] for a in answers} == {"Webhook endpoint not found"}
    assert other.get(BASE).json() == []
    assert len(receiver.requests) == 1 and DeliveryAttempt.objects.count() == 1
    assert WebhookEndpoint.objects.get().enabled
    # Bob's own endpoint cannot redeliver Alice's delivery either.
    own = create(other, receiver.url("/bob")).json()
    assert other.post(f"{BASE}/{own['id']}/deliveries/{attempt.pk}/redeliver").status_code == 404
    assert client_404(other, "not-a-uuid")


def client_404(client, endpoint_id) -> bool:
    return client.get(f"{BASE}/{endpoint_id}").status_code == 404


def test_rotate_secret_answers_the_new_secret_once(client, receiver):
    endpoint = create(client, receiver.url()).json()
    rotated = client.post(f"{BASE}/{endpoint['id']}/rotate-secret")
    assert rotated.status_code == 200
    secret = rotated.json()["secret"]
    assert secret.startswith("whsec_") and secret != endpoint["secret"]
    stored = WebhookEndpoint.objects.get(pk=endpoint["id"])
    assert (stored.secret, stored.previous_secret) == (secret, endpoint["secret"])


def test_a_disabled_endpoint_cannot_be_tested_or_redelivered(client, receiver):
    endpoint = create(client, receiver.url()).json()
    client.patch(f"{BASE}/{endpoint['id']}", {"enabled": False}, format="json")
    response = client.post(f"{BASE}/{endpoint['id']}/test")
    assert response.status_code == 409
    assert response.json()["detail"] == "Webhook endpoint is disabled; enable it first"
    assert Delivery.objects.count() == 0


def test_the_api_wants_a_login(api):
    assert api.get(BASE).status_code == 403
    assert api.post(BASE, {"url": "https://example.com", "events": ["*"]}, format="json").status_code == 403
    assert WebhookEndpoint.objects.count() == 0
