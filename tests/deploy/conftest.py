"""Shared helpers of tests/deploy: repository paths, YAML loading, PromQL metric names, promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics, metric_names

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "healthmate.json"
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S_DIR = ROOT / "k8s"

INSTALL_HINT = "promtool is missing: run `bash scripts/install_system_deps.sh` (apt package prometheus)"

_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_HEALTHMATE_NAME = re.compile(r"\bhealthmate_[A-Za-z0-9_]+")


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def healthmate_names(promql: str) -> set[str]:
    """``healthmate_*`` metric names used in a PromQL expression (string literals ignored)."""
    return set(_HEALTHMATE_NAME.findall(_STRING_LITERAL.sub('""', promql)))


def exported_names() -> set[str]:
    """Names the worker (streams/metrics.py) and the ingest gateway (web/gateway/metrics.py) export."""
    from web.gateway.metrics import GatewayMetrics

    return metric_names(Metrics(CollectorRegistry())) | metric_names(GatewayMetrics(CollectorRegistry()))  # type: ignore[arg-type]


def promtool_path() -> str:
    """The promtool binary; fails (never skips) when it is not installed."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return path


def run_promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool_path(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="session")
def alerts() -> dict[str, dict[str, Any]]:
    """Alerting rules of deploy/prometheus/alerts.yml by alert name."""
    rules: dict[str, dict[str, Any]] = {}
    for group in load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["alert"] not in rules, f"duplicate alert {rule['alert']}"
                rules[rule["alert"]] = rule
    return rules


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)
