"""The reference ceiling: the least work that moves readings from Kafka into the warehouse table.

aiokafka ``getmany`` + ``orjson.loads`` + one row tuple per reading + asyncpg binary COPY
into ``health_readings`` (the same table, created by the same migrations), in batches of
:data:`BATCH`, with one COPY in flight while the next batch is fetched and decoded (the
overlap any decent consumer gets for free from asyncio, since PostgreSQL runs in its
own process). No validation, no unit conversion, no pseudonym, no dedup registry, no
offsets, no DLQ: only what the table needs (``measured_at`` is parsed because it is the
partition key; ``user_key`` is the raw user id).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from pipeline_support import partitions_of

from streams.sink.copy_encoding import READING_COLUMNS
from streams.sink.migrations import apply_migrations, quote_ident
from streams.sink.warehouse import Warehouse, month_start

BATCH = 5000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ts(raw: Any) -> datetime:
    if raw.__class__ is int:
        return _EPOCH + timedelta(milliseconds=raw)
    return datetime.fromisoformat(raw)


async def run_limit(bootstrap: str, dsn: str, topic: str, schema: str, expected: int,
                    meter: Any = None) -> dict[str, Any]:
    """Consume ``topic`` from offset 0 until ``expected`` readings are stored; return the figures.

    ``meter`` (a ``bench.run.CpuMeter``), when given, is marked when the clock starts and
    read when it stops; its reading is returned as ``cores_busy``.
    """
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn, schema)
    warehouse = Warehouse(dsn, schema)
    now = datetime.now(UTC)
    for start in {month_start(now), month_start(now - timedelta(days=2))}:
        await conn.execute(warehouse.partition_ddl(start))
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=f"bench-limit-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    table = f"{quote_ident(schema)}.health_readings"
    try:
        consumer.assign([TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)])
        await consumer.seek_to_beginning()
        in_flight: asyncio.Task | None = None
        rows: list[tuple] = []
        stored = 0
        started: float | None = None

        async def copy(batch: list[tuple]) -> None:
            await conn.copy_records_to_table("health_readings", schema_name=schema, records=batch,
                                             columns=READING_COLUMNS)

        while stored < expected:
            fetched = await consumer.getmany(timeout_ms=200, max_records=BATCH)
            if not fetched:
                continue
            if started is None:
                started = time.perf_counter()
                if meter is not None:
                    meter.mark()
            ingested = datetime.now(UTC)
            loads = orjson.loads
            for tp, messages in fetched.items():
                t, p = tp.topic, tp.partition
                for msg in messages:
                    d = loads(msg.value)
                    members = d.get("readings")
                    if members is None:
                        members = (d,)
                    user, device, source = d["user_id"], d.get("device_id"), d["source"]
                    for m in members:
                        value = float(m["value"])
                        rows.append((
                            m["event_id"], user, device, source, m["metric"], "", value, m["unit"],
                            value, m["unit"], _ts(m["timestamp"]), ingested, None, [], t, p,
                            msg.offset, "limit", None, None, None,
                        ))
            if len(rows) >= BATCH or stored + len(rows) >= expected:
                if in_flight is not None:
                    await in_flight
                stored += len(rows)
                in_flight = asyncio.ensure_future(copy(rows))
                rows = []
        if in_flight is not None:
            await in_flight
        assert started is not None
        seconds = time.perf_counter() - started
        busy = meter.busy() if meter is not None else None
        count = await conn.fetchval(f"SELECT count(*) FROM {table}")
        if count != expected:
            raise RuntimeError(f"limit stored {count} of {expected}")
    finally:
        await consumer.stop()
        await conn.close()
    return {"readings": expected, "seconds": round(seconds, 3), "rate": round(expected / seconds),
            "copy_batch": BATCH, "cores_busy": busy}
