"""Events delivered to a real receiver on 127.0.0.1: bodies, Standard Webhooks signatures, retries, disabling."""

import datetime as dt
import json
import time
import uuid
from decimal import Decimal
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from access import services as access
from access.models import AccessToken
from events import services
from events.models import Delivery, DeliveryAttempt, Event, Status, WebhookEndpoint
from events.registry import EVENT_TYPES
from events.tasks import deliver, dispatch, send_attempt
from proxy import services as proxy
from wallet import services as wallet
from wallet.errors import InsufficientFunds

pytestmark = pytest.mark.django_db


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run a business action, then its on-commit hooks (the delivery tasks, eager here), as a commit would."""

    def run(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return run


def bodies(receiver, path=None):
    return [json.loads(r["body"]) for r in receiver.requests if path is None or r["path"] == path]


def types(receiver, path=None):
    return [b["type"] for b in bodies(receiver, path)]


def fund(user, amount="500"):
    return wallet.mock_deposit(user=user, amount=Decimal(amount), actor=wallet.SYSTEM)


def test_every_event_type_reaches_each_subscribed_endpoint_once(receiver, commit, alice):
    """Two endpoints: one takes everything, one only token events. Each business action's events arrive once
    at each endpoint subscribed to them, with the body the issue names."""
    everything, _ = services.endpoint_create(owner=alice, url=receiver.url("/all"), events=["*"])
    services.endpoint_create(owner=alice, url=receiver.url("/tokens"), events=["token.purchased", "token.revoked"])

    deposit = commit(fund, alice)
    token = commit(access.token_purchase, user=alice, duration_hours=1)
    commit(access.token_activate, token_id=token.pk)
    other = commit(access.token_purchase, user=alice, duration_hours=1)
    commit(access.token_revoke, user=alice, token_id=other.pk)
    commit(access.token_force_revoke, token_id=token.pk, actor=wallet.SYSTEM)
    started = time.time() - 30
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    session = {"token_id": str(token.pk), "user_id": str(alice.pk), "ip": None, "user_agent": "t", "mode": "header"}
    commit(proxy.session_open, session_id=first, device_id="dev-1", started=started, **session)
    previous = {"sid": first, "last": started + 20, "req": 7, "bin": 100, "bout": 2000}
    commit(proxy.session_open, session_id=second, device_id="dev-2", started=started + 25, previous=previous, **session)

    assert types(receiver, "/all") == [
        "balance.topped_up",
        "balance.charged",
        "token.purchased",
        "token.activated",
        "balance.charged",
        "token.purchased",
        "balance.topped_up",
        "token.revoked",
        "token.revoked",
        "session.started",
        "session.ended",
        "session.started",
    ]
    # webhook_endpoint.disabled: see the disabling tests; the renewal events: tests/access/test_renewal.py;
    # the gift events: test_gift_events_reach_the_senders_endpoint below; the tier events: tests/access/test_tiers.py
    assert set(types(receiver, "/all")) == set(EVENT_TYPES) - {
        "webhook_endpoint.disabled",
        "token.renewed",
        "token.renewal_failed",
        *(t for t in EVENT_TYPES if t.startswith(("gift.", "tier."))),
    }
    assert types(receiver, "/tokens") == ["token.purchased", "token.purchased", "token.revoked", "token.revoked"]
    everyone = bodies(receiver, "/all")
    assert len({b["id"] for b in everyone}) == len(everyone)
    by_type = {}
    for b in everyone:
        by_type.setdefault(b["type"], []).append(b)

    assert set(everyone[0]) == {"id", "type", "created", "data"}
    assert everyone[0]["id"].startswith("evt_") and everyone[0]["created"].endswith("Z")
    assert by_type["balance.topped_up"][0]["data"] == {
        "transaction_id": str(deposit.pk),
        "amount": "500.00",
        "balance_after": "500.00",
        "kind": "deposit",
        "reason": deposit.description,
    }
    charged = by_type["balance.charged"][0]["data"]
    price = token.cost_znc
    assert charged["amount"] == f"{price:.2f}" and charged["balance_after"] == f"{500 - price:.2f}"
    assert charged["transaction_id"] == str(token.purchase_id) and charged["kind"] == "purchase"
    assert by_type["token.purchased"][0]["data"] == {
        "token_id": str(token.pk),
        "duration_hours": 1,
        "scope": "full",
        "cost_znc": f"{price:.2f}",
        "bundle_id": None,
    }
    token.refresh_from_db()
    activated = by_type["token.activated"][0]["data"]
    assert activated["token_id"] == str(token.pk)
    assert dt.datetime.fromisoformat(activated["activated_at"]) == token.activated_at
    assert dt.datetime.fromisoformat(activated["expires_at"]) == token.activated_at + dt.timedelta(hours=1)
    assert [b["data"] for b in by_type["token.revoked"]] == [
        {"token_id": str(other.pk), "refund_znc": f"{price:.2f}", "by": "owner"},
        {"token_id": str(token.pk), "refund_znc": "0.00", "by": "admin"},
    ]
    assert by_type["balance.topped_up"][1]["data"]["kind"] == "refund"
    assert by_type["session.started"][0]["data"] == {
        "session_id": first,
        "token_id": str(token.pk),
        "device_id": "dev-1",
        "mode": "header",
    }
    assert by_type["session.ended"][0]["data"] == {
        "session_id": first,
        "token_id": str(token.pk),
        "device_id": "dev-1",
        "mode": "header",
        "reason": "taken over",
        "requests": 7,
        "bytes_in": 100,
        "bytes_out": 2000,
        "duration_seconds": 20,
    }
    assert Delivery.objects.filter(endpoint=everything, status=Status.SUCCEEDED).count() == 12
    assert Event.objects.count() == 12


def test_a_bundle_purchase_sends_one_token_purchased_per_token(receiver, commit, alice):
    from access.models import Bundle

    services.endpoint_create(owner=alice, url=receiver.url(), events=["token.purchased"])
    commit(fund, alice, "1000")
    bundle = Bundle.objects.filter(is_active=True).order_by("total_price").first()
    _bundle, tokens, _entry = commit(access.bundle_purchase, user=alice, bundle_id=bundle.pk)
    data = [b["data"] for b in bodies(receiver)]
    assert len(data) == bundle.token_count == len(tokens)
    assert {d["token_id"] for d in data} == {str(t.pk) for t in tokens}
    assert {d["bundle_id"] for d in data} == {str(bundle.pk)}
    assert sum(Decimal(d["cost_znc"]) for d in data) == bundle.total_price


def test_sessions_closed_by_the_flush_send_session_ended(receiver, commit, alice, settings):
    services.endpoint_create(owner=alice, url=receiver.url(), events=["session.ended"])
    commit(fund, alice)
    token = commit(access.token_purchase, user=alice, duration_hours=1)
    started = time.time() - 4000
    sid = str(uuid.uuid4())
    proxy.session_open(
        session_id=sid,
        token_id=str(token.pk),
        user_id=str(alice.pk),
        device_id="dev-1",
        ip=None,
        user_agent="",
        mode="cookie",
        started=started,
    )
    # No live state in Redis for it, idle for over an hour: the flush closes it as "lost".
    result = commit(proxy.sessions_flush)
    assert result["closed"] == 1
    (ended,) = bodies(receiver)
    assert ended["type"] == "session.ended"
    assert ended["data"]["session_id"] == sid and ended["data"]["reason"] == "lost"
    assert ended["data"]["mode"] == "cookie" and ended["data"]["requests"] == 1
    assert commit(proxy.sessions_flush)["closed"] == 0
    assert len(receiver.requests) == 1


def test_signature_verifies_with_the_standard_webhooks_library(receiver, commit, alice):
    _endpoint, secret = services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    assert secret.startswith("whsec_")
    commit(fund, alice)
    (request,) = receiver.requests
    headers, body = request["headers"], request["body"]
    event = Event.objects.get()
    assert headers["webhook-id"] == event.id
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("ZenzefiGate-Webhooks/")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert headers["webhook-signature"].startswith("v1,") and " " not in headers["webhook-signature"]
    assert Webhook(secret).verify(body, headers)["id"] == event.id

    changed = body.replace(b'"500.00"', b'"900.00"')
    assert changed != body
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(changed, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(services.signing.secret_generate()).verify(body, headers)


def test_a_timestamp_ten_minutes_old_is_refused_by_the_library(receiver, commit, alice):
    _endpoint, secret = services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    ten_minutes_ago = timezone.now() - dt.timedelta(minutes=10)
    with mock.patch("events.services.timezone.now", return_value=ten_minutes_ago):
        commit(fund, alice)
    (request,) = receiver.requests
    assert int(request["headers"]["webhook-timestamp"]) == int(ten_minutes_ago.timestamp())
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(request["body"], request["headers"])


@pytest.mark.parametrize("failure", ["insufficient funds", "error after the debit"])
def test_a_rolled_back_purchase_emits_nothing(receiver, commit, alice, failure):
    services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    if failure == "insufficient funds":
        with pytest.raises(InsufficientFunds):
            commit(access.token_purchase, user=alice, duration_hours=1)
    else:
        commit(fund, alice)
        receiver.requests.clear()
        Event.objects.all().delete()
        with (
            mock.patch("access.services.referral_bonus_grant", side_effect=RuntimeError("bonus failed")),
            pytest.raises(RuntimeError),
        ):
            commit(access.token_purchase, user=alice, duration_hours=1)
        alice.refresh_from_db()
        assert alice.balance == Decimal("500.00")
    assert Event.objects.count() == 0
    assert Delivery.objects.count() == 0
    assert AccessToken.objects.count() == 0
    assert receiver.requests == []


def test_a_500_then_200_is_retried_with_the_same_webhook_id(receiver, commit, alice, as_user):
    endpoint, secret = services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    receiver.answers = [500]
    commit(fund, alice)
    first, second = receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == Event.objects.get().id
    assert first["body"] == second["body"]
    Webhook(secret).verify(second["body"], second["headers"])
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (Status.SUCCEEDED, 2, None)

    log = as_user(alice).get(f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries").json()
    assert log["total"] == 2
    newest, oldest = log["items"]
    assert (newest["attempt"], newest["status"], newest["response_code"]) == (2, "succeeded", 200)
    assert (oldest["attempt"], oldest["status"], oldest["response_code"]) == (1, "failed", 500)
    assert newest["event_id"] == oldest["event_id"] == first["headers"]["webhook-id"]
    assert newest["event_type"] == "balance.topped_up"
    assert newest["response_body"] == '{"received": 2}'
    assert oldest["next_attempt_at"] is not None and newest["next_attempt_at"] is None
    assert isinstance(oldest["duration_ms"], int)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.enabled


def test_a_redirect_is_a_failure_and_is_not_followed(receiver, commit, alice):
    services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    receiver.answers = [("redirect", 302), ("redirect", 301), 200]
    commit(fund, alice)
    # Attempt 1 at once, attempt 2 five seconds later (a countdown, run at once here); then the scan's turn.
    assert [r["path"] for r in receiver.requests] == ["/hook", "/hook"]
    delivery = Delivery.objects.get()
    assert delivery.status == Status.PENDING and delivery.attempts == 2
    codes = list(DeliveryAttempt.objects.order_by("attempt").values_list("response_code", "status"))
    assert codes == [(302, "failed"), (301, "failed")]
    # Attempt 3 is due 5 minutes later: the outbox scan sends it.
    assert services.outbox_scan(now=timezone.now() + dt.timedelta(minutes=6))["deliveries"] == 1
    assert len(receiver.requests) == 3
    delivery.refresh_from_db()
    assert delivery.status == Status.SUCCEEDED


def _exhaust(receiver, commit, alice, endpoint):
    """One event whose every attempt fails; the scan is run at each retry's time until the schedule is over."""
    receiver.answers = [500] * len(services.RETRY_SCHEDULE)
    commit(fund, alice, "1")
    delivery = Delivery.objects.filter(endpoint=endpoint).latest("created_at")
    while True:
        delivery.refresh_from_db()
        if delivery.status != Status.PENDING:
            return delivery
        commit(services.outbox_scan, now=delivery.next_attempt_at + dt.timedelta(seconds=1))


