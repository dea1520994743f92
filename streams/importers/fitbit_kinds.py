"""One mapper per Fitbit Takeout kind: a file's entry (or row) -> items. Pure.

The formats (observed in Takeout files and in open-source readers of them):

- heart_rate: ``{"dateTime": "MM/DD/YY HH:MM:SS", "value": {"bpm": n, "confidence": n}}``
- steps: ``{"dateTime": "MM/DD/YY HH:MM:SS", "value": "n"}`` (per minute; a string)
- resting_heart_rate: ``{"dateTime": …, "value": {"date": "MM/DD/YY", "value": x, "error": x}}``
- weight: ``{"logId": n, "weight": x, "bmi": x, "fat": x?, "date": "MM/DD/YY",
  "time": "HH:MM:SS", "source": "Aria" | "API" | …}``
- sleep: ``{"logId": n, "dateOfSleep": "YYYY-MM-DD", "startTime": "YYYY-MM-DDTHH:MM:SS.000",
  "endTime": …, "minutesAsleep": n, "timeInBed": n, "mainSleep": bool, "type": …, "levels": …}``
- Minute SpO2 CSV: ``timestamp,value``; Daily SpO2 CSV:
  ``timestamp,average_value,lower_bound,upper_bound``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from functools import wraps
from typing import Any

from streams.importers.base import ImportContext, Item, Skipped
from streams.importers.fitbit_values import parse_local, parse_us_date, weight_unit
from streams.importers.local_time import LocalClock, day_bounds
from streams.importers.readings import plain_name, single_reading

__all__ = ["JSON_KINDS", "WEIGHT", "Entry", "Mapper", "daily_spo2", "minute_spo2"]

WEIGHT = "weight"
_MINUTE = timedelta(minutes=1)
_MANUAL_SOURCES = frozenset({"API", "Web", "Manual"})


class Entry:
    """What every mapper of one file shares: context, the file's clock, skip counts."""

    def __init__(self, ctx: ImportContext, clock: LocalClock, source: str) -> None:
        self.ctx = ctx
        self.clock = clock
        self.source = source
        self.skipped: Counter[str] = Counter()

    def skip(self, kind: str) -> None:
        self.skipped[kind] += 1

    def instant(self, text: Any, *, series: bool = True) -> datetime | None:
        """The instant of a Fitbit time; ``None`` (counted) if it does not exist locally.

        ``series`` times go through the file's clock (fold follows the file's order);
        others (a sleep's ends, a weigh-in) through a fresh one.
        """
        parsed = parse_local(text)
        if parsed.tzinfo is not None:
            return parsed
        clock = self.clock if series else LocalClock(self.clock.zone)
        at = clock.instant(parsed)
        if at is None:
            self.skip("nonexistent_local_time")
        return at

    def day(self, day: date) -> tuple[datetime, datetime]:
        return day_bounds(day, self.clock.zone)

    def reading(self, **fields: Any) -> dict[str, Any]:
        device_id = fields.pop("device_id", None)
        return single_reading(self.ctx, device_id=device_id, source=self.source, **fields)

    def skipped_items(self) -> Iterator[Skipped]:
        for kind, count in sorted(self.skipped.items()):
            yield Skipped(kind, count)


Mapper = Callable[[Any, Entry], Iterator[Item]]


def _entrywise(fn: Mapper) -> Mapper:
    """A malformed entry is counted ``fitbit_malformed_entry`` and yields nothing."""

    @wraps(fn)
    def run(raw: Any, entry: Entry) -> Iterator[Item]:
        try:
            items = list(fn(raw, entry))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            entry.skip("fitbit_malformed_entry")
            return iter(())
        return iter(items)

    return run


