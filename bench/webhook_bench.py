"""Purchase API latency with outgoing webhooks on and off, in one run, and the time the deliveries take, on loopback.

    python bench/webhook_bench.py [--purchases 1000] [--block 100] [--users 10] [--concurrency 1] [--no-held]

What it does (see bench/README.md, "Webhooks: purchase latency with deliveries on and off"):

1. drops and recreates the database ``zenzefi_webhookbench``, flushes Redis
   db 12 (cache) and db 13 (Celery broker), runs ``manage.py migrate``, then
   creates ``--users`` users without endpoints and ``--users`` with, each with
   10,000 ZNC and a JWT, through the real services (``manage.py shell -c``);
2. starts the receiver (this script with ``--serve-receiver``, its own
   process: a threading stdlib HTTP server on 127.0.0.1 that answers 200 to
   every POST and keeps when it arrived, its path, its ``webhook-*`` headers
   and body), our app (``uvicorn zenzefi.asgi:application --workers 2``, as
   docs/deploy.md sizes it for 2 cores) and a Celery worker as docs/deploy.md
   runs it (``celery -A zenzefi worker --concurrency 2``, prefork, queue
   ``celery``, Redis broker, Prometheus multiprocess directories); no beat;
3. gives each user of the second group two endpoints through the API
   (``POST /api/v1/webhook-endpoints``, ``/a`` and ``/b`` on the receiver,
   events ``["token.purchased"]``: one delivery per purchase and endpoint,
   so 1,000 purchases make exactly 2,000);
4. warm-up (untimed): ``--warmup`` API purchases per user; then, with the
   worker stopped, a service-level diagnostic in ``manage.py shell``: SQL
   statements and time per ``token_purchase`` with and without endpoints,
   the time in the on-commit publish (``events.services._publish``) and the
   Redis commands it sends; waits for every warm-up delivery, clears the
   receiver;
5. ``--purchases`` timed ``POST /api/v1/tokens/purchase`` per phase
   (``{"duration_hours": 1, "scope": "full"}``) over keep-alive
   ``httpx.Client`` objects, ``--concurrency`` clients at once (1: sequential),
   in blocks of ``--block`` taking turns: "off" (users without endpoints),
   "on" (users with endpoints, worker running), and unless ``--no-held``
   "held" (the same users, the worker's process group stopped with SIGSTOP
   for the block and continued after it: the request path's own cost, and a
   backlog to drain). After a block with webhooks it waits, untimed, until
   the receiver has all its deliveries and no Delivery row is pending, so
   no delivery runs during another block. CPU of the app, the worker and
   the whole machine (``/proc/stat``) is counted per block; ``--waits``
   also samples PostgreSQL's wait events per phase;
6. reports median / p95 / p99 / mean / max of the purchase latency per
   phase, the median ratios (target: on/off ≤ 1.10, PASS/FAIL), when the
   deliveries arrived (purchase start → arrival, each block's tail after its
   last purchase, the blocks' time first purchase → last delivery, the wall
   time from the first "on" purchase to the last delivery), deliveries/s
   and the worker's CPU per delivery;
7. verifies: exactly purchases × 2 unique (webhook-id, path) arrivals per
   phase with webhooks, no duplicate, every signature valid
   (``standardwebhooks``), every Delivery row ``succeeded`` after one
   attempt, none for the users without endpoints (psycopg); in a ``finally``
   it stops every process, flushes both Redis dbs and drops the database.

Worker options for experiments: ``--worker-concurrency``, ``--worker-nice``,
``--worker-conn-max-age`` (the web keeps CONN_MAX_AGE=0).
"""

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

# Importing proxy_bench first re-runs this script under .venv/bin/python when needed.
from proxy_bench import HOST, PG_ADMIN, ROOT, Server, db_recreate, free_port, log, manage, redis_cli, wait_port

# isort: split
import httpx  # from the project's virtualenv
import psycopg