def test_exhausted_retries_follow_the_schedule_then_disable_the_endpoint(receiver, commit, alice, settings):
    settings.WEBHOOKS_DISABLE_AFTER_EXHAUSTED = 3
    endpoint, _ = services.endpoint_create(owner=alice, url=receiver.url(), events=["balance.topped_up"])
    services.endpoint_create(owner=alice, url=receiver.url("/ops"), events=["webhook_endpoint.disabled"])
    delivery = _exhaust(receiver, commit, alice, endpoint)
    assert delivery.status == Status.FAILED and delivery.attempts == 8 == len(receiver.requests)
    assert {r["path"] for r in receiver.requests} == {"/hook"}
    rows = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("attempt"))
    # The retry times recorded on each failed attempt follow Svix's schedule.
    planned = [round((r.next_attempt_at - r.created_at).total_seconds()) for r in rows[:-1]]
    assert planned == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert rows[-1].next_attempt_at is None
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.exhausted_in_row == 1

    _exhaust(receiver, commit, alice, endpoint)
    _exhaust(receiver, commit, alice, endpoint)
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert endpoint.disabled_reason == "3 deliveries in a row failed after all retries"
    # The owner's other endpoint is told.
    (told,) = bodies(receiver, "/ops")
    assert told["type"] == "webhook_endpoint.disabled"
    assert told["data"] == {"endpoint_id": str(endpoint.pk), "url": receiver.url(), "reason": endpoint.disabled_reason}
    # A disabled endpoint is not sent anything more.
    sent = len(receiver.requests)
    commit(fund, alice, "1")
    assert len(receiver.requests) == sent
    assert not Delivery.objects.filter(endpoint=endpoint, status=Status.PENDING).exists()


