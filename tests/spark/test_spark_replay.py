"""The Spark engine stores exactly what the worker path stores, exactly once, on real Kafka,
PostgreSQL and Spark (local[2]): the same rows, the same dead letters, retries and re-runs
storing nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import asyncpg
import pytest
from pipeline_support import ROOT
from spark_support import Pipelines, StandaloneCluster, cli_env, every_form, everything, produce, stored

from batch import api, spark_replay
from streams.sink.migrations import quote_ident

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_spark_stores_what_the_worker_path_stores_and_a_rerun_stores_nothing(
        pipelines: Pipelines, recent, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    messages = every_form(recent, 120, "eq")
    await produce(pipelines.worker, messages)
    # Tasks of at most 15 messages: each partition's range is split over several tasks, which
    # write the same partition's offsets and rows side by side.
    monkeypatch.setattr(spark_replay, "MESSAGES_PER_TASK", 15)
    by_worker = await api.backfill(pipelines.worker, pipelines.worker.raw_topic, everything(pipelines.worker))
    lines: list[str] = []
    by_spark = await api.backfill(pipelines.spark, pipelines.spark.raw_topic, everything(pipelines.spark),
                                  engine="spark", status=lines.append)
    assert by_worker.status == by_spark.status == "succeeded", (by_worker.error, by_spark.error)
    done = re.fullmatch(r"spark: (\d+) of (\d+) tasks done, \d+ readings/s", lines[-1])
    assert done and done[1] == done[2] and int(done[1]) > len({m[0] for m in messages}), lines
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


async def test_a_standalone_cluster_with_two_workers_stores_the_same_rows(
        pipelines: Pipelines, recent) -> None:  # type: ignore[no-untyped-def]
    messages = every_form(recent, 200, "cluster")
    await produce(pipelines.worker, messages)
    env = cli_env(pipelines.spark)
    with StandaloneCluster() as cluster:
        proc = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "batch", "replay", "--engine", "spark", "--master",
                             cluster.url, pipelines.spark.raw_topic, everything(pipelines.spark)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(proc.stdout)
    assert record["status"] == "succeeded" and record["rows_loaded"] > 0
    # Progress on stderr by default (tool logging stays at warn): tasks done of total and the
    # rate; one task per partition that holds messages (the range is far below a task's size).
    tasks = len({partition for partition, *_ in messages})
    progress = re.findall(r"^replay: spark: (\d+) of (\d+) tasks done, (\d+) readings/s$", proc.stderr, re.M)
    assert progress, proc.stderr[-2000:]
    assert progress[-1][:2] == (str(tasks), str(tasks)) and int(progress[-1][2]) > 0
    by_worker = await api.backfill(pipelines.worker, pipelines.worker.raw_topic, everything(pipelines.worker))
    assert by_worker.status == "succeeded"
    assert await stored(pipelines.spark) == await stored(pipelines.worker)
