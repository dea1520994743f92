"""``make bench``: how close the shipped worker runs to this machine's limit.

One run, on unique topics, consumer groups and warehouse schemas (all removed at the
end unless ``BENCH_KEEP=1``), measures:

- **limit**: a minimal consumer (aiokafka ``getmany`` + orjson + asyncpg binary COPY
  straight into ``health_readings``, no validation, no dedup, no offsets), for single
  readings and for envelopes of 100. See :mod:`bench.limit`.
- **pipeline**: the real worker, ``python -m streams worker`` as shipped, in a
  subprocess, on N readings (``BENCH_N``, default 200 000) pre-produced from offset 0,
  once as single readings and once as the *same* readings in envelopes of 100.
- **Open mHealth**: the same worker on the same ids, users and times as heart-rate 2.0
  data points (one reading each), reported as one more row.
- **latency**: the single-reading worker, caught up and idle, is then offered single
  readings at a fixed rate of half its measured maximum for ``BENCH_LATENCY_S`` seconds;
  produce->commit latency per reading is ``stored_at - produced_at`` (``produced_at`` is
  the Kafka record timestamp the producer set, ``stored_at`` the column default
  ``clock_timestamp()`` inside the committing transaction). Percentiles over every reading.
- **memory**: each worker's peak RSS (``VmHWM`` from ``/proc/PID/status``) when it stops.

The clock of a throughput run starts when the consumer judged its first fetched batch
and stops when the last row was written in the transaction that committed it:
``max(stored_at) - min(ingested_at)`` over the stored rows (both columns are written by
the consumer, ``ingested_at`` from its clock when a fetched batch is judged). The limit
is timed the same way, from its first non-empty fetch to its last committed COPY.
Worker start-up (Faust boot, group join) is outside the clock and reported separately.

Environment: ``BENCH_N`` (readings, default 200000), ``BENCH_LATENCY_S`` (default 10),
``BENCH_PROFILE=1`` (py-spy flame graphs of the workers into ``bench/profiles/``),
``BENCH_KEEP=1`` (keep topics and schemas), ``BENCH_WORKER_ENV`` (extra ``K=V,K=V``
settings for the workers, to try a setting without editing code),
``HEALTHMATE_KAFKA_BOOTSTRAP`` and ``HEALTHMATE_PG_DSN`` (default: the local stack).
Results: a table on stdout and ``bench/results.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
import orjson  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from aiokafka.partitioner import DefaultPartitioner  # noqa: E402
from pipeline_support import WorkerProcess, drop_schema, end_offsets, free_port  # noqa: E402

from bench.limit import run_limit  # noqa: E402
from streams.sink.migrations import quote_ident  # noqa: E402
from streams.synthetic import SyntheticReadings  # noqa: E402

BOOTSTRAP = os.environ.get("HEALTHMATE_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
PG_DSN = os.environ.get("HEALTHMATE_PG_DSN", "postgresql://healthmate:healthmate@127.0.0.1:5432/healthmate")
N = int(os.environ.get("BENCH_N", "200000"))
LATENCY_S = float(os.environ.get("BENCH_LATENCY_S", "10"))
PROFILE = os.environ.get("BENCH_PROFILE") == "1"
KEEP = os.environ.get("BENCH_KEEP") == "1"
PARTITIONS = 4  # HEALTHMATE_TOPIC_PARTITIONS default
ENVELOPE = 100
OUT = ROOT / "bench" / "results.json"
WORK = ROOT / "bench" / "work"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------- test data


def make_data(n: int, seed: int) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """``n`` valid readings as (key, value) singles, and the same readings in envelopes."""
    gen = SyntheticReadings(datetime.now(UTC), seed=seed)
    envelopes = [(m.key, m.value) for m in gen.messages(n, bad_ratio=0.0, batch_size=ENVELOPE)]
    singles = []
    for key, value in envelopes:
        doc = orjson.loads(value)
        header = {k: doc[k] for k in ("user_id", "device_id", "source")}
        singles.extend((key, orjson.dumps({**header, **member})) for member in doc["readings"])
    return singles, envelopes


def make_omh(singles: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The singles' ids, users and times as Open mHealth heart-rate 2.0 data points."""
    points = []
    for i, (key, value) in enumerate(singles):
        doc = orjson.loads(value)
        at = doc["timestamp"]
        at = datetime.fromtimestamp(at / 1000, UTC).isoformat() if isinstance(at, int) else at
        points.append((key, orjson.dumps({
            "header": {"id": doc["event_id"], "creation_date_time": at, "user_id": doc["user_id"],
                       "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"}},
            "body": {"heart_rate": {"value": 50 + i % 90, "unit": "beats/min"},
                     "effective_time_frame": {"date_time": at}}})))
    return points


