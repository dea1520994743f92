"""Dexcom Clarity CSV export -> blood glucose readings of our wire form. Pure and streaming.

Both exports are read by their header names, whatever the column order (and whatever the
delimiter: a spreadsheet in a locale with a decimal comma saves the file back with
semicolons, which the header line tells): the older unquoted
one (``Index, Timestamp (YYYY-MM-DDThh:mm:ss), Event Type, Event Subtype, Patient Info,
Device Info, Source Device ID, Glucose Value (mg/dL), …``) and the newer quoted one that adds
``Transmitter Time (Long Integer)`` and ``Transmitter ID``. The glucose unit is the one in
the header (``Glucose Value (mg/dL)`` or ``(mmol/L)``).

- ``EGV`` rows are ``blood_glucose`` samples. **Censored values**: ``Low`` is below the
  sensor's range and ``High`` above it; they are published as the range's bound, 40 mg/dL
  (2.2 mmol/L) for Low and 400 mg/dL (22.2 mmol/L) for High, with metadata
  ``{"censored": "below"}`` / ``{"censored": "above"}``: the true value is at most (at least)
  that. Aggregates count them; a consumer that needs the exact value must read the flag.
- Patient rows (``FirstName``, ``LastName``, ``DateOfBirth``, a clinic's
  ``PatientIdentifier``), ``Device``, ``Alert``
  (thresholds, not readings), ``Calibration``, ``Insulin``, ``Carbs``, ``Exercise`` and
  ``Health`` rows are counted as skipped, never published, never logged.
- Times are the receiver's naive local wall clock: they are read in ``ctx.zone`` (a file
  with glucose rows and no zone is refused, never read as UTC). ``2016-10-24T11:24:17`` and
  the spellings a spreadsheet writes back (``2016-10-24 1:24:17``, ``2016-10-24 01:24``) are
  read; any other row is counted ``unreadable_time``. At the autumn change a wall
  time occurs twice: the transmitter's clock (``Transmitter Time``, seconds, monotonic) picks
  the right one when the export has it, else the order of the rows does (readings go
  forward). A wall time that does not exist (the spring gap) is read with the offset before
  the change.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from streams.importers.base import ImportContext, ImportFileError, Item, Skipped
from streams.importers.text import without_owner

__all__ = ["CENSORED_BOUNDS", "read_dexcom"]

#: A receiver time: date, then a one- or two-digit hour, minutes and optional seconds.
_WALL = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?")

#: The sensor's range in each unit: (Low, High) published values.
CENSORED_BOUNDS = {"mg/dL": (40.0, 400.0), "mmol/L": (2.2, 22.2)}
_SKIPPED_EVENTS = {"firstname": "patient_info", "lastname": "patient_info", "dateofbirth": "patient_info",
                   "patientidentifier": "patient_info",  # a clinic's export: the patient's id
                   "device": "device_info", "alert": "dexcom_alert", "calibration": "dexcom_calibration",
                   "insulin": "dexcom_insulin", "carbs": "dexcom_carbs", "exercise": "dexcom_exercise",
                   "health": "dexcom_health"}


def read_dexcom(stream: BinaryIO, name: str, ctx: ImportContext) -> Iterator[Item]:
    """Glucose readings of a Clarity export (see the module docstring)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    first = text.readline(1 << 16)  # a header is short; a file without lines is no export
    delimiter = ";" if first.count(";") > first.count(",") else ","
    rows = csv.reader(itertools.chain([first], text), delimiter=delimiter)
    try:
        header = next(rows)
    except StopIteration:
        raise ImportFileError("empty file") from None
    except csv.Error:
        raise ImportFileError("CSV broken at line 1") from None
    columns = _columns(header)
    clock = _Clock(ctx)
    line = 1
    try:
        for line, row in enumerate(rows, start=2):
            yield _row(row, columns, clock, ctx, line)
    except csv.Error:
        raise ImportFileError(f"CSV broken at line {line + 1}") from None


