"""The Spark row of ``make bench``: one topic range replayed by the worker path and by Spark.

``python bench/spark.py`` produces ``BENCH_SPARK_N`` valid readings (default 100 000, the
bench's synthetic singles) to a private topic of 4 partitions, then replays the whole range
with the worker path (``python -m batch replay``'s engine) and with Spark on each master of
``BENCH_SPARK_MASTERS`` (default ``local[2]``; e.g. ``local[1],local[2]`` for the scaling
rule), each into a fresh schema, one after the other. Last, the sink alone: the same readings,
judged and COPY-encoded beforehand, written by 1 and then 2 concurrent writers (one connection
each) through the warehouse's exactly-once write: the rate PostgreSQL itself allows on this
machine, the ceiling of every engine.

Per run: wall seconds (Spark's include starting its JVM and session, a few seconds once per
backfill); the job rate (Spark: readings / seconds from its first task to the last, the rate
its progress line gives; the worker path: readings / wall); PostgreSQL's CPU per reading (every
``postgres`` process, ``/proc``) and the machine's cores busy. It fails unless every schema
stored all N readings. Topics and schemas are removed unless ``BENCH_KEEP=1``. Results:
``bench/spark_results.json`` and a table on stdout. On 2 cores the point is the scaling rule
(readings per second per core, and where PostgreSQL stops it), not a win over the worker.
A short Spark replay warms the JVM up first (not measured): a backfill pays that once.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import asyncpg  # noqa: E402
from aiokafka import ConsumerRecord  # noqa: E402
from batch_support import settings_for  # noqa: E402

from batch import api  # noqa: E402
from batch.replay import judge_message  # noqa: E402
from bench.data import BOOTSTRAP, KEEP, PARTITIONS, PG_DSN, cleanup, create_topics, log, make_data, produce  # noqa: E402
from bench.metering import CpuMeter, cpu_seconds, pids_of  # noqa: E402
from streams.batching import PendingBatch  # noqa: E402
from streams.config import Settings  # noqa: E402
from streams.connections import warehouse_from_settings  # noqa: E402
from streams.rules import rules_from_settings  # noqa: E402
from streams.sink.copy_encoding import prepare_batch  # noqa: E402
from streams.sink.migrations import quote_ident  # noqa: E402

N = int(os.environ.get("BENCH_SPARK_N", "100000"))
MASTERS = [m for m in os.environ.get("BENCH_SPARK_MASTERS", "local[2]").split(",") if m]
OUT = ROOT / "bench" / "spark_results.json"
RATE = re.compile(r"(\d+) of (\d+) tasks done, (\d+) readings/s")


#: Processes whose CPU is a replay engine's, besides this process: Spark's JVM (the driver and,
#: in local mode, the executor) and PySpark's Python workers (forks of pyspark.daemon).
SPARK_PROCESSES = ("org.apache.spark.deploy.SparkSubmit", "pyspark.daemon")


class ProcessCpu:
    """CPU seconds over a span of every PostgreSQL process and of the engine (this process, less
    this sampler's own thread, plus Spark's processes), sampled every 0.3 s so that processes
    that start and end within the span (backends of Spark's tasks, Python workers) count too.
    CPU time, unlike wall time, hardly depends on what else the shared machine runs."""

    def __init__(self) -> None:
        self.first = {group: self._read(group) for group in ("postgres", "spark")}
        self.last = {group: dict(values) for group, values in self.first.items()}
        self.own = time.process_time()
        self.sampler_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def _read(group: str) -> dict[int, float]:
        patterns = ("postgres",) if group == "postgres" else SPARK_PROCESSES
        return {pid: cpu_seconds(pid) for pattern in patterns for pid in pids_of(pattern)}

    def _sample(self) -> None:
        while not self._stop.wait(0.3):
            for group, last in self.last.items():
                for pid, cpu in self._read(group).items():
                    last[pid] = max(last.get(pid, 0.0), cpu)
        self.sampler_s = time.thread_time()

    def stop(self) -> tuple[float, float]:
        """(PostgreSQL CPU seconds, engine CPU seconds) since the start."""
        self._stop.set()
        self._thread.join()
        used = {group: sum(cpu - self.first[group].get(pid, 0.0) for pid, cpu in last.items())
                for group, last in self.last.items()}
        return used["postgres"], time.process_time() - self.own - self.sampler_s + used["spark"]


def settings(name: str, schema: str, master: str = "local[2]") -> Settings:
    return settings_for({
        "HEALTHMATE_DEV_MODE": "false", "HEALTHMATE_PSEUDONYM_KEY": f"bench-{name}",
        "HEALTHMATE_KAFKA_BOOTSTRAP": BOOTSTRAP, "HEALTHMATE_PG_DSN": PG_DSN,
        "HEALTHMATE_RAW_TOPIC": f"{name}.raw", "HEALTHMATE_DLQ_TOPIC": f"{name}.dlq",
        "HEALTHMATE_WAREHOUSE_SCHEMA": schema, "HEALTHMATE_SPARK_MASTER": master,
        "HEALTHMATE_LOG_LEVEL": "warn"})


async def migrate(s: Settings) -> None:
    """Create the schema before the clock starts (a backfill's own migration is then a no-op)."""
    warehouse = warehouse_from_settings(s, pool_max=1)
    await warehouse.start()
    await warehouse.stop()


async def stored(s: Settings) -> int:
    conn = await asyncpg.connect(PG_DSN)
    try:
        table = f"{quote_ident(s.warehouse_schema)}.health_readings"
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def replay(s: Settings, engine: str) -> dict[str, Any]:
    await migrate(s)
    lines: list[str] = []
    meter, cpu = CpuMeter(os.getpid()), ProcessCpu()
    meter.mark()
    started = time.perf_counter()
    record = await api.backfill(s, s.raw_topic, ",".join(f"{p}:0" for p in range(PARTITIONS)), engine=engine,
                                status=lines.append, trigger="bench")
    wall = time.perf_counter() - started
    busy, (pg_s, engine_s) = meter.busy(), cpu.stop()
    assert record.status == "succeeded", record.error
    n = await stored(s)
    job_rate = int(RATE.search(lines[-1]).group(3)) if lines else round(N / wall)  # type: ignore[union-attr]
    tasks = RATE.search(lines[-1]).group(2) if lines else "-"  # type: ignore[union-attr]
    return {"engine": engine if engine == "worker" else f"spark {s.spark_master}", "stored": n,
            "job_rate": job_rate, "tasks": tasks, **figures(wall, pg_s, engine_s, busy)}


def figures(seconds: float, pg_s: float, engine_s: float, busy: dict[str, float]) -> dict[str, Any]:
    return {"wall_s": round(seconds, 1), "wall_rate": round(N / seconds),
            "engine_cpu_us_per_reading": round(engine_s / N * 1e6, 1),
            "readings_per_engine_core_s": round(N / engine_s) if engine_s > 0 else None,
            "postgres_cpu_us_per_reading": round(pg_s / N * 1e6, 1),
            "postgres_cores_busy": round(pg_s / seconds, 2),
            "machine_cores_busy": busy.get("machine")}


async def warm_up(s: Settings) -> None:
    """A short Spark replay (the first 1% of each partition) before the measured ones."""
    per_partition = max(1, N // PARTITIONS // 100)
    record = await api.backfill(s, s.raw_topic, ",".join(f"{p}:0" for p in range(PARTITIONS)),
                                ",".join(f"{p}:{per_partition}" for p in range(PARTITIONS)), engine="spark")
    assert record.status == "succeeded", record.error


def prepared_batches(s: Settings, singles: list[tuple[bytes, bytes]]) -> list[Any]:
    """The readings judged and COPY-encoded as a replay would, one partition per batch."""
    rules, now_ms = rules_from_settings(s), int(time.time() * 1000)
    out = []
    for p in range(PARTITIONS):
        pending = PendingBatch()
        for offset, (key, value) in enumerate(singles[p::PARTITIONS]):
            record = ConsumerRecord(s.raw_topic, p, offset, now_ms, 0, key, value, None, len(key), len(value),
                                    ())
            judge_message(s, rules, record, pending)
            if pending.size >= s.sink_batch_size:
                out.append(prepare_batch(pending.readings, pending.dead_letters, pending.next_offsets))
                pending = PendingBatch()
        if pending:
            out.append(prepare_batch(pending.readings, pending.dead_letters, pending.next_offsets))
    return out


async def sink_only(s: Settings, singles: list[tuple[bytes, bytes]], writers: int) -> dict[str, Any]:
    await migrate(s)
    batches = prepared_batches(s, singles)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    warehouse = warehouse_from_settings(s, pool_max=writers)
    await warehouse.start()

    async def writer(w: int) -> None:
        while not queue.empty():
            await warehouse.write_prepared(f"bench-sink-{w}", queue.get_nowait())

    meter = CpuMeter(os.getpid())
    try:
        meter.mark()
        cpu = ProcessCpu()
        started = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        seconds = time.perf_counter() - started
        busy, (pg_s, engine_s) = meter.busy(), cpu.stop()
    finally:
        await warehouse.stop()
    n = await stored(s)
    return {"engine": f"sink only, {writers} writer{'s' if writers > 1 else ''}", "stored": n,
            "job_rate": round(N / seconds), "tasks": str(writers), **figures(seconds, pg_s, engine_s, busy)}


async def main() -> int:
    name = f"bench-spark-{uuid.uuid4().hex[:8]}"
    schema = name.replace("-", "_")
    schemas = [f"{schema}_w", *(f"{schema}_s{i}" for i in range(len(MASTERS))), f"{schema}_warm",
               f"{schema}_k1", f"{schema}_k2"]
    runs: list[dict[str, Any]] = []
    try:
        await create_topics([f"{name}.raw", f"{name}.dlq"])
        singles, _ = make_data(N, seed=23)
        log(f"producing {N:,} readings to {name}.raw")
        await produce(f"{name}.raw", singles)
        log("warming Spark up (its JVM starts and compiles once per backfill; not measured)")
        await warm_up(settings(name, schemas[-3], MASTERS[0]))
        log("worker path")
        runs.append(await replay(settings(name, schemas[0]), "worker"))
        for i, master in enumerate(MASTERS):
            log(f"spark {master}")
            runs.append(await replay(settings(name, schemas[1 + i], master), "spark"))
        for writers, target in ((1, schemas[-2]), (2, schemas[-1])):
            log(f"sink only, {writers} writer(s)")
            runs.append(await sink_only(settings(name, target), singles, writers))
    finally:
        if not KEEP:
            await cleanup(name, schemas)
    worker = runs[0]
    result = {"at": datetime.now(UTC).isoformat(), "n": N, "partitions": PARTITIONS, "cpus": os.cpu_count(),
              "runs": runs, "spark_over_worker": {r["engine"]: round(r["job_rate"] / worker["job_rate"], 2)
                                                  for r in runs if r["engine"].startswith("spark")}}
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nSpark replay bench: N={N:,} readings, {PARTITIONS} partitions, {os.cpu_count()} CPUs")
    print("| engine | stored | tasks | wall s | readings/s (wall) | readings/s (job) | x worker "
          "| engine CPU µs/reading | readings per engine core-s | PG CPU µs/reading "
          "| cores busy (PG / machine) |")
    for r in runs:
        print(f"| {r['engine']} | {r['stored']:,} | {r['tasks']} | {r['wall_s']} | {r['wall_rate']:,} "
              f"| {r['job_rate']:,} | {r['job_rate'] / worker['job_rate']:.2f} "
              f"| {r['engine_cpu_us_per_reading']} | {r['readings_per_engine_core_s']} "
              f"| {r['postgres_cpu_us_per_reading']} "
              f"| {r['postgres_cores_busy']} / {r['machine_cores_busy']} |")
    missing = [r["engine"] for r in runs if r["stored"] != N]
    if missing:
        print(f"FAIL: {', '.join(missing)} did not store {N:,} readings")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
