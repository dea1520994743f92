"""Grafana: the provisioned dashboard and the provisioning files agree with each other and compose."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .conftest import DASHBOARD, GRAFANA_DIR, load_yaml


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows keep their panels inside
    return panels


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]


def test_dashboard_identity(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "healthmate-pipeline"
    assert dashboard["title"]
    assert dashboard.get("id") is None, "provisioned dashboards must not carry a database id"
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_every_query_panel_uses_the_provisioned_datasource(dashboard: dict[str, Any]) -> None:
    [datasource] = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        assert panel["datasource"] == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target.get("datasource", panel["datasource"]) == panel["datasource"]


def test_panels_fit_the_grid(dashboard: dict[str, Any]) -> None:
    for panel in _panels(dashboard):
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        assert pos["h"] > 0, panel["title"]


@pytest.mark.parametrize(
    ("topic", "pattern"),
    [
        ("throughput", r"rate\(healthmate_readings_(consumed|stored)_total"),
        ("lag", r"healthmate_consumer_lag_messages"),
        ("latency percentiles",
         r"histogram_quantile\(0\.\d+, .*healthmate_(measured|ingested)_to_stored_seconds_bucket"),
        ("quality by metric", r'by \(metric\) \(healthmate_quality_score\{dimension="overall"\}'),
        ("DLQ by reason", r"by \(reason\) \(rate\(healthmate_dlq_published_total"),
        ("job runs", r"healthmate_etl_runs_total"),
    ],
)
def test_dashboard_covers(dashboard: dict[str, Any], topic: str, pattern: str) -> None:
    assert any(re.search(pattern, e) for e in _exprs(dashboard)), f"no panel shows {topic}"


def test_histogram_quantiles_aggregate_buckets_by_le(dashboard: dict[str, Any]) -> None:
    for expr in _exprs(dashboard):
        if "histogram_quantile" not in expr:
            continue
        assert "_bucket[" in expr, expr
        assert re.search(r"by \(([\w, ]*\b)?le\b", expr), f"sum by (..., le) missing: {expr}"


def test_dashboard_provider_points_at_the_mounted_folder(compose: dict[str, Any]) -> None:
    [provider] = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "healthmate.yml")["providers"]
    assert provider["type"] == "file"
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_datasource_points_at_the_compose_prometheus(compose: dict[str, Any]) -> None:
    [datasource] = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]