def _columns(header: list[str]) -> dict[str, Any]:
    names = [h.strip() for h in header]

    def find(prefix: str) -> int | None:
        return next((i for i, n in enumerate(names) if n.lower().startswith(prefix.lower())), None)

    event, glucose, stamp = find("Event Type"), find("Glucose Value"), find("Timestamp")
    if event is None or glucose is None or stamp is None:
        raise ImportFileError("not a Dexcom Clarity export: no 'Timestamp', 'Event Type' and "
                              "'Glucose Value' columns in the header")
    unit = "mmol/L" if "mmol" in names[glucose].lower() else "mg/dL"
    return {"event": event, "glucose": glucose, "time": stamp, "unit": unit,
            "device": find("Source Device ID"), "tx_time": find("Transmitter Time"),
            "tx_id": find("Transmitter ID")}


def _row(row: list[str], c: dict[str, Any], clock: _Clock, ctx: ImportContext, line: int) -> Item:
    def cell(index: int | None) -> str:
        return row[index].strip() if index is not None and index < len(row) else ""

    event = cell(c["event"]).replace(" ", "").lower()
    if event != "egv":
        return Skipped(_SKIPPED_EVENTS.get(event, "dexcom_other"))
    raw, unit = cell(c["glucose"]), c["unit"]
    metadata: dict[str, Any] | None = None
    low, high = CENSORED_BOUNDS[unit]
    if raw.lower() == "low":
        value, metadata = low, {"censored": "below"}
    elif raw.lower() == "high":
        value, metadata = high, {"censored": "above"}
    else:
        try:
            value = float(raw.replace(",", "."))
        except ValueError:
            return Skipped("unreadable_value")
    tx_time = cell(c["tx_time"])
    instant = clock.instant(cell(c["time"]), int(tx_time) if tx_time.isdigit() else None,
                            cell(c["tx_id"]), line)
    if instant is None:
        return Skipped("unreadable_time")
    reading: dict[str, Any] = {
        "user_id": ctx.user_id, "device_id": without_owner(cell(c["device"]), 128) or "dexcom",
        "source": ctx.source or "dexcom", "metric": "blood_glucose", "value": value, "unit": unit,
        "timestamp": instant.isoformat(),
    }
    if metadata:
        reading["metadata"] = metadata
    return reading


class _Clock:
    """Naive receiver times -> aware instants in the context's zone (see the module doc)."""

    def __init__(self, ctx: ImportContext) -> None:
        self.zone = ctx.zone
        self.last: datetime | None = None
        self.anchor: tuple[str, int, datetime] | None = None  # transmitter id, its time, instant

    def instant(self, text: str, tx_time: int | None, tx_id: str, line: int) -> datetime | None:
        if self.zone is None:
            raise ImportFileError("the times are local without an offset: give the zone (--zone)")
        wall = _wall_clock(text)
        if wall is None:
            return None
        if wall.tzinfo is not None:
            return wall
        first, second = wall.replace(tzinfo=self.zone, fold=0), wall.replace(tzinfo=self.zone, fold=1)
        chosen = first
        if first.timestamp() < second.timestamp():  # the autumn change: this wall time occurs twice
            expected = self._expected(tx_time, tx_id)
            if expected is not None:
                chosen = min((first, second), key=lambda t: abs(t.timestamp() - expected.timestamp()))
            elif self.last is not None and first.timestamp() < self.last.timestamp():
                chosen = second
        elif first.timestamp() == second.timestamp():
            self._anchor(tx_time, tx_id, first)
        self.last = chosen
        return chosen

    def _expected(self, tx_time: int | None, tx_id: str) -> datetime | None:
        if tx_time is None or self.anchor is None or self.anchor[0] != tx_id:
            return None
        return self.anchor[2] + timedelta(seconds=tx_time - self.anchor[1])

    def _anchor(self, tx_time: int | None, tx_id: str, instant: datetime) -> None:
        if tx_time is not None:
            self.anchor = (tx_id, tx_time, instant)


def _wall_clock(text: str) -> datetime | None:
    """A receiver time as a (naive) datetime, or None when it is not one (module docstring)."""
    match = _WALL.fullmatch(text)
    if match is None:
        try:  # an offset written in the file, or another ISO-8601 spelling
            return datetime.fromisoformat(text)
        except ValueError:
            return None
    day, hour, minute, second = match.groups()
    try:
        return datetime.fromisoformat(f"{day}T{int(hour):02d}:{minute}:{second or '00'}")
    except ValueError:
        return None
