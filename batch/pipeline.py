"""One attempt of a batch job: quality gate, then load, day by day, in bounded memory.

The aggregates are computed by PostgreSQL (:class:`batch.targets.DailySql`); Python holds
only what SQL cannot express, the quality scoring, which it reads in ``batch_size`` chunks
through a server-side cursor. Work is cut into day slices and ``parallel_workers`` slices
are scored at once, each on its own pooled connection. Days are UTC days, or local days
when the job reads ``user_profiles``: a slice then reads the widest UTC span any zone's
day can cover and keeps (in SQL) the readings whose local day it is, and the days before
and after the interval are rebuilt too, since in some zone they have already begun or not
yet ended. Nothing is written until every slice is scored and the quality gate passed.

The load is one transaction per run: for each target, under a per-target advisory lock,
delete the interval's rows, then insert the new ones: daily targets with one
``INSERT ... SELECT`` per day, in day order (the rows never leave the server; the first
day's streaks read the history, each later day's extend the day before's, so the cost of
a day does not grow with the history), ``system_performance`` (24 rows a day, scored in
Python) by COPY. Loading the same interval twice therefore
leaves identical target rows. Memory does not grow with the number of readings or days
(except the ``system_performance`` rows, 24 a day).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import orjson

from batch.cgm import TARGET as CGM
from batch.cgm import CgmSql
from batch.cgm import load as load_cgm
from batch.config import ETLJobConfig
from batch.errors import QualityGateFailed
from batch.quality_gate import QualityTally, QualityVerdict
from batch.targets import EARLIEST_OFFSET, LATEST_OFFSET, STREAK_LOOKBACK_DAYS, TARGETS, DailySql, Sql
from batch.transform import performance_rows
from streams.domain.catalogue import DEFAULT_CATALOGUE
from streams.domain.quality import DimensionCounts
from streams.sink.erasure import hold_erasures

DAILY = ("aggregated_health_metrics", "user_engagement")
#: Targets built day by day from the day's readings, which the quality gate scores first.
BY_DAY = (*DAILY, CGM)


@dataclass(slots=True)
class Extracted:
    """What an attempt extracted and scored, before the gate (``system_performance`` rows)."""

    performance: list[tuple] = field(default_factory=list)
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
        self.cgm_sql = CgmSql(self.sql.s)
        self.job = job
        self.tally = tally
        self.progress = progress
        self._steps = (0, 0)  # daily loads done, of all
        self._zones: list[str] = []  # profile zones PostgreSQL knows, for local days

    def local_days(self, days: list[date]) -> list[date]:
        """The local days a local-day job rebuilds for the UTC ``days``: one more on each side,
        as somewhere it is already tomorrow (or still yesterday). Each is rebuilt whole."""
        if not days:
            return []
        return [days[0] - timedelta(days=1), *days, days[-1] + timedelta(days=1)]

    @property
    def daily_sql(self) -> DailySql:
        return self.sql.local_days if self.job.local_days else self.sql.utc_days

    def _span(self, day: date) -> tuple[datetime, datetime]:
        """The ``measured_at`` span that holds every reading of ``day`` (UTC or local)."""
        start, end = _at(day), _at(day + timedelta(days=1))
        return (start - EARLIEST_OFFSET, end + LATEST_OFFSET) if self.job.local_days else (start, end)

    def _day_args(self, day: date) -> tuple:
        """The first parameters of every :class:`DailySql` statement for ``day``."""
        return (*self._span(day), day, self._zones) if self.job.local_days else (*self._span(day), day)

    async def _known_zones(self, conn: asyncpg.Connection) -> None:
        if self.job.local_days:
            self._zones = await conn.fetchval(self.sql.known_zones)

    async def run(self, days: list[date]) -> AttemptResult:
        out = Extracted()
        targets = list(self.job.target_tables or ())
        daily = [t for t in targets if t in BY_DAY]
        daily_days = self.local_days(days) if self.job.local_days else days
        work: list[tuple[str, date]] = [("daily", d) for d in daily_days if daily]
        if "system_performance" in targets:
            work += [("performance", d) for d in days]
        gate = asyncio.Semaphore(self.job.parallel_workers)
        done = 0
        async with self.pool.acquire() as conn:
            await self._known_zones(conn)

        async def one(kind: str, day: date) -> None:
            nonlocal done
            async with gate, self.pool.acquire() as conn:
                if kind == "daily":
                    await self._daily(conn, day, out)
                else:
                    await self._performance(conn, day, out)
            done += 1
            self.progress(0.5 * done / len(work))

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

    def _catalogue(self) -> tuple[bool, list[str], list[str]]:
        """The parameters after the day's of the aggregating statements: statistics wanted,
        metrics, their canonical units."""
        return (self.job.include_statistics, list(DEFAULT_CATALOGUE),
                [rule.canonical_unit for rule in DEFAULT_CATALOGUE.values()])

    async def _daily(self, conn: asyncpg.Connection, day: date, out: Extracted) -> None:
        """Score one day's readings for the gate and count its rejects; aggregates come at load."""
        sql, bounds = self.daily_sql, self._day_args(day)
        async for chunk in self._chunks(conn, sql.readings, *bounds):
            out.extracted += len(chunk)
            self.tally.readings(chunk)
        rejected = await conn.fetchval(sql.rejected, *bounds, *self._catalogue())
        out.rejected += rejected  # not ``+= await``: other slices add to it meanwhile

    async def _performance(self, conn: asyncpg.Connection, day: date, out: Extracted) -> None:
        counts: dict[datetime, DimensionCounts] = defaultdict(DimensionCounts)
        start, end = _at(day), _at(day + timedelta(days=1))
        async for chunk in self._chunks(conn, self.sql.committed_readings, start, end):
            out.extracted += len(chunk)
            by_hour: dict[datetime, list] = defaultdict(list)
            for row in chunk:
                by_hour[row["stored_at"].replace(minute=0, second=0, microsecond=0)].append(row)
            for hour, rows in by_hour.items():
                counts[hour] = counts[hour] + self.tally.readings(rows)
        commits = {r["hour"]: r for r in await conn.fetch(self.sql.hourly_commits, start, end)}
        by_reason: dict[datetime, dict[str, int]] = defaultdict(dict)
        by_hour_reason: dict[datetime, dict[tuple[str, str | None], int]] = defaultdict(dict)
        for r in await conn.fetch(self.sql.rejections, start, end):
            out.extracted += r["n"]
            by_reason[r["hour"]][r["reason"]] = by_reason[r["hour"]].get(r["reason"], 0) + r["n"]
            by_hour_reason[r["hour"]][(r["reason"], r["metric"])] = r["n"]
        for hour, rejected in by_hour_reason.items():
            counts[hour] = counts[hour] + self.tally.rejections(rejected)
        quality = {hour: self.tally.score_of(c) for hour, c in counts.items()}
        out.performance.extend(performance_rows(commits, by_reason, quality))

    async def _load(self, days: list[date], daily_days: list[date], out: Extracted) -> int:
        if not days:
            return 0
        loaded, self._steps = 0, (0, len(daily_days) * sum(t in DAILY for t in self.job.target_tables or ()))
        async with self.pool.acquire() as conn, conn.transaction():
            await hold_erasures(conn, self.schema)  # an erased person's aggregates never come back
            await self._known_zones(conn)  # again: profiles may have changed since the gate
            for name in sorted(self.job.target_tables or ()):
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"etl:{self.schema}.{name}")
                if name == CGM:
                    loaded += await load_cgm(conn, self.cgm_sql, daily_days, self._day_args)
                    continue
                target = TARGETS[name]
                covered = daily_days if name in DAILY else days
                lo, hi = covered[0], covered[-1] + timedelta(days=1)
                bounds = (lo, hi) if target.time_column == "day" else (_at(lo), _at(hi))
                await conn.execute(self.sql.delete_range(target), *bounds)
                if name in DAILY:
                    loaded += await self._load_daily(conn, name, daily_days)
                    continue
                rows = [(*r[:4], orjson.dumps(r[4]).decode(), *r[5:]) for r in out.performance]
                if rows:
                    await conn.copy_records_to_table(name, records=rows, columns=target.columns,
                                                     schema_name=self.schema)
                loaded += len(rows)
        return loaded

    async def _load_daily(self, conn: asyncpg.Connection, name: str, days: list[date]) -> int:
        """Insert a daily target's rows, day by day, inside the load transaction."""
        sql, loaded = self.daily_sql, 0
        for day in days:
            bounds = self._day_args(day)
            if name == "aggregated_health_metrics":
                status = await conn.execute(sql.metric_aggregates, *bounds, *self._catalogue())
            elif day == days[0]:
                # Local: the earlier days are local too; days after ``day`` never extend a streak.
                lookback = self._span(day - timedelta(days=STREAK_LOOKBACK_DAYS))[0]
                status = await conn.execute(sql.engagement_first, *bounds, lookback, bounds[1])
            else:
                status = await conn.execute(sql.engagement_next, *bounds)
            loaded += int(status.rsplit(" ", 1)[1])
            done, total = self._steps[0] + 1, self._steps[1]
            self._steps = (done, total)
            self.progress(0.5 + 0.5 * done / total)
        return loaded
