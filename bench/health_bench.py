"""Latency of GET /health (answered from the cached report) against baselines, in one run, on loopback.

    python bench/health_bench.py [--requests 2000] [--block 250]

What it does (see bench/README.md, "/health latency"):

1. drops and recreates the database ``zenzefi_healthbench``, flushes Redis
   db 11 and runs ``manage.py migrate``;
2. starts the fake Zenzefi (so the report says "healthy"), our app with one
   uvicorn worker (``zenzefi.asgi:application``, PostgreSQL, Redis cache) and
   a bare raw-ASGI app (``bench/bare_asgi.py``, one worker, same flags);
3. primes the health cache with one GET /health (no Celery beat runs here, so
   this request runs the checks and stores the report), warms every target up
   with 200 requests;
4. sends ``--requests`` sequential GETs to each target over one keep-alive
   ``httpx.Client`` per target, in alternating blocks of ``--block`` requests
   so that other load on the machine hits all targets alike, and reports
   median / p95 / p99 / mean / max in ms, the server's CPU per request and
   the ratios; targets: ``GET /health`` (cache read), ``GET /health/live``
   (same Django stack, no dependency asked) and ``GET /`` on the bare app;
5. checks that /health really came from the cache: every answer carries the
   primed report's timestamp, and the bench database saw no transaction
   during the timed loop (``pg_stat_database``);
6. target: /health median well under 5 ms (PASS/FAIL); in a ``finally`` it
   stops the servers, flushes Redis db 11 and drops the database.
"""

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Importing proxy_bench first re-runs this script under .venv/bin/python when needed.
from proxy_bench import HOST, PG_ADMIN, Server, db_recreate, free_port, log, manage, redis_cli, wait_port

# isort: split
import httpx  # from the project's virtualenv
import psycopg

DB_NAME = "zenzefi_healthbench"
REDIS_URL = "redis://127.0.0.1:6379/11"
TARGET_MS = 5.0


def db_transactions() -> int:
    """Committed plus rolled-back transactions of the bench database so far (statistics flush within ~1 s)."""
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (DB_NAME,)
        ).fetchone()
    return int(row[0]) if row else 0


