"""Recording domain events, managing webhook endpoints, and delivering events to them.

``event_record`` runs inside the business change's transaction: the event, and
a pending delivery for every endpoint subscribed to its type, exist if and
only if the change committed. After the commit a Celery task per delivery
POSTs it; failures are retried on a fixed schedule (``RETRY_SCHEDULE``), every
try is a ``DeliveryAttempt`` row, and ``outbox_scan`` (beat) sends whatever a
lost task or a dead worker left behind.

Sending is claimed before the POST (a unique attempt row, then a conditional
update of its ``started_at``), so a task that runs twice sends once.
"""

import datetime as dt
import ipaddress
import logging
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_record
from events import consumers, registry, signing
from events.models import SECRET_PURPOSE, Delivery, DeliveryAttempt, Event, Status, WebhookEndpoint
from zenzefi import breaker, metrics
from zenzefi.errors import Conflict, DomainError, NotFound
from zenzefi.keys import fernet

logger = logging.getLogger(__name__)

# Seconds before each attempt (Svix's schedule): at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
RETRY_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
# A task handed to the broker gets this long before the outbox scan assumes it was lost.
QUEUED_GRACE = dt.timedelta(seconds=60)
# Delays shorter than this are a Celery countdown; longer ones are left to the outbox scan.
COUNTDOWN_MAX = 60
RESPONSE_BODY_CHARS = 1000
ROTATION_OVERLAP = dt.timedelta(hours=24)


class EndpointNotFound(NotFound):
    default_detail = "Webhook endpoint not found"


class DeliveryNotFound(NotFound):
    default_detail = "Delivery not found"


class InvalidEndpoint(DomainError):
    pass


class EndpointDisabled(Conflict):
    default_detail = "Webhook endpoint is disabled; enable it first"


# --- Events -------------------------------------------------------------------------------------


def event_record(*, type: str, user, data: dict) -> Event:
    """Write an event of the change being committed, and a pending delivery per subscribed endpoint.

    Must run inside the business change's transaction (the services' own
    ``transaction.atomic``). The deliveries are handed to Celery on commit.
    """
    if type not in registry.EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}: add it to events.registry.EVENT_TYPES")
    user_id = getattr(user, "pk", user)
    subscribed = [
        pk
        for pk, types in WebhookEndpoint.objects.filter(owner_id=user_id, enabled=True).values_list("id", "events")
        if registry.ALL in types or type in types
    ]
    return _record(type=type, user_id=user_id, data=data, endpoint_ids=subscribed)


def _record(*, type: str, user_id, data: dict, endpoint_ids: list) -> Event:
    if not connection.in_atomic_block:
        raise RuntimeError("event_record must run inside the transaction of the change it describes")
    now = timezone.now()
    event = Event.objects.create(type=type, user_id=user_id, data=data, created_at=now)
    if endpoint_ids:
        Delivery.objects.bulk_create(
            [Delivery(event=event, endpoint_id=pk, next_attempt_at=now, queued_at=now) for pk in endpoint_ids]
        )
    if endpoint_ids or (type != registry.PING and consumers.task_names()):
        _committed.ids.append(event.pk)
        transaction.on_commit(_dispatch_committed)
    return event


class _Committed(threading.local):
    """Events recorded by this thread's transaction, handed to Celery in one message when it commits."""

    def __init__(self):
        self.ids: list[str] = []


_committed = _Committed()


def _dispatch_committed() -> None:
    """The first on-commit hook of a transaction publishes all of its events at once; the others find none.

    An id of a rolled-back savepoint may ride along: the dispatch task skips events that don't exist.
    """
    ids, _committed.ids = _committed.ids, []
    if ids:
        from events.tasks import dispatch

        _publish(dispatch, (ids,))


def events_dispatch(*, event_ids: list[str]) -> dict:
    """After a commit, in the worker: each event's first delivery attempts (one after another, in this task),
    and a task per consumer and event. A slow endpoint delays only the same commit's other deliveries."""
    known = list(Event.objects.filter(pk__in=event_ids).exclude(type=registry.PING).values_list("pk", flat=True))
    for name in consumers.task_names():
        for event_id in known:
            task_send(name, (event_id,))
    results = [
        delivery_run(delivery_id=pk, number=1)
        for pk in Delivery.objects.filter(event_id__in=event_ids, status=Status.PENDING, scheduled=0)
        .order_by("created_at")
        .values_list("pk", flat=True)
    ]
    return {"events": len(known), "deliveries": len(results)}


