"""Garmin FIT reader: ONE ``.fit`` file (chained FIT files included) -> single readings.

Imported:

- ``record.heart_rate`` (activity samples) and ``monitoring.heart_rate``: ``heart_rate``
  in bpm at the message's instant;
- ``weight_scale``: ``weight`` -> ``body_weight`` kg, ``percent_fat`` ->
  ``body_fat_percentage`` %, ``bmi`` -> ``body_mass_index`` kg/m2; the value 0xFFFE means
  "calculating" and is not a value (skipped ``weight_calculating``);
- ``monitoring`` step counters (walking, running): running totals turned into increments
  over intervals (:mod:`streams.importers.fit_monitoring`), ``steps`` with
  ``timestamp``/``timestamp_end``; ``timestamp_16`` expanded against the latest full FIT
  timestamp. The local day (the counters reset at the device's local midnight) comes from
  ``monitoring_info.local_timestamp``, else from ``ctx.zone``; with neither, the step
  samples are skipped (``monitoring_steps_no_local_day``) rather than guessed.

Not imported, counted by kind: ``record.temperature`` (the watch's own sensor, an ambient
temperature biased by the wrist: ``ambient_temperature``), positions (``location``), HRV
RR intervals (``fit_hrv``), the daily monitoring summaries (``monitoring_daily_summary``,
they repeat the samples), other monitoring fields (``monitoring_<field>``) and every other
message (``fit_<message>``), among them ``user_profile`` (age, sex, a weight *setting*).

Device: ``file_id``'s ``product_name``, else ``<manufacturer>-<product>`` (e.g.
``garmin-fenix5``). The serial number identifies a thing a person owns and is never read
into a message. Source: ``ctx.source`` or ``"garmin"``.

Damage: the file is decoded to its end, with CRCs checked, BEFORE anything is yielded
(readings are buffered as small tuples; a FIT file is at most a few MB, so one file's
buffer stays small). A bad CRC, a truncated file or undecodable data raises
:class:`ImportFileError` naming the byte where it broke, and nothing of the file is
yielded; with ``ctx.salvage`` what was decoded before the damage is yielded first.
"""

from __future__ import annotations

import re
import struct
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, BinaryIO

import fitdecode

from streams.importers.base import ImportContext, ImportFileError, Item, Skipped
from streams.importers.fit_monitoring import (
    MIN_ABSOLUTE_FIT_TIME,
    LocalDays,
    expand_timestamp_16,
    fit_instant,
    step_increments,
)
from streams.importers.readings import plain_name, single_reading

__all__ = ["is_fit", "read_fit"]

_CALCULATING = 0xFFFE
#: FIT activity_type numbers whose ``cycles`` counts steps (the profile's ``steps`` subfield).
STEP_ACTIVITIES = {1: "running", 6: "walking"}
_MONITORING_HANDLED = frozenset({
    "timestamp", "timestamp_16", "activity_type", "intensity", "current_activity_type_intensity",
    "cycles", "steps", "strokes", "heart_rate", "duration_min",
})
_WEIGHT_FIELDS = {"weight": ("body_weight", "kg"), "percent_fat": ("body_fat_percentage", "%"),
                  "bmi": ("body_mass_index", "kg/m2")}
_WEIGHT_SILENT = frozenset({"timestamp", "user_profile_index", "message_index"})
_BUFFER = tuple[str, float, str, datetime, "datetime | None", "dict[str, Any] | None"]


def is_fit(name: str, head: bytes) -> bool:
    """Whether ``head`` (the file's first bytes, at least 12) starts a FIT file (".FIT" at 8)."""
    return len(head) >= 12 and head[8:12] == b".FIT"


def read_fit(stream: BinaryIO, name: str, ctx: ImportContext) -> Iterator[Item]:
    """Readings and skip counts of the FIT file in ``stream`` (rules in the module docstring)."""
    state = _FitFile(ctx)
    try:
        state.decode(stream)
    except _Damaged as exc:
        if ctx.salvage:
            yield from state.finish()
        raise ImportFileError(f"damaged FIT file: {exc}") from None
    yield from state.finish()


