"""streams.metrics: exported names, naming rules, and every name used by alerts and the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary

from streams.metrics import Metrics, metric_names

from .conftest import DASHBOARD, PROMETHEUS_DIR, exported_names, healthmate_names, load_yaml

# Labels that would clash with Prometheus target labels or identify a person.
FORBIDDEN_LABELS = {"job", "instance", "user", "user_id", "user_key", "pseudonym", "device_id", "event_id"}


def test_labelled_metrics_without_children_are_listed() -> None:
    names = exported_names()
    # counters with labels, nothing observed yet
    assert {"healthmate_readings_consumed_total", "healthmate_readings_consumed_created"} <= names
    assert "healthmate_etl_runs_total" in names
    # histograms with labels
    assert {
        "healthmate_api_request_duration_seconds_bucket",
        "healthmate_api_request_duration_seconds_sum",
        "healthmate_api_request_duration_seconds_count",
    } <= names
    # labelled gauges
    assert {"healthmate_consumer_lag_messages", "healthmate_quality_score"} <= names
    # the bare family name of a counter is not an exported series
    assert "healthmate_readings_consumed" not in names
    assert "healthmate_sink_errors" not in names


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda r: Counter("x_total", "h", ["a"], registry=r), {"x_total", "x_created"}),
        (lambda r: Counter("x", "h", registry=r), {"x_total", "x_created"}),
        (lambda r: Gauge("x", "h", ["a"], registry=r), {"x"}),
        (lambda r: Histogram("x_seconds", "h", ["a"], registry=r),
         {"x_seconds_bucket", "x_seconds_sum", "x_seconds_count", "x_seconds_created"}),
        (lambda r: Summary("x_seconds", "h", ["a"], registry=r),
         {"x_seconds", "x_seconds_sum", "x_seconds_count", "x_seconds_created"}),
        (lambda r: Info("x", "h", registry=r), {"x_info"}),
    ],
)
def test_names_derive_from_the_metric_type(make: Any, expected: set[str]) -> None:
    metrics = Metrics(CollectorRegistry())
    make(metrics.registry)
    assert expected <= metric_names(metrics)


def test_names_match_a_real_exposition() -> None:
    """Once every labelled metric has a child, the text exposition holds exactly these names."""
    from prometheus_client import generate_latest

    metrics = Metrics(CollectorRegistry())
    metrics.readings_consumed.labels("heart_rate").inc()
    metrics.readings_stored.labels("heart_rate").inc()
    metrics.readings_rejected.labels("schema_invalid").inc()
    metrics.dlq_published.labels("schema_invalid").inc()
    metrics.consumer_lag.labels("t", "0").set(1)
    metrics.last_commit_timestamp.labels("t", "0").set(1)
    metrics.quality_score.labels("heart_rate", "garmin", "overall").set(1)
    metrics.quality_window_records.labels("heart_rate", "garmin").set(1)
    metrics.etl_runs.labels("daily", "failed").inc()
    metrics.etl_run_duration.labels("daily").observe(1)
    metrics.api_requests.labels("/r", "200").inc()
    metrics.api_latency.labels("/r").observe(1)
    text = generate_latest(metrics.registry).decode()
    exposed = {
        line.split("{")[0].split(" ")[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert exposed == metric_names(metrics)


def test_naming_rules() -> None:
    metrics = Metrics(CollectorRegistry())
    for family in metrics.registry.collect():
        assert family.name.startswith("healthmate_"), family.name
        if family.type == "counter":
            # prometheus_client strips _total from the family name and exports name_total
            assert not family.name.endswith("_total")
        if "duration" in family.name or "latency" in family.name or family.name.endswith("_to_stored"):
            assert family.name.endswith("_seconds"), f"{family.name}: durations are in seconds"


def test_labels_are_bounded_and_never_identify_a_person() -> None:
    metrics = Metrics(CollectorRegistry())
    for attribute, metric in vars(metrics).items():
        if attribute == "registry":
            continue
        labels = set(getattr(metric, "_labelnames", ()))
        assert not labels & FORBIDDEN_LABELS, f"{attribute} has labels {labels & FORBIDDEN_LABELS}"


def _alert_exprs() -> list[str]:
    rules = load_yaml(PROMETHEUS_DIR / "alerts.yml")
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard.get("templating", {}).get("list", []):
        if isinstance(variable.get("query"), str):
            exprs.append(variable["query"])
        elif isinstance(variable.get("query"), dict):
            exprs.append(variable["query"].get("query", ""))
    return exprs


def _test_input_series() -> list[str]:
    tests = load_yaml(PROMETHEUS_DIR / "alerts_test.yml")["tests"]
    return [series["series"] for case in tests for series in case.get("input_series", [])]


@pytest.mark.parametrize(
    ("source", "exprs"),
    [("alerts.yml", _alert_exprs), ("alerts_test.yml input series", _test_input_series),
     ("healthmate.json", _dashboard_exprs)],
)
def test_every_used_metric_name_is_exported(source: str, exprs: Any) -> None:
    used = set().union(*(healthmate_names(e) for e in exprs()))
    assert used, f"no healthmate_ metric found in {source}"
    unknown = used - exported_names()
    assert not unknown, f"{source} uses metrics that streams/metrics.py does not export: {sorted(unknown)}"


def test_name_extraction_ignores_label_values() -> None:
    expr = (
        'sum(rate(healthmate_dlq_published_total{reason="healthmate_fake"}[5m]))'
        ' / up{job="healthmate-worker"}'
    )
    assert healthmate_names(expr) == {"healthmate_dlq_published_total"}
