"""Webhook deliveries are counted in the Celery worker; /metrics adds the worker's counts to the web's."""

import os
import subprocess
import sys

from tests.servers import ROOT


def count_in_process(directory, code: str) -> None:
    """Run ``code`` in a separate process in Prometheus multiprocess mode, writing into ``directory``."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "ENV_FILE": ""}
    setup = "import django; django.setup(); from zenzefi import metrics; "
    subprocess.run([sys.executable, "-c", setup + code], cwd=ROOT, env=env, check=True, timeout=60)


def test_metrics_sum_the_web_and_the_worker_directories(tmp_path, settings, client, monkeypatch, db):
    web, worker = tmp_path / "web", tmp_path / "worker"
    web.mkdir()
    worker.mkdir()
    count_in_process(web, "metrics.TOKEN_REVOCATIONS.inc(2)")
    # Three worker processes (prefork children), each with its own file.
    count_in_process(worker, "metrics.WEBHOOK_DELIVERIES.labels('succeeded').inc(3)")
    count_in_process(worker, "metrics.WEBHOOK_SECONDS.observe(0.2)")
    count_in_process(worker, "metrics.WEBHOOK_DELIVERIES.labels('succeeded').inc(1)")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(web))

    settings.PROMETHEUS_WORKER_DIR = ""
    text = client.get("/metrics").content.decode()
    assert "token_revocations_total 2.0" in text
    assert 'webhook_deliveries_total{result="succeeded"}' not in text

    settings.PROMETHEUS_WORKER_DIR = str(worker)
    text = client.get("/metrics").content.decode()
    assert "token_revocations_total 2.0" in text
    assert 'webhook_deliveries_total{result="succeeded"} 4.0' in text
    assert "webhook_delivery_seconds_count 1.0" in text
    assert 'webhook_delivery_seconds_bucket{le="0.25"} 1.0' in text