def _number(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise TypeError("not a number")
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


@_entrywise
def heart_rate(raw: dict[str, Any], entry: Entry) -> Iterator[Item]:
    at = entry.instant(raw["dateTime"])
    if at is not None:
        value = raw["value"]
        confidence = value.get("confidence")
        meta = {"confidence": confidence} if isinstance(confidence, int | float) else None
        yield entry.reading(metric="heart_rate", value=_number(value["bpm"]), unit="bpm",
                            timestamp=at, metadata=meta)


@_entrywise
def steps(raw: dict[str, Any], entry: Entry) -> Iterator[Item]:
    at = entry.instant(raw["dateTime"])
    count = _number(raw["value"])
    if at is not None and count == 0:
        entry.skip("fitbit_steps_zero")
    elif at is not None:
        yield entry.reading(metric="steps", value=count, unit="steps", timestamp=at,
                            timestamp_end=at + _MINUTE)


@_entrywise
def resting_heart_rate(raw: dict[str, Any], entry: Entry) -> Iterator[Item]:
    value = raw["value"]
    day = parse_us_date(value["date"]) if "date" in value else parse_local(raw["dateTime"]).date()
    rate = _number(value["value"])
    if rate <= 0:
        entry.skip("fitbit_resting_heart_rate_empty")
        return
    start, end = entry.day(day)
    error = value.get("error")
    meta = {"error": error} if isinstance(error, int | float) and not isinstance(error, bool) else None
    yield entry.reading(metric="resting_heart_rate", value=rate, unit="bpm", timestamp=start,
                        timestamp_end=end, statistic="average", metadata=meta)


@_entrywise
def sleep(raw: dict[str, Any], entry: Entry) -> Iterator[Item]:
    start = entry.instant(raw["startTime"], series=False)
    end = entry.instant(raw["endTime"], series=False)
    asleep = _number(raw["minutesAsleep"])
    if start is None or end is None:
        return
    if end < start:
        raise ValueError("a sleep ends before it starts")
    meta = {k: raw[f] for k, f in (("main_sleep", "mainSleep"), ("minutes_in_bed", "timeInBed"),
                                   ("sleep_type", "type")) if isinstance(raw.get(f), bool | int | str)}
    yield entry.reading(metric="sleep_duration", value=asleep, unit="min", timestamp=start,
                        timestamp_end=end, metadata=meta or None)


def weight(entries: list[Any], entry: Entry) -> Iterator[Item]:
    """A whole weight file: the unit of a weigh-in whose BMI cannot tell is the file's."""
    parsed = [p for p in map(lambda raw: _weigh_in(raw, entry), entries) if p is not None]
    decided = {weight_unit(p[1], p[2]) for p in parsed} - {None}
    file_unit = next(iter(decided)) if len(decided) == 1 else None
    for raw, kilos_or_pounds, bmi, at in parsed:
        unit = weight_unit(kilos_or_pounds, bmi) or file_unit
        source = raw.get("source")
        name = plain_name(source) if isinstance(source, str) else None
        device = name if source not in _MANUAL_SOURCES else None
        meta = {"fitbit_source": name} if name else None
        if unit is None:
            entry.skip("fitbit_weight_unit_ambiguous")
        else:
            yield entry.reading(metric="body_weight", value=kilos_or_pounds, unit=unit, timestamp=at,
                                device_id=device, metadata=meta)
        if bmi is not None:
            entry.skip("fitbit_bmi_derived")
        fat = raw.get("fat")
        if fat is not None and _number(fat) > 0:
            yield entry.reading(metric="body_fat_percentage", value=_number(fat), unit="%", timestamp=at,
                                device_id=device, metadata=meta)


def _weigh_in(raw: Any, entry: Entry) -> tuple[dict[str, Any], float, float | None, datetime] | None:
    try:
        value = _number(raw["weight"])
        bmi = _number(raw["bmi"]) if raw.get("bmi") is not None else None
        if raw.get("fat") is not None:
            _number(raw["fat"])
        at = entry.instant(f"{raw['date']} {raw['time']}", series=False)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        entry.skip("fitbit_malformed_entry")
        return None
    return None if at is None else (raw, value, bmi, at)


@_entrywise
def minute_spo2(row: dict[str, str], entry: Entry) -> Iterator[Item]:
    at = entry.instant(row["timestamp"])
    if at is not None:
        yield entry.reading(metric="oxygen_saturation", value=_number(row["value"]), unit="%", timestamp=at)


@_entrywise
def daily_spo2(row: dict[str, str], entry: Entry) -> Iterator[Item]:
    start, end = entry.day(parse_local(row["timestamp"]).date())
    meta = {k: _number(row[k]) for k in ("lower_bound", "upper_bound") if row.get(k)}
    yield entry.reading(metric="oxygen_saturation", value=_number(row["average_value"]), unit="%",
                        timestamp=start, timestamp_end=end, statistic="average", metadata=meta or None)


JSON_KINDS: dict[str, Any] = {
    "heart_rate": heart_rate, "steps": steps, "resting_heart_rate": resting_heart_rate,
    "sleep": sleep, WEIGHT: weight,
}
