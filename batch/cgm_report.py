"""What the CGM report reads: the ``cgm_daily`` and ``cgm_14d`` rows of one person, and the
ambulatory glucose profile (AGP) of a 14-day window.

The AGP (Johnson et al., Diabetes Technol Ther 2019;21(S2)) is the 5th, 25th, 50th, 75th
and 95th percentiles of the window's glucose by time of day, here in bins of ``bin_minutes``
of the local clock of the window's zone (the one its ``cgm_14d`` row was computed in), with
linear interpolation (``percentile_cont``). It reads the same readings as the target:
raw samples in mg/dL with a finite value; censored "Low"/"High" values at their stored bound.
Every statement takes the pseudonym, never the raw id; identifiers are the quoted schema.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

import asyncpg

from batch.cgm import GLUCOSE, UNIT
from batch.targets import EARLIEST_OFFSET, LATEST_OFFSET
from streams.sink.migrations import quote_ident

PERCENTILES: Final = (5, 25, 50, 75, 95)
#: The consensus targets for most adults with type 1 or type 2 diabetes (Battelino 2019,
#: table 1; ADA Standards of Care, table 6.2): the percentages of readings.
CONSENSUS_TARGETS: Final = {"in_range_pct": "> 70", "below_70_pct": "< 4", "very_low_pct": "< 1",
                            "above_180_pct": "< 25", "very_high_pct": "< 5", "cv_pct": "<= 36",
                            "active_pct": ">= 70 over 14 days"}


async def latest_day(pool: asyncpg.Pool, schema: str, user_key: str) -> date | None:
    """The person's last local day with CGM data, if any."""
    return await pool.fetchval(
        f"SELECT max(local_day) FROM {quote_ident(schema)}.cgm_daily WHERE user_key = $1", user_key)


async def rows(pool: asyncpg.Pool, schema: str, table: str, user_key: str, first: date, last: date
               ) -> list[dict[str, Any]]:
    """The person's rows of ``table`` (``cgm_daily`` or ``cgm_14d``) for local days in
    ``[first, last]``, by day."""
    assert table in ("cgm_daily", "cgm_14d")
    found = await pool.fetch(f"SELECT * FROM {quote_ident(schema)}.{table} WHERE user_key = $1"
                             " AND local_day BETWEEN $2 AND $3 ORDER BY local_day", user_key, first, last)
    return [{k: v for k, v in r.items() if k != "user_key"} for r in found]


async def agp(pool: asyncpg.Pool, schema: str, user_key: str, first: date, last: date, zone: str,
              bin_minutes: int) -> list[dict[str, Any]]:
    """The AGP bins of the local days ``[first, last]`` in ``zone``: ``minute`` (the bin's start,
    minutes after local midnight), ``readings``, and ``p5`` ... ``p95`` in mg/dL."""
    start = datetime.combine(first, time(), UTC) - EARLIEST_OFFSET
    end = datetime.combine(last + timedelta(days=1), time(), UTC) + LATEST_OFFSET
    local = "(r.measured_at AT TIME ZONE $7)"
    found = await pool.fetch(
        f"SELECT (floor(extract(epoch FROM {local}::time) / $8) * $8 / 60)::int AS minute, count(*) AS n,"
        " percentile_cont($9::float8[]) WITHIN GROUP (ORDER BY r.value) AS p"
        f" FROM {quote_ident(schema)}.health_readings r WHERE r.user_key = $1 AND r.metric = $2"
        " AND r.unit = $3 AND r.statistic IS NULL AND r.value NOT IN ('NaN', 'Infinity', '-Infinity')"
        f" AND r.measured_at >= $4 AND r.measured_at < $5 AND {local}::date BETWEEN $6 AND $10"
        " GROUP BY 1 ORDER BY 1",
        user_key, GLUCOSE, UNIT, start, end, first, zone, bin_minutes * 60, [p / 100 for p in PERCENTILES],
        last)
    names = [f"p{p}" for p in PERCENTILES]
    return [{"minute": r["minute"], "readings": r["n"], **dict(zip(names, r["p"], strict=True))}
            for r in found]
