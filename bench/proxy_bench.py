"""Benchmark the authenticating proxy against a bare forwarder, in one run, on loopback.

    .venv/bin/python bench/proxy_bench.py [--duration 15] [--connections 64] [--workers 2]

What it does, in order (see bench/README.md):

1. drops and recreates the database ``zenzefi_bench``, flushes Redis db 9,
   runs ``manage.py migrate``, and creates a user, a balance and a 720 h
   "full" token through the real services;
2. starts the fake Zenzefi (one uvicorn process), our app
   (``uvicorn zenzefi.asgi:application --workers N``) and the baseline
   (``bench/baseline_forwarder.py``, same worker count);
3. warms both up, then loads each with ``wrk`` for ``--duration`` seconds on
   GET /api/v1/proxy/certificates/filter (one token, one device id) and
   reports req/s, p50/p95/p99, errors, server CPU per request and the ratio;
4. a 128-connection run against the proxy; a streaming memory check (RSS of a
   1-worker proxy while 100 MB stream through it); the reference targets.

Every server it starts runs in its own process group and is stopped in a
``finally``; the database is dropped at the end. Traffic goes to 127.0.0.1 only.
"""

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

# Re-run under the project's virtualenv when started with another interpreter.
if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve():
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])

import httpx  # noqa: E402  (after the re-exec)
import psycopg  # noqa: E402

HOST = "127.0.0.1"
DB_NAME = "zenzefi_bench"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/9"
PROXY_PATH = "/api/v1/proxy/certificates/filter"
DEVICE_ID = "bench-device-0001"
TICKS = os.sysconf("SC_CLK_TCK")

# Printed by wrk's done() hook as one JSON line; latencies are in microseconds.
WRK_SCRIPT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
"""

SETUP_SNIPPET = """
from decimal import Decimal
from access.services import token_purchase
from accounts.services import user_create
from wallet.models import Transaction
from wallet.services import balance_change
user = user_create(email="bench@example.com", username="bench", password=None)
balance_change(user_id=user.pk, amount=Decimal("1000"), kind=Transaction.Kind.DEPOSIT, description="bench top-up")
token = token_purchase(user=user, duration_hours=720, scope="full")
print("BENCH_SECRET=" + token.secret)
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout:.0f} s")


# --- processes -----------------------------------------------------------------------------


class Server:
    """A process started in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path, port: int):
        self.name = name
        self.port = port
        self.logfile = logdir / f"{name}.log"
        with self.logfile.open("wb") as out:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def pids(self) -> list[int]:
        """The process and all its descendants."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.process.pid]
        while todo and len(found) < 1000:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def worker_pids(self) -> list[int]:
        """uvicorn's workers: the children of its supervisor, or the process itself with one worker."""
        descendants = [pid for pid in self.pids() if pid != self.process.pid and _comm(pid).startswith("python")]
        return descendants or [self.process.pid]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def syscalls(self) -> int:
        return sum(syscalls(pid) for pid in self.pids())

    def rss_mb(self) -> float:
        return sum(rss_kb(pid) for pid in self.worker_pids()) / 1024

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _comm(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return ""


def cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
    return 0.0


def syscalls(pid: int) -> int:
    """Read- and write-type system calls so far (/proc/<pid>/io syscr + syscw)."""
    with contextlib.suppress(OSError, ValueError):
        counts = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
        return int(counts["syscr"]) + int(counts["syscw"])
    return 0


def rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def redis_pid() -> int | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
        out = subprocess.run(
            ["redis-cli", "-h", HOST, "info", "server"], capture_output=True, text=True, timeout=5
        ).stdout
        for line in out.splitlines():
            if line.startswith("process_id:"):
                return int(line.split(":")[1])
    return None


def redis_cli(*args: str, url: str | None = None) -> str:
    """Run redis-cli against ``url`` (default: this benchmark's Redis db 9)."""
    return subprocess.run(
        ["redis-cli", "-u", url or REDIS_URL, *args], capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


# --- database ------------------------------------------------------------------------------


def db_recreate(drop_only: bool = False, name: str | None = None) -> None:
    """Drop (and unless ``drop_only``, create again) the database ``name`` (default: ``zenzefi_bench``)."""
    name = name or DB_NAME
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unexpected database name {name!r}")
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if not drop_only:
            conn.execute(f"CREATE DATABASE {name}")


def db_backends() -> list[dict]:
    """Connections to the bench database other than ours, with when each last changed state."""
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pid, backend_start, state_change, state, left(query, 100), now() FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (DB_NAME,),
        ).fetchall()
    keys = ("pid", "backend_start", "state_change", "state", "query", "now")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def db_now() -> dt.datetime:
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        return conn.execute("SELECT now()").fetchone()[0]


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args[:1])} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# --- load ----------------------------------------------------------------------------------


