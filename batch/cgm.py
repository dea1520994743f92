"""CGM metrics by the international consensus on time in range (Battelino et al., Diabetes
Care 2019;42:1593), computed by PostgreSQL for the batch target ``cgm``.

``cgm_daily`` holds one row per person and local day (the person's profile zone, as every
local-day target: :class:`batch.targets.DailySql`), from the raw blood-glucose samples
(``statistic IS NULL``) stored in the canonical unit, mg/dL (mmol/L input is converted at
ingest), with a finite value. ``cgm_14d`` holds, for each of those rows, the 14 local days
ending on its day, pooled from ``cgm_daily``. Definitions (docs/how-to/cgm.md):

- bands, on the value rounded to a whole mg/dL (CGMs report whole mg/dL; 10.0 mmol/L =
  180.16 mg/dL is in range, as the consensus's 3.9-10.0 mmol/L says): very low < 54, low
  54-69, in range 70-180, high 181-250, very high > 250. A reading whose
  ``metadata->>'censored'`` is ``below`` (a sensor's "Low") is very low, ``above`` ("High")
  very high, whatever its value; both enter the mean and SD at their stored value (the
  Dexcom importer stores the sensor's bound, 40 and 400 mg/dL). Percentages are shares of
  the readings (as iglu and Dexcom Clarity count): share of time at uniform sampling.
- ``interval_s``: the sensor's sampling interval, the median gap between consecutive
  readings of the person's day rounded to whole minutes (iglu's ``dt0``), kept within
  [1, 15] minutes; 5 minutes with fewer than two readings. ``expected`` = the local day's
  length (23 or 25 h across a DST change) / ``interval_s``; ``active_pct`` = readings /
  expected, at most 100 (iglu's ``active_percent``, range_type "manual").
- mean, sample SD, CV = SD / mean, GMI = 3.31 + 0.02392 x mean (Bergenstal 2018).
- ``cgm_14d``: counts and sums pooled over the window's days; its interval is the median of
  the days' intervals; expected = the 14 local days' length / interval, so days with no
  reading count as missing. ``sufficient``: active_pct >= 70 (the day's, or the window's).

Idempotent per day: the load deletes the days' rows, then inserts them again, and rebuilds
every window that ends within 13 days after a rebuilt day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Final

import asyncpg

from batch.targets import CGM_TARGETS, day_select
from streams.sink.migrations import quote_ident

TARGET: Final = "cgm"
GLUCOSE: Final = "blood_glucose"
UNIT: Final = "mg/dL"
WINDOW_DAYS: Final = 14
SUFFICIENT_PCT: Final = 70
#: Bounds of the derived sampling interval, minutes: 15 is the longest CGM interval in use
#: (FreeStyle Libre's stored history); without it, four finger-sticks a day would be "100 %".
MIN_INTERVAL_MIN, MAX_INTERVAL_MIN, DEFAULT_INTERVAL_MIN = 1, 15, 5
#: Band of a reading: 0 very low, 1 low, 2 in range, 3 high, 4 very high.
BAND: Final = ("CASE WHEN censored = 'below' THEN 0 WHEN censored = 'above' THEN 4"
               " WHEN floor(value + 0.5) < 54 THEN 0 WHEN floor(value + 0.5) < 70 THEN 1"
               " WHEN floor(value + 0.5) <= 180 THEN 2 WHEN floor(value + 0.5) <= 250 THEN 3 ELSE 4 END")
BANDS: Final = ("very_low_pct", "low_pct", "in_range_pct", "high_pct", "very_high_pct")


def _span(first: str, last: str) -> str:
    """Seconds from the local midnight starting ``first`` to the one ending ``last`` (SQL)."""
    return (f"extract(epoch FROM (({last} + 1)::timestamp AT TIME ZONE timezone)"
            f" - (({first})::timestamp AT TIME ZONE timezone))")


def _metrics(n: str, span: str) -> str:
    """The columns from ``timezone`` on, from ``n``, ``mean``, ``sd``, ``interval_s``, ``b0``..``b4``,
    ``cb``, ``ca`` and the span in seconds ``span`` (SQL)."""
    active = f"least(100, 100 * {n} * interval_s / {span})"
    bands = ", ".join(f"100.0 * b{i} / {n}" for i in range(5))
    return (f"timezone, {n}, interval_s, {span} / interval_s, {active}, mean, sd, 100 * sd / nullif(mean, 0),"
            f" 3.31 + 0.02392 * mean, {bands}, cb, ca, {active} >= {SUFFICIENT_PCT}")


class CgmSql:
    """The target's statements for one schema (``s`` quoted)."""

    def __init__(self, s: str) -> None:
        daily, window = (", ".join(map(quote_ident, CGM_TARGETS[t].columns)) for t in CGM_TARGETS)
        fields = "r.user_key, r.value, r.measured_at, r.metadata->>'censored' AS censored"
        day = (f"{day_select(s, fields, local=True)} AND r.metric = $5 AND r.unit = $6"
               " AND r.statistic IS NULL AND r.value NOT IN ('NaN', 'Infinity', '-Infinity')")
        counts = ", ".join(f"count(*) FILTER (WHERE band = {i}) AS b{i}" for i in range(5))
        minutes = (f"least({MAX_INTERVAL_MIN}, greatest({MIN_INTERVAL_MIN}, floor(median_gap / 60 + 0.5)))")
        #: One local day (the parameters of :class:`DailySql`'s local statements, then metric, unit).
        self.daily = (
            f"WITH d AS ({day}),"
            f" g AS (SELECT user_key, timezone, value, censored, {BAND} AS band,"
            " extract(epoch FROM measured_at - lag(measured_at) OVER (PARTITION BY user_key"
            " ORDER BY measured_at)) AS gap FROM d),"
            " u AS (SELECT user_key, min(timezone) AS timezone, count(*) AS n, avg(value) AS mean,"
            " stddev_samp(value) AS sd, percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS median_gap,"
            f" {counts}, count(*) FILTER (WHERE censored = 'below') AS cb,"
            " count(*) FILTER (WHERE censored = 'above') AS ca FROM g GROUP BY user_key),"
            f" v AS (SELECT u.*, 60 * coalesce({minutes}, {DEFAULT_INTERVAL_MIN}) AS interval_s FROM u)"
            f" INSERT INTO {s}.cgm_daily ({daily}) SELECT user_key, $3::date,"
            f" {_metrics('n', _span('$3::date', '$3::date'))} FROM v")
        pooled = ", ".join(f"round(sum(d.readings * d.{b}) / 100) AS b{i}" for i, b in enumerate(BANDS))
        first = f"end_day - {WINDOW_DAYS - 1}"
        #: Every window ending in ``[$1, $2)`` on a day with a ``cgm_daily`` row.
        self.windows = (
            f"WITH e AS (SELECT user_key, local_day AS end_day, timezone FROM {s}.cgm_daily"
            " WHERE local_day >= $1 AND local_day < $2),"
            " w AS (SELECT e.user_key, e.end_day, e.timezone, count(*) AS days, sum(d.readings) AS n,"
            " sum(d.readings * d.mean_mg_dl) AS total, sum((d.readings - 1) * coalesce(d.sd_mg_dl, 0) ^ 2"
            f" + d.readings * d.mean_mg_dl ^ 2) AS squares, {pooled},"
            " sum(d.censored_below) AS cb, sum(d.censored_above) AS ca,"
            " percentile_disc(0.5) WITHIN GROUP (ORDER BY d.interval_s) AS interval_s"
            f" FROM e JOIN {s}.cgm_daily d ON d.user_key = e.user_key"
            f" AND d.local_day BETWEEN e.end_day - {WINDOW_DAYS - 1} AND e.end_day"
            " GROUP BY e.user_key, e.end_day, e.timezone),"
            " m AS (SELECT w.*, total / n AS mean FROM w),"
            " v AS (SELECT m.*, CASE WHEN n > 1 THEN sqrt(greatest(0, (squares - n * mean ^ 2) / (n - 1)))"
            " END AS sd FROM m)"
            f" INSERT INTO {s}.cgm_14d ({window}) SELECT user_key, end_day, {first}, days,"
            f" {_metrics('n', _span(first, 'end_day'))} FROM v")
        self.delete = {t: f"DELETE FROM {s}.{t} WHERE local_day >= $1 AND local_day < $2"
                       for t in ("cgm_daily", "cgm_14d")}


async def load(conn: asyncpg.Connection, sql: CgmSql, days: list[date],
               day_args: Callable[[date], tuple]) -> int:
    """Rebuild ``cgm_daily`` for ``days`` (consecutive local days) and every ``cgm_14d`` window
    that reads one of them, inside the caller's transaction; the rows inserted."""
    if not days:
        return 0
    lo, hi = days[0], days[-1] + timedelta(days=1)
    await conn.execute(sql.delete["cgm_daily"], lo, hi)
    loaded = 0
    for day in days:
        status = await conn.execute(sql.daily, *day_args(day), GLUCOSE, UNIT)
        loaded += int(status.rsplit(" ", 1)[1])
    until = hi + timedelta(days=WINDOW_DAYS - 1)
    await conn.execute(sql.delete["cgm_14d"], lo, until)
    status = await conn.execute(sql.windows, lo, until)
    return loaded + int(status.rsplit(" ", 1)[1])
