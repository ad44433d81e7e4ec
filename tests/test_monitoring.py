"""The Grafana dashboards and Prometheus alert rules in deploy/ name only metrics that /metrics exports."""

import json
import re
import time
from pathlib import Path

import pytest
import yaml
from django.core.cache import cache
from prometheus_client.parser import text_string_to_metric_families

from zenzefi.health import HEALTH_KEY

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana").glob("*.json"))
ALERTS = DEPLOY / "prometheus" / "alerts.yml"

# Series of the standard exporters (postgres_exporter, redis_exporter) and Prometheus's own scrape series.
EXPORTER_PREFIXES = ("pg_", "redis_")
PROMETHEUS_SERIES = {"up"}

KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}
# Where each exposition type's samples get their names (prometheus_client strips them from the family name).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "unknown": ("",),
}


def metric_names(expr: str) -> set[str]:
    """The series a PromQL expression selects: identifiers that are not functions, keywords, labels or durations."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)  # string literals
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # ranges and subqueries ($__rate_interval, 5m, 1h:1m)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)  # label lists
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # template variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def test_the_tokenizer_keeps_series_and_drops_the_rest():
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(proxy_latency_seconds_bucket{job=~"$job"}[$__rate_interval]))) '
        '> 2 and on (instance) (health_check_up{check="zenzefi"} == 0) or vector(0) '
        "unless sum(increase(znc_total[1h] offset 1d)) without (kind) / ignoring(kind) pg_up"
    )
    assert metric_names(expr) == {"proxy_latency_seconds_bucket", "health_check_up", "znc_total", "pg_up"}


def dashboard_expressions() -> list[tuple[str, str]]:
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        panels = list(board["panels"])
        while panels:
            panel = panels.pop()
            panels.extend(panel.get("panels", []))  # panels inside collapsed rows
            for target in panel.get("targets", []):
                found.append((f"{path.name}: {panel['title']}", target["expr"]))
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable["query"] if isinstance(variable["query"], str) else variable["query"]["query"]
                found.append((f"{path.name}: ${variable['name']}", query))
    return found


def alert_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.fixture
def exported(client, db) -> set[str]:
    """Every sample name /metrics can return, its labelled families included, before any label was touched."""
    # The health gauges come from the beat's cached report; a real one (Zenzefi down here: a 0, still a series).
    checks = {name: {"status": "up"} for name in ("database", "redis", "zenzefi")}
    cache.set(HEALTH_KEY, {"status": "healthy", "checked_at": time.time(), "checks": checks}, timeout=60)
    response = client.get("/metrics")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.content.decode()):
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
        names.update(sample.name for sample in family.samples)
    return names


def test_there_are_three_importable_dashboards():
    assert [p.name for p in DASHBOARDS] == [
        "zenzefi-gate-business.json",
        "zenzefi-gate-infrastructure.json",
        "zenzefi-gate-service.json",
    ]
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        # Grafana's import asks for the datasource named in __inputs and substitutes ${DS_PROMETHEUS}.
        assert [(i["name"], i["type"], i["pluginId"]) for i in board["__inputs"]] == [
            ("DS_PROMETHEUS", "datasource", "prometheus")
        ]
        assert board["title"].startswith("Zenzefi Gate") and board["schemaVersion"] >= 36
        uids.add(board["uid"])
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)) and len(ids) >= 8, path.name
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
            assert panel["targets"] and {"x", "y", "w", "h"} <= set(panel["gridPos"])
            assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" and t["expr"].strip() for t in panel["targets"])
    assert len(uids) == 3


def test_every_dashboard_metric_is_exported(exported):
    missing = []
    for where, expr in dashboard_expressions():
        for name in metric_names(expr):
            if name in exported or name in PROMETHEUS_SERIES:
                continue
            if name.startswith(EXPORTER_PREFIXES) and "infrastructure" in where:
                continue
            missing.append((where, name))
    assert missing == []


def test_the_dashboards_cover_what_operators_asked_for():
    names_by_board: dict[str, set] = {}
    for where, expr in dashboard_expressions():
        names_by_board.setdefault(where.split(":")[0], set()).update(metric_names(expr))
    assert {
        "proxy_requests_total",
        "proxy_latency_seconds_bucket",
        "proxy_upstream_latency_seconds_bucket",
        "proxy_responses_total",
        "django_http_responses_total_by_status_total",
        "active_sessions",
    } <= names_by_board["zenzefi-gate-service.json"]
    assert {
        "znc_total",
        "token_purchases_total",
        "payments_total",
        "webhook_deliveries_total",
    } <= names_by_board["zenzefi-gate-business.json"]
    assert {
        "pg_up",
        "pg_stat_database_numbackends",
        "redis_up",
        "redis_memory_used_bytes",
        "redis_connected_clients",
    } <= names_by_board["zenzefi-gate-infrastructure.json"]


def test_every_alert_metric_is_exported(exported):
    missing = [
        (rule["alert"], name)
        for rule in alert_rules()
        for name in metric_names(rule["expr"])
        if name not in exported and name not in PROMETHEUS_SERIES
    ]
    assert missing == []


def test_alerts_follow_the_rule_file_schema():
    """What promtool checks, as far as it can be checked without it: groups with unique names, rules with an
    alert name, an expression, a duration in ``for``, a severity and a summary and description."""
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}
    group_names = [group["name"] for group in document["groups"]]
    assert len(group_names) == len(set(group_names))
    alerts = []
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "limit", "rules"} and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
            assert re.fullmatch(r"(\d+[smhdwy])+", str(rule["for"])), rule["alert"]
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            alerts.append(rule["alert"])
    assert len(alerts) == len(set(alerts))
    assert {
        "ProxyLatencyP99High",
        "Proxy5xxRateHigh",
        "UpstreamDown",
        "PaymentsFailing",
        "WebhookEndpointsDisabled",
        "BeatTasksNotRunning",
    } <= set(alerts)


def test_upstream_down_reads_the_health_gauge(client, db):
    checks = {"database": {"status": "up"}, "redis": {"status": "up"}, "zenzefi": {"status": "down"}}
    cache.set(HEALTH_KEY, {"status": "degraded", "checked_at": time.time() - 5, "checks": checks}, timeout=60)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(client.get("/metrics").content.decode())
        for s in family.samples
    }
    assert samples[("health_check_up", (("check", "zenzefi"),))] == 0
    assert samples[("health_check_up", (("check", "database"),))] == 1
    assert 5 <= samples[("health_report_age_seconds", ())] < 60
    rule = next(r for r in alert_rules() if r["alert"] == "UpstreamDown")
    assert rule["expr"].strip() == 'health_check_up{check="zenzefi"} == 0'
