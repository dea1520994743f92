"""Where one worker spends its time per reading, stage by stage, without Kafka in the way.

    python bench/breakdown.py            # BENCH_N readings (default 40000), both message forms

Stages, each measured on its own in this process, as CPU time (best of 3 for the pure
stages), so that other load on the machine does not skew them:
- ``judge``: ``IngestService._judge`` over fetched records (decode, validate, normalise,
  pseudonymise, batch bookkeeping), exactly as the worker calls it;
- ``rows``: building the COPY records (``_reading_rows``);
- ``write``: ``Warehouse.write_batch`` on the real PostgreSQL (COPY into staging, the
  deduplicating INSERT, offsets), in batches of ``HEALTHMATE_SINK_BATCH_SIZE``, into a
  throwaway schema: CPU of this process (``write py``) and of the PostgreSQL backend
  (``write pg``, from ``/proc``; the pool has one connection), and the wall time.
It complements ``bench/run.py`` (end to end): use it to see which stage a change moved.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from aiokafka import TopicPartition  # noqa: E402
from aiokafka.structs import ConsumerRecord  # noqa: E402
from pipeline_support import drop_schema  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from bench.data import make_data  # noqa: E402
from streams.config import Settings  # noqa: E402
from streams.ingest import IngestService  # noqa: E402
from streams.metrics import Metrics  # noqa: E402
from streams.rules import rules_from_settings  # noqa: E402
from streams.sink.copy_encoding import _reading_rows  # noqa: E402
from streams.sink.migrations import quote_ident  # noqa: E402
from streams.sink.warehouse import Warehouse  # noqa: E402

N = int(os.environ.get("BENCH_N", "40000"))
FETCH = 500  # HEALTHMATE_FETCH_MAX_RECORDS default


def fetches(messages: list[tuple[bytes, bytes]], topic: str) -> list[dict]:
    now_ms = int(time.time() * 1000)
    out, offsets = [], [0, 0, 0, 0]
    for i in range(0, len(messages), FETCH):
        by_tp: dict[TopicPartition, list] = {}
        for key, value in messages[i:i + FETCH]:
            p = hash(key) % 4
            by_tp.setdefault(TopicPartition(topic, p), []).append(ConsumerRecord(
                topic, p, offsets[p], now_ms, 0, key, value, None, len(key), len(value), ()))
            offsets[p] += 1
        out.append(by_tp)
    return out


def best(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process (another user's too: /proc is world-readable)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    schema = f"bench_bd_{uuid.uuid4().hex[:8]}"
    settings = Settings(pseudonym_key="bench", warehouse_schema=schema)
    singles, envelopes = make_data(N, seed=7)
    warehouse = Warehouse(settings.pg_dsn_value, schema, pool_max=1)
    await warehouse.start()
    async with warehouse.pool.acquire() as conn:
        backend = conn.get_server_pid()
    try:
        for form, messages in (("single", singles), ("envelope", envelopes)):
            batches = fetches(messages, f"bench.{form}")
            service = IngestService(settings, rules_from_settings(settings), warehouse,
                                    Metrics(CollectorRegistry()))

            def judge(service: IngestService = service, batches: list[dict] = batches) -> None:
                service._pending = type(service._pending)()
                for fetched in batches:
                    service._judge(fetched)

            t_judge = best(judge)
            readings = service._pending.readings
            assert len(readings) == N, len(readings)
            t_rows = best(lambda readings=readings: _reading_rows(readings))
            size = settings.sink_batch_size
            wall = py = pg = float("inf")
            for _ in range(3):  # best of 3, each into emptied tables
                async with warehouse.pool.acquire() as conn:
                    await conn.execute(f"TRUNCATE {quote_ident(schema)}.health_readings, "
                                       f"{quote_ident(schema)}.reading_events")
                w0, p0, g0 = time.perf_counter(), time.process_time(), cpu_of(backend)
                for i in range(0, N, size):
                    await warehouse.write_batch("bench", readings[i:i + size], [], {(form, 0): i + size})
                wall = min(wall, time.perf_counter() - w0)
                py = min(py, time.process_time() - p0)
                pg = min(pg, cpu_of(backend) - g0)
            us = 1e6 / N
            print(f"{form:9} CPU us/reading: judge {t_judge * us:5.1f}  rows {t_rows * us:4.1f}  "
                  f"write py {py * us:5.1f}  write pg {pg * us:5.1f}   (write wall {wall * us:5.1f}, "
                  f"batch {size})")
    finally:
        await warehouse.stop()
        await drop_schema(settings.pg_dsn_value, schema)


if __name__ == "__main__":
    asyncio.run(main())
