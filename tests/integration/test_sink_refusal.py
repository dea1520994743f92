"""A batch PostgreSQL refuses for its data never wedges the pipeline: the refused readings
are isolated by bisection and dead-lettered ``sink_rejected``; the rest commits. A bug (a
broken schema) stops the worker loudly, with a non-zero exit."""

from __future__ import annotations

import asyncio
import secrets
import urllib.request
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pipeline_support import read_topic, wait_until_caught_up

from streams.domain.validate import TRANSFORMATION_VERSION
from streams.errors import BatchRefused, RejectReason
from streams.records import DeadLetter, NormalisedReading
from streams.sink.copy_encoding import DeadLetterRow, prepare_batch
from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
REFUSED_STEPS = 4242


def reading(i: int, **fields) -> NormalisedReading:
    doc = dict(event_id=f"r-{i:05d}", user_key="k" * 64, device_id=None, source="garmin", metric="steps",
               loinc_code="55423-8", value=float(i), unit="{steps}", original_value=float(i),
               original_unit="count", measured_at=NOW - timedelta(seconds=i), ingested_at=NOW,
               quality_flags=(), metadata=None, kafka_topic="raw", kafka_partition=0, kafka_offset=i,
               transformation_version=TRANSFORMATION_VERSION)
    doc.update(fields)
    return NormalisedReading(**doc)


async def test_bisection_finds_exactly_the_readings_postgresql_refuses(pg_warehouse, pg, pg_schema):
    # What the domain now refuses up front, built by hand to reach PostgreSQL anyway.
    readings = [reading(i) for i in range(300)]
    readings[17] = reading(17, source="gar\x00min")          # CharacterNotInRepertoireError
    readings[201] = reading(201, event_id=secrets.token_hex(6000))  # index row too large
    letter = DeadLetter(b"{}", RejectReason.UNKNOWN_METRIC, "m", None, None)
    letters = [DeadLetterRow("raw", 0, 999, 0, letter)]
    with pytest.raises(BatchRefused):
        await pg_warehouse.write_batch("g", readings, letters, {("raw", 0): 300})

    prepared_refused = await pg_warehouse.find_refused(prepare_batch(readings, letters, {("raw", 0): 300}))
    assert sorted(r.kafka_offset for r, _, _ in prepared_refused) == [17, 201]
    classes = {r.kafka_offset: cls for r, cls, _ in prepared_refused}
    assert classes[17] == "CharacterNotInRepertoireError"
    assert classes[201] == "ProgramLimitExceededError"
    s = quote_ident(pg_schema)
    # The probe stored nothing.
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.health_readings") == 0
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.reading_events") == 0


async def _wait_for_table(pg, schema: str, table: str, alive) -> None:
    for _ in range(240):
        assert alive(), "the worker died"
        if await pg.fetchval("SELECT to_regclass($1)", f"{quote_ident(schema)}.{table}"):
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"{table} never appeared")


def _metric(port: str, name: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = [float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith(name)]
    return sum(values)


async def test_a_refused_reading_is_dead_lettered_and_its_neighbours_are_stored(
        pipeline_settings, pipeline_env, raw_producer, pg, worker_process):
    settings = pipeline_settings
    s = quote_ident(settings.warehouse_schema)
    worker_process.start()
    await _wait_for_table(pg, settings.warehouse_schema, "health_readings", worker_process.alive)
    # A rule the warehouse enforces and the domain does not know about.
    await pg.execute(f"ALTER TABLE {s}.health_readings ADD CONSTRAINT no_magic_steps "
                     f"CHECK (NOT (metric = 'steps' AND value = {REFUSED_STEPS}))")
    base = int((NOW - timedelta(hours=1)).timestamp() * 1000)
    good = 0
    for i in range(3000):
        refused = i % 1000 == 500
        value = REFUSED_STEPS if refused else i % 4000
        good += 0 if refused else 1
        doc = {"event_id": f"ev-{i}", "user_id": f"user-{i % 7}", "source": "fitbit", "metric": "steps",
               "value": value, "unit": "count", "timestamp": base + i}
        await raw_producer.send(settings.raw_topic, orjson.dumps(doc), key=f"user-{i % 7}".encode())
    await raw_producer.flush()
    await wait_until_caught_up(settings, pg, timeout=120, alive=worker_process.alive)

    assert await pg.fetchval(f"SELECT count(*) FROM {s}.health_readings") == good
    rows = await pg.fetch(f"SELECT reason, source, message FROM {s}.dead_letters")
    assert [r["reason"] for r in rows] == ["sink_rejected"] * 3
    assert all("CheckViolationError" in r["message"] for r in rows)
    dlq = await read_topic(settings.kafka_bootstrap, settings.dlq_topic)
    headers = [dict(r.headers) for r in dlq]
    assert [h["error.code"] for h in headers] == [b"sink_rejected"] * 3
    assert {h["error.pg_class"] for h in headers} == {b"CheckViolationError"}
    assert all(b"user-" not in r.value and b"user-" not in (r.key or b"") for r in dlq)  # no raw user id
    assert _metric(pipeline_env["HEALTHMATE_WEB_PORT"], "healthmate_sink_batches_split_total") >= 1
    assert worker_process.alive()


async def _store_one(settings, raw_producer, event_id: str) -> None:
    doc = {"event_id": event_id, "user_id": "u", "source": "fitbit", "metric": "steps", "value": 1,
           "unit": "count", "timestamp": int(NOW.timestamp() * 1000)}
    await raw_producer.send_and_wait(settings.raw_topic, orjson.dumps(doc), key=b"u")


async def _exit_code(worker_process, timeout: float = 60) -> int:
    assert worker_process.proc is not None
    return await asyncio.get_running_loop().run_in_executor(None, worker_process.proc.wait, timeout)


async def test_a_broken_schema_stops_the_worker_loudly(pipeline_settings, raw_producer, pg, worker_process):
    settings = pipeline_settings
    s = quote_ident(settings.warehouse_schema)
    worker_process.start()
    await _store_one(settings, raw_producer, "e-1")
    await wait_until_caught_up(settings, pg, timeout=120, alive=worker_process.alive)  # assigned, writing
    await pg.execute(f"DROP TABLE {s}.sink_offsets")  # not a data error: nothing can commit
    await _store_one(settings, raw_producer, "e-2")
    assert await _exit_code(worker_process) != 0
    log = worker_process.log_path.read_text(errors="replace")
    assert "warehouse write failed permanently (UndefinedTableError" in log


async def test_offsets_that_cannot_be_loaded_stop_the_worker_instead_of_pausing_it(
        pipeline_settings, raw_producer, pg, worker_process):
    # aiokafka only logs a failing rebalance listener: the partitions would stay paused.
    settings = pipeline_settings
    s = quote_ident(settings.warehouse_schema)
    worker_process.start()
    await _wait_for_table(pg, settings.warehouse_schema, "sink_offsets", worker_process.alive)
    worker_process.stop()
    await pg.execute(f"DROP TABLE {s}.sink_offsets")  # migrations are recorded: not recreated
    worker_process.start()
    assert await _exit_code(worker_process) != 0
    log = worker_process.log_path.read_text(errors="replace")
    assert "loading the offsets of assigned partitions failed permanently (UndefinedTableError" in log