async def produce(topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Publish as fast as possible (whole record batches, keyed like the default partitioner);
    return the seconds it took."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", max_batch_size=1 << 20,
                                max_request_size=4 << 20)
    await producer.start()
    started = time.perf_counter()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        partitioner = DefaultPartitioner()
        batches = {p: producer.create_batch() for p in partitions}
        sent = []
        for key, value in messages:
            p = partitioner(key, partitions, partitions)
            if batches[p].append(key=key, value=value, timestamp=None) is None:
                sent.append(await producer.send_batch(batches[p], topic, partition=p))
                batches[p] = producer.create_batch()
                batches[p].append(key=key, value=value, timestamp=None)
        for p, batch in batches.items():
            if batch.record_count():
                sent.append(await producer.send_batch(batch, topic, partition=p))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def produce_at_rate(topic: str, messages: list[tuple[bytes, bytes]], rate: float
                          ) -> tuple[float, float]:
    """Publish at ``rate`` messages/s, paced every 5 ms; return (start wall time, achieved rate)."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=0)
    await producer.start()
    try:
        wall0 = time.time()
        t0 = time.perf_counter()
        sent = 0
        pending = []
        while sent < len(messages):
            due = min(len(messages), int((time.perf_counter() - t0) * rate) + 1)
            while sent < due:
                key, value = messages[sent]
                pending.append(await producer.send(topic, value, key=key))
                sent += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - t0
    finally:
        await producer.stop()
    return wall0, len(messages) / elapsed


async def create_topics(names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(t, PARTITIONS, 1, topic_configs={"max.message.bytes": str(4 << 20)}) for t in names])
    finally:
        await admin.close()


async def wait_group_stable(group: str, members: int, timeout: float) -> None:
    """Until consumer group ``group`` is Stable with ``members`` members."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            [response] = await admin.describe_consumer_groups([group])
            # DescribeGroups v0-v5 rows: (error_code, group_id, state, protocol_type, protocol, members, ...)
            _, _, state, _, _, joined, *_ = response.groups[0]
            if state == "Stable" and len(joined) == members:
                return
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    raise RuntimeError(f"group {group} did not settle with {members} members in {timeout:.0f}s")


