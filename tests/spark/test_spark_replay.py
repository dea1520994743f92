"""The Spark engine stores exactly what the worker path stores, exactly once, on real Kafka,
PostgreSQL and Spark (local[2]): the same rows, the same dead letters, retries and re-runs
storing nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import asyncpg
import pytest
from pipeline_support import ROOT
from spark_support import Pipelines, every_form, produce, stored

from batch import api
from streams.sink.migrations import quote_ident

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def everything(settings) -> str:  # type: ignore[no-untyped-def]
    return ",".join(f"{p}:0" for p in range(settings.topic_partitions))


async def test_spark_stores_what_the_worker_path_stores_and_a_rerun_stores_nothing(
        pipelines: Pipelines, recent) -> None:  # type: ignore[no-untyped-def]
    await produce(pipelines.worker, every_form(recent, 120, "eq"))
    by_worker = await api.backfill(pipelines.worker, pipelines.worker.raw_topic, everything(pipelines.worker))
    by_spark = await api.backfill(pipelines.spark, pipelines.spark.raw_topic, everything(pipelines.spark),
                                  engine="spark")
    assert by_worker.status == by_spark.status == "succeeded", (by_worker.error, by_spark.error)
    rows_w, dead_w = await stored(pipelines.worker)
    rows_s, dead_s = await stored(pipelines.spark)
    assert len(rows_w) > 100 and len(dead_w) > 20
    assert rows_s == rows_w
    assert dead_s == dead_w
    reasons = Counter(row[4] for row in dead_s)
    assert {"malformed_json", "unknown_unit", "unknown_metric", "out_of_range"} <= set(reasons)
    # The run's summary is the worker path's: read, stored, dead-lettered.
    assert (by_spark.rows_extracted, by_spark.rows_loaded, by_spark.rows_rejected) == (
        by_worker.rows_extracted, by_worker.rows_loaded, by_worker.rows_rejected)
    assert by_spark.quality_score is not None

    again = await api.backfill(pipelines.spark, pipelines.spark.raw_topic, everything(pipelines.spark),
                               engine="spark")
    assert again.status == "succeeded" and again.rows_loaded == 0
    assert await stored(pipelines.spark) == (rows_s, dead_s)
    conn = await asyncpg.connect(pipelines.spark.pg_dsn_value)
    try:
        engines = await conn.fetch(
            f"SELECT event->'run'->'facets'->'processing_engine'->>'name' AS name "
            f"FROM {quote_ident(pipelines.spark.warehouse_schema)}.lineage_events "
            "WHERE event->>'eventType' = 'COMPLETE'")
    finally:
        await conn.close()
    assert [r["name"] for r in engines] == ["spark", "spark"]


def _python_workers() -> set[int]:
    """pids of PySpark's Python worker processes (children of pyspark.daemon) of this test."""
    out = subprocess.run(["pgrep", "-f", "pyspark.daemon"], capture_output=True, text=True, check=False)
    daemons = {int(p) for p in out.stdout.split()}
    children: set[int] = set()
    for daemon in daemons:
        kids = subprocess.run(["pgrep", "-P", str(daemon)], capture_output=True, text=True, check=False)
        children |= {int(p) for p in kids.stdout.split()}
    return children


async def test_a_task_killed_mid_batch_is_retried_and_stores_nothing_twice(
        pipelines: Pipelines, recent) -> None:  # type: ignore[no-untyped-def]
    await produce(pipelines.worker, every_form(recent, 4000, "kill"))
    killed: list[int] = []
    s = quote_ident(pipelines.spark.warehouse_schema)

    async def first_rows() -> None:
        conn = await asyncpg.connect(pipelines.spark.pg_dsn_value)
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and not killed:
                try:
                    n = await conn.fetchval(f"SELECT count(*) FROM {s}.health_readings")
                except asyncpg.UndefinedTableError:
                    n = 0
                workers = _python_workers()
                if n and workers:  # a task is mid-way: some batches committed, more to come
                    victim = max(workers)
                    os.kill(victim, signal.SIGKILL)
                    killed.append(victim)
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    def watch() -> None:
        asyncio.run(first_rows())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    run = await api.backfill(pipelines.spark, pipelines.spark.raw_topic, everything(pipelines.spark),
                             engine="spark")
    watcher.join(timeout=10)
    assert killed, "no Python worker was seen mid-task"
    assert run.status == "succeeded", run.error
    by_worker = await api.backfill(pipelines.worker, pipelines.worker.raw_topic, everything(pipelines.worker))
    rows_w, dead_w = await stored(pipelines.worker)
    rows_s, dead_s = await stored(pipelines.spark)
    assert len({r[0] for r in rows_s}) == len(rows_s)  # no event id twice
    assert rows_s == rows_w and dead_s == dead_w
    assert by_worker.rows_loaded == len(rows_w)


class StandaloneCluster:
    """A Spark standalone master and two workers, started from the installed Spark, on loopback."""

    def __init__(self) -> None:
        import pyspark
        from pipeline_support import free_port

        self.home = os.path.dirname(pyspark.__file__)
        self.port, self.procs = free_port(), []
        self.url = f"spark://127.0.0.1:{self.port}"

    def _start(self, cls: str, *args: str) -> None:
        env = {**os.environ, "SPARK_HOME": self.home, "SPARK_LOCAL_IP": "127.0.0.1",
               "PYSPARK_PYTHON": sys.executable}
        self.procs.append(subprocess.Popen(
            [os.path.join(self.home, "bin", "spark-class"), cls, *args], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))

    def __enter__(self) -> StandaloneCluster:
        from pipeline_support import free_port

        self._start("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(self.port),
                    "--webui-port", str(free_port()))
        for _ in range(2):
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


async def test_a_standalone_cluster_with_two_workers_stores_the_same_rows(
        pipelines: Pipelines, recent) -> None:  # type: ignore[no-untyped-def]
    await produce(pipelines.worker, every_form(recent, 200, "cluster"))
    env = {**os.environ, "HEALTHMATE_DEV_MODE": "false",
           "HEALTHMATE_PSEUDONYM_KEY": pipelines.spark.pseudonym_key.get_secret_value(),
           "HEALTHMATE_PG_DSN": pipelines.spark.pg_dsn_value,
           "HEALTHMATE_WAREHOUSE_SCHEMA": pipelines.spark.warehouse_schema,
           "HEALTHMATE_KAFKA_BOOTSTRAP": pipelines.spark.kafka_bootstrap,
           "HEALTHMATE_RAW_TOPIC": pipelines.spark.raw_topic,
           "HEALTHMATE_DLQ_TOPIC": pipelines.spark.dlq_topic,
           "HEALTHMATE_SINK_BATCH_SIZE": "40"}
    with StandaloneCluster() as cluster:
        proc = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "batch", "replay", "--engine", "spark", "--master",
                             cluster.url, pipelines.spark.raw_topic, everything(pipelines.spark)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(proc.stdout)
    assert record["status"] == "succeeded" and record["rows_loaded"] > 0
    by_worker = await api.backfill(pipelines.worker, pipelines.worker.raw_topic, everything(pipelines.worker))
    assert by_worker.status == "succeeded"
    assert await stored(pipelines.spark) == await stored(pipelines.worker)
