"""kill -9 a real worker process repeatedly: nothing lost, nothing stored twice."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
from pipeline_support import end_offsets, wait_until_caught_up

from streams.sink.migrations import quote_ident
from streams.synthetic import SyntheticReadings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 3


async def wait_for_progress(pg, schema: str, *, beyond: int, alive, timeout: float = 60) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        assert alive.alive(), alive.log_path.read_text(errors="replace")[-3000:]
        try:
            count = await pg.fetchval(f"SELECT count(*) FROM {schema}.health_readings")
        except Exception:  # noqa: BLE001 - the schema may not exist before the first start
            count = 0
        if count > beyond:
            return count
        await asyncio.sleep(0.1)
    raise AssertionError(f"no progress beyond {beyond} stored rows in {timeout}s")


async def test_kill_9_loses_nothing_and_duplicates_nothing(
    pipeline_settings, raw_producer, pg, worker_process
):
    settings = pipeline_settings
    generator = SyntheticReadings(datetime.now(UTC), seed=23)
    messages = list(generator.messages(12_000, bad_ratio=0.05)) + list(
        generator.messages(12_000, bad_ratio=0.05, batch_size=40))
    valid_ids = {eid for m in messages for eid, code in zip(m.event_ids, m.expected, strict=True)
                 if code is None}
    assert sum(len(m.expected) for m in messages) >= 20_000

    async def produce_steadily() -> None:
        # Spread production over a few seconds so the kills land mid-stream.
        for i, m in enumerate(messages):
            await raw_producer.send(settings.raw_topic, m.value, key=m.key)
            if i % 100 == 0:
                await asyncio.sleep(0.2)
        await raw_producer.flush()

    s = quote_ident(settings.warehouse_schema)
    rng = random.Random(5)
    worker_process.start()
    producing = asyncio.create_task(produce_steadily())
    stored_at_kill = 0
    for _ in range(KILLS):
        # Kill only once this incarnation has made progress, at a random instant after.
        stored_at_kill = await wait_for_progress(pg, s, beyond=stored_at_kill, alive=worker_process)
        await asyncio.sleep(rng.uniform(0.0, 0.6))
        worker_process.kill9()
        worker_process.start()
    await producing

    await wait_until_caught_up(settings, pg, timeout=180, alive=worker_process.alive)

    total, distinct = await pg.fetchrow(
        f"SELECT count(*), count(DISTINCT event_id) FROM {s}.health_readings")
    assert total == distinct, f"{total - distinct} duplicate rows"
    assert total == len(valid_ids)
    stored = {r["event_id"] for r in await pg.fetch(f"SELECT event_id FROM {s}.health_readings")}
    assert stored == valid_ids

    ends = await end_offsets(settings.kafka_bootstrap, settings.raw_topic)
    offsets = {r["partition"]: r["next_offset"] for r in await pg.fetch(
        f"SELECT partition, next_offset FROM {s}.sink_offsets WHERE consumer_group=$1",
        settings.consumer_group)}
    assert offsets == ends