def wrk(url: str, *, duration: float, connections: int, threads: int, headers: dict[str, str], script: Path) -> dict:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "5s"]
    argv += ["-s", str(script)]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line[len("BENCH_JSON ") :])
            data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
            data["socket_errors"] = data["connect"] + data["read"] + data["write"] + data["timeout"]
            data["errors"] = data["socket_errors"] + data["status"]
            data["error_pct"] = 100 * data["errors"] / max(1, data["requests"])
            return data
    raise RuntimeError(f"wrk gave no result (rc {result.returncode}):\n{result.stdout}\n{result.stderr}")


def measured_run(server: Server, path: str, headers: dict, args, *, duration: float, connections: int, extra=()):
    """One wrk run, with what the server (and other watched processes) spent meanwhile, per request.

    ``cpu_<name>``: CPU seconds (utime + stime of the process tree) as microseconds per request;
    ``sys_server``: read- and write-type system calls of the server's processes per request;
    ``cpu_wrk``: the load generator's own CPU per request.
    """
    watched = {"cpu_server": server.cpu_seconds, "sys_server": server.syscalls, **dict(extra)}
    before = {name: read() for name, read in watched.items()}
    wrk_before = _children_cpu()
    result = wrk(
        server.url + path,
        duration=duration,
        connections=connections,
        threads=args.threads,
        headers=headers,
        script=args.wrk_script,
    )
    requests = max(1, result["requests"])
    result["cpu_wrk"] = 1e6 * (_children_cpu() - wrk_before) / requests
    for name, read in watched.items():
        scale = 1 if name.startswith("sys_") else 1e6
        result[name] = scale * (read() - before[name]) / requests
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fmt_row(name: str, r: dict) -> str:
    return (
        f"{name:<18} {r['rps']:>7.0f} {r['p50'] / 1000:>7.2f} {r['p95'] / 1000:>7.2f} {r['p99'] / 1000:>7.2f} "
        f"{r['requests']:>8} {r['status']:>6} {r['socket_errors']:>7} "
        f"{r['cpu_server']:>7.0f} {r['sys_server']:>6.1f} {r.get('cpu_upstream', 0):>6.0f} "
        f"{r.get('cpu_redis', 0):>6.0f} {r['cpu_wrk']:>5.0f}"
    )


HEADER_ROW = (
    f"{'target':<18} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'requests':>8} {'non2xx':>6} "
    f"{'sockerr':>7} {'cpu/req':>7} {'sys/r':>6} {'up/req':>6} {'redis':>6} {'wrk':>5}"
)


# --- memory --------------------------------------------------------------------------------


def stream_through(url: str, headers: dict, server: Server, expect_bytes: int) -> dict:
    """Stream a large response through ``server``, discarding chunks; sample its RSS meanwhile."""
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        deadline = time.monotonic() + 300
        while not stop.is_set() and time.monotonic() < deadline:
            samples.append(server.rss_mb())
            stop.wait(0.02)

    before = server.rss_mb()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    received = 0
    started = time.perf_counter()
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(60.0), trust_env=False) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            status = response.status_code
            for chunk in response.iter_raw(65536):
                received += len(chunk)
    finally:
        elapsed = time.perf_counter() - started
        time.sleep(0.5)
        stop.set()
        sampler.join(timeout=5)
    after = server.rss_mb()
    peak = max([before, after, *samples])
    return {
        "status": status,
        "bytes": received,
        "complete": received == expect_bytes,
        "seconds": elapsed,
        "mb_per_s": received / 1048576 / elapsed if elapsed else 0.0,
        "rss_before": before,
        "rss_peak": peak,
        "rss_after": after,
        "growth": peak - before,
        "samples": len(samples),
    }