# --- Handing work to Celery ---------------------------------------------------------------------


def _broker_usable() -> bool:
    """A Redis broker that just failed is skipped at once (the outbox scan sends later), not waited on."""
    return not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")) or breaker.redis.available()


def _publish(task, args: tuple, countdown: float = 0) -> bool:
    if not _broker_usable():
        logger.warning("task %s%s not queued (broker unavailable); its scan sends it", task.name, args[:1])
        return False
    try:
        task.apply_async(args=args, countdown=countdown or None, retry=False)
    except Exception as exc:  # a broker outage never fails the business action that committed
        if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
            breaker.redis.failure(exc)
        logger.warning("task %s%s not queued (%s); its scan sends it", task.name, args[:1], type(exc).__name__)
        return False
    return True


def task_send(task_name: str, args: tuple) -> bool:
    """Queue a Celery task known by name (a higher app's, which this one must not import); never raises."""
    from celery import current_app

    task = current_app.tasks.get(task_name)
    if task is None:  # not imported in this process yet: autodiscover the apps' tasks, as a worker does at start
        current_app.loader.import_default_modules()
        task = current_app.tasks.get(task_name)
    if task is None:
        logger.error("event consumer task %s is not registered; its beat scan handles the event", task_name)
        return False
    return _publish(task, args)


def _enqueue_delivery(delivery_id, number: int, countdown: float = 0) -> bool:
    from events.tasks import deliver

    return _publish(deliver, (str(delivery_id), number), countdown)


def _enqueue_attempt(attempt_id) -> bool:
    from events.tasks import send_attempt

    return _publish(send_attempt, (str(attempt_id),))


# --- Endpoints ----------------------------------------------------------------------------------


def _refusal(address: str) -> str | None:
    """What kind of non-public address this is ("loopback address", ...), or None for a public one."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_global and not ip.is_multicast:
        return None
    for kind, test in (("loopback", ip.is_loopback), ("link-local", ip.is_link_local), ("multicast", ip.is_multicast)):
        if test:
            return f"{kind} address"
    return "private address"


def target_refusal(url: str) -> str | None:
    """Why a webhook must not be sent to ``url`` (SSRF), or None. Private targets pass with WEBHOOKS_ALLOW_PRIVATE."""
    if settings.WEBHOOKS_ALLOW_PRIVATE:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        kind = _refusal(host)
    except ValueError:
        pass  # a name, not an address literal
    else:
        return f"{host} is a {kind}" if kind else None
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None  # unresolvable now: the send fails and is retried, checked again then
    for info in infos:
        kind = _refusal(info[4][0])
        if kind:
            return f"{host} resolves to {info[4][0]}, a {kind}"
    return None


def url_check(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.WEBHOOKS_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed:
        raise InvalidEndpoint("The URL must use https", field="url")
    if not parts.hostname:
        raise InvalidEndpoint("The URL has no host", field="url")
    if parts.username or parts.password:
        raise InvalidEndpoint("The URL must not contain a user name or password", field="url")
    refusal = target_refusal(url)
    if refusal:
        raise InvalidEndpoint(f"Webhooks are not sent to private networks: {refusal}", field="url")
    return url


def events_check(types) -> list[str]:
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise InvalidEndpoint('events must be a non-empty list of event types, or ["*"]', field="events")
    unknown = sorted({t for t in types if t != registry.ALL and t not in registry.EVENT_TYPES})
    if unknown:
        valid = ", ".join(sorted(registry.EVENT_TYPES))
        raise InvalidEndpoint(f"Unknown event types: {', '.join(unknown)}. Valid types: {valid}, or *", field="events")
    if registry.ALL in types:
        return [registry.ALL]
    return list(dict.fromkeys(types))


def _encrypt(secret: str) -> str:
    return fernet(SECRET_PURPOSE).encrypt(secret.encode()).decode()


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def endpoint_owned(owner: User, endpoint_id, *, lock: bool = False) -> WebhookEndpoint:
    """The owner's endpoint by id (any string); someone else's or an unknown one is a 404."""
    key = _uuid_or_none(endpoint_id)
    rows = WebhookEndpoint.objects.select_for_update() if lock else WebhookEndpoint.objects
    endpoint = rows.filter(pk=key, owner=owner).first() if key else None
    if endpoint is None:
        raise EndpointNotFound()
    return endpoint


def endpoint_create(*, owner: User, url: str, events: list, description: str = "", actor=None):
    """A new endpoint and its secret, which is shown this once. At most WEBHOOKS_MAX_ENDPOINTS per user.

    The URL's host is resolved (the SSRF check) before the transaction opens: no lookup holds a lock."""
    url = url_check(url)
    events = events_check(events)
    return _endpoint_insert(owner=owner, url=url, events=events, description=description, actor=actor)


