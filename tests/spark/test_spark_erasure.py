"""A Spark backfill reuses the sink, so it cannot bring an erased person back: their readings
are dead-lettered as ``subject_erased``; everybody else's are stored as the worker path stores
them (real Kafka, PostgreSQL and Spark local[2])."""

from __future__ import annotations

import asyncpg
import pytest
from spark_support import Pipelines, every_form, produce

from batch import api
from streams.connections import warehouse_from_settings
from streams.domain.pseudonym import user_key
from streams.sink.migrations import quote_ident
from web.subjects import erase_subject

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def _rows(dsn: str, schema: str) -> tuple[dict[str, list[str]], int]:
    conn = await asyncpg.connect(dsn)
    try:
        s = quote_ident(schema)
        rows = await conn.fetch(f"SELECT user_key, event_id FROM {s}.health_readings ORDER BY event_id")
        erased = await conn.fetchval(f"SELECT count(*) FROM {s}.dead_letters WHERE reason = 'subject_erased'")
    finally:
        await conn.close()
    by_user: dict[str, list[str]] = {}
    for r in rows:
        by_user.setdefault(r["user_key"], []).append(r["event_id"])
    return by_user, erased


async def test_a_spark_backfill_never_stores_an_erased_persons_readings(
        pipelines: Pipelines, recent) -> None:  # type: ignore[no-untyped-def]
    await produce(pipelines.worker, every_form(recent, 80, "erase"))
    everything = ",".join(f"{p}:0" for p in range(pipelines.worker.topic_partitions))
    by_worker = await api.backfill(pipelines.worker, pipelines.worker.raw_topic, everything)
    assert by_worker.status == "succeeded", by_worker.error

    spark = pipelines.spark
    person = user_key(spark.pseudonym_key_bytes, "user-1")
    warehouse = warehouse_from_settings(spark)
    await warehouse.start()  # migrates the Spark schema, so that the person can be erased first
    try:
        await erase_subject(warehouse.pool, spark.warehouse_schema, person, erased_by="dpo", request_id="r-1")
    finally:
        await warehouse.stop()
    by_spark = await api.backfill(spark, spark.raw_topic, everything, engine="spark")
    assert by_spark.status == "succeeded", by_spark.error

    worker_rows, worker_erased = await _rows(pipelines.worker.pg_dsn_value, pipelines.worker.warehouse_schema)
    spark_rows, spark_erased = await _rows(spark.pg_dsn_value, spark.warehouse_schema)
    theirs = worker_rows.pop(person)
    assert len(theirs) >= 5 and worker_erased == 0
    assert person not in spark_rows
    assert spark_rows == worker_rows  # everybody else's, as the worker path stored them
    assert spark_erased == len(theirs)  # each of theirs dead-lettered, once
