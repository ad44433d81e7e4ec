"""The proxy's rare database writes: opening, closing and flushing device sessions.

Called from the async proxy through ``sync_to_async``, and from Celery beat.
"""

import datetime as dt
import logging
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from access.models import AccessToken
from events.services import event_record
from proxy import sessions, signals
from proxy.models import ProxySession
from zenzefi import breaker

logger = logging.getLogger(__name__)


def _at(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def _facts(session: ProxySession) -> dict:
    return {
        "session_id": str(session.pk),
        "token_id": str(session.token_id),
        "device_id": session.device_id,
        "mode": session.mode,
    }


def _ended(session: ProxySession) -> None:
    """The ``session.ended`` event of a session whose row was just closed (in the caller's transaction)."""
    seconds = max(0, round((session.last_activity - session.started_at).total_seconds()))
    data = {
        **_facts(session),
        "reason": session.end_reason,
        "requests": session.request_count,
        "bytes_in": session.bytes_in,
        "bytes_out": session.bytes_out,
        "duration_seconds": seconds,
    }
    event_record(type="session.ended", user=session.user_id, data=data)


@transaction.atomic
def _end(rows, *, reason: str, **fields) -> int:
    """Close the open sessions among ``rows`` (with their last counters), one ``session.ended`` each."""
    now, closed = timezone.now(), 0
    for session in rows.filter(ended_at__isnull=True).select_for_update(skip_locked=True):
        for name, value in fields.items():
            setattr(session, name, value)
        session.ended_at, session.end_reason = now, reason
        session.save(update_fields=[*fields, "ended_at", "end_reason"])
        _ended(session)
        closed += 1
    return closed


@transaction.atomic
def session_open(
    *,
    session_id: str,
    token_id: str,
    user_id: str,
    device_id: str,
    ip: str | None,
    user_agent: str,
    mode: str,
    started: float,
    previous: dict | None = None,
) -> None:
    """Record a new device session; close the one it took over (with its last counters)."""
    if previous:
        _end(
            ProxySession.objects.filter(pk=previous["sid"]),
            reason="taken over",
            last_activity=_at(previous["last"]),
            request_count=previous["req"],
            bytes_in=previous["bin"],
            bytes_out=previous["bout"],
        )
    # Any other open row of this token is stale (e.g. Redis lost its state): close it.
    _end(ProxySession.objects.filter(token_id=token_id).exclude(pk=session_id), reason="replaced")
    try:
        with transaction.atomic():
            session = ProxySession.objects.create(
                id=session_id,
                token_id=token_id,
                user_id=user_id,
                device_id=device_id[:255],
                ip_address=ip or None,
                user_agent=(user_agent or "")[:512],
                mode=mode,
                started_at=_at(started),
                last_activity=_at(started),
                request_count=1,
            )
    except IntegrityError:
        logger.warning("session %s of token %s was opened twice", session_id, token_id)
        return
    event_record(type="session.started", user=user_id, data=_facts(session))


@transaction.atomic
def session_touch_db(
    *, token_id: str, user_id: str, device_id: str, ip: str | None, user_agent: str, mode: str
) -> sessions.Touch:
    """The device rule on the database, while Redis is unavailable: the open ``ProxySession`` row is
    the session (one per token, as the model's constraint says), so the rule still holds across
    processes, and the outage's request counts land on that row.

    The token's row lock orders two devices' first requests.
    """
    AccessToken.objects.select_for_update().filter(pk=token_id).values_list("pk", flat=True).first()
    now = timezone.now()
    current = ProxySession.objects.filter(token_id=token_id, ended_at__isnull=True).order_by("-last_activity").first()
    if current is not None and current.device_id == device_id[:255]:
        ProxySession.objects.filter(pk=current.pk).update(
            last_activity=now, request_count=F("request_count") + 1, ip_address=ip or None
        )
        return sessions.Touch("same", session_id=str(current.pk), started=current.started_at.timestamp(), stored=True)
    if current is not None and (now - current.last_activity).total_seconds() < settings.SESSION_IDLE_TIMEOUT_SECONDS:
        return sessions.Touch("conflict", other_device=current.device_id, started=current.started_at.timestamp())
    previous = None
    if current is not None:  # idle: this device takes over, and the old session ends with its counters
        previous = {
            "sid": str(current.pk),
            "last": current.last_activity.timestamp(),
            "req": current.request_count,
            "bin": current.bytes_in,
            "bout": current.bytes_out,
        }
    session_id, started = str(uuid.uuid4()), now.timestamp()
    session_open(
        session_id=session_id,
        token_id=token_id,
        user_id=user_id,
        device_id=device_id,
        ip=ip,
        user_agent=user_agent,
        mode=mode,
        started=started,
        previous=previous,
    )
    return sessions.Touch("new", session_id=session_id, started=started, stored=True)


def session_count_db(*, session_id: str, bytes_in: int, bytes_out: int) -> None:
    """Add a request's bytes to a session kept on the database (Redis unavailable)."""
    ProxySession.objects.filter(pk=session_id).update(
        bytes_in=F("bytes_in") + bytes_in, bytes_out=F("bytes_out") + bytes_out
    )


@transaction.atomic
def session_forget_db(*, session_id: str) -> None:
    """A database-kept session whose first request never reached Zenzefi was not a session: its row goes,
    and the ``session.started`` already sent is answered by a ``session.ended`` ("upstream unreached")."""
    session = ProxySession.objects.select_for_update().filter(pk=session_id, request_count=1).first()
    if session is None:
        return
    session.delete()
    session.pk, session.end_reason, session.request_count = session_id, "upstream unreached", 0
    _ended(session)


def sessions_flush(*, now: float | None = None) -> dict:
    """Write live counters to ProxySession rows; close sessions idle past SESSION_IDLE_TIMEOUT_SECONDS
    or whose token was revoked.

    Idempotent: counters are absolute totals, and a session's Redis state is
    dropped only if it still belongs to the session just closed. Safe on two
    workers at once.
    """
    import time

    now = now or time.time()
    idle = settings.SESSION_IDLE_TIMEOUT_SECONDS
    flushed = closed = 0
    try:
        live = sessions.snapshot_all()
    except Exception as exc:  # Redis down: sessions kept on the database are still closed when idle
        breaker.redis.failure(exc)
        live = {}
    # Sessions of tokens revoked since (by the owner or an admin) end now.
    revoked = {
        str(pk)
        for pk in AccessToken.objects.filter(pk__in=list(live), revoked_at__isnull=False).values_list("pk", flat=True)
    }
    touched: list[str] = []
    for token_id, state in live.items():
        session_id = state.get("sid")
        if not session_id:
            continue
        touched.append(session_id)
        last = float(state["last"])
        fields = {
            "last_activity": _at(last),
            "request_count": int(state["req"]),
            "bytes_in": int(state["bin"]),
            "bytes_out": int(state["bout"]),
        }
        rows = ProxySession.objects.filter(pk=session_id)
        if token_id in revoked or now - last >= idle:
            reason = "token revoked" if token_id in revoked else "idle"
            _end(rows, reason=reason, **fields)
            sessions.drop(token_id, session_id)
            closed += 1
        else:
            rows.update(**fields)
        flushed += 1
    # Open rows whose live state is gone (Redis lost it, or it expired): close them once they are idle.
    lost = ProxySession.objects.filter(last_activity__lt=_at(now - idle), ended_at__isnull=True).exclude(
        token_id__in=list(live)
    )
    lost_ids = [str(pk) for pk in lost.values_list("pk", flat=True)]
    closed += _end(ProxySession.objects.filter(pk__in=lost_ids), reason="lost")
    for receiver, result in signals.sessions_flushed.send_robust(sender=ProxySession, session_ids=touched + lost_ids):
        if isinstance(result, Exception):
            logger.error("sessions_flushed receiver %s failed: %r", getattr(receiver, "__name__", receiver), result)
    return {"flushed": flushed, "closed": closed}
