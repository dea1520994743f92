"""Helpers of the Spark replay tests: a topic holding every input form and poison, two schemas
(one per engine), and what a replay stored (every column but the time of storage)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from batch_support import batch_env, reading, settings_for
from fhir_examples import BLOOD_PRESSURE, HEART_RATE
from omh_examples import data_point
from pipeline_support import free_port

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


def everything(settings: Settings) -> str:
    """The start of every partition of the raw topic, as ``replay`` takes it."""
    return ",".join(f"{p}:0" for p in range(settings.topic_partitions))


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment of ``python -m batch replay`` for ``settings``' pipeline."""
    return {**os.environ, "HEALTHMATE_DEV_MODE": "false",
            "HEALTHMATE_PSEUDONYM_KEY": settings.pseudonym_key.get_secret_value(),
            "HEALTHMATE_PG_DSN": settings.pg_dsn_value,
            "HEALTHMATE_WAREHOUSE_SCHEMA": settings.warehouse_schema,
            "HEALTHMATE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "HEALTHMATE_RAW_TOPIC": settings.raw_topic,
            "HEALTHMATE_DLQ_TOPIC": settings.dlq_topic,
            "HEALTHMATE_SINK_BATCH_SIZE": str(settings.sink_batch_size)}


class StandaloneCluster:
    """A Spark standalone master and ``workers`` one-core workers, started from the installed
    Spark, on loopback."""

    def __init__(self, workers: int = 2) -> None:
        self.home, self.workers = spark_home(), workers
        self.port, self.procs = free_port(), []
        self.url = f"spark://127.0.0.1:{self.port}"

    def _start(self, cls: str, *args: str) -> None:
        env = {**os.environ, "SPARK_HOME": self.home, "SPARK_LOCAL_IP": "127.0.0.1",
               "PYSPARK_PYTHON": sys.executable}
        self.procs.append(subprocess.Popen(
            [os.path.join(self.home, "bin", "spark-class"), cls, *args], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))

    def __enter__(self) -> StandaloneCluster:
        self._start("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(self.port),
                    "--webui-port", str(free_port()))
        for _ in range(self.workers):
            self._start("org.apache.spark.deploy.worker.Worker", self.url, "--host", "127.0.0.1",
                        "--cores", "1", "--memory", "1g", "--webui-port", str(free_port()))
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