# --- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds per measured wrk run (default 15)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers for proxy and baseline (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of wrk warm-up per target (default 3)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating baseline/proxy rounds (default 1)")
    parser.add_argument("--stress-duration", type=float, default=10, help="seconds of the 128-connection run")
    parser.add_argument("--stream-mb", type=int, default=100, help="size of the streamed response (default 100)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    parser.add_argument(
        "--compressed-kb",
        type=int,
        default=16,
        help="size of the gzip-compressed JSON for the compressed-answer runs; 0 skips them (default 16)",
    )
    args = parser.parse_args()
    if not (1 <= args.duration <= 600 and 1 <= args.connections <= 10000 and 1 <= args.workers <= 16):
        parser.error("duration 1..600 s, connections 1..10000, workers 1..16")
    args.rounds = max(1, min(args.rounds, 10))
    return args


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through main()'s finally: servers stopped, database dropped


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    logdir = Path(tempfile.mkdtemp(prefix="zenzefi-bench-"))
    args.wrk_script = logdir / "report.lua"
    args.wrk_script.write_text(WRK_SCRIPT)

    upstream_port, proxy_port, baseline_port = free_port(), free_port(), free_port()
    upstream_url = f"http://{HOST}:{upstream_port}"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ENV_FILE": "",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "ZENZEFI_TARGET_URL": upstream_url,
        # One token drives all the load; a per-token limit (spec: 1000/min) would turn it into 429s.
        "RATE_LIMIT_PROXY": "100000000/60",
        "BASELINE_UPSTREAM": upstream_url,
    }
    uvicorn_flags = ["--host", HOST, "--no-access-log", "--no-server-header", "--no-date-header"]
    uvicorn_flags += ["--log-level", "warning"]
    servers: list[Server] = []
    rpid = redis_pid()
    extra = [("cpu_upstream", lambda: upstream.cpu_seconds())]
    if rpid:
        extra.append(("cpu_redis", lambda: cpu_seconds(rpid)))

    def start(name: str, target: str, port: int, workers: int, **overrides: str) -> Server:
        argv = [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--workers", str(workers), *uvicorn_flags]
        server = Server(name, argv, {**env, **overrides}, logdir, port)
        servers.append(server)
        return server

    log(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"server logs in {logdir} (kept on failure)"
    )
    try:
        log(f"database {DB_NAME}: drop, create, migrate; Redis db 9: flush")
        db_recreate()
        redis_cli("flushdb")
        manage(env, "migrate", "--noinput")
        out = manage(env, "shell", "-c", SETUP_SNIPPET, timeout=120)
        secret = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("BENCH_SECRET="))
        headers = {"X-Access-Token": secret, "X-Device-ID": DEVICE_ID}

        upstream = Server(
            "fake-zenzefi",
            [sys.executable, "-m", "proxy.fake_zenzefi", "--port", str(upstream_port)],
            env,
            logdir,
            upstream_port,
        )
        servers.append(upstream)
        proxy = start("proxy", "zenzefi.asgi:application", proxy_port, args.workers)
        baseline = start("baseline", "bench.baseline_forwarder:app", baseline_port, args.workers)
        for server in servers:
            wait_port(server.port)

        # Sanity: the proxy authenticates (401 without a token) and both answer the same JSON.
        with httpx.Client(timeout=30, trust_env=False) as client:
            for attempt in range(100):
                try:
                    first = client.get(proxy.url + PROXY_PATH, headers=headers)
                    via_baseline = client.get(baseline.url + PROXY_PATH)
                    break
                except httpx.TransportError:
                    if attempt == 99:
                        raise
                    time.sleep(0.1)
            anonymous = client.get(proxy.url + PROXY_PATH, headers={"X-Device-ID": DEVICE_ID})
        if first.status_code != 200 or via_baseline.status_code != 200 or first.json() != via_baseline.json():
            raise RuntimeError(
                f"sanity check failed: proxy {first.status_code} {first.text[:200]!r}, "
                f"baseline {via_baseline.status_code}"
            )
        log(
            f"sanity: proxy 200 (token activated, session opened), without a token {anonymous.status_code}; "
            f"baseline 200, same body ({len(first.content)} bytes)"
        )

        log(f"warm-up: {args.warmup:g} s per target, {args.connections} connections")
        for server in (baseline, proxy):
            wrk(
                server.url + PROXY_PATH,
                duration=args.warmup,
                connections=args.connections,
                threads=args.threads,
                headers=headers,
                script=args.wrk_script,
            )

        results: dict[str, list[dict]] = {"baseline": [], "proxy": []}
        db_quiet = True
        for round_no in range(args.rounds):
            for name, server in (("baseline", baseline), ("proxy", proxy)):
                log(
                    f"round {round_no + 1}: {name}, {args.duration:g} s, {args.connections} connections, "
                    f"{args.workers} workers"
                )
                window_start = db_now()
                result = measured_run(
                    server, PROXY_PATH, headers, args, duration=args.duration, connections=args.connections, extra=extra
                )
                if name == "proxy":
                    active = [
                        b
                        for b in db_backends()
                        if b["backend_start"] >= window_start
                        or (b["state_change"] and b["state_change"] >= window_start)
                    ]
                    result["db_backends_active"] = len(active)
                    db_quiet = db_quiet and not active
                results[name].append(result)

        log(f"stress: proxy, {args.stress_duration:g} s, 128 connections")
        stress = measured_run(
            proxy, PROXY_PATH, headers, args, duration=args.stress_duration, connections=128, extra=extra
        )

        compressed = {}
        if args.compressed_kb:
            # Header mode relays compressed answers chunked (default) or decodes them (PROXY_DECODE_COMPRESSION).
            path = f"/api/v1/proxy/compressed?encoding=gzip&kb={args.compressed_kb}"
            gzip_headers = {**headers, "Accept-Encoding": "gzip"}
            decoding = start(
                "proxy-decode", "zenzefi.asgi:application", free_port(), args.workers, PROXY_DECODE_COMPRESSION="true"
            )
            wait_port(decoding.port)
            for name, server in (("baseline", baseline), ("proxy, relay", proxy), ("proxy, decode", decoding)):
                wrk(
                    server.url + path,
                    duration=args.warmup,
                    connections=args.connections,
                    threads=args.threads,
                    headers=gzip_headers,
                    script=args.wrk_script,
                )
                log(
                    f"compressed: {name}, {args.duration:g} s, {args.connections} connections, "
                    f"gzip {args.compressed_kb} KB"
                )
                compressed[name] = measured_run(
                    server, path, gzip_headers, args, duration=args.duration, connections=args.connections, extra=extra
                )
            decoding.stop()

        # The streaming check runs alone: the 2-worker servers go away first.
        proxy.stop()
        baseline.stop()
        stream_port = free_port()
        single = start("proxy-1worker", "zenzefi.asgi:application", stream_port, 1)
        wait_port(single.port)
        size_kb = args.stream_mb * 1024
        with httpx.Client(timeout=30, trust_env=False) as client:
            for _ in range(20):  # load the code paths, pools and buffers before "before"
                client.get(single.url + PROXY_PATH, headers=headers).raise_for_status()
            with client.stream("GET", single.url + "/api/v1/proxy/large?kb=1024", headers=headers) as response:
                for _chunk in response.iter_raw():
                    pass
        time.sleep(0.5)
        log(f"streaming: {args.stream_mb} MB through a 1-worker proxy (pid {single.process.pid})")
        memory = stream_through(
            f"{single.url}/api/v1/proxy/large?kb={size_kb}", headers, single, expect_bytes=size_kb * 1024
        )

        report(args, results, stress, memory, db_quiet)
        if compressed:
            report_compressed(args, compressed)
        warnings = [
            s.name + ": " + line
            for s in servers
            for line in s.log_tail(200).splitlines()
            if "WARNING" in line or "ERROR" in line or "Traceback" in line
        ]
        if warnings:
            print(f"\nserver log warnings ({len(warnings)}), first 10:")
            print("\n".join(warnings[:10]))
        shutil.rmtree(logdir, ignore_errors=True)
        return 0
    except Exception:
        for server in servers:
            tail = server.log_tail()
            if tail:
                print(f"--- {server.name} log tail ---\n{tail}", file=sys.stderr)
        print(f"server logs kept in {logdir}", file=sys.stderr)
        raise
    finally:
        for server in reversed(servers):
            server.stop()
        with contextlib.suppress(Exception):
            redis_cli("flushdb")
        if not args.keep_db:
            with contextlib.suppress(Exception):
                db_recreate(drop_only=True)
        log("servers stopped, Redis db 9 flushed" + ("" if args.keep_db else f", database {DB_NAME} dropped"))


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r.get(key, 0.0) for r in runs)


