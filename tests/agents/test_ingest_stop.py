"""A graceful stop runs the ingest's stop hooks after its last commit, and survives a failing one."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from streams.config import Settings
from streams.ingest import IngestService
from streams.metrics import Metrics
from streams.rules import rules_from_settings
from streams.sink.warehouse import Warehouse


async def test_stop_hooks_run_after_the_final_flush_even_when_one_fails():
    settings = Settings(dev_mode=True, app_id="test-ingest-stop")
    calls: list[str] = []

    async def failing() -> None:
        calls.append("failing")
        raise OSError("broker gone")

    async def merged() -> None:
        # the final flush has been handed over and finished before any hook runs
        writes = service.chain._writes
        calls.append(f"merged, chain done: {writes is not None and writes.done()}")

    service = IngestService(settings, rules_from_settings(settings),
                            Warehouse(settings.pg_dsn_value, "test_ingest_stop"),
                            Metrics(CollectorRegistry()), stop_hooks=[failing, merged])
    await service.on_stop()
    assert calls == ["failing", "merged, chain done: True"]