async def cleanup(prefix: str, schemas: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()
    for schema in schemas:
        await drop_schema(PG_DSN, schema)


# --------------------------------------------------------------------------- worker


def vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, 0.0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_of(pattern: str) -> list[int]:
    """Processes whose command line contains ``pattern`` (for CPU accounting only)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if pattern in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def machine_cpu() -> dict[str, float]:
    """Busy and stolen CPU seconds of the whole machine (``/proc/stat``)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle + iowait
    steal = ticks[7] if len(ticks) > 7 else 0
    return {"machine": (sum(ticks[:8]) - idle - steal) / hz, "steal": steal / hz}


class CpuMeter:
    """Cores used between two marks by the worker (or the bench process for the limit), all
    PostgreSQL processes, the Kafka broker, the whole machine (``machine``, so ``other`` =
    load that is not ours) and the hypervisor (``steal``).

    Processes are looked up at every sample, so backends that start later are counted.
    """

    def __init__(self, worker_pid: int) -> None:
        self.worker_pid = worker_pid
        self.start: tuple[float, dict[str, dict[int, float]], dict[str, float]] | None = None

    def sample(self) -> tuple[float, dict[str, dict[int, float]], dict[str, float]]:
        groups = {"worker": [self.worker_pid], "postgres": pids_of("postgres"),
                  "kafka": pids_of("kafka.Kafka"),
                  "bench": [os.getpid()] if self.worker_pid != os.getpid() else []}
        return (time.monotonic(), {k: {p: cpu_seconds(p) for p in pids} for k, pids in groups.items()},
                machine_cpu())

    def mark(self) -> None:
        self.start = self.sample()

    def busy(self) -> dict[str, float]:
        """Cores busy per group since :meth:`mark` (1.0 = one core all the time); empty
        if not marked or marked less than 0.5 s ago."""
        if self.start is None:
            return {}
        (t0, c0, m0), (t1, c1, m1) = self.start, self.sample()
        dt = t1 - t0
        if dt < 0.5:
            return {}  # too short to say (e.g. the whole run was one transaction)
        out = {k: sum(cpu - c0[k].get(pid, 0.0) for pid, cpu in c1[k].items()) / dt for k in c1}
        out.update({k: (m1[k] - m0[k]) / dt for k in m1})
        out["other"] = out["machine"] - sum(out[k] for k in c1)
        return {**{k: round(v, 2) for k, v in out.items()}, "seconds": round(dt, 3),
                "worker_cpu_s": round(out["worker"] * dt, 3)}


def cpu_us_per_reading(busy: dict[str, float], readings: int) -> float | None:
    """CPU microseconds the consumer spent per reading over the metered interval (``/proc``)."""
    if not busy or readings <= 0:
        return None
    return round(busy["worker_cpu_s"] / readings * 1e6, 1)


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


async def main() -> dict[str, Any]:
    run_id = f"bench_{uuid.uuid4().hex[:8]}"
    single_topic, envelope_topic, omh_topic = f"{run_id}.single", f"{run_id}.envelope", f"{run_id}.omh"
    limit_single_schema, limit_envelope_schema = f"{run_id}_limit_single", f"{run_id}_limit_envelope"
    workers: list[Worker] = []
    results: dict[str, Any] = {
        "run_id": run_id, "n": N, "envelope_size": ENVELOPE, "partitions": PARTITIONS,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "worker_env": extra_worker_env(),
        "clock": "max(stored_at) - min(ingested_at) of the stored rows: first fetched batch judged "
                 "-> last row written in its committing transaction",
    }
    log(f"run {run_id}: N={N}, generating data")
    singles, envelopes = make_data(N, seed=7)
    omh = make_omh(singles)
    await create_topics([single_topic, envelope_topic, omh_topic])
    pg = await asyncpg.connect(PG_DSN)
    try:
        took = await produce(single_topic, singles)
        log(f"produced {len(singles)} singles in {took:.1f}s ({len(singles) / took:,.0f}/s)")
        took = await produce(envelope_topic, envelopes)
        log(f"produced {len(envelopes)} envelopes in {took:.1f}s")
        took = await produce(omh_topic, omh)
        log(f"produced {len(omh)} Open mHealth data points in {took:.1f}s")

        # The limit first, alone on the machine.
        limit = {}
        for form, topic, schema in (("single", single_topic, limit_single_schema),
                                    ("envelope", envelope_topic, limit_envelope_schema)):
            limit[form] = await run_limit(BOOTSTRAP, PG_DSN, topic, schema, N, meter=CpuMeter(os.getpid()))
            limit[form]["cpu_us_per_reading"] = cpu_us_per_reading(limit[form]["cores_busy"], N)
            log(f"limit {form}: {limit[form]['rate']:,} readings/s (cores busy {limit[form]['cores_busy']})")
        results["limit"] = limit
        if not KEEP:
            # Else PostgreSQL's autovacuum of the limit's 2N fresh rows lands in a later phase.
            for schema in (limit_single_schema, limit_envelope_schema):
                await drop_schema(PG_DSN, schema)

        pipeline = {}
        for form, topic in (("single", single_topic), ("envelope", envelope_topic), ("omh", omh_topic)):
            worker = Worker(run_id, form, topic)
            workers.append(worker)
            ends = await end_offsets(BOOTSTRAP, topic)
            worker.start()
            meter = CpuMeter(worker.pid)
            await worker.wait_caught_up(pg, ends, timeout=60 + N / 1000, meter=meter)
            busy = meter.busy()
            worker.stop_profiler()
            pipeline[form] = await worker.throughput(pg, N)
            pipeline[form]["cores_busy"] = busy
            per_message = ENVELOPE if form == "envelope" else 1
            pipeline[form]["cpu_us_per_reading"] = cpu_us_per_reading(
                busy, N - worker.messages_at_mark * per_message)
            pipeline[form]["sink"] = await worker.sink_stats()
            log(f"pipeline {form}: {pipeline[form]['rate']:,} readings/s "
                f"(worker start-up {pipeline[form]['startup_s']}s; cores busy {busy}; "
                f"sink {pipeline[form]['sink']})")
            if form == "single":
                results["latency"] = await measure_latency(worker, pg, rate=pipeline[form]["rate"] / 2)
                lat = results["latency"]
                log(f"latency at {lat['offered_rate']:,}/s: p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, "
                    f"p99 {lat['p99_ms']} ms; p50/p99 produced->judged "
                    f"{lat['produced_to_judged_p50_p99_ms']}, "
                    f"judged->stored {lat['judged_to_stored_p50_p99_ms']}")
            worker.stop()
            pipeline[form]["peak_rss_mb"] = worker.peak_rss_mb
        results["pipeline"] = pipeline
        results["scale_out"] = await measure_scale_out(run_id, singles, pg, workers)
        results["ratio"] = {form: round(pipeline[form]["rate"] / limit[form]["rate"], 3)
                            for form in ("single", "envelope")}
        results["cpu_ratio"] = {
            form: _ratio(pipeline[form]["cpu_us_per_reading"], limit[form]["cpu_us_per_reading"])
            for form in ("single", "envelope")}
        results["peak_rss_mb"] = max(w.peak_rss_mb or 0 for w in workers)
    finally:
        for worker in workers:
            worker.stop()
        await pg.close()
        if not KEEP:
            await cleanup(run_id, [limit_single_schema, limit_envelope_schema, *(w.schema for w in workers)])
    return results


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


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def _fmt(value: float | None, width: int, spec: str = ".1f") -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}{spec}}"


