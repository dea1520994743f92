"""The erasure register against writes in flight, step by step (the lock order of
streams/sink/erasure.py), on a real PostgreSQL: a write never stores a reading of a person
after the erasure that names them commits, and an erasure deletes what a write committed
before it; an ETL load never writes back the aggregates of a person being erased. Plus the
shared write path: refused readings are dead-lettered, the rest stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from batch.config import ETLJobConfig
from batch.pipeline import BatchPipeline, day_bounds
from batch.quality_gate import QualityTally
from streams.domain import TRANSFORMATION_VERSION
from streams.domain.profiles import UserProfile
from streams.errors import RejectReason, SubjectsErased
from streams.records import NormalisedReading
from streams.sink.erasure import lock_writers, register_erasure
from streams.sink.migrations import quote_ident
from streams.sink.profiles import upsert_profile
from streams.sink.refusals import write_setting_aside_refused
from streams.sink.warehouse import prepare_batch
from web.subjects import erase_subject

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
ERASED, OTHER = "e" * 64, "o" * 64


ROW_SQL = (
    "INSERT INTO {s}.health_readings (event_id, user_key, source, metric, loinc_code, value, unit,"
    " original_value, original_unit, measured_at, ingested_at, kafka_topic, kafka_partition, kafka_offset,"
    " transformation_version) VALUES ('race-e-9', $1, 'garmin', 'steps', '55423-8', 1, '{steps}', 1,"
    " 'count', $2, $2, 'raw', 0, 9, '1.0.0')")


def reading(i: int, user: str) -> NormalisedReading:
    return NormalisedReading(
        event_id=f"race-{user[0]}-{i}", user_key=user, device_id=None, source="garmin", metric="steps",
        loinc_code="55423-8", value=float(i), unit="{steps}", original_value=float(i), original_unit="count",
        measured_at=NOW - timedelta(seconds=i), ingested_at=NOW, quality_flags=(), metadata=None,
        kafka_topic="raw", kafka_partition=0, kafka_offset=i, transformation_version=TRANSFORMATION_VERSION)


async def _count(pg: asyncpg.Connection, s: str, user: str) -> int:
    return await pg.fetchval(f"SELECT count(*) FROM {s}.health_readings WHERE user_key = $1", user)


async def test_a_write_that_waits_for_an_erasure_refuses_the_erased_readings(pg_warehouse, pg, pg_dsn
                                                                              ) -> None:
    warehouse = pg_warehouse
    s = quote_ident(warehouse.schema)
    erasure = await asyncpg.connect(pg_dsn)
    try:
        tx = erasure.transaction()
        await tx.start()
        await register_erasure(erasure, warehouse.schema, ERASED, erased_by="dpo", request_id="r-1")
        await lock_writers(erasure, warehouse.schema)
        write = asyncio.ensure_future(warehouse.write_batch("g", [reading(1, ERASED), reading(2, OTHER)], [],
                                                            {("raw", 0): 3}))
        await asyncio.sleep(0.5)
        assert not write.done()  # held back by the erasure's lock
        await tx.commit()
        with pytest.raises(SubjectsErased) as refused:
            await write
        assert refused.value.user_keys == frozenset({ERASED})
    finally:
        await erasure.close()
    assert await _count(pg, s, ERASED) == await _count(pg, s, OTHER) == 0  # rolled back whole


async def test_an_erasure_deletes_what_a_write_in_flight_commits(pg_warehouse, pg, pg_dsn) -> None:
    warehouse = pg_warehouse
    s = quote_ident(warehouse.schema)
    await warehouse.ensure_partitions([NOW])
    writer = await asyncpg.connect(pg_dsn)
    try:
        tx = writer.transaction()
        await tx.start()  # a batch that wrote its registry entry and row, not yet committed
        await writer.execute(f"INSERT INTO {s}.reading_events VALUES ('race-e-9', $1)", NOW)
        await writer.execute(ROW_SQL.replace("{s}", s), ERASED, NOW)
        erase = asyncio.ensure_future(erase_subject(warehouse.pool, warehouse.schema, ERASED,
                                                    erased_by="dpo", request_id="r-2"))
        await asyncio.sleep(0.5)
        assert not erase.done()  # waits for the write
        await tx.commit()
        counts = await erase
    finally:
        await writer.close()
    assert counts["health_readings"] == counts["reading_events"] == 1
    assert await _count(pg, s, ERASED) == 0
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.reading_events WHERE event_id = 'race-e-9'") == 0


async def _waiting_on_lock(pg: asyncpg.Connection, query_start: str) -> bool:
    """Whether a session whose current statement starts with ``query_start`` waits for a lock."""
    return bool(await pg.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
        query_start + "%"))


async def _until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_an_etl_load_during_an_erasure_writes_no_aggregates_of_the_person(pg_warehouse, pg, pg_dsn
                                                                                ) -> None:
    warehouse = pg_warehouse
    s = quote_ident(warehouse.schema)
    await warehouse.write_batch("g", [reading(1, ERASED), reading(2, OTHER)], [], {("raw", 0): 3})
    writer = await asyncpg.connect(pg_dsn)
    try:
        # A batch mid-write holds the erasure at its writers' lock: it has entered the person in
        # the register and deleted the derived rows, not yet the readings.
        tx = writer.transaction()
        await tx.start()
        await writer.execute(f"LOCK TABLE {s}.reading_events IN ROW EXCLUSIVE MODE")
        erase = asyncio.ensure_future(erase_subject(warehouse.pool, warehouse.schema, ERASED,
                                                    erased_by="dpo", request_id="r-etl"))
        await _until(lambda: _waiting_on_lock(pg, f"LOCK TABLE {s}.reading_events"))
        job = ETLJobConfig(job_name="erasure race", source_tables=["health_metrics"],
                           target_tables=["aggregated_health_metrics"], data_quality_threshold=0.0)
        days = day_bounds(NOW - timedelta(days=1), NOW + timedelta(seconds=1))
        pipeline = BatchPipeline(warehouse.pool, warehouse.schema, job, QualityTally())
        etl = asyncio.ensure_future(pipeline.run(days))

        async def loaded_or_held() -> bool:
            return etl.done() or await _waiting_on_lock(pg, f"LOCK TABLE {s}.erasure_register")

        await _until(loaded_or_held)
        await tx.commit()
        await erase
        await etl
    finally:
        await writer.close()
    rows = await pg.fetch(f"SELECT user_key FROM {s}.aggregated_health_metrics")
    assert [r["user_key"] for r in rows] == [OTHER]


async def test_the_shared_write_path_dead_letters_erased_readings_and_stores_the_rest(pg_warehouse, pg
                                                                                       ) -> None:
    warehouse = pg_warehouse
    s = quote_ident(warehouse.schema)
    await erase_subject(warehouse.pool, warehouse.schema, ERASED, erased_by="dpo", request_id="r-3")
    published: list = []

    async def publish(records: list) -> None:
        published.extend(records)

    batch = [reading(i, ERASED if i % 3 == 0 else OTHER) for i in range(12)]
    written = await write_setting_aside_refused(pg_warehouse, "g", prepare_batch(batch, [], {("raw", 0): 12}),
                                                publish=publish, max_payload_bytes=1000)
    erased = [r for r in batch if r.user_key == ERASED]
    assert written.erased == len(erased) == 4 and written.result.stored == 8
    assert {dict(p.headers)["error.code"] for p in published} == {RejectReason.SUBJECT_ERASED.encode()}
    assert [p.value for p in published] == [b""] * 4 and {p.key for p in published} == {ERASED.encode()}
    assert sorted(int(dict(p.headers)["source.offset"]) for p in published) == [0, 3, 6, 9]
    assert await _count(pg, s, ERASED) == 0 and await _count(pg, s, OTHER) == 8
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.dead_letters WHERE reason = 'subject_erased'") == 4
    assert await pg.fetchval(f"SELECT next_offset FROM {s}.sink_offsets WHERE consumer_group = 'g'") == 12


async def test_a_profile_of_an_erased_person_is_not_stored(pg_warehouse, pg) -> None:
    warehouse = pg_warehouse
    s = quote_ident(warehouse.schema)
    profile = UserProfile(ERASED, "Europe/Paris", 1975, False, "female", NOW)
    assert await upsert_profile(warehouse.pool, warehouse.schema, profile)
    counts = await erase_subject(warehouse.pool, warehouse.schema, ERASED, erased_by="dpo", request_id="r-4")
    assert counts["user_profiles"] == 1
    later = UserProfile(ERASED, "UTC", 1975, False, "female", NOW + timedelta(minutes=1))
    assert not await upsert_profile(warehouse.pool, warehouse.schema, later)  # a late update, refused
    assert await upsert_profile(warehouse.pool, warehouse.schema, UserProfile(OTHER, "UTC", None, False,
                                                                             "unknown", NOW))
    assert [r["user_key"] for r in await pg.fetch(f"SELECT user_key FROM {s}.user_profiles")] == [OTHER]
