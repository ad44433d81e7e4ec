"""Run the Locust load test (bench/locustfile.py) against a fresh app, on loopback.

    python bench/load_test.py [--users 50] [--spawn-rate 10] [--run-time 60] [--workers 2]

What it does, in order (see bench/README.md, "Load test (locust)"):

1. drops and recreates the database ``zenzefi_loadtest``, flushes Redis db 10
   and runs ``manage.py migrate``;
2. starts the fake Zenzefi and our app (``uvicorn zenzefi.asgi:application
   --workers 2``) with ENABLE_MOCK_PAYMENTS=true, RATE_LIMIT_ENABLED=true and
   RATE_LIMIT_AUTH=100000/60 (every simulated user comes from 127.0.0.1);
3. runs ``locust -f bench/locustfile.py --headless -u 50 -r 10 -t 60s
   --host http://127.0.0.1:PORT --only-summary`` (plus ``--csv`` for a timeline)
   under a timeout, prints Locust's summary, the same numbers as a Markdown
   table (LOCUST_SUMMARY_JSON, see the locustfile) and the timeline;
4. checks the ledger afterwards (``manage.py wallet_audit``) and the server
   logs for errors; exits 0 only when no request failed and the ledger is
   consistent;
5. in a ``finally``: stops every server, flushes Redis db 10, drops the database.

Locust lives in its own virtualenv, not in the project's requirements:
``python3 -m venv /tmp/locust-venv && /tmp/locust-venv/bin/pip install -r bench/requirements.txt``.
The script looks for it in ``--locust``, ``$LOCUST``, /tmp/locust-venv/bin/locust,
then ``locust`` on PATH. Traffic goes to 127.0.0.1 only.
"""

import argparse
import contextlib
import csv
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

# Importing proxy_bench re-runs this script under .venv/bin/python when needed.
from proxy_bench import HOST, ROOT, Server, db_recreate, free_port, log, manage, redis_cli, wait_port

DB_NAME = "zenzefi_loadtest"
REDIS_URL = "redis://127.0.0.1:6379/10"
DEFAULT_LOCUST = Path("/tmp/locust-venv/bin/locust")  # the documented install location


