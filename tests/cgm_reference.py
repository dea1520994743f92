"""An independent computation of the CGM consensus metrics, for the tests: plain Python
(``statistics``, ``zoneinfo``) written from the definitions (Battelino et al., Diabetes Care
2019;42:1593; GMI: Bergenstal et al., Diabetes Care 2018;41:2275; the active-percent rule of
iglu's ``active_percent``), not from the ETL's SQL. One reading is ``(instant, mg/dL, band)``:
the band is decided by the caller from the reading as it was sent (mg/dL or mmol/L, or a
censored "Low"/"High"), so unit conversion is not trusted either.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

BANDS = ("very_low_pct", "low_pct", "in_range_pct", "high_pct", "very_high_pct")
#: mmol/L per mg/dL of glucose: its molar mass is 180.156 g/mol, so 1 mmol/L = 18.0156 mg/dL.
MG_DL_PER_MMOL_L = 18.0156

Reading = tuple[datetime, float, int]


def band_mg_dl(value: int) -> int:
    """The consensus band of a whole mg/dL value: <54, 54-69, 70-180, 181-250, >250."""
    return 0 if value < 54 else 1 if value <= 69 else 2 if value <= 180 else 3 if value <= 250 else 4


def band_mmol_l(value: float) -> int:
    """The consensus band of a mmol/L value (one decimal): <3.0, 3.0-3.8, 3.9-10.0, 10.1-13.9, >13.9."""
    return 0 if value < 3.0 else 1 if value <= 3.8 else 2 if value <= 10.0 else 3 if value <= 13.9 else 4


def local_day_seconds(first: date, last: date, zone: str) -> float:
    """Seconds from local midnight starting ``first`` to local midnight ending ``last``."""
    tz = ZoneInfo(zone)
    start = datetime.combine(first, time(), tz)
    end = datetime.combine(last + timedelta(days=1), time(), tz)
    return (end.timestamp() - start.timestamp())


def summary(readings: list[Reading], seconds: float, interval_s: float) -> dict[str, float | int | None]:
    values = [v for _, v, _ in readings]
    n = len(values)
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if n > 1 else None
    active = min(100.0, 100.0 * n / (seconds / interval_s))
    out: dict[str, float | int | None] = {
        "readings": n, "interval_s": interval_s, "expected": seconds / interval_s, "active_pct": active,
        "mean_mg_dl": mean, "sd_mg_dl": sd, "cv_pct": None if sd is None else 100 * sd / mean,
        "gmi_pct": 3.31 + 0.02392 * mean, "sufficient": active >= 70}
    for i, name in enumerate(BANDS):
        out[name] = 100.0 * sum(1 for _, _, b in readings if b == i) / n
    return out


def interval_of_day(instants: list[datetime]) -> float:
    """iglu's dt0: the median gap, rounded to whole minutes; kept within 1-15 min; 5 min alone."""
    if len(instants) < 2:
        return 300.0
    ordered = sorted(instants)
    gaps = [(b - a).total_seconds() for a, b in zip(ordered, ordered[1:], strict=False)]
    minutes = math.floor(statistics.median(gaps) / 60 + 0.5)
    return 60.0 * min(15, max(1, minutes))


def by_local_day(readings: Iterable[Reading], zone: str) -> dict[date, list[Reading]]:
    days: dict[date, list[Reading]] = defaultdict(list)
    for r in readings:
        days[r[0].astimezone(ZoneInfo(zone)).date()].append(r)
    return dict(days)


def daily(readings: Iterable[Reading], zone: str) -> dict[date, dict[str, float | int | None]]:
    """The expected ``cgm_daily`` row of each local day."""
    return {day: summary(rs, local_day_seconds(day, day, zone), interval_of_day([r[0] for r in rs]))
            for day, rs in by_local_day(readings, zone).items()}


def window(readings: Iterable[Reading], zone: str, end: date, days: int = 14) -> dict[str, Any]:
    """The expected ``cgm_14d`` row ending on ``end``: pooled readings, the lower median of the
    days' intervals, the whole window's length."""
    first = end - timedelta(days=days - 1)
    per_day = {d: rs for d, rs in by_local_day(readings, zone).items() if first <= d <= end}
    intervals = sorted(interval_of_day([r[0] for r in rs]) for rs in per_day.values())
    pooled = [r for rs in per_day.values() for r in rs]
    out = summary(pooled, local_day_seconds(first, end, zone), intervals[(len(intervals) - 1) // 2])
    out["days_with_data"] = len(per_day)
    return out
