"""One attempt of a batch job: extract -> transform -> quality gate -> load.

Work is cut into day slices; each slice reads its rows with a server-side cursor in
``batch_size`` chunks, and ``parallel_workers`` slices run at once, each on its own pooled
connection. Days are UTC days, or local days when the job reads ``user_profiles``: a
slice then reads the widest UTC span any zone's day can cover and keeps the readings whose
local day it is (:func:`batch.transform.on_day`), and the days before and after the
interval are rebuilt too, since in some zone they have already begun or not yet ended.
Nothing is written until every slice is transformed and the quality gate passed. The load
is one transaction per run: for each target, delete the interval's rows and COPY the new
ones in, under a per-target advisory lock. Loading the same interval twice therefore leaves
identical target rows.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import orjson

from batch.config import ETLJobConfig
from batch.errors import QualityGateFailed
from batch.quality_gate import QualityTally, QualityVerdict
from batch.targets import EARLIEST_OFFSET, LATEST_OFFSET, STREAK_LOOKBACK_DAYS, TARGETS, Sql
from batch.transform import EngagementAccumulator, HourlyPerformance, MetricAggregator, on_day
from streams.domain.quality import DimensionCounts

DAILY = ("aggregated_health_metrics", "user_engagement")


@dataclass(slots=True)
class Extracted:
    """What an attempt extracted and transformed, before the gate."""

    rows: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    extracted: int = 0
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class AttemptResult:
    extracted: int
    loaded: int
    rejected: int
    quality: QualityVerdict


def day_bounds(start: datetime, end: datetime) -> list[date]:
    """The UTC days that cover ``[start, end)`` (whole days, start day included)."""
    first = start.astimezone(UTC).date()
    last = (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)] if end > start else []


def _at(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


class BatchPipeline:
    """Runs attempts of one batch job on ``pool`` (schema ``schema``)."""

    def __init__(self, pool: asyncpg.Pool, schema: str, job: ETLJobConfig, tally: QualityTally,
                 *, progress: Callable[[float], None] = lambda f: None) -> None:
        self.pool = pool
        self.schema = schema
        self.sql = Sql(schema)
        self.job = job
        self.tally = tally
        self.progress = progress

    def local_days(self, days: list[date]) -> list[date]:
        """The local days a local-day job rebuilds for the UTC ``days``: one more on each side,
        as somewhere it is already tomorrow (or still yesterday). Each is rebuilt whole."""
        if not days:
            return []
        return [days[0] - timedelta(days=1), *days, days[-1] + timedelta(days=1)]

    async def run(self, days: list[date]) -> AttemptResult:
        out = Extracted()
        targets = list(self.job.target_tables or ())
        daily = [t for t in targets if t in DAILY]
        daily_days = self.local_days(days) if self.job.local_days else days
        work: list[tuple[str, date]] = [("daily", d) for d in daily_days if daily]
        if "system_performance" in targets:
            work += [("performance", d) for d in days]
        gate = asyncio.Semaphore(self.job.parallel_workers)
        done = 0

        async def one(kind: str, day: date) -> None:
            nonlocal done
            async with gate, self.pool.acquire() as conn:
                if kind == "daily":
                    await self._daily(conn, day, daily, out)
                else:
                    await self._performance(conn, day, out)
            done += 1
            self.progress(0.9 * done / len(work))

        await asyncio.gather(*(one(kind, day) for kind, day in work))
        try:
            verdict = self.tally.enforce(self.job.data_quality_threshold)
        except QualityGateFailed as exc:
            exc.extracted, exc.rejected = out.extracted, out.rejected
            raise
        loaded = await self._load(days, daily_days, out)
        self.progress(1.0)
        return AttemptResult(out.extracted, loaded, out.rejected, verdict)

    async def _chunks(self, conn: asyncpg.Connection, query: str, *args: object):  # type: ignore[no-untyped-def]
        async with conn.transaction():
            cursor = await conn.cursor(query, *args)
            while rows := await cursor.fetch(self.job.batch_size):
                yield rows

    async def _daily(self, conn: asyncpg.Connection, day: date, targets: list[str], out: Extracted) -> None:
        agg = MetricAggregator(day, include_statistics=self.job.include_statistics)
        engaged = EngagementAccumulator(day)
        rows: list[tuple] = []
        local = self.job.local_days
        start, end = _at(day), _at(day + timedelta(days=1))
        query, history = self.sql.day_readings, self.sql.active_days
        if local:
            start, end = start - EARLIEST_OFFSET, end + LATEST_OFFSET
            query, history = self.sql.local_day_readings, self.sql.local_active_days
        async for records in self._chunks(conn, query, start, end):
            chunk = on_day(records, day) if local else records
            out.extracted += len(chunk)
            self.tally.readings(chunk)
            rows.extend(agg.feed(chunk))
            engaged.feed(chunk)
        rows.extend(agg.finish())
        out.rejected += agg.rejected
        if "aggregated_health_metrics" in targets:
            out.rows["aggregated_health_metrics"].extend(rows)
        if "user_engagement" in targets and engaged.users:
            # Local: the earlier days are local too; days on or after ``day`` never extend a streak.
            lookback = _at(day - timedelta(days=STREAK_LOOKBACK_DAYS))
            lookback -= EARLIEST_OFFSET if local else timedelta()
            earlier = await conn.fetch(history, engaged.users, lookback, end if local else _at(day))
            out.rows["user_engagement"].extend(engaged.rows({r["user_key"]: r["days"] for r in earlier}))

    async def _performance(self, conn: asyncpg.Connection, day: date, out: Extracted) -> None:
        perf = HourlyPerformance()
        counts: dict[datetime, DimensionCounts] = defaultdict(DimensionCounts)
        start, end = _at(day), _at(day + timedelta(days=1))
        async for chunk in self._chunks(conn, self.sql.committed_readings, start, end):
            out.extracted += len(chunk)
            perf.feed(chunk)
            by_hour: dict[datetime, list] = defaultdict(list)
            for row in chunk:
                by_hour[row["stored_at"].replace(minute=0, second=0, microsecond=0)].append(row)
            for hour, rows in by_hour.items():
                counts[hour] = counts[hour] + self.tally.readings(rows)
        by_hour_reason: dict[datetime, dict[tuple[str, str | None], int]] = defaultdict(dict)
        for r in await conn.fetch(self.sql.rejections, start, end):
            out.extracted += r["n"]
            perf.add_rejections(r["hour"], r["reason"], r["n"])
            by_hour_reason[r["hour"]][(r["reason"], r["metric"])] = r["n"]
        for hour, rejected in by_hour_reason.items():
            counts[hour] = counts[hour] + self.tally.rejections(rejected)
        perf.quality = {hour: self.tally.score_of(c) for hour, c in counts.items()}
        out.rows["system_performance"].extend(perf.rows())

    async def _load(self, days: list[date], daily_days: list[date], out: Extracted) -> int:
        if not days:
            return 0
        loaded = 0
        async with self.pool.acquire() as conn, conn.transaction():
            for name in sorted(self.job.target_tables or ()):
                target = TARGETS[name]
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"etl:{self.schema}.{name}")
                covered = daily_days if name in DAILY else days
                lo, hi = covered[0], covered[-1] + timedelta(days=1)
                bounds = (lo, hi) if target.time_column == "day" else (_at(lo), _at(hi))
                await conn.execute(self.sql.delete_range(target), *bounds)
                rows = out.rows.get(name, [])
                if name == "system_performance":
                    rows = [(*r[:4], orjson.dumps(r[4]).decode(), *r[5:]) for r in rows]
                if rows:
                    await conn.copy_records_to_table(name, records=rows, columns=target.columns,
                                                     schema_name=self.schema)
                loaded += len(rows)
        return loaded
