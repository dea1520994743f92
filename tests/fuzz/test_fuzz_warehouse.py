"""Property, on the real PostgreSQL: whatever ``process_message`` makes of hostile input,
``Warehouse.write_batch`` stores every reading and every dead letter, and raises nothing
but (retried) ``WarehouseUnavailable``: no input can make PostgreSQL refuse a batch."""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from fuzz.strategies import NOW, message_values
from hypothesis import given
from hypothesis import strategies as st
from pipeline_support import drop_schema

from streams.domain import Rules
from streams.domain.validate import process_message
from streams.errors import WarehouseUnavailable
from streams.records import MessageContext
from streams.sink.copy_encoding import DeadLetterRow
from streams.sink.migrations import quote_ident
from streams.sink.warehouse import Warehouse

pytestmark = pytest.mark.integration

RULES = Rules.default(b"fuzz-key")
TOPIC, GROUP = "fuzz.raw", "fuzz-group"
DSN = os.environ.get("HEALTHMATE_PG_DSN", "postgresql://healthmate:healthmate@127.0.0.1:5432/healthmate")


class Sink:
    """One event loop, warehouse and schema for every example (examples are many and quick)."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.schema = f"fuzz_{uuid.uuid4().hex[:10]}"
        self.warehouse = Warehouse(DSN, self.schema)
        self.offsets = itertools.count()
        self.run(self.warehouse.start())

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.runner.run(coro)

    def close(self) -> None:
        self.run(self.warehouse.stop())
        self.run(drop_schema(DSN, self.schema))
        self.runner.close()


@pytest.fixture(scope="module")
def sink(pg_dsn: str) -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


async def write(sink: Sink, values: list[bytes]) -> tuple[list, list[DeadLetterRow], int]:
    readings, letters = [], []
    offset = 0
    for value in values:
        offset = next(sink.offsets)
        out = process_message(value, MessageContext(TOPIC, 0, offset, NOW), RULES)
        readings += out.readings
        letters += [DeadLetterRow(TOPIC, 0, offset, i, d) for i, d in enumerate(out.dead_letters)]
    for attempt in range(3):
        try:
            await sink.warehouse.write_batch(GROUP, readings, letters, {(TOPIC, 0): offset + 1})
            break
        except WarehouseUnavailable:
            if attempt == 2:
                raise
            await asyncio.sleep(0.5)
    return readings, letters, offset + 1


async def stored(sink: Sink, readings: list, letters: list[DeadLetterRow]) -> tuple[set, set, int]:
    s = quote_ident(sink.schema)
    conn = await asyncpg.connect(DSN)
    try:
        ids = {r["event_id"] for r in await conn.fetch(
            f"SELECT event_id FROM {s}.health_readings WHERE event_id = ANY($1::text[])",
            [r.event_id for r in readings])}
        dead = {(r["offset"], r["member_index"]) for r in await conn.fetch(
            f'SELECT "offset", member_index FROM {s}.dead_letters WHERE topic=$1 AND "offset" = ANY($2)',
            TOPIC, [d.offset for d in letters])}
        next_offset = await conn.fetchval(
            f"SELECT next_offset FROM {s}.sink_offsets WHERE consumer_group=$1 AND topic=$2", GROUP, TOPIC)
    finally:
        await conn.close()
    return ids, dead, next_offset


@given(st.lists(message_values, min_size=1, max_size=8))
def test_every_outcome_is_stored_or_dead_lettered(sink: Sink, values: list[bytes]) -> None:
    readings, letters, next_offset = sink.run(write(sink, values))
    ids, dead, committed = sink.run(stored(sink, readings, letters))
    # an event id seen before is a redelivery: stored once, earlier; still in the table
    assert {r.event_id for r in readings} <= ids
    assert {(d.offset, d.member_index) for d in letters} == dead
    assert committed == next_offset
