"""The batch targets computed the old way, in Python row by row: the reference the SQL path
(:mod:`batch.targets`) is checked against, by the tests and by ``bench/etl.py``.

Not used in production. ``reference_daily`` runs the old extraction (a server-side cursor
per day, local days kept by :func:`on_day`) and transform, and returns the target rows; with
a ``tally`` it also scores the readings, as the old pipeline did before its quality gate.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from batch.config import ETLJobConfig
from batch.quality_gate import QualityTally
from batch.targets import EARLIEST_OFFSET, LATEST_OFFSET, READING_FIELDS, STREAK_LOOKBACK_DAYS
from streams.domain.catalogue import DEFAULT_CATALOGUE, MetricRule
from streams.sink.migrations import quote_ident

Row = Mapping[str, Any]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of a sorted non-empty sequence, linearly interpolated."""
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def describe_values(values: Sequence[float]) -> tuple[int, float, float, float, float | None, float, float]:
    """``(count, min, max, mean, stddev, p50, p95)`` of a non-empty list of values."""
    ordered = sorted(values)
    n = len(ordered)
    mean = math.fsum(ordered) / n
    stddev = math.sqrt(math.fsum((v - mean) ** 2 for v in ordered) / (n - 1)) if n > 1 else None
    return n, ordered[0], ordered[-1], mean, stddev, percentile(ordered, 0.5), percentile(ordered, 0.95)


def is_canonical(row: Row, catalogue: Mapping[str, MetricRule] = DEFAULT_CATALOGUE) -> bool:
    """Whether a fact row can be aggregated: known metric, canonical unit, finite value."""
    rule = catalogue.get(row["metric"])
    value = row["value"]
    return (rule is not None and row["unit"] == rule.canonical_unit
            and isinstance(value, float | int) and math.isfinite(value))


@lru_cache(maxsize=4096)
def _zone(name: str | None) -> tzinfo:
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def zone_of(row: Row) -> str:
    """The zone a row's day is counted in: its ``timezone`` field, else UTC."""
    return row.get("timezone") or "UTC"


def local_day(measured_at: datetime, zone: str | None) -> date:
    """The calendar day of the aware ``measured_at`` in IANA ``zone`` (None, unknown: UTC)."""
    return measured_at.astimezone(_zone(zone)).date()


def on_day(rows: Iterable[Row], day: date) -> list[Row]:
    """The rows whose local day (:func:`local_day` in :func:`zone_of`) is ``day``, order kept."""
    return [r for r in rows if local_day(r["measured_at"], zone_of(r)) == day]


class MetricAggregator:
    """Streams rows ordered by ``(user_key, metric)`` of one day into aggregate rows."""

    def __init__(self, day: date, *, include_statistics: bool = False) -> None:
        self.day = day
        self.include_statistics = include_statistics
        self.rejected = 0
        self._key: tuple[str, str] | None = None
        self._zone = "UTC"
        self._values: list[float] = []

    def feed(self, rows: Iterable[Row]) -> list[tuple]:
        done: list[tuple] = []
        for row in rows:
            if not self.include_statistics and row.get("statistic") is not None:
                continue
            if not is_canonical(row):
                self.rejected += 1
                continue
            key = (row["user_key"], row["metric"])
            if key != self._key:
                done.extend(self.finish())
                self._key, self._zone = key, zone_of(row)
            self._values.append(float(row["value"]))
        return done

    def finish(self) -> list[tuple]:
        if self._key is None or not self._values:
            return []
        user_key, metric = self._key
        unit = DEFAULT_CATALOGUE[metric].canonical_unit
        out = (self.day, user_key, metric, unit, *describe_values(self._values), self._zone)
        self._key, self._values = None, []
        return [out]


class EngagementAccumulator:
    """Per-user activity of one day, from rows of that day in any order."""

    def __init__(self, day: date) -> None:
        self.day = day
        self._users: dict[str, dict[str, Any]] = {}

    def feed(self, rows: Iterable[Row]) -> None:
        for row in rows:
            u = self._users.get(row["user_key"])
            ts = row["measured_at"]
            if u is None:
                self._users[row["user_key"]] = {"n": 1, "metrics": {row["metric"]},
                                                "sources": {row["source"]}, "first": ts, "last": ts,
                                                "zone": zone_of(row)}
                continue
            u["n"] += 1
            u["metrics"].add(row["metric"])
            u["sources"].add(row["source"])
            u["first"] = min(u["first"], ts)
            u["last"] = max(u["last"], ts)

    @property
    def users(self) -> list[str]:
        return sorted(self._users)

    def rows(self, active_days: Mapping[str, Iterable[date]]) -> list[tuple]:
        """Target rows; ``active_days`` maps user_key -> days with readings before this one."""
        out = []
        for user_key in self.users:
            u = self._users[user_key]
            out.append((self.day, user_key, u["n"], len(u["metrics"]), sorted(u["sources"]),
                        u["first"], u["last"], streak(self.day, active_days.get(user_key, ())), u["zone"]))
        return out


