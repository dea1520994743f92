"""Helpers of the Spark replay tests: a topic holding every input form and poison, two schemas
(one per engine), and what a replay stored (every column but the time of storage)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from batch_support import batch_env, reading, settings_for
from fhir_examples import BLOOD_PRESSURE, HEART_RATE
from omh_examples import data_point

from streams.config import Settings
from streams.sink.migrations import quote_ident

#: Columns that record when a row was written, not what it holds.
STORAGE_TIME = {"stored_at", "created_at"}


def every_form(start: datetime, n: int, tag: str) -> list[tuple[int, bytes, bytes, int]]:
    """``(partition, key, value, timestamp ms)``: singles, envelopes, wide, Open mHealth, FHIR, poison."""
    out: list[tuple[int, bytes, bytes, int]] = []
    for i in range(n):
        at = start + timedelta(seconds=i)  # Kafka refuses record times over an hour ahead
        ms, user = int(at.timestamp() * 1000), f"user-{i % 5}"
        kind = i % 8
        if kind == 0:
            doc: Any = reading(user, "heart_rate", 55 + i % 60, "bpm", at, event_id=f"{tag}-{i}")
        elif kind == 1:
            doc = {"batch_id": f"{tag}-b{i}", "user_id": user, "source": "garmin", "device_id": "g-1",
                   "readings": [{"metric": "steps", "value": 10 + i, "unit": "count", "timestamp": ms},
                                {"metric": "steps", "value": -1, "unit": "count", "timestamp": ms}]}
        elif kind == 2:
            doc = {"user_id": i, "heart_rate": 70, "steps": 5 * i, "timestamp": at.isoformat(),
                   "source": "fitbit", "device_id": "f-1", "furlongs": 3}
        elif kind == 3:
            doc = data_point("heart-rate", "2.0", id=f"{tag}-dp-{i}", user_id=user)
        elif kind == 4:
            doc = {**HEART_RATE, "id": f"{tag}-fhir-{i}"}
        elif kind == 5:
            doc = {**BLOOD_PRESSURE, "id": f"{tag}-bp-{i}"}
        elif kind == 6:
            doc = reading(user, "body_weight", 70 + i % 9, "stones", at)  # unknown unit
        else:
            out.append((i % 3, user.encode(), b'{"user_id": "u", "metric": ', ms))  # malformed JSON
            continue
        out.append((i % 3, user.encode(), orjson.dumps(doc), ms))
    return out


async def produce(settings: Settings, messages: list[tuple[int, bytes, bytes, int]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(settings.raw_topic, value, key=key, partition=partition,
                                       timestamp_ms=ts) for partition, key, value, ts in messages]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def stored(settings: Settings) -> tuple[list[tuple], list[tuple]]:
    """Every reading (sorted, without storage time) and every dead-letter row of the schema."""
    conn = await asyncpg.connect(settings.pg_dsn_value)
    try:
        s = quote_ident(settings.warehouse_schema)
        rows = await conn.fetch(f"SELECT * FROM {s}.health_readings ORDER BY event_id")
        dead = await conn.fetch(f"SELECT * FROM {s}.dead_letters ORDER BY topic, partition, \"offset\", "
                                "member_index")
    finally:
        await conn.close()
    return ([tuple(v for k, v in r.items() if k not in STORAGE_TIME) for r in rows],
            [tuple(v for k, v in r.items() if k not in STORAGE_TIME) for r in dead])


class Pipelines:
    """Two schemas on one raw topic: one per replay engine."""

    def __init__(self, kafka: str, pg_dsn: str, name: str) -> None:
        base = batch_env(kafka, pg_dsn, name)
        base["HEALTHMATE_SINK_BATCH_SIZE"] = "40"
        base["HEALTHMATE_SPARK_MASTER"] = "local[2]"
        self.worker = settings_for({**base, "HEALTHMATE_WAREHOUSE_SCHEMA": f"{name}_w"})
        self.spark = settings_for({**base, "HEALTHMATE_WAREHOUSE_SCHEMA": f"{name}_s"})
        self.schemas = [f"{name}_w", f"{name}_s"]


def spark_home() -> str:
    import pyspark

    return os.path.dirname(pyspark.__file__)