DB_NAME = "zenzefi_webhookbench"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
CACHE_URL = "redis://127.0.0.1:6379/12"
BROKER_URL = "redis://127.0.0.1:6379/13"
TARGET_RATIO = 1.10
EVENT_TYPE = "token.purchased"
PATHS = ("/a", "/b")
PURCHASE = {"duration_hours": 1, "scope": "full"}
# Phases, in turn in every round: users without endpoints; users with 2 endpoints and the worker
# running; the same users with the worker stopped (SIGSTOP) during the block and resumed after it.
PHASES = ("off", "on", "held")
LABELS = {"off": "webhooks off", "on": "webhooks on", "held": "webhooks on, worker stopped"}
GROUP_OF = {"off": "off", "on": "on", "held": "on"}
TICKS = os.sysconf("SC_CLK_TCK")

SETUP_SNIPPET = """
import json
from decimal import Decimal
from accounts.services import user_create
from accounts.tokens import jwt_pair
from wallet.models import Transaction
from wallet.services import balance_change
users = []
for group in ("off", "on"):
    for n in range({users}):
        user = user_create(email=f"{{group}}{{n}}@bench.example.com", username=f"bench-{{group}}-{{n}}", password=None)
        balance_change(user_id=user.pk, amount=Decimal("10000"), kind=Transaction.Kind.DEPOSIT, description="bench")
        users.append({{"group": group, "id": str(user.pk), "jwt": jwt_pair(user)["access_token"]}})
print("BENCH_JSON " + json.dumps(users))
"""

# Runs in ``manage.py shell``: the service the API calls, without HTTP, for a user without and one with endpoints.
DIAGNOSTIC_SNIPPET = """
import json, re, statistics, time
from django.db import connection
from django.test.utils import CaptureQueriesContext
from redis.connection import AbstractConnection
import events.services as es
from access.services import token_purchase
from accounts.models import User
publish, commands, publishing = [], {{}}, [False]
original = es._publish
def timed_publish(*args, **kwargs):
    publishing[0] = True
    started = time.perf_counter()
    try:
        return original(*args, **kwargs)
    finally:
        publish.append(time.perf_counter() - started)
        publishing[0] = False
es._publish = timed_publish
def count(name):
    if publishing[0]:
        name = (name.decode() if isinstance(name, bytes) else str(name)).upper()
        commands[name] = commands.get(name, 0) + 1
send_command, pack_commands = AbstractConnection.send_command, AbstractConnection.pack_commands
def counted_send_command(self, *args, **kwargs):
    count(args[0])
    return send_command(self, *args, **kwargs)
def counted_pack_commands(self, cmds):
    cmds = list(cmds)
    for cmd in cmds:
        count(cmd[0])
    return pack_commands(self, cmds)
AbstractConnection.send_command, AbstractConnection.pack_commands = counted_send_command, counted_pack_commands
groups = {{"off": User.objects.get(pk="{off_id}"), "on": User.objects.get(pk="{on_id}")}}
seen = {{g: {{"queries": [], "seconds": [], "kinds": {{}}, "publish": []}} for g in groups}}
for n in range({count} + 1):  # the two users take turns; the first round is a warm-up
    if n == 1:
        commands.clear()  # the first publish also connects (HELLO, SELECT, ...)
    for group, user in groups.items():
        publish.clear()
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            token_purchase(user=user, duration_hours=1, scope="full")
            elapsed = time.perf_counter() - started
        if n == 0:
            continue
        s = seen[group]
        s["seconds"].append(elapsed)
        s["publish"] += publish
        s["queries"].append(len(captured.captured_queries))
        for q in captured.captured_queries:
            sql = q["sql"].lstrip()
            table = re.search(r'(?:FROM|INTO|UPDATE)\\s+"([^"]+)"', sql)
            kind = sql.split(None, 1)[0].upper() + " " + (table.group(1) if table else "")
            s["kinds"][kind] = s["kinds"].get(kind, 0) + 1
publishes = len(seen["on"]["publish"]) + len(seen["off"]["publish"])
result = {{
    group: {{
        "queries": statistics.median(s["queries"]),
        "ms": 1000 * statistics.median(s["seconds"]),
        "publish_calls": len(s["publish"]) / {count},
        "publish_ms": 1000 * statistics.median(s["publish"]) if s["publish"] else 0.0,
        "kinds": {{k: v / {count} for k, v in sorted(s["kinds"].items())}},
    }}
    for group, s in seen.items()
}}
result["on"]["redis"] = ", ".join(f"{{k}} ×{{v / max(1, publishes):g}}" for k, v in sorted(commands.items()))
result["off"]["redis"] = ""
print("BENCH_JSON " + json.dumps(result))
"""


