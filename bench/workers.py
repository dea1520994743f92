"""The shipped worker as the bench runs it (a subprocess), and the scale-out and latency measurements."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from pipeline_support import WorkerProcess, end_offsets, free_port, vm_hwm_mb

from bench.data import (
    BOOTSTRAP,
    LATENCY_S,
    PARTITIONS,
    PG_DSN,
    PROFILE,
    ROOT,
    WORK,
    N,
    create_topics,
    log,
    make_data,
    produce,
    produce_at_rate,
    wait_group_stable,
)
from bench.metering import CpuMeter
from streams.sink.migrations import quote_ident


def extra_worker_env() -> dict[str, str]:
    raw = os.environ.get("BENCH_WORKER_ENV", "").strip()
    return dict(kv.split("=", 1) for kv in raw.split(",") if kv) if raw else {}


class Worker:
    """One shipped worker on its own raw topic, group, app id, schema and web port."""

    def __init__(self, run_id: str, name: str, topic: str, replicas: int = 1, checkout: Path = ROOT) -> None:
        self.name = name
        self.topic = topic
        self.schema = f"{run_id}_{name}"
        self.group = f"{run_id}-{name}-sink"
        self.env = {
            "HEALTHMATE_APP_ID": f"{run_id}-{name}",
            "HEALTHMATE_DEV_MODE": "false",
            "HEALTHMATE_PSEUDONYM_KEY": f"bench-key-{run_id}",
            "HEALTHMATE_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "HEALTHMATE_PG_DSN": PG_DSN,
            "HEALTHMATE_RAW_TOPIC": topic,
            "HEALTHMATE_DLQ_TOPIC": f"{topic}.dlq",
            "HEALTHMATE_CONSUMER_GROUP": self.group,
            "HEALTHMATE_WAREHOUSE_SCHEMA": self.schema,
            "HEALTHMATE_TOPIC_PARTITIONS": str(PARTITIONS),
            "HEALTHMATE_WEB_PORT": str(free_port()),
            **extra_worker_env(),
        }
        WORK.mkdir(parents=True, exist_ok=True)
        self.log_path = WORK / f"worker-{name}.log"
        self.log_path.unlink(missing_ok=True)
        self.process = WorkerProcess(self.env, self.log_path, checkout)
        # Further replicas in the same consumer group (the scale-out phase), own web ports.
        self.replicas = [WorkerProcess({**self.env, "HEALTHMATE_WEB_PORT": str(free_port())},
                                       WORK / f"worker-{name}-{i}.log", checkout)
                         for i in range(1, replicas)]
        self.profiler: subprocess.Popen | None = None
        self.peak_rss_mb: float | None = None
        self.messages_at_mark = 0

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    def start(self) -> None:
        self.started = time.time()
        self.process.start()
        for replica in self.replicas:
            replica.start()
        if PROFILE:
            out = ROOT / "bench" / "profiles"
            out.mkdir(parents=True, exist_ok=True)
            self.profiler = subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(self.pid),
                 "--rate", "250", "--format", "raw", "--output", str(out / f"{self.name}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop_profiler(self) -> None:
        """End the py-spy recording (it writes its file on SIGINT)."""
        if self.profiler is not None and self.profiler.poll() is None:
            self.profiler.send_signal(signal.SIGINT)
            try:
                self.profiler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.profiler.kill()

    def stop(self) -> None:
        if self.process.alive():
            self.peak_rss_mb = vm_hwm_mb(self.pid)
        self.stop_profiler()
        self.process.stop()
        for replica in self.replicas:
            replica.stop()

    async def wait_caught_up(self, pg: asyncpg.Connection, ends: dict[int, int], timeout: float,
                             meter: CpuMeter | None = None) -> None:
        """Poll ``sink_offsets`` until every partition reached ``ends``. With ``meter``, mark
        it at the first poll that sees a commit (CPU accounting of the steady state)."""
        s = quote_ident(self.schema)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.alive():
                raise RuntimeError(f"worker {self.name} died; see {self.log_path}")
            try:
                rows = await pg.fetch(
                    f"SELECT partition, next_offset FROM {s}.sink_offsets WHERE consumer_group=$1",
                    self.group)
                stored = {r["partition"]: r["next_offset"] for r in rows}
            except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                stored = {}
            if meter is not None and meter.start is None and stored:
                meter.mark()
                self.messages_at_mark = sum(stored.values())
            if all(stored.get(p, 0) >= end for p, end in ends.items()):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"worker {self.name} did not catch up in {timeout:.0f}s; see {self.log_path}")

    async def sink_stats(self) -> dict[str, float]:
        """Average transaction size and write time, from the worker's own /metrics."""
        url = f"http://127.0.0.1:{self.env['HEALTHMATE_WEB_PORT']}/metrics"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(5)) as session, \
                    session.get(url) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return {}
        values = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in ("healthmate_sink_batch_size_sum", "healthmate_sink_batch_size_count",
                        "healthmate_sink_batch_duration_seconds_sum"):
                values[name] = float(value)
        count = values.get("healthmate_sink_batch_size_count")
        if not count:
            return {}
        return {"transactions": int(count),
                "avg_batch_readings": round(values["healthmate_sink_batch_size_sum"] / count),
                "avg_write_ms": round(1000 * values["healthmate_sink_batch_duration_seconds_sum"] / count, 1),
                "write_s_total": round(values["healthmate_sink_batch_duration_seconds_sum"], 2)}

    async def throughput(self, pg: asyncpg.Connection, expected: int) -> dict[str, Any]:
        s = quote_ident(self.schema)
        row = await pg.fetchrow(
            f"SELECT count(*) AS n, min(ingested_at) AS t0, max(stored_at) AS t1 FROM {s}.health_readings")
        rejected = await pg.fetchval(f"SELECT count(*) FROM {s}.dead_letters")
        if row["n"] != expected or rejected:
            raise RuntimeError(f"{self.name}: stored {row['n']} of {expected}, {rejected} dead letters")
        seconds = (row["t1"] - row["t0"]).total_seconds()
        return {"readings": row["n"], "seconds": round(seconds, 3), "rate": round(row["n"] / seconds),
                "startup_s": round(row["t0"].timestamp() - self.started, 2)}


