"""The batch ETL, old way against new way: readings aggregated per second and peak memory.

``python bench/etl.py`` (also run by ``make bench``) COPYs ``BENCH_ETL_N`` synthetic readings
(default 1 000 000; :mod:`etl_data`: ``BENCH_ETL_USERS`` users, default 200, five metrics,
eight profile zones, ties, summaries, a few non-canonical and NaN rows) over 30 days into a
throwaway schema (dropped at the end unless ``BENCH_KEEP=1``), then runs the local-day job
(sources include ``user_profiles``) with both daily targets, over the first 10 days and over
all 30, each way in a fresh subprocess:

- **old**: the previous pipeline (``tests/etl_reference.py``): every reading fetched into
  Python by a cursor, aggregated row by row, the target rows held until the load;
- **new**: :class:`batch.pipeline.BatchPipeline`: PostgreSQL aggregates day by day, Python
  only scores quality from cursor chunks.

Both score every reading for the quality gate, as the gate needs. A row is ``readings/s`` =
readings extracted / wall seconds of the attempt (the old way without its load: it would
only add a COPY); ``quality s``, the seconds of that spent in quality scoring (the same
Python code both ways); ``targets/s``, readings / the seconds left, i.e. the targets' own
rate (fetching and aggregating, or SQL); and the process's peak RSS during the attempt
(:class:`PeakRss`) and its growth over the RSS the attempt began with. The new way's target
rows must equal the old way's (floats to 1e-9 relative), or the script fails. Results: a
table on stdout and ``bench/etl_results.json``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import asyncpg  # noqa: E402
from etl_data import add_profiles, copy_readings, readings  # noqa: E402
from etl_reference import reference_daily  # noqa: E402

from batch.config import ETLJobConfig  # noqa: E402
from batch.pipeline import BatchPipeline, day_bounds  # noqa: E402
from batch.quality_gate import QualityTally  # noqa: E402
from streams.sink.migrations import quote_ident  # noqa: E402
from streams.sink.warehouse import Warehouse  # noqa: E402

DSN = os.environ.get("HEALTHMATE_PG_DSN", "postgresql://healthmate:healthmate@127.0.0.1:5432/healthmate")
START, DAYS = datetime(2026, 3, 2, tzinfo=UTC), 30
DAILY = ["aggregated_health_metrics", "user_engagement"]
JOB = ETLJobConfig(job_name="bench", source_tables=["health_metrics", "user_profiles"], target_tables=DAILY,
                   data_quality_threshold=0.0)


class TimedTally(QualityTally):
    """The quality tally, timing its scoring, so that the targets' own cost can be shown."""

    seconds = 0.0

    def readings(self, rows):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return super().readings(rows)
        finally:
            self.seconds += time.perf_counter() - t0


def _rss_mb() -> float:
    """This process's resident set now (``/proc/self/statm``), in MB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """The highest RSS sampled (every 10 ms, from a thread) while the block runs, and the RSS
    when it began. ``ru_maxrss`` would not do: start-up (imports, migrations) may set it."""

    def __enter__(self) -> PeakRss:
        self.start = self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


async def _child(way: str, schema: str, days: int, out: str) -> dict[str, Any]:
    """One run in this (fresh) process; the old way pickles its rows to ``out``."""
    wh = Warehouse(DSN, schema, pool_max=4)
    await wh.start()
    try:
        interval = day_bounds(START, START + timedelta(days=days))
        tally = TimedTally()
        with PeakRss() as rss:
            t0 = time.perf_counter()
            if way == "new":
                result = await BatchPipeline(wh.pool, schema, JOB, tally).run(interval)
                extracted, loaded = result.extracted, result.loaded
            else:
                covered = BatchPipeline(wh.pool, schema, JOB, QualityTally()).local_days(interval)
                async with wh.pool.acquire() as conn:
                    rows = await reference_daily(conn, schema, JOB, covered, tally)
                extracted, loaded = rows["extracted"], sum(len(rows[n]) for n in DAILY)
            seconds = time.perf_counter() - t0
        if way == "old":
            Path(out).write_bytes(pickle.dumps({n: rows[n] for n in DAILY}))
        targets = seconds - tally.seconds
        return {"way": way, "days": days, "readings": extracted, "rows": loaded, "seconds": round(seconds, 2),
                "readings_per_s": round(extracted / seconds), "quality_s": round(tally.seconds, 2),
                "targets_readings_per_s": round(extracted / targets), "peak_rss_mb": round(rss.peak, 1),
                "growth_mb": round(rss.peak - rss.start, 1)}
    finally:
        await wh.stop()


def _run_child(way: str, schema: str, days: int, out: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", way, schema, str(days), out], check=True,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


async def _check_equal(pool: asyncpg.Pool, schema: str, old_rows: dict[str, list[tuple]]) -> None:
    s = quote_ident(schema)
    for name in DAILY:
        got = sorted((tuple(r) for r in await pool.fetch(f"SELECT * FROM {s}.{quote_ident(name)}")),
                     key=lambda r: r[:3])
        want = sorted(old_rows[name], key=lambda r: r[:3])
        if len(got) != len(want) or not all(_same(a, b) for g, w in zip(got, want, strict=True)
                                            for a, b in zip(g, w, strict=True)):
            raise SystemExit(f"{name}: the SQL rows differ from the Python reference")


async def main() -> None:
    n = int(os.environ.get("BENCH_ETL_N", "1000000"))
    users = int(os.environ.get("BENCH_ETL_USERS", "200"))
    schema = f"bench_etl_{uuid.uuid4().hex[:8]}"
    wh = Warehouse(DSN, schema, pool_max=2)
    await wh.start()
    results: list[dict[str, Any]] = []
    try:
        t0 = time.perf_counter()
        async with wh.pool.acquire() as conn:
            await copy_readings(conn, schema, readings(n, START, DAYS, users), START, DAYS)
            await add_profiles(conn, schema, users)
            await conn.execute(f"ANALYZE {quote_ident(schema)}.health_readings")
        print(f"COPY of {n} readings over {DAYS} days: {time.perf_counter() - t0:.1f} s", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            for days in (10, DAYS):
                out = str(Path(tmp) / f"old-{days}.pickle")
                for way in ("old", "new"):
                    results.append(_run_child(way, schema, days, out))
                    print(results[-1], flush=True)
                await _check_equal(wh.pool, schema, pickle.loads(Path(out).read_bytes()))
        print(f"\nETL, {n} readings, {users} users, local days; new rows equal old rows: yes")
        print(f"{'way':<5}{'days':>5}{'readings':>10}{'seconds':>9}{'readings/s':>12}{'quality s':>11}"
              f"{'targets/s':>11}{'peak RSS MB':>13}{'growth MB':>11}")
        for r in results:
            print(f"{r['way']:<5}{r['days']:>5}{r['readings']:>10}{r['seconds']:>9}{r['readings_per_s']:>12}"
                  f"{r['quality_s']:>11}{r['targets_readings_per_s']:>11}{r['peak_rss_mb']:>13}"
                  f"{r['growth_mb']:>11}")
        Path(ROOT / "bench" / "etl_results.json").write_text(json.dumps(
            {"n": n, "users": users, "days": DAYS, "runs": results}, indent=2))
    finally:
        if os.environ.get("BENCH_KEEP") != "1":
            await wh.pool.execute(f"DROP SCHEMA {quote_ident(schema)} CASCADE")
        await wh.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        way, schema, days, out = sys.argv[2:6]
        print(json.dumps(asyncio.run(_child(way, schema, int(days), out))))
    else:
        asyncio.run(main())