# --- the receiver (its own process) ---------------------------------------------------------------


def serve_receiver(port: int) -> None:
    """Answer 200 to every POST and keep (arrival, path, webhook-* headers, body); GET /_count, /_dump; POST /_reset."""
    import http.server

    records: list[dict] = []
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the worker's httpx client expects
        disable_nagle_algorithm = True  # headers and body go out as separate writes: no delayed-ACK stall

        def log_message(self, *args):
            pass

        def _answer(self, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.monotonic()  # CLOCK_MONOTONIC: the same clock as the bench process's
            if self.path == "/_reset":
                with lock:
                    records.clear()
                return self._answer(b"{}", "application/json")
            names = ("webhook-id", "webhook-timestamp", "webhook-signature")
            headers = {name: self.headers.get(name, "") for name in names}
            with lock:
                records.append(
                    {"at": arrived, "wall": time.time(), "path": self.path, "headers": headers, "body": body.decode()}
                )
            self._answer(b"ok")

        def do_GET(self):
            with lock:
                snapshot = list(records) if self.path == "/_dump" else None
                count = len(records)
            answer = snapshot if snapshot is not None else {"count": count}
            self._answer(json.dumps(answer).encode(), "application/json")

    server = http.server.ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True
    server.serve_forever()


# --- measuring --------------------------------------------------------------------------------------


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine so far (all of /proc/stat's first line but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / TICKS


class Worker(Server):
    """The Celery worker: its whole process group can be stopped and continued."""

    paused = False

    def pause(self) -> None:
        os.killpg(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.paused:
            os.killpg(self.process.pid, signal.SIGCONT)
            self.paused = False

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.resume()
        super().stop()


def percentile(samples: list[float], percent: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[percent - 1]


def received(receiver: httpx.Client) -> int:
    return receiver.get("/_count").json()["count"]


def wait_received(receiver: httpx.Client, expected: int, timeout: float) -> float:
    """Wait until the receiver has ``expected`` POSTs; the monotonic time it saw them all by (polled every 5 ms)."""
    deadline = time.monotonic() + timeout
    while (count := received(receiver)) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the receiver has {count} of {expected} deliveries after {timeout:.0f} s")
        time.sleep(0.005)
    return time.monotonic()


def purchase_block(clients: list[httpx.Client], users: list[dict], count: int, out: list[dict], phase: str) -> None:
    """``count`` purchases, one lane per client at once, each lane with its own users and keep-alive client."""
    lanes = len(clients)
    errors: list[BaseException] = []

    def run(lane: int) -> None:
        try:
            mine = users[lane::lanes]
            for i in range(lane, count, lanes):
                user = mine[(i // lanes) % len(mine)]
                started = time.monotonic()
                response = clients[lane].post("/api/v1/tokens/purchase", json=PURCHASE, headers=user["auth"])
                ended = time.monotonic()
                if response.status_code != 201:
                    raise RuntimeError(f"purchase: HTTP {response.status_code} {response.text[:300]}")
                token = response.json()["id"]
                out.append({"phase": phase, "user": user["id"], "token": token, "start": started, "end": ended})
        except BaseException as exc:
            errors.append(exc)

    if lanes == 1:
        run(0)
    else:
        threads = [threading.Thread(target=run, args=(lane,)) for lane in range(lanes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


def db_rows(query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5) as conn:
        return conn.execute(query, params).fetchall()


def settled(timeout: float) -> None:
    """Wait until no delivery is pending: the worker has recorded every result (polled every 10 ms)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5) as conn:
        while pending := conn.execute("SELECT count(*) FROM events_delivery WHERE status = 'pending'").fetchone()[0]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{pending} deliveries still pending after {timeout:.0f} s")
            time.sleep(0.01)


def snippet_json(env: dict[str, str], code: str) -> dict | list:
    out = manage(env, "shell", "-c", code)
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])
    raise RuntimeError(f"no result from manage.py shell:\n{out}")


class WaitSampler(threading.Thread):
    """Every 20 ms: what the bench database's busy backends wait on, tallied under the phase running (``--waits``)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.phase = ""
        self.samples: dict[str, int] = {}
        self.counts: dict[tuple[str, str, str], int] = {}  # (phase, whose, wait) -> samples
        self.halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            while not self.halt.wait(0.02):
                phase = self.phase
                if not phase:
                    continue
                rows = conn.execute(
                    "SELECT application_name, coalesce(wait_event_type || ':' || wait_event, 'running') "
                    "FROM pg_stat_activity WHERE datname = %s AND state = 'active' AND pid <> pg_backend_pid()",
                    (DB_NAME,),
                ).fetchall()
                self.samples[phase] = self.samples.get(phase, 0) + 1
                for whose, wait in rows:
                    key = (phase, whose or "?", wait)
                    self.counts[key] = self.counts.get(key, 0) + 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=1000, help="timed purchases per phase (default 1000)")
    parser.add_argument("--block", type=int, default=100, help="purchases per phase before switching (default 100)")
    parser.add_argument("--users", type=int, default=10, help="users per phase (default 10)")
    parser.add_argument("--concurrency", type=int, default=1, help="clients sending at once (default 1: sequential)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed API purchases per user first (default 5)")
    parser.add_argument("--diagnostic", type=int, default=20, help="service-level purchases per phase (default 20)")
    parser.add_argument("--drain-timeout", type=float, default=120, help="seconds a block's deliveries may take")
    parser.add_argument(
        "--held",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also a phase with the worker stopped during each block (default: yes)",
    )
    parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument("--worker-nice", type=int, default=0, help="run the Celery worker under nice -n N (default 0)")
    parser.add_argument(
        "--worker-conn-max-age",
        type=int,
        default=0,
        help="CONN_MAX_AGE for the worker only (default 0, as deployed: a new database connection per task)",
    )
    parser.add_argument(
        "--waits", action="store_true", help="sample what PostgreSQL backends wait on, per phase (every 20 ms)"
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--serve-receiver", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        return args
    if not (10 <= args.purchases <= 100_000 and 1 <= args.block <= args.purchases):
        parser.error("purchases 10..100000, block 1..purchases")
    if not (1 <= args.concurrency <= args.users <= 100 and 0 <= args.warmup <= 100 and 1 <= args.diagnostic <= 200):
        parser.error("concurrency 1..users, users ..100, warmup 0..100, diagnostic 1..200")
    if not (1 <= args.worker_concurrency <= 16 and 0 <= args.worker_nice <= 19 and args.worker_conn_max_age >= 0):
        parser.error("worker concurrency 1..16, nice 0..19, CONN_MAX_AGE >= 0")
    return args


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through main()'s finally


def main() -> int:
    args = parse_args()
    if args.serve_receiver:
        serve_receiver(args.serve_receiver)
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    logdir = Path(tempfile.mkdtemp(prefix="zenzefi-webhookbench-"))
    app_port, receiver_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": CACHE_URL,
        "CELERY_BROKER_URL": BROKER_URL,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ENV_FILE": "",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "RATE_LIMIT_API": "100000000/60",
        "WEBHOOKS_ALLOW_HTTP": "true",
        "WEBHOOKS_ALLOW_PRIVATE": "true",
    }
    servers: list[Server] = []
    clients: list[httpx.Client] = []
    log(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; logs in {logdir}")
    try:
        log(f"database {DB_NAME}: drop, create, migrate; Redis db 12 and 13: flush")
        db_recreate(name=DB_NAME)
        for url in (CACHE_URL, BROKER_URL):
            redis_cli("flushdb", url=url)
        manage(env, "migrate", "--noinput")
        users = snippet_json(env, SETUP_SNIPPET.format(users=args.users))
        for user in users:
            user["auth"] = {"Authorization": f"Bearer {user['jwt']}"}
        by_group = {group: [u for u in users if u["group"] == group] for group in ("off", "on")}

        receiver_argv = [sys.executable, str(Path(__file__).resolve()), "--serve-receiver", str(receiver_port)]
        receiver_server = Server("receiver", receiver_argv, env, logdir, receiver_port)
        servers.append(receiver_server)
        app_argv = [sys.executable, "-m", "uvicorn", "zenzefi.asgi:application", "--host", HOST]
        app_argv += ["--port", str(app_port), "--workers", "2", "--no-access-log", "--no-server-header"]
        # Prometheus multiprocess mode as docs/deploy.md's units set it: one directory for the web, one for the worker.
        metrics_dirs = {name: logdir / "metrics" / name for name in ("web", "worker")}
        for directory in metrics_dirs.values():
            directory.mkdir(parents=True)
        web_env = {
            **env,
            "PGAPPNAME": "web",  # libpq's default application_name: tells the backends apart in pg_stat_activity
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dirs["web"]),
            "PROMETHEUS_WORKER_DIR": str(metrics_dirs["worker"]),
        }
        app = Server("app", [*app_argv, "--log-level", "warning"], web_env, logdir, app_port)
        servers.append(app)
        worker_argv = [str(ROOT / ".venv" / "bin" / "celery"), "-A", "zenzefi", "worker", "--loglevel=INFO"]
        worker_argv += [
            f"--concurrency={args.worker_concurrency}",
            "--pool=prefork",
            "-Q",
            "celery",
            "--hostname=bench@%h",
        ]
        if args.worker_nice:
            worker_argv = ["nice", "-n", str(args.worker_nice), *worker_argv]
        worker_env = {
            **env,
            "PGAPPNAME": "worker",
            "CONN_MAX_AGE": str(args.worker_conn_max_age),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dirs["worker"]),
        }
        worker = Worker("celery-worker", worker_argv, worker_env, logdir, 0)
        servers.append(worker)
        for server in (receiver_server, app):
            wait_port(server.port)

        receiver = httpx.Client(base_url=receiver_server.url, timeout=10, trust_env=False)
        clients.append(receiver)
        lanes = [httpx.Client(base_url=app.url, timeout=30, trust_env=False) for _ in range(args.concurrency)]
        clients += lanes

        secret_of: dict[tuple[str, str], str] = {}  # (user id, path) -> whsec_...
        api = lanes[0]
        for user in by_group["on"]:
            for path in PATHS:
                body = {"url": receiver_server.url + path, "events": [EVENT_TYPE], "description": f"bench {path}"}
                response = api.post("/api/v1/webhook-endpoints", json=body, headers=user["auth"])
                if response.status_code != 201:
                    raise RuntimeError(f"endpoint create: HTTP {response.status_code} {response.text[:300]}")
                secret_of[(user["id"], path)] = response.json()["secret"]
        log(f"{args.users} users per phase; each 'on' user has {len(PATHS)} endpoints ({', '.join(PATHS)})")

        log(f"warm-up: {args.warmup} untimed purchases per user, then the service-level diagnostic")
        warm: list[dict] = []
        for group, members in by_group.items():
            purchase_block(lanes, members, args.warmup * len(members), warm, "warm-" + group)
        wait_received(receiver, len(PATHS) * args.warmup * args.users, args.drain_timeout)  # the worker is up
        settled(args.drain_timeout)
        worker.pause()  # the diagnostic measures the service alone, with no delivery running beside it
        try:
            diagnostic = snippet_json(
                env,
                DIAGNOSTIC_SNIPPET.format(
                    off_id=by_group["off"][0]["id"], on_id=by_group["on"][0]["id"], count=args.diagnostic
                ),
            )
        finally:
            worker.resume()
        warm_deliveries = len(PATHS) * (args.warmup * args.users + args.diagnostic + 1)  # +1: its warm-up round
        wait_received(receiver, warm_deliveries, args.drain_timeout)
        settled(args.drain_timeout)
        time.sleep(0.5)
        extra = received(receiver) - warm_deliveries
        receiver.post("/_reset")
        log(f"warm-up: {warm_deliveries} deliveries arrived ({extra} more than expected); receiver cleared")

        phases = PHASES if args.held else PHASES[:2]
        log(f"timed: {args.purchases} purchases per phase ({', '.join(phases)}), blocks of {args.block}")
        purchases: list[dict] = []
        blocks: list[dict] = []
        expected = 0
        done = 0
        meters = {"app": app.cpu_seconds, "worker": worker.cpu_seconds, "machine": machine_cpu_seconds}
        sampler = WaitSampler() if args.waits else None
        if sampler:
            sampler.start()
        loop_started = time.monotonic()
        while done < args.purchases:
            count = min(args.block, args.purchases - done)
            for phase in phases:
                block = {"phase": phase, "count": count}
                if phase == "held":
                    worker.pause()
                before = {name: read() for name, read in meters.items()}
                block["start"] = time.monotonic()
                if sampler:
                    sampler.phase = phase
                try:
                    purchase_block(lanes, by_group[GROUP_OF[phase]], count, purchases, phase)
                finally:
                    block["end"] = time.monotonic()
                    if sampler:
                        sampler.phase = ""
                    block["cpu"] = {name: read() - before[name] for name, read in meters.items()}
                    if phase == "held":
                        worker.resume()
                if phase == "off":
                    if received(receiver) != expected:
                        raise RuntimeError("deliveries arrived during an 'off' block")
                    block["cpu_all"] = block["cpu"]
                else:
                    expected += len(PATHS) * count
                    block["drained"] = wait_received(receiver, expected, args.drain_timeout)
                    settled(args.drain_timeout)  # the worker has recorded them too: nothing spills into the next block
                    block["cpu_all"] = {name: read() - before[name] for name, read in meters.items()}
                blocks.append(block)
            done += count
        loop_seconds = time.monotonic() - loop_started
        if sampler:
            sampler.halt.set()
            sampler.join(timeout=5)
        time.sleep(1.0)  # late duplicates, if any, would arrive now
        arrivals = receiver.get("/_dump").json()

        # --- verification ---------------------------------------------------------------------
        import time_machine
        from standardwebhooks import Webhook

        purchase_of = {p["token"]: p for p in purchases}
        keys = [(a["headers"]["webhook-id"], a["path"]) for a in arrivals]
        unique = set(keys)
        bad_signatures, unmatched = 0, 0
        delay: dict[str, list[float]] = {"on": [], "held": []}  # purchase start -> arrival, ms
        arrived: dict[str, list[float]] = {"on": [], "held": []}
        for a in arrivals:
            document = json.loads(a["body"])
            purchase = purchase_of.get(document.get("data", {}).get("token_id"))
            if purchase is None or purchase["phase"] == "off" or document.get("type") != EVENT_TYPE:
                unmatched += 1
                continue
            delay[purchase["phase"]].append(1000 * (a["at"] - purchase["start"]))
            arrived[purchase["phase"]].append(a["at"])
            try:
                # Checked as the receiver would have at arrival: the library refuses timestamps over 5 minutes old.
                with time_machine.travel(a["wall"], tick=False):
                    Webhook(secret_of[(purchase["user"], a["path"])]).verify(a["body"], a["headers"])
            except Exception:
                bad_signatures += 1
        webhook_tokens = [p["token"] for p in purchases if p["phase"] != "off"]
        rows = db_rows(
            "SELECT d.status, d.attempts, count(*) FROM events_delivery d JOIN events_event e ON e.id = d.event_id "
            "WHERE e.type = %s AND e.data->>'token_id' = ANY(%s) GROUP BY 1, 2",
            (EVENT_TYPE, webhook_tokens),
        )
        delivery_rows = {(status, attempts): n for status, attempts, n in rows}
        off_rows = db_rows(
            "SELECT count(*) FROM events_delivery d JOIN events_event e ON e.id = d.event_id "
            "WHERE e.user_id::text = ANY(%s)",
            ([u["id"] for u in by_group["off"]],),
        )[0][0]
        attempt_rows = db_rows("SELECT status, count(*) FROM events_deliveryattempt GROUP BY 1")

        # --- report ----------------------------------------------------------------------------
        want = len(PATHS) * args.purchases * (len(phases) - 1)
        lat = {ph: [1000 * (p["end"] - p["start"]) for p in purchases if p["phase"] == ph] for ph in phases}
        blocks_of = {ph: [b for b in blocks if b["phase"] == ph] for ph in phases}
        purchase_seconds = {ph: sum(b["end"] - b["start"] for b in blocks_of[ph]) for ph in phases}

        def cpu_ms(phase: str, meter: str, key: str = "cpu") -> float:
            return 1000 * sum(b[key][meter] for b in blocks_of[phase]) / sum(b["count"] for b in blocks_of[phase])

        print()
        print(
            f"== webhooks on/off, {time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f} =="
        )
        mode = "sequential" if args.concurrency == 1 else f"{args.concurrency} clients at once"
        print(
            f"{args.purchases} POST /api/v1/tokens/purchase per phase ({mode}, keep-alive httpx), blocks of "
            f"{args.block} in turn ({loop_seconds:.1f} s); app: uvicorn, 2 workers; Celery worker: prefork, "
            f"concurrency {args.worker_concurrency}, nice {args.worker_nice}, CONN_MAX_AGE {args.worker_conn_max_age}; "
            f"{args.users} users without endpoints, {args.users} with {len(PATHS)} on {EVENT_TYPE}"
        )
        print(
            "| phase | median ms | p95 ms | p99 ms | mean ms | max ms | purchases/s | app CPU ms/purchase "
            "| worker CPU ms/purchase | machine CPU ms/purchase |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        )
        medians = {}
        for phase in phases:
            values = lat[phase]
            medians[phase] = statistics.median(values)
            print(
                f"| {LABELS[phase]} | {medians[phase]:.2f} | {percentile(values, 95):.2f} | "
                f"{percentile(values, 99):.2f} | {statistics.fmean(values):.2f} | {max(values):.2f} | "
                f"{len(values) / purchase_seconds[phase]:.0f} | {cpu_ms(phase, 'app'):.2f} | "
                f"{cpu_ms(phase, 'worker', 'cpu_all'):.2f} | {cpu_ms(phase, 'machine', 'cpu_all'):.2f} |"
            )
        print("(worker and machine CPU of a block with webhooks: until its deliveries were all recorded)")
        ratio = medians["on"] / medians["off"]
        for phase in phases[1:]:
            block_ratios = [
                statistics.median(lat[phase][i : i + args.block]) / statistics.median(lat["off"][i : i + args.block])
                for i in range(0, args.purchases, args.block)
            ]
            print(
                f"median ratio {phase}/off = {medians[phase] / medians['off']:.3f} "
                f"({1000 * (medians[phase] - medians['off']):+.0f} µs); mean ratio "
                f"{statistics.fmean(lat[phase]) / statistics.fmean(lat['off']):.3f}; per block: "
                + ", ".join(f"{r:.2f}" for r in block_ratios)
            )
        print()
        on_blocks = blocks_of["on"]
        tails = [1000 * (b["drained"] - b["end"]) for b in on_blocks]
        on_seconds = sum(b["drained"] - b["start"] for b in on_blocks)
        last_on = max(p["end"] for p in purchases if p["phase"] == "on")
        if delay["on"]:
            print(
                f"webhooks on: purchase start -> arrival median {statistics.median(delay['on']):.1f} ms, "
                f"p95 {percentile(delay['on'], 95):.1f} ms, max {max(delay['on']):.1f} ms"
            )
        print(
            f"  each block's last delivery came {statistics.median(tails):.0f} ms after its last purchase "
            f"(median of {len(tails)} blocks; max {max(tails):.0f} ms)"
        )
        print(
            f"  all {len(delay['on'])} deliveries: {on_seconds:.2f} s from the first purchase to the last delivery, "
            f"blocks summed (the purchases alone: {purchase_seconds['on']:.2f} s) = "
            f"{len(delay['on']) / on_seconds:.0f} deliveries/s"
        )
        print(
            f"  wall clock from the first 'on' purchase to the last 'on' delivery: "
            f"{max(arrived['on']) - on_blocks[0]['start']:.2f} s (other phases' blocks in between); "
            f"the last came {1000 * (max(arrived['on']) - last_on):.0f} ms after the last purchase"
        )
        print(f"  worker CPU per delivery: {cpu_ms('on', 'worker', 'cpu_all') / len(PATHS):.2f} ms")
        if "held" in phases:
            held_blocks = blocks_of["held"]
            backlog = [(b["drained"] - b["end"], len(PATHS) * b["count"]) for b in held_blocks]
            print(
                f"worker stopped: each backlog of {backlog[0][1]} deliveries drained in "
                f"{statistics.median(s for s, _ in backlog):.2f} s after the worker was resumed (median of "
                f"{len(backlog)}) = {sum(n for _, n in backlog) / sum(s for s, _ in backlog):.0f} deliveries/s; "
                f"worker CPU per delivery {cpu_ms('held', 'worker', 'cpu_all') / len(PATHS):.2f} ms"
            )
        if sampler:
            print()
            print(
                "PostgreSQL backends of the bench database during the purchase blocks, by application_name and "
                "wait event: average number active (pg_stat_activity every 20 ms)"
            )
            for phase in phases:
                polls = max(1, sampler.samples.get(phase, 0))
                parts = []
                for whose in ("web", "worker"):
                    waits = sorted(
                        ((n, wait) for (ph, who, wait), n in sampler.counts.items() if ph == phase and who == whose),
                        reverse=True,
                    )
                    if waits:
                        parts.append(f"{whose}: " + ", ".join(f"{wait} {n / polls:.2f}" for n, wait in waits[:6]))
                print(f"  {LABELS[phase]} ({polls} polls): " + ("; ".join(parts) or "none active"))
        print()
        print("service level (manage.py shell, token_purchase, no HTTP, worker stopped), per purchase, median:")
        for group, d in diagnostic.items():
            print(
                f"  {group}: {d['queries']:g} SQL statements, {d['ms']:.2f} ms, {d['publish_calls']:g} publishes "
                f"of {d['publish_ms']:.2f} ms each, Redis commands per publish: {d['redis'] or 'none'}"
            )
        off_kinds, on_kinds = diagnostic["off"]["kinds"], diagnostic["on"]["kinds"]
        more = {k: on_kinds.get(k, 0) - off_kinds.get(k, 0) for k in {*off_kinds, *on_kinds}}
        print("  statements the endpoints add: " + (", ".join(f"{k} ×{v:g}" for k, v in more.items() if v) or "none"))
        on_d, off_d = diagnostic["on"], diagnostic["off"]
        publishing = on_d["publish_calls"] * on_d["publish_ms"]
        print(
            f"  with endpoints: {on_d['ms'] - off_d['ms']:+.2f} ms per purchase, of which {publishing:.2f} ms "
            f"publishing after the commit ({100 * publishing / max(1e-9, on_d['ms'] - off_d['ms']):.0f} %)"
        )
        print()
        checks = {
            f"receiver: {len(unique)} unique (webhook-id, path) of {want} expected": len(unique) == want,
            f"receiver: {len(keys) - len(unique)} duplicates": len(keys) == len(unique),
            f"receiver: {unmatched} arrivals matching no timed purchase with webhooks": unmatched == 0,
            f"signatures: {bad_signatures} invalid of {len(arrivals)}": bad_signatures == 0,
            f"Delivery rows of the timed events: {delivery_rows}": delivery_rows == {("succeeded", 1): want},
            f"Delivery rows for the events of users without endpoints: {off_rows}": off_rows == 0,
            f"DeliveryAttempt rows by status: {dict(attempt_rows)}": all(s == "succeeded" for s, _ in attempt_rows),
        }
        for text, ok in checks.items():
            print(f"{'ok  ' if ok else 'BAD '} {text}")
        verdict = "PASS" if ratio <= TARGET_RATIO and all(checks.values()) else "FAIL"
        print(
            f"{verdict}  median latency with webhooks on / off = {ratio:.3f} (target ≤ {TARGET_RATIO:.2f}); "
            f"all {want} deliveries {'checked' if all(checks.values()) else 'NOT all correct'}"
        )
        shutil.rmtree(logdir, ignore_errors=True)
        return 0 if verdict == "PASS" else 1
    except Exception:
        for server in servers:
            tail = server.log_tail()
            if tail:
                print(f"--- {server.name} log tail ---\n{tail}", file=sys.stderr)
        print(f"logs kept in {logdir}", file=sys.stderr)
        raise
    finally:
        for client in clients:
            client.close()
        for server in reversed(servers):
            server.stop()
        for url in (CACHE_URL, BROKER_URL):
            with contextlib.suppress(Exception):
                redis_cli("flushdb", url=url)
        if not args.keep_db:
            with contextlib.suppress(Exception):
                db_recreate(drop_only=True, name=DB_NAME)
        log("processes stopped, Redis db 12 and 13 flushed" + ("" if args.keep_db else f", database {DB_NAME} dropped"))


if __name__ == "__main__":
    sys.exit(main())
