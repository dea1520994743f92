"""Prometheus config, alert rules and their unit tests, checked with promtool."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DASHBOARD, PROMETHEUS_DIR, load_yaml, run_promtool

# The alerts the runbook promises, and the metric each one is built on.
REQUIRED_ALERTS = {
    "HealthmateWorkerDown": ["up", "healthmate_worker_up"],
    "HealthmateConsumerLagGrowing": ["healthmate_consumer_lag_messages"],
    "HealthmatePartitionStalled": [
        "healthmate_partition_last_commit_timestamp_seconds",
        "healthmate_consumer_lag_messages",
    ],
    "HealthmateQualityBelowThreshold": ["healthmate_quality_score", "healthmate_quality_window_records",
                                        "healthmate_quality_min_records"],
    "HealthmateDLQRateSpike": ["healthmate_dlq_published_total", "healthmate_readings_consumed_total"],
    "HealthmateSinkErrors": ["healthmate_sink_errors_total"],
    "HealthmateETLJobFailed": ["healthmate_etl_runs_total"],
}
SEVERITIES = {"critical", "warning"}
# Labels an annotation may print: bounded and never identifying a person.
ANNOTATION_LABELS = {"topic", "partition", "metric", "source", "dimension", "reason", "etl_job", "job",
                     "instance", "status"}


def _ok(result: Any) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_promtool_check_config(config: str) -> None:
    result = run_promtool("check", "config", config)
    assert result.returncode == 0, _ok(result)
    assert "alerts.yml" in result.stdout + result.stderr, "the config must load alerts.yml"


def test_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, _ok(result)


def test_promtool_test_rules() -> None:
    result = run_promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, _ok(result)
    assert "SUCCESS" in result.stdout + result.stderr


def test_local_config_scrapes_the_worker_on_loopback_6066() -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "healthmate-worker"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == ["127.0.0.1:6066"]


def test_compose_config_differs_only_in_the_target() -> None:
    local = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    in_compose = load_yaml(PROMETHEUS_DIR / "prometheus.compose.yml")
    for config in (local, in_compose):
        for job in config["scrape_configs"]:
            for static in job["static_configs"]:
                static["targets"] = ["<target>"]
    assert local == in_compose
    targets = [
        t
        for j in load_yaml(PROMETHEUS_DIR / "prometheus.compose.yml")["scrape_configs"]
        for sc in j["static_configs"]
        for t in sc["targets"]
    ]
    assert targets == ["worker:6066", "gateway:6070"], "inside compose: the services `worker` and `gateway`"


def test_required_alerts_exist_and_use_their_metrics(alerts: dict[str, dict[str, Any]]) -> None:
    assert set(REQUIRED_ALERTS) <= set(alerts), f"missing: {set(REQUIRED_ALERTS) - set(alerts)}"
    for name, metrics in REQUIRED_ALERTS.items():
        for metric in metrics:
            assert re.search(rf"\b{metric}\b", alerts[name]["expr"]), f"{name} does not use {metric}"


def test_alert_specifics(alerts: dict[str, dict[str, Any]]) -> None:
    # Every dimension counts (a dead letter fails one only), and never a metric "unknown".
    assert "min by" in alerts["HealthmateQualityBelowThreshold"]["expr"]
    assert "unknown" not in alerts["HealthmateQualityBelowThreshold"]["expr"]
    assert "< 0.7" in alerts["HealthmateQualityBelowThreshold"]["expr"]
    assert 'status="failed"' in alerts["HealthmateETLJobFailed"]["expr"]
    assert "time()" in alerts["HealthmatePartitionStalled"]["expr"]
    assert re.search(r"\b(deriv|increase|delta)\(", alerts["HealthmateConsumerLagGrowing"]["expr"])
    assert "rate(healthmate_dlq_published_total" in alerts["HealthmateDLQRateSpike"]["expr"]


def test_every_alert_has_severity_summary_description(alerts: dict[str, dict[str, Any]]) -> None:
    for name, rule in alerts.items():
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary", "").strip(), f"{name}: no summary"
        assert annotations.get("description", "").strip(), f"{name}: no description"


def test_annotations_print_only_bounded_labels(alerts: dict[str, dict[str, Any]]) -> None:
    for name, rule in alerts.items():
        for key, text in rule["annotations"].items():
            used = set(re.findall(r"\$labels\.(\w+)", text))
            assert used <= ANNOTATION_LABELS, f"{name}.{key} prints {used - ANNOTATION_LABELS}"
            assert not re.search(r"user|patient|device_id|event_id", text, re.IGNORECASE), (
                f"{name}.{key} mentions an identifier"
            )


def _unit_tests() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = load_yaml(PROMETHEUS_DIR / "alerts_test.yml")["tests"]
    return tests


def test_each_alert_has_a_firing_and_a_silent_unit_test(alerts: dict[str, dict[str, Any]]) -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for case in _unit_tests():
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    assert set(alerts) <= fires, f"never shown to fire: {set(alerts) - fires}"
    assert set(alerts) <= silent, f"never shown to stay silent: {set(alerts) - silent}"


def test_unit_tests_catch_broken_alerts(alerts: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """With every expression replaced by one that never fires, `promtool test rules` must fail
    and name each alert (one promtool run for all, failures are reported per alert)."""
    rules = load_yaml(PROMETHEUS_DIR / "alerts.yml")
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["expr"] = "vector(0) > 1"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    shutil.copy(PROMETHEUS_DIR / "alerts_test.yml", tmp_path / "alerts_test.yml")
    result = run_promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0, "the unit tests did not notice that no alert can fire"
    output = result.stdout + result.stderr
    unnoticed = {name for name in alerts if f"alertname: {name}," not in output}
    assert not unnoticed, f"breaking these alerts went unnoticed: {unnoticed}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Every dashboard query, with Grafana's variables substituted, parses (promtool check rules)."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    assert exprs
    substitutions = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
    rules = []
    for i, expr in enumerate(exprs):
        for variable, value in substitutions.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown Grafana variable in {expr}"
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    result = run_promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, _ok(result)
