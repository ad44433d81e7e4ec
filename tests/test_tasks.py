"""Beat tasks: each one's effect, and running it twice changes nothing more."""

import asyncio
import datetime as dt
import os
import subprocess
import sys

import pytest
import time_machine
from django.core.cache import cache

from access import services as access
from access.models import AccessToken
from access.tasks import expire_tokens
from accounts.models import AuditLog
from accounts.tasks import prune_audit
from proxy import sessions
from proxy.models import ProxySession
from proxy.services import session_open
from proxy.tasks import flush_sessions
from tests.helpers import fund
from tests.servers import ROOT

pytestmark = pytest.mark.django_db


def test_expired_tokens_are_marked_and_no_longer_valid(alice):
    fund(alice, "30")
    old = access.token_purchase(user=alice, duration_hours=1)
    fresh = access.token_purchase(user=alice, duration_hours=12)
    never_used = access.token_purchase(user=alice, duration_hours=1)
    with time_machine.travel(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)):
        access.token_activate(token_id=old.pk)
        assert access.token_validate(old.secret) is not None  # cached back then
    access.token_activate(token_id=fresh.pk)

    first = expire_tokens()
    second = expire_tokens()

    assert (first, second) == (1, 0)
    old.refresh_from_db()
    assert old.expired_at == old.expires_at
    assert access.token_validate(old.secret) is None
    assert cache.get(access.FACTS_CACHE_KEY.format(old.secret_digest)) is None
    assert AccessToken.objects.filter(expired_at__isnull=False).count() == 1
    assert access.token_validate(fresh.secret) is not None
    assert access.token_validate(never_used.secret) is not None


def test_old_audit_rows_are_pruned(alice, settings):
    settings.AUDIT_RETENTION_DAYS = 30
    AuditLog.objects.create(action="old", created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=31))
    AuditLog.objects.create(action="recent", created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=29))

    assert (prune_audit(), prune_audit()) == (1, 0)
    assert set(AuditLog.objects.values_list("action", flat=True)) >= {"recent"}
    assert not AuditLog.objects.filter(action="old").exists()


def test_idle_sessions_are_closed_and_counters_flushed_once(alice, settings):
    fund(alice, "10")
    token = access.token_purchase(user=alice, duration_hours=1)
    touch = asyncio.run(
        sessions.touch(token_id=str(token.pk), device_id="device-000001", ip="10.0.0.1", user_agent="t")
    )
    session_open(
        session_id=touch.session_id,
        token_id=str(token.pk),
        user_id=str(alice.pk),
        device_id="device-000001",
        ip="10.0.0.1",
        user_agent="t",
        mode="header",
        started=touch.started,
    )
    asyncio.run(sessions.touch(token_id=str(token.pk), device_id="device-000001", ip="10.0.0.1", user_agent="t"))

    live = flush_sessions()
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 0
    closed = flush_sessions()
    again = flush_sessions()

    assert live == {"flushed": 1, "closed": 0}
    assert closed == {"flushed": 1, "closed": 1}
    assert again == {"flushed": 0, "closed": 0}
    session = ProxySession.objects.get()
    assert (session.request_count, session.end_reason) == (2, "idle")
    assert session.ended_at is not None


def test_every_scheduled_task_is_registered_with_the_worker(settings):
    """In a fresh process, as a worker starts: what the worker would know, not what this test run imported."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='zenzefi.settings'; django.setup();"
        "from zenzefi.celery import app; app.loader.import_default_modules(); print(' '.join(sorted(app.tasks)))"
    )
    env = {**os.environ, "ENV_FILE": ""}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled == {
        "zenzefi.health_check",
        "proxy.flush_sessions",
        "access.expire_tokens",
        "access.renew_tokens",
        "access.renew_tiers",
        "access.expire_gifts",
        "accounts.prune_audit",
        "accounts.replay_cache_repairs",
        "events.outbox_scan",
        "events.prune",
        "notifications.scan",
    }
    assert scheduled <= set(result.stdout.split()), result.stderr


def test_open_sessions_without_live_state_are_closed_when_idle(alice):
    fund(alice, "10")
    token = access.token_purchase(user=alice, duration_hours=1)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    ProxySession.objects.create(
        token=token, user=alice, device_id="device-000001", started_at=long_ago, last_activity=long_ago
    )

    assert flush_sessions() == {"flushed": 0, "closed": 1}
    assert flush_sessions() == {"flushed": 0, "closed": 0}
    assert ProxySession.objects.get().end_reason == "lost"
