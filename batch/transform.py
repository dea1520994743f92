"""The transform step of the built-in targets: pure functions over warehouse rows, no I/O.

Rows are mappings with ``health_readings`` column names (asyncpg records or dicts), plus
``timezone`` (an IANA name) when the job reads ``user_profiles``. Days are UTC days, except
when the job reads ``user_profiles``: then each reading's day is its calendar day in the
user's profile time zone (:func:`local_day`; no profile: UTC), and every daily row says
in its ``timezone`` column which zone its ``day`` belongs to. Hours are UTC. Definitions:

- ``aggregated_health_metrics``: per day of ``measured_at``, ``user_key`` and ``metric``:
  count, min, max, mean, sample standard deviation (``None`` for one reading), and the
  50th/95th percentiles with linear interpolation (PostgreSQL's ``percentile_cont``).
  Only readings in the metric's canonical unit with a finite value count; the others are
  *rejected* (counted, not aggregated): the fact table should hold none. Only raw samples
  (``statistic`` NULL) are aggregated unless the job sets ``include_statistics``: a mean
  of daily minimums is not a mean heart rate. Summary readings left out are not rejects.
- ``user_engagement``: per day and ``user_key``: readings, distinct metrics, sorted
  distinct sources, first and last ``measured_at``, and the active-days streak: the number
  of consecutive days with at least one reading, ending on that day.
- ``system_performance``: per hour of ``stored_at`` (commit time): stored readings,
  rejected records (dead letters by ``created_at``) in total and by reason, processed =
  stored + rejected, mean and 95th percentile of ingest lag
  ``stored_at - coalesce(produced_at, ingested_at)`` in seconds, and the quality score
  (:mod:`streams.domain.quality`) of the hour's readings and rejections.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.domain.catalogue import DEFAULT_CATALOGUE, MetricRule

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
        return UTC  # profiles are validated on ingest; never fail a job on a stray name


def zone_of(row: Row) -> str:
    """The zone a row's day is counted in: its ``timezone`` field, else UTC."""
    return row.get("timezone") or "UTC"


def local_day(measured_at: datetime, zone: str | None) -> date:
    """The calendar day of the aware ``measured_at`` in IANA ``zone`` (None, unknown: UTC).

    DST is the zone's own: 00:30 local on the morning clocks change belongs to that day.
    """
    return measured_at.astimezone(_zone(zone)).date()


def on_day(rows: Iterable[Row], day: date) -> list[Row]:
    """The rows whose local day (:func:`local_day` in :func:`zone_of`) is ``day``, order kept."""
    return [r for r in rows if local_day(r["measured_at"], zone_of(r)) == day]


class MetricAggregator:
    """Streams rows ordered by ``(user_key, metric)`` of one day into aggregate rows.

    ``feed`` returns the groups completed so far; ``finish`` returns the last one. Rows not
    in canonical form are counted in ``rejected`` and left out; summary rows (``statistic``
    set) are left out unless ``include_statistics``.
    """

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
