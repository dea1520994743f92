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
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import asyncpg  # noqa: E402
from pipeline_support import drop_schema, end_offsets  # noqa: E402

from bench.data import (  # noqa: E402
    BOOTSTRAP,
    ENVELOPE,
    KEEP,
    OUT,
    PARTITIONS,
    PG_DSN,
    N,
    cleanup,
    create_topics,
    log,
    make_data,
    make_omh,
    produce,
)
from bench.limit import run_limit  # noqa: E402
from bench.metering import CpuMeter, cpu_us_per_reading, ratio  # noqa: E402
from bench.report import table  # noqa: E402
from bench.workers import Worker, extra_worker_env, measure_latency, measure_scale_out  # noqa: E402


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
            form: ratio(pipeline[form]["cpu_us_per_reading"], limit[form]["cpu_us_per_reading"])
            for form in ("single", "envelope")}
        results["peak_rss_mb"] = max(w.peak_rss_mb or 0 for w in workers)
    finally:
        for worker in workers:
            worker.stop()
        await pg.close()
        if not KEEP:
            await cleanup(run_id, [limit_single_schema, limit_envelope_schema, *(w.schema for w in workers)])
    return results


if __name__ == "__main__":
    wall = time.perf_counter()
    res = asyncio.run(main())
    res["bench_wall_s"] = round(time.perf_counter() - wall, 1)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    print()
    print(table(res))
    print(f"\nwrote {OUT.relative_to(ROOT)} ({res['bench_wall_s']} s)")