class _Damaged(Exception):
    """Where a FIT file broke, in words that carry no value from it."""


def _where(exc: Exception) -> str:
    if isinstance(exc, fitdecode.FitCRCError):
        at = re.search(r"offset: (\d+)", str(exc))
        return "bad CRC" + (f" (checksum at byte {at.group(1)})" if at else "")
    if isinstance(exc, fitdecode.FitEOFError):
        return f"cut short at byte {exc.offset}"
    if isinstance(exc, fitdecode.FitParseError):
        return f"undecodable data at byte {exc.offset}"
    if isinstance(exc, fitdecode.FitHeaderError):
        return "not a FIT file (bad header)"
    return "undecodable data"


class _FitFile:
    """The decoding state of one file; :meth:`finish` turns it into items."""

    def __init__(self, ctx: ImportContext) -> None:
        self.ctx = ctx
        self.readings: list[_BUFFER] = []
        self.samples: list[tuple[datetime, int, int]] = []
        self.skipped: Counter[str] = Counter()
        self.device_id: str | None = None
        self.offset: timedelta | None = None
        #: When the monitoring file starts (monitoring_info.timestamp): one that starts after
        #: its first day's midnight did not see that day's first samples.
        self.start: datetime | None = None
        self.last_full: int | None = None

    def decode(self, stream: BinaryIO) -> None:
        reader = fitdecode.FitReader(stream, check_crc=fitdecode.CrcCheck.RAISE,
                                     error_handling=fitdecode.ErrorHandling.IGNORE)
        frames = iter(reader)
        count = 0
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                return
            except fitdecode.FitError as exc:
                raise _Damaged(_where(exc)) from None
            except (struct.error, ValueError, IndexError, KeyError, TypeError):
                raise _Damaged(f"undecodable data after frame {count}") from None
            count += 1
            if isinstance(frame, fitdecode.FitHeader):
                self.last_full = None
            elif isinstance(frame, fitdecode.FitDataMessage):
                self._take(frame.name, {f.name: f for f in frame.fields})

    def _take(self, name: str, fields: dict[str, Any]) -> None:
        ts = fields.get("timestamp")
        instant = None
        seconds = ts.raw_value if ts is not None else None
        if isinstance(seconds, int) and seconds >= MIN_ABSOLUTE_FIT_TIME:
            self.last_full = seconds
            instant = fit_instant(seconds)
        if name == "record":
            self._record(fields, instant)
        elif name == "weight_scale":
            self._weight(fields, instant)
        elif name == "monitoring":
            self._monitoring(fields, instant)
        elif name == "monitoring_info":
            local = fields.get("local_timestamp")
            if self.offset is None and isinstance(seconds, int) and instant is not None \
                    and local is not None and isinstance(local.raw_value, int):
                self.offset = timedelta(seconds=local.raw_value - seconds)
                self.start = instant
        elif name == "file_id":
            self.device_id = self.device_id or _device_id(fields)
        self._count_skipped(name)

    def _count_skipped(self, name: str) -> None:
        if name not in ("record", "weight_scale", "monitoring"):
            self.skipped["fit_unknown_message" if name.startswith("unknown") else f"fit_{name}"] += 1

    def _add(self, metric: str, value: float, unit: str, at: datetime | None) -> None:
        if at is None:
            self.skipped[f"{metric}_without_time"] += 1
        else:
            self.readings.append((metric, value, unit, at, None, None))

    def _record(self, fields: dict[str, Any], at: datetime | None) -> None:
        hr = _value(fields, "heart_rate")
        if hr is not None:
            self._add("heart_rate", hr, "bpm", at)
        if _value(fields, "temperature") is not None:
            self.skipped["ambient_temperature"] += 1
        if _value(fields, "position_lat") is not None or _value(fields, "position_long") is not None:
            self.skipped["location"] += 1

    def _weight(self, fields: dict[str, Any], at: datetime | None) -> None:
        for field, data in fields.items():
            if field in _WEIGHT_SILENT or data.value is None:
                continue
            if field not in _WEIGHT_FIELDS:
                self.skipped["weight_scale_other"] += 1
            elif data.raw_value == _CALCULATING:
                self.skipped["weight_calculating"] += 1
            else:
                metric, unit = _WEIGHT_FIELDS[field]
                self._add(metric, float(data.value), unit, at)

    def _monitoring(self, fields: dict[str, Any], at: datetime | None) -> None:
        t16 = fields.get("timestamp_16")
        if at is None and t16 is not None and isinstance(t16.raw_value, int) and self.last_full is not None:
            self.last_full = expand_timestamp_16(self.last_full, t16.raw_value)
            at = fit_instant(self.last_full)
        if _value(fields, "duration_min") is not None:
            self.skipped["monitoring_daily_summary"] += 1
            return
        hr = _value(fields, "heart_rate")
        if hr is not None:
            self._add("heart_rate", hr, "bpm", at)
        counter = fields.get("cycles") or fields.get("steps") or fields.get("strokes")
        activity = fields.get("activity_type")
        kind = activity.raw_value if activity is not None else None
        if counter is not None and isinstance(counter.raw_value, int):
            if kind not in STEP_ACTIVITIES:
                self.skipped["monitoring_cycles_other_activity"] += 1
            elif at is None:
                self.skipped["steps_without_time"] += 1
            else:
                self.samples.append((at, kind, counter.raw_value))
        for field, data in fields.items():
            if field not in _MONITORING_HANDLED and data.value is not None:
                self.skipped["monitoring_unknown_field" if field.startswith("unknown")
                             else f"monitoring_{field}"] += 1

    def finish(self) -> Iterator[Item]:
        """Every reading decoded so far, then the step increments, then the skip counts."""
        ctx = self.ctx
        source = ctx.source or "garmin"
        for metric, value, unit, at, end, metadata in self._all_readings():
            yield single_reading(ctx, device_id=self.device_id, source=source, metric=metric,
                                 value=value, unit=unit, timestamp=at, timestamp_end=end,
                                 metadata=metadata)
        for kind, count in sorted(self.skipped.items()):
            yield Skipped(kind, count)

    def _all_readings(self) -> Iterator[_BUFFER]:
        yield from self.readings
        if not self.samples:
            return
        days = (LocalDays(offset=self.offset) if self.offset is not None
                else LocalDays(zone=self.ctx.zone) if self.ctx.zone is not None else None)
        if days is None:
            self.skipped["monitoring_steps_no_local_day"] += len(self.samples)
            return
        baselines: list[datetime] = []
        for inc in step_increments(self.samples, days, covered_from=self.start, baselines=baselines):
            yield ("steps", float(inc.steps), "steps", inc.start, inc.end,
                   {"activity_type": STEP_ACTIVITIES[inc.activity_type]})
        if baselines:
            self.skipped["monitoring_partial_day_baseline"] += len(baselines)


def _value(fields: dict[str, Any], name: str) -> Any:
    data = fields.get(name)
    return None if data is None else data.value


def _device_id(fields: dict[str, Any]) -> str | None:
    """``product_name``, else ``manufacturer-product``; never the serial number."""
    product_name = _value(fields, "product_name")
    if isinstance(product_name, str) and product_name.strip():
        text = product_name.strip()
    else:
        maker = _value(fields, "manufacturer")
        product = _value(fields, "garmin_product") or _value(fields, "product")
        if maker is None and product is None:
            return None
        text = f"{maker if maker is not None else 'unknown'}-{product if product is not None else 'unknown'}"
    return plain_name(text)