@transaction.atomic
def _endpoint_insert(*, owner: User, url: str, events: list, description: str, actor):
    # The owner's row lock orders two simultaneous creations against the limit.
    User.objects.select_for_update().filter(pk=owner.pk).values_list("pk", flat=True).first()
    if WebhookEndpoint.objects.filter(owner=owner).count() >= settings.WEBHOOKS_MAX_ENDPOINTS:
        raise InvalidEndpoint(f"At most {settings.WEBHOOKS_MAX_ENDPOINTS} webhook endpoints per user")
    secret = signing.secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        owner=owner,
        url=url,
        events=events,
        description=(description or "")[:255],
        secret_encrypted=_encrypt(secret),
    )
    _audit(actor, "webhook_endpoint_create", endpoint, {"url": url, "events": events})
    return endpoint, secret


def endpoint_update(*, owner: User, endpoint_id, changes: dict, actor=None) -> WebhookEndpoint:
    """Change url, events, description or enabled; the new URL is checked before the row is locked."""
    changes = dict(changes)
    if "url" in changes:
        changes["url"] = url_check(changes["url"])
    if "events" in changes:
        changes["events"] = events_check(changes["events"])
    if "description" in changes:
        changes["description"] = (changes["description"] or "")[:255]
    return _endpoint_change(owner=owner, endpoint_id=endpoint_id, changes=changes, actor=actor)


@transaction.atomic
def _endpoint_change(*, owner: User, endpoint_id, changes: dict, actor) -> WebhookEndpoint:
    endpoint = endpoint_owned(owner, endpoint_id, lock=True)
    fields, changed = [], {}
    for name in ("url", "events", "description"):
        if name in changes and changes[name] != getattr(endpoint, name):
            setattr(endpoint, name, changes[name])
            fields.append(name)
            changed[name] = changes[name]
    if "enabled" in changes and bool(changes["enabled"]) != endpoint.enabled:
        changed["enabled"] = bool(changes["enabled"])
        if changes["enabled"]:
            endpoint.enabled = True
            endpoint.disabled_at = None
            endpoint.disabled_reason = ""
            endpoint.failing_since = None
            endpoint.exhausted_in_row = 0
            fields += ["enabled", "disabled_at", "disabled_reason", "failing_since", "exhausted_in_row"]
        else:
            _disable(endpoint, "disabled by its owner", cause="owner")
    if fields:
        endpoint.save(update_fields=[*fields, "updated_at"])
    if changed:
        _audit(actor, "webhook_endpoint_update", endpoint, changed)
    return endpoint


@transaction.atomic
def endpoint_delete(*, owner: User, endpoint_id, actor=None) -> None:
    endpoint = endpoint_owned(owner, endpoint_id, lock=True)
    _audit(actor, "webhook_endpoint_delete", endpoint, {"url": endpoint.url})
    endpoint.delete()


@transaction.atomic
def endpoint_rotate_secret(*, owner: User, endpoint_id, actor=None) -> tuple[WebhookEndpoint, str]:
    """A new secret, shown this once; the current one keeps signing alongside it for 24 hours."""
    endpoint = endpoint_owned(owner, endpoint_id, lock=True)
    secret = signing.secret_generate()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
    endpoint.secret_encrypted = _encrypt(secret)
    endpoint.save(
        update_fields=["previous_secret_encrypted", "previous_secret_expires_at", "secret_encrypted", "updated_at"]
    )
    _audit(actor, "webhook_secret_rotate", endpoint, {"previous_valid_until": str(endpoint.previous_secret_expires_at)})
    return endpoint, secret