def test_a_success_resets_the_exhausted_count(receiver, commit, alice, settings):
    endpoint, _ = services.endpoint_create(owner=alice, url=receiver.url(), events=["balance.topped_up"])
    _exhaust(receiver, commit, alice, endpoint)
    endpoint.refresh_from_db()
    assert endpoint.exhausted_in_row == 1 and endpoint.failing_since is not None
    commit(fund, alice, "1")
    endpoint.refresh_from_db()
    assert endpoint.exhausted_in_row == 0 and endpoint.failing_since is None


def test_an_endpoint_failing_for_five_days_is_disabled(receiver, commit, alice):
    endpoint, _ = services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    disabled = REGISTRY.get_sample_value("webhook_endpoints_disabled_total", {"cause": "failing"}) or 0
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - dt.timedelta(days=4))
    receiver.answers = [503, 503]
    commit(fund, alice, "1")
    endpoint.refresh_from_db()
    assert endpoint.enabled
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - dt.timedelta(days=5, hours=1))
    receiver.answers = [503]
    commit(fund, alice, "1")
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_reason == "every delivery failed for 5 days"
    assert endpoint.disabled_at is not None
    # What the WebhookEndpointsDisabled alert watches.
    assert REGISTRY.get_sample_value("webhook_endpoints_disabled_total", {"cause": "failing"}) == disabled + 1