def report(args, results: dict, stress: dict, memory: dict, db_quiet: bool) -> None:
    cpus = os.cpu_count() or 1
    print()
    print(
        f"== results {dt.datetime.now().isoformat(timespec='seconds')}, {cpus} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} =="
    )
    print(
        f"GET {PROXY_PATH}, wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, "
        f"{args.workers} uvicorn workers per target, 1 upstream process"
    )
    print("latency in ms; non2xx = HTTP status >= 400; sockerr = connect/read/write/timeout errors;")
    print("per request: cpu/req = CPU us of the target's processes, sys/r = its read+write system calls,")
    print("up/req, redis, wrk = CPU us of the fake upstream, the Redis server and wrk itself")
    print(HEADER_ROW)
    for round_no in range(args.rounds):
        for name in ("baseline", "proxy"):
            label = name if args.rounds == 1 else f"{name} #{round_no + 1}"
            print(fmt_row(label, results[name][round_no]))
    print(fmt_row("proxy, 128 conns", stress))

    baseline_rps, proxy_rps = _median(results["baseline"], "rps"), _median(results["proxy"], "rps")
    ratios = [p["rps"] / b["rps"] for p, b in zip(results["proxy"], results["baseline"], strict=True)]
    print()
    per_round = f"; per round {[round(r, 2) for r in ratios]}" if args.rounds > 1 else ""
    print(
        f"ratio proxy/baseline req/s: {proxy_rps / baseline_rps:.2f} ({proxy_rps:.0f} / {baseline_rps:.0f}){per_round}"
    )
    totals = {}
    for name in ("baseline", "proxy"):
        runs = results[name]
        parts = {key: _median(runs, key) for key in ("cpu_server", "cpu_upstream", "cpu_redis", "cpu_wrk")}
        total = totals[name] = sum(parts.values())
        print(
            f"CPU per request, {name:<8}: target {parts['cpu_server']:.0f} + upstream {parts['cpu_upstream']:.0f} "
            f"+ Redis {parts['cpu_redis']:.0f} + wrk {parts['cpu_wrk']:.0f} = {total:.0f} us "
            f"-> ~{cpus * 1e6 / total:.0f} req/s if {cpus} CPUs did only this; "
            f"{_median(runs, 'sys_server'):.1f} syscalls/req"
        )
    cpu_factor = _median(results["proxy"], "cpu_server") / _median(results["baseline"], "cpu_server")
    print(
        f"CPU-based ratio (less sensitive to other load on the machine): {totals['baseline'] / totals['proxy']:.2f}; "
        f"target CPU per request proxy/baseline: {cpu_factor:.2f}x"
    )
    print(
        f"database: connections to {DB_NAME} active during the proxy runs: "
        + (
            "none (no query after warm-up)"
            if db_quiet
            else str([r.get("db_backends_active") for r in results["proxy"]])
        )
    )
    print()
    print(
        f"stress 128 connections: {stress['requests']} requests, {stress['status']} non-2xx, "
        f"{stress['socket_errors']} socket errors -> {'PASS' if stress['errors'] == 0 else 'FAIL'} (0 errors)"
    )
    print(
        f"streaming {memory['bytes'] / 1048576:.1f} MB (status {memory['status']}, "
        f"{'complete' if memory['complete'] else 'INCOMPLETE'}) in {memory['seconds']:.2f} s "
        f"= {memory['mb_per_s']:.0f} MB/s; proxy RSS before {memory['rss_before']:.1f} MB, "
        f"peak {memory['rss_peak']:.1f} MB, after {memory['rss_after']:.1f} MB ({memory['samples']} samples)"
    )
    ok = memory["growth"] < 20 and memory["complete"]
    print(f"streaming RSS growth {memory['growth']:.1f} MB -> {'PASS' if ok else 'FAIL'} (< 20 MB)")
    print()
    # The targets are judged on the proxy run with the median throughput.
    main_run = sorted(results["proxy"], key=lambda r: r["rps"])[len(results["proxy"]) // 2]
    note = "" if args.workers == 2 else f"  (targets are for 2 workers; this run used {args.workers})"
    print(f"reference targets, proxy with {args.workers} workers, {args.connections} connections:{note}")
    checks = [
        ("throughput >= 1000 req/s", main_run["rps"] >= 1000, f"{main_run['rps']:.0f} req/s"),
        ("p50 < 50 ms", main_run["p50"] < 50_000, f"{main_run['p50'] / 1000:.2f} ms"),
        ("p95 < 200 ms", main_run["p95"] < 200_000, f"{main_run['p95'] / 1000:.2f} ms"),
        (
            "errors < 0.1 %",
            main_run["error_pct"] < 0.1,
            f"{main_run['errors']} of {main_run['requests']} = {main_run['error_pct']:.3f} %",
        ),
    ]
    for label, passed, value in checks:
        print(f"  {'PASS' if passed else 'FAIL'}  {label:<26} {value}")


def report_compressed(args, compressed: dict) -> None:
    print()
    print(
        f"compressed answers: GET /api/v1/proxy/compressed?encoding=gzip&kb={args.compressed_kb} "
        f"(Accept-Encoding: gzip), {args.connections} connections; bytes/req = what reached the client"
    )
    print(HEADER_ROW + f" {'bytes/req':>9}")
    for name, result in compressed.items():
        print(fmt_row(name, result) + f" {result['bytes'] / max(1, result['requests']):>9.0f}")
    base = compressed["baseline"]["rps"]
    print(
        "ratio to baseline req/s: "
        + ", ".join(f"{name} {result['rps'] / base:.2f}" for name, result in compressed.items() if name != "baseline")
    )


if __name__ == "__main__":
    sys.exit(main())