# --------------------------------------------------------------------------- main


async def measure_scale_out(run_id: str, singles: list[tuple[bytes, bytes]], pg: asyncpg.Connection,
                            workers: list[Worker]) -> dict[str, Any]:
    """One worker, then two in one consumer group (4 partitions: 2 each), on this same
    2-core machine, the same way: the workers join an empty topic and the group settles
    before the same ``N`` singles are produced (a rebalance inside the clock would measure
    the group protocol, not the workers; producing meanwhile costs both runs alike)."""
    rates = {}
    for count in (1, 2):
        topic = f"{run_id}.scale{count}"
        await create_topics([topic])
        group = Worker(run_id, f"scale{count}", topic, replicas=count)
        workers.append(group)
        group.start()
        await wait_group_stable(group.group, members=count, timeout=120)
        await produce(topic, singles)
        ends = await end_offsets(BOOTSTRAP, topic)
        await group.wait_caught_up(pg, ends, timeout=60 + N / 1000)
        rates[count] = await group.throughput(pg, N)
        group.stop()
    one, two = rates[1]["rate"], rates[2]["rate"]
    log(f"scale-out: 1 worker {one:,}/s, 2 workers {two:,}/s")
    return {"one_worker_rate": one, "two_workers_rate": two, "two_workers": rates[2],
            "speedup": round(two / one, 2)}


async def measure_latency(worker: Worker, pg: asyncpg.Connection, rate: float) -> dict[str, Any]:
    count = max(200, int(rate * LATENCY_S))
    rows, _ = make_data(count, seed=8)  # other event ids than the throughput data
    wall0, achieved = await produce_at_rate(worker.topic, rows, rate)
    ends = await end_offsets(BOOTSTRAP, worker.topic)
    await worker.wait_caught_up(pg, ends, timeout=60)
    s = quote_ident(worker.schema)
    row = await pg.fetchrow(
        "SELECT count(*) AS n, percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP "
        "(ORDER BY extract(epoch FROM stored_at - produced_at)) AS p, "
        "max(extract(epoch FROM stored_at - produced_at)) AS worst, "
        # where the time goes: produce -> judged (fetch + batch window), judged -> stored
        "percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
        "(ORDER BY extract(epoch FROM ingested_at - produced_at)) AS to_judged, "
        "percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
        "(ORDER BY extract(epoch FROM stored_at - ingested_at)) AS to_stored "
        f"FROM {s}.health_readings WHERE produced_at >= $1",
        datetime.fromtimestamp(wall0, UTC))
    if row["n"] != count:
        raise RuntimeError(f"latency phase: stored {row['n']} of {count}")
    p50, p95, p99 = (round(float(v) * 1000, 1) for v in row["p"])
    return {"offered_rate": round(rate), "achieved_rate": round(achieved), "readings": count,
            "seconds": LATENCY_S, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
            "max_ms": round(float(row["worst"]) * 1000, 1),
            "produced_to_judged_p50_p99_ms": [round(float(v) * 1000, 1) for v in row["to_judged"]],
            "judged_to_stored_p50_p99_ms": [round(float(v) * 1000, 1) for v in row["to_stored"]]}