def test_rotation_signs_with_both_secrets_for_24_hours(receiver, commit, alice):
    endpoint, old = services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    endpoint, new = services.endpoint_rotate_secret(owner=alice, endpoint_id=endpoint.pk)
    assert new != old and new.startswith("whsec_")
    commit(fund, alice, "1")
    (request,) = receiver.requests
    signatures = request["headers"]["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    Webhook(new).verify(request["body"], request["headers"])
    Webhook(old).verify(request["body"], request["headers"])
    assert endpoint.previous_secret_expires_at - timezone.now() > dt.timedelta(hours=23, minutes=59)

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())
    commit(fund, alice, "1")
    request = receiver.requests[-1]
    assert " " not in request["headers"]["webhook-signature"]
    Webhook(new).verify(request["body"], request["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(request["body"], request["headers"])


def test_a_task_run_twice_sends_once(receiver, alice):
    services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    fund(alice)  # no commit hooks: nothing sent yet
    delivery = Delivery.objects.get()
    assert deliver(str(delivery.pk), 1) == "succeeded"
    assert deliver(str(delivery.pk), 1) == "skipped"
    assert deliver(str(delivery.pk), 2) == "skipped"  # succeeded: no further attempt
    attempt = DeliveryAttempt.objects.get()
    assert send_attempt(str(attempt.pk)) == "skipped"
    assert len(receiver.requests) == 1


def test_the_outbox_scan_sends_what_the_commit_hook_never_queued(receiver, alice):
    """A worker died between the commit and the delivery: the on-commit hook never ran."""
    services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    fund(alice)  # recorded in the transaction; the on-commit hook is skipped
    assert receiver.requests == []
    assert services.outbox_scan()["deliveries"] == 0  # queued just now: its task gets a minute
    later = timezone.now() + dt.timedelta(seconds=61)
    assert services.outbox_scan(now=later)["deliveries"] == 1
    assert len(receiver.requests) == 1
    assert receiver.requests[0]["headers"]["webhook-id"] == Event.objects.get().id
    assert services.outbox_scan(now=later + dt.timedelta(minutes=5)) == {"deliveries": 0, "attempts": 0}
    assert len(receiver.requests) == 1


def test_a_claimed_attempt_never_sent_is_sent_by_the_scan(receiver, commit, alice):
    """A redelivery's task was lost: the claimed attempt row is found and sent once."""
    endpoint, _ = services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    commit(fund, alice)
    delivery = Delivery.objects.get()
    row = services.delivery_redeliver(owner=alice, endpoint_id=endpoint.pk, delivery_id=delivery.pk)  # no commit
    assert len(receiver.requests) == 1
    later = timezone.now() + dt.timedelta(seconds=61)
    assert services.outbox_scan(now=later) == {"deliveries": 0, "attempts": 1}
    assert len(receiver.requests) == 2
    row.refresh_from_db()
    assert (row.status, row.attempt, row.trigger) == ("succeeded", 2, "manual")
    assert services.outbox_scan(now=later)["attempts"] == 0


def test_a_slow_receiver_times_out_and_is_retried(receiver, commit, alice, settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.5
    services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    receiver.answers = [("slow", 1.5), 200]
    commit(fund, alice)
    first, second = DeliveryAttempt.objects.order_by("attempt")
    assert (first.status, first.response_code, first.error) == ("failed", None, "timed out after 0.5 s")
    assert first.duration_ms >= 450
    assert (second.status, second.response_code) == ("succeeded", 200)


def test_a_dead_receiver_is_a_logged_failure_not_an_error(receiver, commit, alice, caplog):
    from tests.servers import free_port

    services.endpoint_create(owner=alice, url=f"http://127.0.0.1:{free_port()}/gone", events=["*"])
    commit(fund, alice)
    rows = list(DeliveryAttempt.objects.order_by("attempt").values_list("status", "error"))
    assert rows == [("failed", "connection failed: ConnectError")] * 2
    assert "attempt 1: connection failed: ConnectError" in caplog.text
    assert Delivery.objects.get().status == Status.PENDING


def test_private_targets_are_refused_at_send_time_without_the_setting(receiver, commit, alice, settings):
    """An endpoint saved while private targets were allowed is not sent to once they no longer are."""
    services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    commit(fund, alice)
    assert receiver.requests == []
    row = DeliveryAttempt.objects.order_by("attempt").first()
    assert row.error == "refused: 127.0.0.1 is a loopback address"


def test_the_broker_down_never_fails_the_purchase(receiver, alice, caplog, django_capture_on_commit_callbacks):
    """The commit stands, the publish failure is a warning, and the outbox scan sends the delivery later."""
    from zenzefi.celery import app as celery_app

    services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    fund(alice)
    Delivery.objects.update(status=Status.SUCCEEDED)
    celery_app.conf.task_always_eager = False
    with (
        mock.patch.object(dispatch, "apply_async", side_effect=ConnectionRefusedError("broker down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        token = access.token_purchase(user=alice, duration_hours=1)
    celery_app.conf.task_always_eager = True
    assert AccessToken.objects.filter(pk=token.pk).exists()
    assert "not queued (ConnectionRefusedError); its scan sends it" in caplog.text
    assert receiver.requests == []
    assert services.outbox_scan(now=timezone.now() + dt.timedelta(minutes=2))["deliveries"] == 2
    assert sorted(types(receiver)) == ["balance.charged", "token.purchased"]


def test_delivery_metrics_count_each_result(receiver, commit, alice):
    def sample(result):
        return REGISTRY.get_sample_value("webhook_deliveries_total", {"result": result}) or 0

    def observed():
        return REGISTRY.get_sample_value("webhook_delivery_seconds_count") or 0

    before = sample("succeeded"), sample("failed"), observed()
    services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    receiver.answers = [500]
    commit(fund, alice)
    assert sample("succeeded") - before[0] == 1
    assert sample("failed") - before[1] == 1
    assert observed() - before[2] == 2


def test_old_attempts_are_pruned_after_30_days(receiver, commit, alice):
    services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    commit(fund, alice)
    commit(fund, alice)
    old = DeliveryAttempt.objects.order_by("created_at").first()
    DeliveryAttempt.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=31))
    Delivery.objects.filter(pk=old.delivery_id).update(created_at=timezone.now() - dt.timedelta(days=31))
    Event.objects.filter(deliveries__pk=old.delivery_id).update(created_at=timezone.now() - dt.timedelta(days=31))
    assert services.attempts_prune() == 1
    assert DeliveryAttempt.objects.count() == 1
    assert Delivery.objects.count() == 1 and Event.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_event_record_outside_a_transaction_is_a_programming_error(alice):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        services.event_record(type="token.purchased", user=alice, data={})
    with pytest.raises(ValueError, match="unknown event type"):
        services.event_record(type="token.exploded", user=alice, data={})


def test_an_attempt_whose_worker_died_mid_request_is_closed_and_retried(receiver, alice):
    """The POST started, then the worker died: the scan closes the attempt as failed and sends the next one."""
    services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    fund(alice)
    delivery = Delivery.objects.get()
    with transaction.atomic():
        locked = Delivery.objects.select_for_update().get(pk=delivery.pk)
        row = services._attempt_claim(locked, trigger=DeliveryAttempt.Trigger.SCHEDULED)
    DeliveryAttempt.objects.filter(pk=row.pk).update(started_at=timezone.now())  # sent, never recorded
    assert services.outbox_scan(now=timezone.now() + dt.timedelta(seconds=30))["deliveries"] == 0
    row.refresh_from_db()
    assert row.status == "pending"
    later = timezone.now() + dt.timedelta(seconds=75)
    assert services.outbox_scan(now=later)["deliveries"] == 1
    row.refresh_from_db()
    assert (row.status, row.error) == ("failed", "no result recorded (worker lost)")
    assert [r.attempt for r in DeliveryAttempt.objects.order_by("attempt")] == [1, 2]
    delivery.refresh_from_db()
    assert delivery.status == Status.SUCCEEDED and len(receiver.requests) == 1


def test_a_redelivery_during_retries_leaves_the_schedule_alone(receiver, commit, alice):
    endpoint, _ = services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    receiver.answers = [500, 500, 500]
    commit(fund, alice)  # attempts 1 and 2 (at once, then the 5 s countdown) fail
    delivery = Delivery.objects.get()
    assert (delivery.attempts, delivery.scheduled) == (2, 2)
    due = delivery.next_attempt_at
    commit(services.delivery_redeliver, owner=alice, endpoint_id=endpoint.pk, delivery_id=delivery.pk)  # fails too
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.scheduled, delivery.next_attempt_at) == (3, 2, due)
    services.outbox_scan(now=due + dt.timedelta(seconds=1))  # the third scheduled attempt: succeeds
    rows = list(DeliveryAttempt.objects.order_by("attempt").values_list("attempt", "trigger", "status"))
    assert rows == [
        (1, "scheduled", "failed"),
        (2, "scheduled", "failed"),
        (3, "manual", "failed"),
        (4, "scheduled", "succeeded"),
    ]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.scheduled) == (Status.SUCCEEDED, 3)


def test_an_endpoint_deleted_while_its_request_is_in_flight_is_skipped_quietly(receiver, alice):
    endpoint, _ = services.endpoint_create(owner=alice, url=receiver.url(), events=["*"])
    fund(alice)
    delivery = Delivery.objects.get()
    with transaction.atomic():
        row = services._attempt_claim(Delivery.objects.select_for_update().get(pk=delivery.pk), trigger="scheduled")
    original = services._post

    def post_then_delete(*args):
        outcome = original(*args)
        services.endpoint_delete(owner=alice, endpoint_id=endpoint.pk)
        return outcome

    with mock.patch.object(services, "_post", post_then_delete):
        assert services.attempt_send(attempt_id=row.pk) == "succeeded"
    assert len(receiver.requests) == 1
    assert not WebhookEndpoint.objects.exists() and not DeliveryAttempt.objects.exists()


def test_a_commit_is_one_broker_message_whatever_its_events(receiver, alice, django_capture_on_commit_callbacks):
    """A purchase records two events for two endpoints: the request publishes one task, the worker sends four."""
    from zenzefi.celery import app as celery_app

    services.endpoint_create(owner=alice, url=receiver.url("/a"), events=["*"])
    services.endpoint_create(owner=alice, url=receiver.url("/b"), events=["*"])
    fund(alice)  # not committed here: its events stay in this thread's pending list; drop them
    services._committed.ids.clear()
    Delivery.objects.update(status=Status.SUCCEEDED)
    celery_app.conf.task_always_eager = False
    published = []
    with (
        mock.patch.object(dispatch, "apply_async", side_effect=lambda **kw: published.append(kw["args"])),
        django_capture_on_commit_callbacks(execute=True),
    ):
        access.token_purchase(user=alice, duration_hours=1)
    celery_app.conf.task_always_eager = True
    (args,) = published
    (event_ids,) = args
    assert sorted(event_ids) == sorted(
        Event.objects.filter(type__in=["balance.charged", "token.purchased"]).values_list("pk", flat=True)
    )
    assert dispatch(event_ids) == {"events": 2, "deliveries": 4}
    assert sorted((r["path"], json.loads(r["body"])["type"]) for r in receiver.requests) == [
        ("/a", "balance.charged"),
        ("/a", "token.purchased"),
        ("/b", "balance.charged"),
        ("/b", "token.purchased"),
    ]
    assert dispatch(event_ids) == {"events": 2, "deliveries": 0}  # run twice: nothing sent again
    assert len(receiver.requests) == 4


def test_gift_events_reach_the_senders_endpoint(receiver, commit, alice, bob):
    from access import gifts

    services.endpoint_create(owner=alice, url=receiver.url("/gifts"), events=[t for t in EVENT_TYPES if "gift" in t])
    services.endpoint_create(owner=bob, url=receiver.url("/bob"), events=["*"])
    commit(fund, alice)
    tokens = [commit(access.token_purchase, user=alice, duration_hours=1) for _ in range(4)]
    sent = [commit(gifts.gift_send, user=alice, token_id=t.pk, recipient_email="x@example.com") for t in tokens]
    commit(gifts.gift_claim, user=bob, code=sent[0][1], accept=True)
    commit(gifts.gift_claim, user=bob, code=sent[1][1], accept=False)
    commit(gifts.gift_cancel, user=alice, gift_id=sent[2][0].pk)
    commit(gifts.gifts_expire, now=sent[3][0].expires_at)

    assert types(receiver, "/gifts") == ["gift.sent"] * 4 + [
        "gift.claimed",
        "gift.declined",
        "gift.cancelled",
        "gift.expired",
    ]
    claimed = next(b for b in bodies(receiver, "/gifts") if b["type"] == "gift.claimed")["data"]
    gift = sent[0][0]
    assert claimed == {
        "gift_id": str(gift.pk),
        "token_id": str(tokens[0].pk),
        "sender_id": str(alice.pk),
        "recipient_id": str(bob.pk),
        "duration_hours": 1,
        "scope": "full",
        "expires_at": gift.expires_at.isoformat().replace("+00:00", "Z"),
    }
    everything = json.dumps(bodies(receiver, "/gifts"))
    assert all(code not in everything for _gift, code in sent)  # the claim codes never leave the sender's page
    assert types(receiver, "/bob") == []  # the recipient's endpoints hear nothing of the sender's gifts
