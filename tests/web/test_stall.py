"""A stalled partition is visible in /pipeline/status.

The warehouse write is blocked for real: a second PostgreSQL session holds an EXCLUSIVE lock
on ``sink_offsets``, so the ingest service's batch transaction waits on its offset upsert
while the web server keeps answering. Messages produced meanwhile make lag, the last
commit ages past the worker's 2 s stall threshold, and the partition must be flagged; when
the lock goes, the batch commits and the flag clears.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import pytest

from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration


async def test_status_flags_a_stalled_partition_and_clears_it(client, api_worker, produce, make_reading, now,
                                                              eventually):  # type: ignore[no-untyped-def]
    topic = api_worker.settings.raw_topic

    async def partition0(predicate):  # type: ignore[no-untyped-def]
        reply = await client.call("GET", "/pipeline/status", role="viewer")
        assert reply.status == 200, reply.body
        rows = [p for p in reply.body["consumer"]["partitions"] if p["partition"] == 0]
        return (reply.body, rows[0]) if rows and predicate(rows[0]) else None

    await produce(make_reading(f"pre-{uuid.uuid4().hex[:8]}", at=now - timedelta(minutes=1)), partition=0)
    await eventually(lambda: partition0(lambda p: p["lag"] == 0 and p["last_commit_age_s"] is not None))

    blocker = await asyncpg.connect(api_worker.settings.pg_dsn_value)
    lock = blocker.transaction()
    await lock.start()
    try:
        await blocker.execute(
            f"LOCK TABLE {quote_ident(api_worker.settings.warehouse_schema)}.sink_offsets IN EXCLUSIVE MODE")
        for _ in range(3):
            await produce(make_reading(f"stall-{uuid.uuid4().hex[:8]}", at=now - timedelta(minutes=1)),
                          partition=0)
        body, p0 = await eventually(lambda: partition0(lambda p: p["stalled"]), timeout=20)
        assert p0["lag"] >= 3 and p0["last_commit_age_s"] >= api_worker.settings.api_stall_after_s
        assert body["status"] == "degraded" and body["consumer"]["stalled"] == [f"{topic}/0"]
        assert body["warehouse"]["reachable"] is True, "only the write is blocked"
    finally:
        await lock.rollback()
        await blocker.close()

    body, p0 = await eventually(lambda: partition0(lambda p: not p["stalled"] and p["lag"] == 0), timeout=20)
    assert body["consumer"]["stalled"] == []