def find_locust(explicit: str | None) -> str | None:
    for candidate in (explicit, os.environ.get("LOCUST"), str(DEFAULT_LOCUST), shutil.which("locust")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def app_env(upstream_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ENV_FILE": "",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "ZENZEFI_TARGET_URL": upstream_url,
        "ENABLE_MOCK_PAYMENTS": "true",
        "PAYMENT_PROVIDER": "mock",
        "RATE_LIMIT_ENABLED": "true",
        # All simulated users register and log in from 127.0.0.1: one IP, so the per-IP auth limit goes up.
        "RATE_LIMIT_AUTH": "100000/60",
    }


def stats_table(rows: list[dict]) -> str:
    """Locust's final statistics (written by the locustfile's quitting hook) as a Markdown table."""
    lines = [
        "| endpoint | requests | failures | median ms | p95 ms | p99 ms | max ms | req/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        name = "**all**" if row["name"] == "Aggregated" else f"{row['method']} {row['name']}"
        lines.append(
            f"| {name} | {row['requests']} | {row['failures']} | {row['median_ms']:.0f} | {row['p95_ms']:.0f} | "
            f"{row['p99_ms']:.0f} | {row['max_ms']:.0f} | {row['rps']:.1f} |"
        )
    return "\n".join(lines)


def timeline(path: Path, step: float = 10.0) -> str:
    """All endpoints together over time, from Locust's --csv history (percentiles over its last ~10 s)."""
    if not path.is_file():
        return "(no timeline: locust wrote no stats history)"
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    if not rows:
        return "(no timeline: empty stats history)"
    start, next_at = float(rows[0]["Timestamp"]), 0.0
    lines = ["timeline (all endpoints; latency percentiles over the preceding ~10 s):"]
    lines.append(f"  {'t s':>5} {'users':>5} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'requests':>9} {'failures':>8}")
    for row in rows:
        elapsed = float(row["Timestamp"]) - start
        if elapsed + 0.5 < next_at:
            continue
        next_at = elapsed + step
        lines.append(
            f"  {elapsed:>5.0f} {row['User Count']:>5} {float(row['Requests/s']):>7.1f} {row['50%']:>7} "
            f"{row['95%']:>7} {row['Total Request Count']:>9} {row['Total Failure Count']:>8}"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="simulated users (default 50)")
    parser.add_argument("--spawn-rate", type=float, default=10, help="users started per second (default 10)")
    parser.add_argument("--run-time", type=int, default=60, help="seconds of load (default 60)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument("--locust", default=None, help="the locust executable (default: see the docstring)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server logs and Locust's files")
    args = parser.parse_args()
    if not (1 <= args.users <= 1000 and 1 <= args.run_time <= 1800 and 1 <= args.workers <= 16):
        parser.error("users 1..1000, run time 1..1800 s, workers 1..16")
    if not (0 < args.spawn_rate <= 1000):
        parser.error("spawn rate 0..1000")
    return args


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through main()'s finally


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    locust = find_locust(args.locust)
    if locust is None:
        print(
            "locust not found. Install it in its own virtualenv:\n"
            "  python3 -m venv /tmp/locust-venv && /tmp/locust-venv/bin/pip install -r bench/requirements.txt",
            file=sys.stderr,
        )
        return 2

    logdir = Path(tempfile.mkdtemp(prefix="zenzefi-loadtest-"))
    stats_file = logdir / "locust-summary.json"
    upstream_port, app_port = free_port(), free_port()
    env = app_env(f"http://{HOST}:{upstream_port}")
    uvicorn_flags = ["--host", HOST, "--no-access-log", "--no-server-header", "--log-level", "warning"]
    servers: list[Server] = []
    ok = False
    log(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; logs in {logdir}")
    try:
        log(f"database {DB_NAME}: drop, create, migrate; Redis db 10: flush")
        db_recreate(name=DB_NAME)
        redis_cli("flushdb", url=REDIS_URL)
        manage(env, "migrate", "--noinput")

        upstream_argv = [sys.executable, "-m", "proxy.fake_zenzefi", "--port", str(upstream_port)]
        servers.append(Server("fake-zenzefi", upstream_argv, env, logdir, upstream_port))
        app_argv = [sys.executable, "-m", "uvicorn", "zenzefi.asgi:application", "--port", str(app_port)]
        app_argv += ["--workers", str(args.workers), *uvicorn_flags]
        app = Server("app", app_argv, env, logdir, app_port)
        servers.append(app)
        for server in servers:
            wait_port(server.port)

        run_time = f"{args.run_time}s"
        argv = [locust, "-f", str(ROOT / "bench" / "locustfile.py"), "--headless"]
        argv += ["-u", str(args.users), "-r", f"{args.spawn_rate:g}", "-t", run_time]
        argv += ["--host", app.url, "--only-summary", "--csv", str(logdir / "locust")]
        log(f"locust: {args.users} users, spawn rate {args.spawn_rate:g}/s, {run_time}, {args.workers} app workers")
        print("$ " + " ".join(argv[:1] + [a.replace(str(ROOT) + "/", "") for a in argv[1:]]), flush=True)
        started = dt.datetime.now()
        try:
            result = subprocess.run(
                argv,
                cwd=ROOT,
                env={
                    **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "VIRTUAL_ENV"))},
                    "LOCUST_SUMMARY_JSON": str(stats_file),
                },
                capture_output=True,
                text=True,
                timeout=args.run_time + 120,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"locust did not finish within {args.run_time + 120} s") from exc
        print(result.stdout, end="")
        print(result.stderr, end="")
        # Locust exits 1 when any request failed; the table below says which.
        log(f"locust exited with {result.returncode} after {(dt.datetime.now() - started).total_seconds():.0f} s")

        stats = json.loads(stats_file.read_text()) if stats_file.is_file() else []
        print()
        print(
            f"== load test {started.isoformat(timespec='seconds')}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}: {args.users} users, -r {args.spawn_rate:g}, -t {run_time}, "
            f"{args.workers} uvicorn workers =="
        )
        print(stats_table(stats) if stats else "(no statistics: the locustfile wrote no summary)")

        audit = subprocess.run(
            [sys.executable, "manage.py", "wallet_audit"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        summary = (audit.stdout.strip().splitlines() or [audit.stderr.strip()])[-1:]
        print(f"ledger audit (manage.py wallet_audit): exit {audit.returncode} {' '.join(summary)}")

        problems = [
            f"{server.name}: {line}"
            for server in servers
            for line in server.log_tail(2000).splitlines()
            if "ERROR" in line or "Traceback" in line or "CRITICAL" in line
        ]
        print(f"server log errors: {len(problems)}" + ("" if not problems else ", first 10:"))
        for line in problems[:10]:
            print("  " + line)
        print(timeline(logdir / "locust_stats_history.csv"))
        # Exit 0 only for a clean run: statistics written, no failed request, the ledger consistent.
        ok = bool(stats) and result.returncode == 0 and audit.returncode == 0
        return 0 if ok else 1
    except Exception:
        for server in servers:
            tail = server.log_tail()
            if tail:
                print(f"--- {server.name} log tail ---\n{tail}", file=sys.stderr)
        raise
    finally:
        for server in reversed(servers):
            server.stop()
        with contextlib.suppress(Exception):
            redis_cli("flushdb", url=REDIS_URL)
        if not args.keep_db:
            with contextlib.suppress(Exception):
                db_recreate(drop_only=True, name=DB_NAME)
        if ok and not args.keep_logs:
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            print(f"logs kept in {logdir}", file=sys.stderr)
        log("servers stopped, Redis db 10 flushed" + ("" if args.keep_db else f", database {DB_NAME} dropped"))


if __name__ == "__main__":
    sys.exit(main())
