"""The embedded default (SQLite, no Redis) shares its state between the web and the worker.

Each test runs real processes against a fresh SQLite file, with DATABASE_URL
and REDIS_URL unset as on a bare machine: the web is uvicorn serving our ASGI
app, the "worker" runs what a Celery task runs in a separate interpreter.
"""

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.servers import ROOT, process_server

# Unset, as on a bare machine (scripts/test sets them for the rest of the suite).
SERVICES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
SETUP = "import django, json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'zenzefi.settings'; django.setup()\n"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, zenzefi_url):
    """The environment of an embedded-default install with a migrated SQLite file (and its cache table)."""
    env = {k: v for k, v in os.environ.items() if k not in {*SERVICES, "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(
        ENV_FILE="",
        DEBUG="false",
        DATABASE_URL=f"sqlite:///{tmp_path_factory.mktemp('embedded') / 'db.sqlite3'}",
        ZENZEFI_TARGET_URL=zenzefi_url,
        LOG_LEVEL="WARNING",
    )
    # DATABASE_URL names a temp file; the rest is the embedded default (no REDIS_URL).
    for command in (["migrate", "--noinput"],):  # migrate alone also makes the cache table
        done = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return env


def run(env: dict, code: str):
    """Run ``code`` in a new Django process; it prints one JSON value, returned here."""
    done = subprocess.run(
        [sys.executable, "-c", SETUP + code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_cache_is_shared_by_every_process(embedded):
    backend = run(
        embedded, "from django.conf import settings; print(json.dumps(settings.CACHES['default']['BACKEND']))"
    )
    run(embedded, "from django.core.cache import cache; cache.set('shared', 42); print(1)")

    assert backend == "django.core.cache.backends.db.DatabaseCache"
    assert run(embedded, "from django.core.cache import cache; print(cache.get('shared'))") == 42


def test_the_workers_health_report_reaches_the_web(embedded):
    stored = run(
        embedded, "from zenzefi import health, tasks; tasks.health_check(); print(json.dumps(health.current()))"
    )
    with process_server(embedded, unset=SERVICES) as web:
        body = httpx.get(web + "/health").json()
    dashboard = run(
        embedded,
        "from analytics.dashboard import dashboard_figures; h = dashboard_figures()['health'];"
        "print(json.dumps(h and {'status': h['status'], 'checks': {c['name']: str(c['label']) for c in h['checks']}}))",
    )

    assert body["timestamp"] == stored["timestamp"]  # the worker's report, not one the web made itself
    assert body["status"] == "healthy"
    assert set(body["checks"]) == {"database", "cache", "zenzefi"}  # no "redis" where there is none
    assert body["checks"]["cache"]["status"] == "up"
    assert body["checks"]["cache"]["backend"] == "database"
    assert dashboard == {
        "status": "healthy",
        "checks": {"database": "Database", "cache": "Cache (database)", "zenzefi": "Zenzefi"},
    }


def test_device_sessions_and_token_invalidation_cross_processes(embedded):
    made = run(
        embedded,
        "from decimal import Decimal; from accounts.services import user_create; from access import services;"
        "from wallet.services import balance_change;"
        "u = user_create(email='w@example.com', username='workshop', password='Correct-Horse-42');"
        "balance_change(user_id=u.pk, amount=Decimal('10'), kind='deposit', description='funding');"
        "t = services.token_purchase(user=u, duration_hours=1);"
        "print(json.dumps({'secret': t.secret, 'id': str(t.pk), 'user': str(u.pk)}))",
    )
    device_a = {"X-Access-Token": made["secret"], "X-Device-ID": "device-A-000001"}
    device_b = {"X-Access-Token": made["secret"], "X-Device-ID": "device-B-000002"}
    with process_server(embedded, unset=SERVICES) as web:
        first = httpx.get(web + "/api/v1/proxy/echo", headers=device_a)
        other = httpx.get(web + "/api/v1/proxy/echo", headers=device_b)
        time.sleep(1.5)  # the web adds the counted bytes to the session once a second
        seen = run(
            embedded,
            "from proxy import sessions; from proxy.services import sessions_flush;"
            "live = sessions.snapshot_all(); flushed = sessions_flush();"
            "from proxy.models import ProxySession; row = ProxySession.objects.get();"
            "from analytics.models import UsageDay; day = UsageDay.objects.get();"
            "print(json.dumps({'live': live, 'flushed': flushed, 'requests': row.request_count,"
            " 'bytes_out': row.bytes_out, 'rolled_up': [day.requests, day.bytes_out == row.bytes_out]}))",
        )
        # The worker revokes the token: its cache drop must reach the web's next request.
        run(
            embedded,
            "from access import services; from accounts.models import User;"
            f"services.token_revoke(user=User.objects.get(pk='{made['user']}'), token_id='{made['id']}'); print(1)",
        )
        after_revoke = httpx.get(web + "/api/v1/proxy/echo", headers=device_a)
        closed = run(embedded, "from proxy.services import sessions_flush; print(json.dumps(sessions_flush()))")

    assert (first.status_code, other.status_code, after_revoke.status_code) == (200, 409, 401)
    live = seen["live"][made["id"]]
    assert live["device"] == "device-A-000001"
    assert int(live["req"]) == 1
    assert int(live["bout"]) > 0
    assert seen["flushed"] == {"flushed": 1, "closed": 0}
    assert (seen["requests"], seen["bytes_out"] > 0) == (1, True)
    assert seen["rolled_up"] == [1, True]  # the usage rollup runs on SQLite too
    assert closed == {"flushed": 1, "closed": 1}


def test_rate_limit_windows_are_shared(embedded):
    hit = "from zenzefi import ratelimit as r; d = r.hit('api', 'user-1', r.Rate(2, 60)); print(json.dumps(d.allowed))"

    assert [run(embedded, hit) for _ in range(3)] == [True, True, False]
    assert (
        run(
            embedded,
            "from zenzefi import ratelimit as r; print(json.dumps(r.check('api', 'user-1', r.Rate(2, 60)).allowed))",
        )
        is False
    )


RACE = """
import threading, time, uuid
from proxy import sessions
start = time.time() + {delay}
outcomes = []
def touch(n):
    time.sleep(max(0, start - time.time()))
    result = sessions._touch_shared('{token}', f'device-{{n}}-{tag}', time.time(), 300, str(uuid.uuid4()), '', 't')
    outcomes.append(result.outcome)
threads = [threading.Thread(target=touch, args=(n,)) for n in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(outcomes))
"""


def test_device_rule_is_atomic_across_processes(embedded):
    token = "race-" + os.urandom(4).hex()
    code = [SETUP + RACE.format(delay=3, token=token, tag=tag) for tag in "ab"]
    racers = [
        subprocess.Popen([sys.executable, "-c", c], cwd=ROOT, env=embedded, stdout=subprocess.PIPE, text=True)
        for c in code
    ]
    outcomes = [json.loads(racer.communicate(timeout=60)[0].strip().splitlines()[-1]) for racer in racers]

    # Eight devices at once, from two processes: one opens the session, seven are refused.
    assert sorted(outcomes[0] + outcomes[1]) == ["conflict"] * 7 + ["new"]