def percentile(samples: list[float], percent: int) -> float:
    """The ``percent``-th percentile, interpolated between the samples around it."""
    return statistics.quantiles(samples, n=100, method="inclusive")[percent - 1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per target (default 2000)")
    parser.add_argument("--block", type=int, default=250, help="requests per target before switching (default 250)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests per target first (default 200)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    args = parser.parse_args()
    if not (10 <= args.requests <= 100_000 and 1 <= args.block <= args.requests and 0 <= args.warmup <= 10_000):
        parser.error("requests 10..100000, block 1..requests, warmup 0..10000")
    return args


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through main()'s finally


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    logdir = Path(tempfile.mkdtemp(prefix="zenzefi-healthbench-"))
    upstream_port, app_port, bare_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ENV_FILE": "",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "ZENZEFI_TARGET_URL": f"http://{HOST}:{upstream_port}",
    }
    flags = ["--host", HOST, "--workers", "1", "--no-access-log", "--no-server-header", "--log-level", "warning"]
    servers: list[Server] = []
    log(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; logs in {logdir}")
    try:
        log(f"database {DB_NAME}: drop, create, migrate; Redis db 11: flush")
        db_recreate(name=DB_NAME)
        redis_cli("flushdb", url=REDIS_URL)
        manage(env, "migrate", "--noinput")

        upstream_argv = [sys.executable, "-m", "proxy.fake_zenzefi", "--port", str(upstream_port)]
        servers.append(Server("fake-zenzefi", upstream_argv, env, logdir, upstream_port))
        app_argv = [sys.executable, "-m", "uvicorn", "zenzefi.asgi:application", "--port", str(app_port), *flags]
        app = Server("app", app_argv, env, logdir, app_port)
        bare_argv = [sys.executable, "-m", "uvicorn", "bench.bare_asgi:app", "--port", str(bare_port), *flags]
        bare = Server("bare-asgi", bare_argv, env, logdir, bare_port)
        servers += [app, bare]
        for server in servers:
            wait_port(server.port)

        targets = {
            "GET /health (cached report)": (app, "/health"),
            "GET /health/live (Django, no dependency)": (app, "/health/live"),
            "GET / on a bare raw-ASGI app": (bare, "/"),
        }
        clients = {
            name: httpx.Client(base_url=server.url, timeout=10, trust_env=False)
            for name, (server, _) in targets.items()
        }
        try:
            primed = clients["GET /health (cached report)"].get("/health")
            report = primed.json()
            primed_at = time.monotonic()
            rechecks: dict[str, float] = {}  # report timestamps other than the primed one -> first seen, s after
            log(
                f"primed: GET /health {primed.status_code} status={report.get('status')!r} "
                f"timestamp={report.get('timestamp')} in {primed.elapsed.total_seconds() * 1000:.0f} ms "
                "(this one runs the checks)"
            )
            if primed.status_code != 200 or report.get("status") != "healthy":
                raise RuntimeError(f"/health is not healthy after priming: {primed.status_code} {primed.text[:300]}")
            for name, (_server, path) in targets.items():
                for _ in range(args.warmup):
                    clients[name].get(path).raise_for_status()

            samples: dict[str, list[float]] = {name: [] for name in targets}
            cpu: dict[str, float] = dict.fromkeys(targets, 0.0)
            stale = 0
            time.sleep(1.5)  # let PostgreSQL's statistics catch up with migrate and priming
            transactions_before = db_transactions()
            loop_started = time.monotonic()
            done = 0
            while done < args.requests:
                count = min(args.block, args.requests - done)
                for name, (server, path) in targets.items():
                    client, bucket = clients[name], samples[name]
                    cpu_before = server.cpu_seconds()
                    for _ in range(count):
                        started = time.perf_counter()
                        response = client.get(path)
                        bucket.append((time.perf_counter() - started) * 1000)
                        if response.status_code != 200:
                            raise RuntimeError(f"{name}: HTTP {response.status_code} {response.text[:200]}")
                        if path == "/health" and (seen := response.json().get("timestamp")) != report["timestamp"]:
                            stale += 1
                            if seen not in rechecks:
                                rechecks[seen] = time.monotonic() - primed_at
                    cpu[name] += server.cpu_seconds() - cpu_before
                done += count
            loop_seconds = time.monotonic() - loop_started
            time.sleep(1.5)
            transactions = db_transactions() - transactions_before
        finally:
            for client in clients.values():
                client.close()

        print()
        print(
            f"== /health latency, {time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f} =="
        )
        print(
            f"{args.requests} sequential GETs per target, one keep-alive httpx client each, blocks of {args.block} "
            f"alternating between targets ({loop_seconds:.1f} s); 1 uvicorn worker per server"
        )
        print(
            "| target | median ms | p95 ms | p99 ms | mean ms | max ms | server CPU µs/req |\n"
            "|---|---:|---:|---:|---:|---:|---:|"
        )
        medians = {}
        for name, values in samples.items():
            medians[name] = statistics.median(values)
            print(
                f"| {name} | {medians[name]:.2f} | {percentile(values, 95):.2f} | {percentile(values, 99):.2f} | "
                f"{statistics.fmean(values):.2f} | {max(values):.2f} | {1e6 * cpu[name] / len(values):.0f} |"
            )
        health, live, bare_median = medians.values()
        print()
        print(
            f"median ratios: /health / /health/live = {health / live:.2f}, "
            f"/health / bare = {health / bare_median:.2f}, /health/live / bare = {live / bare_median:.2f}; "
            f"cache read adds {1000 * (health - live):.0f} µs to the median"
        )
        print(
            f"from the cache: {args.requests - stale} of {args.requests} /health answers carried the primed "
            f"report's timestamp; transactions in {DB_NAME} during the loop: {transactions}"
        )
        for seen, after in rechecks.items():
            print(f"  a new report ({seen}) appeared {after:.1f} s after priming: the checks ran again")
        verdict = "PASS" if health < TARGET_MS and stale == 0 else "FAIL"
        print(f"{verdict}  /health median {health:.2f} ms (target: well under {TARGET_MS:g} ms, answered from cache)")
        shutil.rmtree(logdir, ignore_errors=True)
        return 0 if verdict == "PASS" else 1
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
            redis_cli("flushdb", url=REDIS_URL)
        if not args.keep_db:
            with contextlib.suppress(Exception):
                db_recreate(drop_only=True, name=DB_NAME)
        log("servers stopped, Redis db 11 flushed" + ("" if args.keep_db else f", database {DB_NAME} dropped"))


if __name__ == "__main__":
    sys.exit(main())