@transaction.atomic
def endpoint_test(*, owner: User, endpoint_id, actor=None) -> Delivery:
    """Send a ``ping`` event to this endpoint only."""
    endpoint = endpoint_owned(owner, endpoint_id)
    if not endpoint.enabled:
        raise EndpointDisabled()
    event = _record(
        type=registry.PING,
        user_id=owner.pk,
        data={"endpoint_id": str(endpoint.pk), "message": "Test event from Zenzefi Gate"},
        endpoint_ids=[endpoint.pk],
    )
    _audit(actor, "webhook_endpoint_test", endpoint, {"event_id": event.pk})
    return Delivery.objects.get(event=event, endpoint=endpoint)


@transaction.atomic
def delivery_redeliver(*, owner: User, endpoint_id, delivery_id, actor=None) -> DeliveryAttempt:
    """Send a delivery's event again (same body, same ``webhook-id``) as a new attempt.

    ``delivery_id`` is a delivery's id or one of its attempts' (the delivery log lists attempts).
    """
    endpoint = endpoint_owned(owner, endpoint_id)
    if not endpoint.enabled:
        raise EndpointDisabled()
    key = _uuid_or_none(delivery_id)
    attempt_of = DeliveryAttempt.objects.filter(pk=key, endpoint=endpoint).values_list("delivery_id", flat=True)
    target = attempt_of.first() or key
    delivery = Delivery.objects.select_for_update().filter(pk=target, endpoint=endpoint).first() if key else None
    if delivery is None:
        raise DeliveryNotFound()
    row = _attempt_claim(delivery, trigger=DeliveryAttempt.Trigger.MANUAL)
    transaction.on_commit(lambda: _enqueue_attempt(row.pk))
    _audit(actor, "webhook_redeliver", endpoint, {"event_id": delivery.event_id, "attempt": row.attempt})
    return row


def _disable(endpoint: WebhookEndpoint, reason: str, *, cause: str) -> None:
    """Switch an endpoint off (its row is locked by the caller); its pending deliveries end as failed.

    ``cause`` (failing, owner or admin) labels webhook_endpoints_disabled_total, which the alert rules watch."""
    now = timezone.now()
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason[:255]
    endpoint.save(update_fields=["enabled", "disabled_at", "disabled_reason", "updated_at"])
    Delivery.objects.filter(endpoint=endpoint, status=Status.PENDING).update(
        status=Status.FAILED, next_attempt_at=None, queued_at=None
    )
    event_record(
        type="webhook_endpoint.disabled",
        user=endpoint.owner_id,
        data={"endpoint_id": str(endpoint.pk), "url": endpoint.url, "reason": endpoint.disabled_reason},
    )
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, reason)
    metrics.on_commit(lambda: metrics.WEBHOOK_ENDPOINTS_DISABLED.labels(cause).inc())


@transaction.atomic
def endpoint_admin_disable(*, endpoint_id, actor=None, reason: str = "disabled by an administrator") -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    if endpoint.enabled:
        _disable(endpoint, reason, cause="admin")
        _audit(actor, "webhook_endpoint_admin_disable", endpoint, {"reason": reason})
    return endpoint


def _audit(actor, action: str, obj, details: dict) -> None:
    if actor is not None:
        actor.audit(action, obj, details)
    else:
        audit_record(actor=None, action=action, obj=obj, details=details)


# --- Delivering ----------------------------------------------------------------------------------


def _attempt_claim(delivery: Delivery, *, trigger: str) -> DeliveryAttempt:
    """The next attempt's row (the delivery's row is locked by the caller)."""
    now = timezone.now()
    number = delivery.attempts + 1
    row = DeliveryAttempt.objects.create(
        delivery=delivery, endpoint_id=delivery.endpoint_id, attempt=number, trigger=trigger
    )
    delivery.attempts = number
    fields = ["attempts"]
    if trigger == DeliveryAttempt.Trigger.SCHEDULED:
        delivery.scheduled += 1
        # Should this worker die mid-request, the scan retries at the usual time, never while it may still answer.
        delay = RETRY_SCHEDULE[delivery.scheduled] if delivery.scheduled < len(RETRY_SCHEDULE) else 0
        delivery.next_attempt_at = now + max(dt.timedelta(seconds=delay), QUEUED_GRACE)
        delivery.queued_at = now
        fields += ["scheduled", "next_attempt_at", "queued_at"]
    delivery.save(update_fields=fields)
    return row