def streak(day: date, earlier_days: Iterable[date]) -> int:
    """Consecutive active days ending on ``day`` (which counts as active)."""
    active = set(earlier_days)
    n, cursor = 1, day - timedelta(days=1)
    while cursor in active:
        n += 1
        cursor -= timedelta(days=1)
    return n


def lag_seconds(row: Row) -> float:
    """Ingest lag of a stored reading: commit time minus produce (or ingest) time, >= 0."""
    origin = row["produced_at"] or row["ingested_at"]
    return max(0.0, (row["stored_at"] - origin).total_seconds())


class HourlyPerformance:
    """Per-hour stored counts and lags of one day's commits, plus rejected counts."""

    def __init__(self) -> None:
        self.lags: dict[datetime, list[float]] = defaultdict(list)
        self.rejected: dict[datetime, dict[str, int]] = defaultdict(dict)
        self.quality: dict[datetime, float] = {}

    def feed(self, rows: Iterable[Row]) -> None:
        for row in rows:
            hour = row["stored_at"].replace(minute=0, second=0, microsecond=0)
            self.lags[hour].append(lag_seconds(row))

    def add_rejections(self, hour: datetime, reason: str, count: int) -> None:
        by_reason = self.rejected[hour]
        by_reason[reason] = by_reason.get(reason, 0) + count

    def rows(self) -> list[tuple]:
        out = []
        for hour in sorted(set(self.lags) | set(self.rejected)):
            lags = sorted(self.lags.get(hour, ()))
            by_reason = dict(sorted(self.rejected.get(hour, {}).items()))
            rejected = sum(by_reason.values())
            mean = math.fsum(lags) / len(lags) if lags else None
            p95 = percentile(lags, 0.95) if lags else None
            out.append((hour, len(lags) + rejected, len(lags), rejected, by_reason, mean, p95,
                        self.quality.get(hour, 0.0)))
        return out


def _at(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _old_sql(schema: str, local: bool) -> tuple[str, str]:
    """The old extraction: a day's readings (with their zone) and the users' active days."""
    s, fields = quote_ident(schema), ", ".join(f"r.{f}" for f in READING_FIELDS)
    zone = "coalesce(p.timezone, 'UTC')" if local else "'UTC'"
    join = f" LEFT JOIN {s}.user_profiles p ON p.user_key = r.user_key" if local else ""
    readings = (f"SELECT {fields}, {zone} AS timezone FROM {s}.health_readings r{join}"
                " WHERE r.measured_at >= $1 AND r.measured_at < $2"
                " ORDER BY r.user_key, r.metric, r.measured_at, r.event_id")
    active = (f"SELECT r.user_key, array_agg(DISTINCT (r.measured_at AT TIME ZONE {zone})::date) AS days"
              f" FROM {s}.health_readings r{join} WHERE r.user_key = ANY($1::text[])"
              " AND r.measured_at >= $2 AND r.measured_at < $3 GROUP BY r.user_key")
    return readings, active


async def reference_daily(conn: asyncpg.Connection, schema: str, job: ETLJobConfig, days: list[date],
                          tally: QualityTally | None = None) -> dict[str, Any]:
    """The old pipeline's daily targets over ``days`` (already widened for local days):
    ``{"aggregated_health_metrics": rows, "user_engagement": rows, "extracted": n, "rejected": n}``."""
    local = job.local_days
    readings, active = _old_sql(schema, local)
    out: dict[str, Any] = {"aggregated_health_metrics": [], "user_engagement": [], "extracted": 0,
                           "rejected": 0}
    for day in days:
        agg = MetricAggregator(day, include_statistics=job.include_statistics)
        engaged = EngagementAccumulator(day)
        start, end = _at(day), _at(day + timedelta(days=1))
        if local:
            start, end = start - EARLIEST_OFFSET, end + LATEST_OFFSET
        async with conn.transaction():
            cursor = await conn.cursor(readings, start, end)
            while records := await cursor.fetch(job.batch_size):
                chunk = on_day(records, day) if local else records
                out["extracted"] += len(chunk)
                if tally is not None:
                    tally.readings(chunk)
                out["aggregated_health_metrics"].extend(agg.feed(chunk))
                engaged.feed(chunk)
        out["aggregated_health_metrics"].extend(agg.finish())
        out["rejected"] += agg.rejected
        if engaged.users:
            lookback = _at(day - timedelta(days=STREAK_LOOKBACK_DAYS))
            lookback -= EARLIEST_OFFSET if local else timedelta()
            earlier = await conn.fetch(active, engaged.users, lookback, end if local else _at(day))
            out["user_engagement"].extend(engaged.rows({r["user_key"]: r["days"] for r in earlier}))
    return out
