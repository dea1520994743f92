"""The streaming pipeline records its own OpenLineage run: START on start, COMPLETE on stop."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from lineage_check import validate

from streams.sink.migrations import quote_ident

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_worker_records_a_streaming_run_with_topic_and_table_lineage(
    pipeline_settings, pg, worker_process
):
    settings = pipeline_settings
    table = f"{quote_ident(settings.warehouse_schema)}.lineage_events"

    async def events() -> list[dict]:
        try:
            rows = await pg.fetch(f"SELECT event FROM {table} WHERE job_name = 'streaming.ingest'"
                                  " ORDER BY event_time, event_type DESC")
        except Exception:  # noqa: BLE001 - the table appears once the worker migrated
            return []
        return [orjson.loads(r["event"]) for r in rows]

    worker_process.start()
    for _ in range(120):
        if await events():
            break
        assert worker_process.alive(), worker_process.log_path.read_text()[-2000:]
        await asyncio.sleep(0.5)
    worker_process.stop()

    recorded = await events()
    assert [e["eventType"] for e in recorded] == ["START", "COMPLETE"]
    assert len({e["run"]["runId"] for e in recorded}) == 1
    start = recorded[0]
    assert start["job"]["facets"]["jobType"]["processingType"] == "STREAMING"
    assert [d["name"] for d in start["inputs"]] == [settings.raw_topic]
    outputs = {d["name"] for d in start["outputs"]}
    assert settings.dlq_topic in outputs
    assert any(name.endswith(f"{settings.warehouse_schema}.health_readings") for name in outputs)
    for event in recorded:
        validate(event)