def delivery_run(*, delivery_id, number: int) -> str:
    """The delivery's ``number``-th attempt on the retry schedule: claim it, POST, record. Safe to run twice."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("endpoint", "event")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != Status.PENDING or delivery.scheduled != number - 1:
            return "skipped"
        if not delivery.endpoint.enabled:
            return "skipped"
        row = _attempt_claim(delivery, trigger=DeliveryAttempt.Trigger.SCHEDULED)
    return _send(row, delivery.endpoint, delivery.event)


@dataclass(frozen=True)
class Outcome:
    code: int | None
    body: str
    error: str
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


_client: httpx.Client | None = None


def _http() -> httpx.Client:
    global _client
    if _client is None:
        _client = httpx.Client(follow_redirects=False, limits=httpx.Limits(max_keepalive_connections=20))
    return _client


def _post(url: str, payload: bytes, headers: dict[str, str]) -> Outcome:
    started = time.monotonic()
    refusal = target_refusal(url)
    if refusal:
        return Outcome(None, "", f"refused: {refusal}"[:255], 0.0)
    timeout = settings.WEBHOOKS_TIMEOUT_SECONDS
    deadline = started + timeout
    try:
        with _http().stream("POST", url, content=payload, headers=headers, timeout=timeout) as response:
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= 4 * RESPONSE_BODY_CHARS or time.monotonic() > deadline:
                    break
            # The log keeps text: undecodable bytes are replaced, and NULs (which PostgreSQL text refuses) dropped.
            text = b"".join(chunks).decode("utf-8", errors="replace").replace("\x00", "")[:RESPONSE_BODY_CHARS]
            return Outcome(response.status_code, text, "", time.monotonic() - started)
    except httpx.TimeoutException:
        return Outcome(None, "", f"timed out after {timeout:g} s", time.monotonic() - started)
    except httpx.HTTPError as exc:
        return Outcome(None, "", f"connection failed: {type(exc).__name__}", time.monotonic() - started)


def attempt_send(*, attempt_id) -> str:
    """POST one claimed attempt (a redelivery, or one the scan found unsent), once."""
    row = DeliveryAttempt.objects.select_related("delivery__event", "endpoint").filter(pk=attempt_id).first()
    if row is None:
        return "skipped"
    return _send(row, row.endpoint, row.delivery.event)


def _send(row: DeliveryAttempt, endpoint: WebhookEndpoint, event: Event) -> str:
    """The conditional update of ``started_at`` lets only one run POST an attempt."""
    now = timezone.now()
    if not DeliveryAttempt.objects.filter(pk=row.pk, started_at__isnull=True).update(started_at=now):
        return "skipped"
    signing_secrets = [endpoint.secret]
    if endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        signing_secrets.append(endpoint.previous_secret)
    payload = signing.body(event)
    headers = signing.headers(event_id=event.id, payload=payload, signing_secrets=signing_secrets, at=now)
    outcome = _post(endpoint.url, payload, headers)
    result = "succeeded" if outcome.succeeded else "failed" if outcome.code is not None else "error"
    metrics.WEBHOOK_DELIVERIES.labels(result).inc()
    if outcome.seconds:  # a refused target was never sent to
        metrics.WEBHOOK_SECONDS.observe(outcome.seconds)
    if not outcome.succeeded:
        logger.warning(
            "webhook %s to endpoint %s attempt %s: %s",
            event.id,
            endpoint.pk,
            row.attempt,
            outcome.code if outcome.code is not None else outcome.error,
        )
    if outcome.succeeded:
        _attempt_succeeded(row, outcome, endpoint)
    else:
        _attempt_record(row, outcome)
    return result


def _outcome_fields(outcome: Outcome) -> dict:
    return {
        "response_code": outcome.code,
        "response_body": outcome.body,
        "error": outcome.error,
        "duration_ms": round(outcome.seconds * 1000),
    }


@transaction.atomic
def _attempt_succeeded(row: DeliveryAttempt, outcome: Outcome, endpoint: WebhookEndpoint) -> None:
    """The common case, without row locks: nothing is scheduled, and the endpoint is written only if it was failing."""
    DeliveryAttempt.objects.filter(pk=row.pk).update(status=Status.SUCCEEDED, **_outcome_fields(outcome))
    Delivery.objects.filter(pk=row.delivery_id).update(status=Status.SUCCEEDED, next_attempt_at=None, queued_at=None)
    if endpoint.failing_since or endpoint.exhausted_in_row:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None, exhausted_in_row=0)


@transaction.atomic
def _attempt_record(row: DeliveryAttempt, outcome: Outcome) -> None:
    """A failed attempt: the next one scheduled (or the delivery failed), the endpoint's health updated."""
    now = timezone.now()
    # Lock order everywhere: endpoint, then delivery.
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=row.endpoint_id).first()
    delivery = Delivery.objects.select_for_update().filter(pk=row.delivery_id).first()
    if endpoint is None or delivery is None:
        return  # the endpoint was deleted while its request was in flight
    row.status = Status.FAILED
    for name, value in _outcome_fields(outcome).items():
        setattr(row, name, value)
    endpoint.failing_since = endpoint.failing_since or now
    latest = row.trigger == DeliveryAttempt.Trigger.SCHEDULED and not (
        DeliveryAttempt.objects.filter(delivery=delivery, trigger=row.trigger, attempt__gt=row.attempt).exists()
    )
    if latest and delivery.status == Status.PENDING:
        if delivery.scheduled >= len(RETRY_SCHEDULE):
            delivery.status = Status.FAILED
            delivery.next_attempt_at = delivery.queued_at = None
            endpoint.exhausted_in_row += 1
        else:
            delay = RETRY_SCHEDULE[delivery.scheduled]
            delivery.next_attempt_at = row.next_attempt_at = now + dt.timedelta(seconds=delay)
            delivery.queued_at = now if delay < COUNTDOWN_MAX else None
            if delay < COUNTDOWN_MAX:
                number = delivery.scheduled + 1
                transaction.on_commit(lambda: _enqueue_delivery(delivery.pk, number, countdown=delay))
    row.save()
    delivery.save(update_fields=["status", "next_attempt_at", "queued_at"])
    endpoint.save(update_fields=["failing_since", "exhausted_in_row"])
    if endpoint.enabled:
        reason = _disable_reason(endpoint, now)
        if reason:
            _disable(endpoint, reason, cause="failing")


