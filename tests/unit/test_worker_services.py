"""The composition root builds every service once and hands them down explicitly."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from prometheus_client import CollectorRegistry

from healthmate.worker import WorkerServices, build_worker
from streams.config import Settings

ROOT = Path(__file__).resolve().parents[2]
#: What the factory used to hang on the Faust app before the root existed.
OLD_APP_ATTRIBUTES = ("healthmate_settings", "warehouse", "ingest", "metrics", "quality", "profiles", "api")


async def test_every_service_is_built_and_none_hangs_on_the_app(tmp_path: Path) -> None:
    settings = Settings(dev_mode=True, app_id="hm-services-test", data_dir=str(tmp_path))
    app, services = build_worker(settings, registry=CollectorRegistry())
    missing = [f.name for f in dataclasses.fields(services) if getattr(services, f.name) is None]
    assert missing == []
    assert services.settings is settings
    assert services.ingest.warehouse is services.warehouse is services.profiles.warehouse
    assert services.quality is not None and services.quality.warehouse is services.warehouse
    assert [name for name in OLD_APP_ATTRIBUTES if name in vars(app)] == []


async def test_quality_off_means_no_quality_stream(tmp_path: Path) -> None:
    settings = Settings(dev_mode=True, app_id="hm-services-off", data_dir=str(tmp_path),
                        quality_enabled=False)
    _, services = build_worker(settings, registry=CollectorRegistry())
    assert services.quality is None
    assert services.ingest.stop_hooks == []
    owners = [type(getattr(o, "__self__", None)).__name__ for o in services.ingest.batch_observers]
    assert owners == ["ThroughputMeter"]


def services_attributes_used() -> dict[str, set[str]]:
    """``services.X`` and ``api.services.X`` read anywhere in web/ and healthmate/, by file."""
    used: dict[str, set[str]] = {}
    for path in [*(ROOT / "web").rglob("*.py"), *(ROOT / "healthmate").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id == "services") or (
                    isinstance(owner, ast.Attribute) and owner.attr == "services"):
                used.setdefault(str(path.relative_to(ROOT)), set()).add(node.attr)
    return used


def test_views_take_only_services_the_object_has() -> None:
    fields = {f.name for f in dataclasses.fields(WorkerServices)}
    used = services_attributes_used()
    assert used, "the views read their services from the services object"
    unknown = {path: names - fields for path, names in used.items() if names - fields}
    assert unknown == {}