def cores(run: dict[str, Any]) -> str:
    """``consumer / postgres`` cores busy (the limit's consumer is the bench process)."""
    busy = run.get("cores_busy") or {}
    return f"{busy.get('worker', 0):.2f} / {busy.get('postgres', 0):.2f}"


def table(r: dict[str, Any]) -> str:
    lim, pipe, ratio, lat = r["limit"], r["pipeline"], r["ratio"], r["latency"]
    lines = [
        f"HealthMate bench {r['run_id']}: N={r['n']:,} readings, {r['partitions']} partitions, "
        f"{r['machine']['cpus']} CPUs, Python {r['machine']['python']}",
        "",
        f"{'':26}{'single readings':>18}{'envelopes of ' + str(r['envelope_size']):>20}",
        f"{'limit (readings/s)':26}{lim['single']['rate']:>18,}{lim['envelope']['rate']:>20,}",
        f"{'pipeline (readings/s)':26}{pipe['single']['rate']:>18,}{pipe['envelope']['rate']:>20,}",
        f"{'pipeline / limit':26}{ratio['single']:>18.2f}{ratio['envelope']:>20.2f}",
        f"{'Open mHealth (points/s)':26}{pipe['omh']['rate']:>18,}{'(1 reading each)':>20}",
        f"{'pipeline seconds':26}{pipe['single']['seconds']:>18.2f}{pipe['envelope']['seconds']:>20.2f}",
        f"{'worker peak RSS (MB)':26}{pipe['single']['peak_rss_mb']:>18.0f}"
        f"{pipe['envelope']['peak_rss_mb']:>20.0f}",
        f"{'worker CPU us/reading':26}{_fmt(pipe['single']['cpu_us_per_reading'], 18)}"
        f"{_fmt(pipe['envelope']['cpu_us_per_reading'], 20)}",
        f"{'limit CPU us/reading':26}{_fmt(lim['single']['cpu_us_per_reading'], 18)}"
        f"{_fmt(lim['envelope']['cpu_us_per_reading'], 20)}",
        f"{'worker / limit CPU':26}{_fmt(r['cpu_ratio']['single'], 18, '.2f')}"
        f"{_fmt(r['cpu_ratio']['envelope'], 20, '.2f')}",
        f"{'cores busy: worker / pg':26}{cores(pipe['single']):>18}{cores(pipe['envelope']):>20}",
        f"{'  limit: consumer / pg':26}{cores(lim['single']):>18}{cores(lim['envelope']):>20}",
        f"{'1 / 2 workers, one group':26}"
        f"{format(r['scale_out']['one_worker_rate'], ',') + ' / ' + format(r['scale_out']['two_workers_rate'], ','):>18}"
        f"{'(x' + str(r['scale_out']['speedup']) + ')':>20}",
        "",
        f"latency produce->commit at {lat['offered_rate']:,} readings/s offered "
        f"({lat['achieved_rate']:,} achieved, {lat['readings']:,} single readings):",
        f"  p50 {lat['p50_ms']} ms   p95 {lat['p95_ms']} ms   p99 {lat['p99_ms']} ms"
        f"   max {lat['max_ms']} ms",
        "",
        "targets: worker CPU/reading <= 2x the limit's and throughput >= 0.8x the limit (both forms),",
        "         p99 < 300 ms at half load, peak RSS < 300 MB",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    wall = time.perf_counter()
    res = asyncio.run(main())
    res["bench_wall_s"] = round(time.perf_counter() - wall, 1)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    print()
    print(table(res))
    print(f"\nwrote {OUT.relative_to(ROOT)} ({res['bench_wall_s']} s)")