def _disable_reason(endpoint: WebhookEndpoint, now: dt.datetime) -> str:
    days = settings.WEBHOOKS_DISABLE_AFTER_DAYS
    if endpoint.failing_since and now - endpoint.failing_since >= dt.timedelta(days=days):
        return f"every delivery failed for {days} days"
    exhausted = settings.WEBHOOKS_DISABLE_AFTER_EXHAUSTED
    if endpoint.exhausted_in_row >= exhausted:
        return f"{exhausted} deliveries in a row failed after all retries"
    return ""


# --- Beat: the outbox scan and pruning ---------------------------------------------------------------


def outbox_scan(*, now: dt.datetime | None = None, limit: int = 500) -> dict:
    """Hand to Celery what no live task is carrying: due retries, deliveries whose task was lost
    (queued over a minute ago and never run), and claimed attempts never sent. Attempts whose worker
    died mid-request are closed as failed. Safe on two workers."""
    now = now or timezone.now()
    stale = now - QUEUED_GRACE
    lost = now - QUEUED_GRACE - dt.timedelta(seconds=settings.WEBHOOKS_TIMEOUT_SECONDS)
    DeliveryAttempt.objects.filter(status=Status.PENDING, started_at__lt=lost).update(
        status=Status.FAILED, error="no result recorded (worker lost)"
    )
    with transaction.atomic():
        due = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, next_attempt_at__lte=now, endpoint__enabled=True)
            .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=stale))
            .order_by("next_attempt_at")
            .values_list("pk", "scheduled")[:limit]
        )
        Delivery.objects.filter(pk__in=[pk for pk, _ in due]).update(queued_at=now)
    unsent = list(
        DeliveryAttempt.objects.filter(
            status=Status.PENDING, started_at__isnull=True, created_at__lt=stale
        ).values_list("pk", flat=True)[:limit]
    )
    for pk, scheduled in due:
        _enqueue_delivery(pk, scheduled + 1)
    for pk in unsent:
        _enqueue_attempt(pk)
    return {"deliveries": len(due), "attempts": len(unsent)}


def attempts_prune(*, now: dt.datetime | None = None) -> int:
    """Attempt rows older than WEBHOOKS_RETENTION_DAYS go, with finished deliveries and their events."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.WEBHOOKS_RETENTION_DAYS)
    removed, _ = DeliveryAttempt.objects.filter(created_at__lt=cutoff).delete()
    Delivery.objects.filter(created_at__lt=cutoff).exclude(status=Status.PENDING).filter(attempt_rows=None).delete()
    Event.objects.filter(created_at__lt=cutoff, deliveries=None).delete()
    return removed
