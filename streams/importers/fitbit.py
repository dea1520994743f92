"""Fitbit (Google Takeout) reader: ONE file of ``Takeout/Fitbit/...`` -> single readings.

The kind comes from the file name (the name's date is not the data's: a file named
``...-2023-03-02`` can hold 2024 days, so every instant is read from the content):

============================  =========================================================
``heart_rate-YYYY-MM-DD``     ``heart_rate`` bpm per sample; ``confidence`` in metadata
``steps-YYYY-MM-DD``          ``steps`` per minute, the interval ``[t, t + 1 min)``;
                              minutes of 0 steps are counted, not published
``resting_heart_rate-…``      ``resting_heart_rate`` (its own metric, never mixed into raw
                              heart rate), over the local day, ``statistic: average``,
                              Fitbit's ``error`` in metadata; days of 0 are skipped
``weight-…``                  ``body_weight`` (unit read from the BMI, see
                              :mod:`streams.importers.fitbit_values`) and ``fat`` ->
                              ``body_fat_percentage``; the BMI itself is derived, skipped
``sleep-…``                   ``sleep_duration``: ``minutesAsleep`` (asleep, not time in
                              bed) over ``startTime``-``endTime``
``Minute SpO2 - ….csv``       ``oxygen_saturation`` % per sample
``Daily SpO2 - ….csv``        ``oxygen_saturation`` over the local day, ``average``
============================  =========================================================

Any other file yields one ``Skipped("fitbit_unsupported_file")``. Times are local wall-clock
times without an offset: a supported file needs ``ctx.zone`` (``--zone``) and is refused with
:class:`ImportFileError` before anything is read without it; never read as UTC. DST: see
:mod:`streams.importers.local_time` (a nonexistent time is skipped as
``nonexistent_local_time``). A malformed entry is skipped (``fitbit_malformed_entry``) and
the rest of the file still goes. Streaming: JSON arrays are read entry by entry (ijson),
CSVs row by row; only a weight file (a month of weigh-ins) is held whole, to decide its unit.
A file whose JSON breaks off raises :class:`ImportFileError` naming the entry after which
it broke; what came before was already yielded (re-importing is harmless: event ids are
derived from the content). Device: none named in the files, except a scale's (``Aria``).
Source: ``ctx.source`` or ``"fitbit"``. Ids in the files (``logId``) are never published.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import ijson

from streams.importers.base import ImportContext, ImportFileError, Item, Skipped
from streams.importers.fitbit_kinds import JSON_KINDS, WEIGHT, Entry, Mapper, daily_spo2, minute_spo2
from streams.importers.local_time import LocalClock

__all__ = ["fitbit_kind", "is_fitbit", "read_fitbit"]

_JSON_NAME = re.compile(r"^(?P<kind>[a-z_]+)-\d{4}-\d{2}-\d{2}\.json$")
_CSV_NAMES = {"Minute SpO2 - ": "minute_spo2", "Daily SpO2 - ": "daily_spo2"}
_CSV_READERS: dict[str, Mapper] = {
    "minute_spo2": minute_spo2, "daily_spo2": daily_spo2,
}


def _basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def fitbit_kind(name: str) -> str | None:
    """The Takeout kind a file name announces (supported or not), or ``None``."""
    base = _basename(name)
    match = _JSON_NAME.match(base)
    if match:
        return match.group("kind")
    for prefix, kind in _CSV_NAMES.items():
        if base.startswith(prefix) and base.endswith(".csv"):
            return kind
    return None


def is_fitbit(name: str, head: bytes) -> bool:
    """Whether ``name`` and ``head`` (the first bytes) look like a Fitbit Takeout file.

    A JSON array named ``<kind>-YYYY-MM-DD.json`` (any kind: unsupported ones are then
    counted) or a ``Minute``/``Daily SpO2 - ….csv`` whose header starts with ``timestamp``.
    """
    kind = fitbit_kind(name)
    text = head.lstrip(codecs.BOM_UTF8).lstrip()
    if kind in _CSV_READERS:
        return text.startswith(b"timestamp")
    return kind is not None and text.startswith(b"[")


def read_fitbit(stream: BinaryIO, name: str, ctx: ImportContext) -> Iterator[Item]:
    """Readings of the Takeout file ``name`` in ``stream`` (rules in the module docstring)."""
    kind = fitbit_kind(name)
    if kind not in JSON_KINDS and kind not in _CSV_READERS:
        yield Skipped("fitbit_unsupported_file")
        return
    if ctx.zone is None:
        raise ImportFileError(f"Fitbit {kind} times are local times without an offset: needs --zone")
    entry = Entry(ctx, LocalClock(ctx.zone), ctx.source or "fitbit")
    if kind in _CSV_READERS:
        rows = _csv_rows(stream)
        yield from _each(rows, entry, _CSV_READERS[kind])
    elif kind == WEIGHT:
        yield from JSON_KINDS[kind](_all(_json_entries(stream)), entry)  # type: ignore[arg-type]
    else:
        yield from _each(_json_entries(stream), entry, JSON_KINDS[kind])
    yield from entry.skipped_items()


def _each(rows: Iterable[Any], entry: Entry, mapper: Mapper) -> Iterator[Item]:
    for row in rows:
        yield from mapper(row, entry)


def _all(entries: Iterator[Any]) -> list[Any]:
    return list(entries)


def _json_entries(stream: BinaryIO) -> Iterator[Any]:
    """The members of the file's top-level JSON array, one at a time."""
    count = 0
    try:
        for member in ijson.items(stream, "item", use_float=True):
            count += 1
            yield member
    except ijson.JSONError:
        raise ImportFileError(f"malformed JSON after entry {count}") from None
    if count == 0 and not _was_array(stream):
        raise ImportFileError("not a JSON array of entries")


def _was_array(stream: BinaryIO) -> bool:
    try:
        stream.seek(0)
        return stream.read(64).lstrip(codecs.BOM_UTF8).lstrip().startswith(b"[")
    except (OSError, io.UnsupportedOperation):
        return True


def _csv_rows(stream: BinaryIO) -> Iterator[dict[str, str]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield from csv.DictReader(text)
    except (csv.Error, UnicodeDecodeError):
        raise ImportFileError("malformed CSV") from None
    finally:
        text.detach()
