"""Every name README.md and the docs site quote exists in the code: settings and script
variables, Prometheus series, alerts, make targets, reason codes, migrations and files.

``tests/unit/test_docs.py`` checks the generated pages and the tables (settings, routes,
catalogue, warehouse tables); this file checks the names quoted in the prose, so that a
renamed setting, metric or file cannot leave a page describing something that is gone.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry
from readme_commands import documents

from batch.api import BACKFILL_JOB_NAME
from streams.config import Settings
from streams.errors import RejectReason
from streams.metrics import Metrics
from streams.sink.migrations import ALL_VERSIONS
from web.gateway.metrics import GatewayMetrics

ROOT = Path(__file__).resolve().parents[2]
#: README.md, every page of docs/, and bench/README.md (the site's "Benchmark details").
PAGES = [*documents(ROOT), ROOT / "bench" / "README.md"]
#: Where variables outside the Settings model are read: the stack scripts, compose, images, k8s.
DEPLOYMENT_FILES = [*(ROOT / "scripts").rglob("*.sh"), *(ROOT / "deploy").rglob("*"),
                    *(ROOT / "k8s").rglob("*"), *ROOT.glob("docker-compose*.yml"),
                    ROOT / "Dockerfile", ROOT / "Makefile"]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _where(pattern: str, pages: list[Path] = PAGES) -> dict[str, set[str]]:
    """Each match of ``pattern`` (its first group, else the whole match) -> the pages quoting it."""
    found: dict[str, set[str]] = {}
    for page in pages:
        for match in re.finditer(pattern, _text(page)):
            found.setdefault(match.group(1) if match.groups() else match.group(0), set()).add(
                str(page.relative_to(ROOT)))
    return found


def _code(path: Path) -> str:
    """A page's code: inline spans and fenced blocks, where commands and names are quoted."""
    text = _text(path)
    fenced = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return "\n".join([*fenced, *re.findall(r"`([^`\n]+)`", prose)])


def _series(*metric_classes: type) -> dict[str, str]:
    """Every exported series name (``_total``, ``_bucket``… included) -> its family."""
    names = {}
    for cls in metric_classes:
        registry = CollectorRegistry()
        cls(registry)
        for family in registry.collect():
            exported = family.name + ("_total" if family.type == "counter" else "")
            names[family.name] = names[exported] = exported
            for sample in family.samples:
                names[sample.name] = exported
    return names


def test_every_healthmate_variable_is_a_setting_or_read_by_a_deployment_file() -> None:
    settings = {f"HEALTHMATE_{name.upper()}" for name in Settings.model_fields}
    deployment = {name for path in DEPLOYMENT_FILES if path.is_file()
                  for name in re.findall(r"HEALTHMATE_[A-Z0-9_]*[A-Z0-9]", path.read_text(errors="replace"))}
    known = settings | {f"{name}_FILE" for name in settings} | deployment
    quoted = _where(r"HEALTHMATE_[A-Z0-9][A-Z0-9_]*")
    # ``HEALTHMATE_API_RATE_PER_*``, ``HEALTHMATE_SECURE_KAFKA_*_PORT``: a prefix some variable has.
    unknown = {name: pages for name, pages in quoted.items()
               if not (name in known or name.endswith("_") and any(k.startswith(name) for k in known))}
    assert unknown == {}, "named in the docs, but neither a setting nor read by a script or manifest"


def test_every_metric_named_is_exported_and_every_metric_is_named() -> None:
    series = _series(Metrics, GatewayMetrics)
    # Names of the form healthmate_* that are not metrics: the backfill DAG, the DAGs' id
    # prefix, and the local stack's runtime PostgreSQL role.
    runtime_role = re.search(r"\b(healthmate_app)\b", _text(ROOT / "scripts" / "stack.sh"))
    assert runtime_role is not None
    other = {BACKFILL_JOB_NAME, Settings.model_fields["airflow_dag_prefix"].default, runtime_role.group(1)}
    quoted = _where(r"\bhealthmate_[a-z0-9_]+")
    unknown = {name: pages for name, pages in quoted.items() if not (
        name in series or name in other or name.endswith("_") and any(s.startswith(name) for s in series))}
    assert unknown == {}, "named in the docs, but no such series"

    worker = set(_series(Metrics).values())
    catalogue = _text(ROOT / "docs" / "operating" / "metrics.md")
    assert sorted(n for n in worker if f"`{n}" not in catalogue) == [], "docs/operating/metrics.md lists it"
    gateway = set(_series(GatewayMetrics).values())
    assert sorted(n for n in gateway if n not in _where(r"\bhealthmate_gateway_[a-z_]+")) == []


def test_every_alert_named_is_a_rule() -> None:
    rules = yaml.safe_load(_text(ROOT / "deploy" / "prometheus" / "alerts.yml"))
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    assert len(alerts) >= 8
    quoted = _where(r"\b(Healthmate[A-Z][A-Za-z]+)\b")
    assert {name: pages for name, pages in quoted.items() if name not in alerts} == {}


def test_every_make_target_named_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", _text(ROOT / "Makefile"), re.M))
    assert {"run", "test", "help", "docs"} <= targets
    unknown: dict[str, set[str]] = {}
    for page in PAGES:
        for target in re.findall(r"(?:^|[\s`(])make ([a-z][a-z-]*)", _code(page), re.M):
            if target not in targets:
                unknown.setdefault(target, set()).add(str(page.relative_to(ROOT)))
    assert unknown == {}


def test_every_reason_code_on_the_reason_codes_page_exists() -> None:
    page = _text(ROOT / "docs" / "reference" / "reason-codes.md")
    codes = page[page.index("## Reason codes"):]
    quoted = set(re.findall(r"`([a-z]+(?:_[a-z]+)+)`", codes))
    assert len(quoted) >= len(RejectReason) - 1
    assert sorted(quoted - {r.value for r in RejectReason}) == []


def test_the_python_api_example_applies_every_migration() -> None:
    page = _text(ROOT / "docs" / "reference" / "python-api.md")
    applied = re.search(r"'migrations_applied': \[([\d, ]+)\]", page)
    assert applied is not None
    assert [int(v) for v in applied.group(1).split(",")] == list(ALL_VERSIONS)


def _benchmark_output(path: str) -> bool:
    """Files the benchmarks write (git-ignored, or the profiles folder): absent from a clone."""
    ignored = [line.strip() for line in _text(ROOT / ".gitignore").splitlines()
               if line.strip() and not line.startswith("#")]
    return path.startswith("bench/") and (path.startswith("bench/profiles")
                                          or any(fnmatch.fnmatch(path, p) for p in ignored))


def test_every_repository_path_named_exists() -> None:
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    missing: dict[str, set[str]] = {}
    for page in PAGES:
        for span in re.findall(r"`([^`\s]+)`", _text(page)):
            path = span.split(":")[0].rstrip("/")
            if (path.split("/")[0] in folders and "/" in path and not re.search(r"[<>{}*…]", path)
                    and not (ROOT / path).exists() and not _benchmark_output(path)):
                missing.setdefault(path, set()).add(str(page.relative_to(ROOT)))
    assert missing == {}


def test_the_checks_read_every_page() -> None:
    assert set(PAGES) == {ROOT / "README.md", ROOT / "bench" / "README.md", *(ROOT / "docs").rglob("*.md")}
