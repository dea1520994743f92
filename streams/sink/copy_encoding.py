"""A batch as the warehouse write sends it: binary COPY data, computed up front with no I/O.

Only the first occurrence of each ``event_id`` in the batch counts (lowest partition, then
offset). :func:`prepare_batch` turns a batch into binary COPY data of the registry
(``reading_events``) and of ``health_readings`` (columns :data:`READING_COLUMNS`), so that a
caller can do that CPU work while the previous batch is still being written
(:class:`streams.sink.warehouse.Warehouse` writes it).
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, TypeVar

import orjson

from streams.domain.text import safe_rendering
from streams.records import DeadLetter, NormalisedReading

READING_COLUMNS = (
    "event_id", "user_key", "device_id", "source", "metric", "loinc_code", "value", "unit",
    "original_value", "original_unit", "measured_at", "ingested_at", "produced_at",
    "quality_flags", "kafka_topic", "kafka_partition", "kafka_offset", "transformation_version",
    "metadata", "measured_until", "statistic",
)

@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """Where a dead letter came from; ``member_index`` orders the rejects of one message."""

    topic: str
    partition: int
    offset: int
    member_index: int
    letter: DeadLetter


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch ready for :meth:`Warehouse.write_prepared`; built by :func:`prepare_batch`.

    ``first`` holds one reading per ``event_id`` in ``event_id`` order (concurrent writers
    then lock registry keys in one order); the two ``*_copy`` fields are binary COPY data
    of ``first``. ``user_keys``: the distinct pseudonyms of ``first``, sorted (checked
    against the erasure register). Immutable, so a write can be retried with it.
    """

    readings: int
    first: list[NormalisedReading]
    registry_copy: bytes
    readings_copy: bytes
    by_metric: dict[str, int]
    months: frozenset[datetime]
    dead_letters: Sequence[DeadLetterRow]
    next_offsets: Mapping[tuple[str, int], int]
    user_keys: tuple[str, ...] = ()

    def without(self, event_ids: set[str], dead_letters: Sequence[DeadLetterRow]) -> PreparedBatch:
        """This batch less the readings of ``event_ids``, plus ``dead_letters``."""
        first = [r for r in self.first if r.event_id not in event_ids]
        return _prepared(first, first, *_copy_data(first),
                         [*self.dead_letters, *dead_letters], self.next_offsets,
                         count=self.readings - len(self.first) + len(first))


def prepare_batch(readings: Sequence[NormalisedReading], dead_letters: Sequence[DeadLetterRow],
                  next_offsets: Mapping[tuple[str, int], int]) -> PreparedBatch:
    """Everything :meth:`Warehouse.write_prepared` sends, computed up front (pure, CPU only)."""
    first = sorted(_first_per_event(readings), key=_EVENT_ID)
    return _prepared(readings, first, *_copy_data(first), dead_letters, next_offsets)


async def prepare_batch_cooperatively(
    readings: Sequence[NormalisedReading], dead_letters: Sequence[DeadLetterRow],
    next_offsets: Mapping[tuple[str, int], int], *, chunk: int = 250,
) -> PreparedBatch:
    """:func:`prepare_batch`, yielding to the event loop every ``chunk`` readings.

    Same result. For a caller that prepares while other tasks wait on the network: one
    2000-reading batch is ~10 ms of CPU, and every round trip of a concurrent write would
    otherwise wait for it.
    """
    first = sorted(_first_per_event(readings), key=_EVENT_ID)
    registry, rows = [_COPY_HEADER], [_COPY_HEADER]
    for start in range(0, len(first), chunk):
        await asyncio.sleep(0)
        part_registry, part_rows = _rows_binary(first[start:start + chunk])
        registry.append(part_registry)
        rows.append(part_rows)
    registry.append(_COPY_TRAILER)
    rows.append(_COPY_TRAILER)
    return _prepared(readings, first, b"".join(registry), b"".join(rows), dead_letters, next_offsets)


def _prepared(readings: Sequence[NormalisedReading], first: list[NormalisedReading], registry: bytes,
              rows: bytes, dead_letters: Sequence[DeadLetterRow],
              next_offsets: Mapping[tuple[str, int], int], *, count: int | None = None
              ) -> PreparedBatch:
    months = {(r.measured_at.year, r.measured_at.month) for r in first}
    return PreparedBatch(
        readings=len(readings) if count is None else count, first=first, registry_copy=registry,
        readings_copy=rows,
        by_metric=dict(Counter(r.metric for r in first)),
        months=frozenset(datetime(y, m, 1, tzinfo=UTC) for y, m in months),
        dead_letters=dead_letters, next_offsets=next_offsets,
        user_keys=tuple(sorted({r.user_key for r in first})),
    )


_EVENT_ID = attrgetter("event_id")


def _first_per_event(readings: Sequence[NormalisedReading]) -> list[NormalisedReading]:
    """One reading per ``event_id``: the one from the lowest (partition, offset), else the first."""
    first: dict[str, NormalisedReading] = {}
    for r in readings:
        seen = first.setdefault(r.event_id, r)
        if seen is not r and (r.kafka_partition, r.kafka_offset) < (seen.kafka_partition, seen.kafka_offset):
            first[r.event_id] = r
    return list(first.values())


# ---- binary COPY encoding ----------------------------------------------------------------
# PostgreSQL's binary COPY format: a header, per row an int16 field count and per field an
# int32 length (-1 = NULL) and the value in the type's binary send format, and a trailer.
# Equal to what asyncpg's copy_records_to_table sends for these columns (checked by
# bench/check_copy.py), but built ahead of the transaction and ~3x cheaper per row.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NULL = b"\xff\xff\xff\xff"
_i32 = struct.Struct(">i").pack
_float8 = struct.Struct(">id").pack  # length 8, then the value
_int4 = struct.Struct(">ii").pack  # length 4, then the value
_int8 = struct.Struct(">iq").pack  # length 8, then the value (timestamptz: microseconds since 2000)
_TEXT_OID = 25
_EMPTY_TEXT_ARRAY = _i32(12) + struct.pack(">iii", 0, 0, _TEXT_OID)
_READING_FIELDS = struct.pack(">h", len(READING_COLUMNS))
_REGISTRY_FIELDS = struct.pack(">h", 2)


def _timestamptz(ts: datetime) -> bytes:
    return _int8(8, (ts - _PG_EPOCH) // _MICROSECOND)


def _text(value: str) -> bytes:
    data = value.encode()
    return _i32(len(data)) + data


def _text_array(values: Sequence[str]) -> bytes:
    if not values:
        return _EMPTY_TEXT_ARRAY
    body = struct.pack(">iiiii", 1, 0, _TEXT_OID, len(values), 1) + b"".join(_text(v) for v in values)
    return _i32(len(body)) + body


def _jsonb(value: object) -> bytes:
    data = orjson.dumps(value)
    return _i32(len(data) + 1) + b"\x01" + data  # jsonb binary format version 1


_Key = TypeVar("_Key", str, datetime)


def _memo(encode: Callable[[_Key], bytes]) -> Callable[[_Key], bytes]:
    """``encode`` with a per-batch cache: user keys, sources, units, clocks repeat a lot."""
    cache: dict[_Key, bytes] = {}

    def cached(value: _Key) -> bytes:
        data = cache.get(value)
        if data is None:
            data = encode(value)
            if len(cache) < 4096:
                cache[value] = data
        return data

    return cached


def copy_readings(readings: Sequence[NormalisedReading]) -> bytes:
    """Binary COPY data of ``readings`` for the columns :data:`READING_COLUMNS`, in that order."""
    return _copy_data(readings)[1]


def _copy_data(readings: Sequence[NormalisedReading]) -> tuple[bytes, bytes]:
    """Binary COPY data of ``(event_id, measured_at)`` of ``readings`` (the registry), and
    that of ``readings`` for the columns :data:`READING_COLUMNS`."""
    registry, rows = _rows_binary(readings)
    return _COPY_HEADER + registry + _COPY_TRAILER, _COPY_HEADER + rows + _COPY_TRAILER


def _rows_binary(readings: Sequence[NormalisedReading]) -> tuple[bytes, bytes]:
    """The registry rows and the reading rows of ``readings``, in one pass: both start with
    the event id, and ``measured_at`` is in both."""
    text = _memo(_text)
    # Runs of fields that repeat from reading to reading (one user, device, fetch, topic
    # partition), each encoded once per batch: per-field calls were most of the cost.
    who: dict[tuple, bytes] = {}
    where: dict[tuple, bytes] = {}
    tail: dict[tuple, bytes] = {}
    registry: list[bytes] = []
    rows: list[bytes] = []
    append = rows.append
    for r in readings:
        event_id = r.event_id.encode()
        identity = b"".join((_i32(len(event_id)), event_id))
        measured = _timestamptz(r.measured_at)
        registry.append(b"".join((_REGISTRY_FIELDS, identity, measured)))
        key: tuple[Any, ...] = (r.user_key, r.device_id, r.source, r.metric, r.loinc_code)
        head = who.get(key)
        if head is None:
            head = who[key] = b"".join((
                text(r.user_key), _NULL if r.device_id is None else text(r.device_id), text(r.source),
                text(r.metric), text(r.loinc_code)))
        key = (r.ingested_at, r.produced_at, r.quality_flags, r.kafka_topic, r.kafka_partition)
        middle = where.get(key)
        if middle is None:
            middle = where[key] = b"".join((
                _timestamptz(r.ingested_at), _NULL if r.produced_at is None else _timestamptz(r.produced_at),
                _text_array(r.quality_flags), text(r.kafka_topic), _int4(4, r.kafka_partition)))
        if r.metadata is None:
            key = (r.transformation_version, r.measured_until, r.statistic)
            end = tail.get(key)
            if end is None:
                end = tail[key] = _reading_tail(r)
        else:
            end = _reading_tail(r)
        append(b"".join((
            _READING_FIELDS, identity, head, _float8(8, r.value), text(r.unit),
            _float8(8, r.original_value), text(r.original_unit), measured, middle,
            _int8(8, r.kafka_offset), end,
        )))
    return b"".join(registry), b"".join(rows)


def _reading_tail(r: NormalisedReading) -> bytes:
    return b"".join((
        _text(r.transformation_version), _NULL if r.metadata is None else _jsonb(r.metadata),
        _NULL if r.measured_until is None else _timestamptz(r.measured_until),
        _NULL if r.statistic is None else _text(r.statistic)))


def _reading_rows(readings: Sequence[NormalisedReading]) -> list[tuple]:
    """``readings`` as records for asyncpg's ``copy_records_to_table`` (the reference encoding)."""
    dumps = orjson.dumps
    return [
        (
            r.event_id, r.user_key, r.device_id, r.source, r.metric, r.loinc_code, r.value, r.unit,
            r.original_value, r.original_unit, r.measured_at, r.ingested_at,
            r.produced_at,
            list(r.quality_flags), r.kafka_topic, r.kafka_partition, r.kafka_offset,
            r.transformation_version, None if r.metadata is None else dumps(r.metadata).decode(),
            r.measured_until, r.statistic,
        )
        for r in readings
    ]


def dead_letter_columns(rows: Sequence[DeadLetterRow]) -> tuple[list, ...]:
    # A rejected record's source can be anything the producer sent: store a safe rendering.
    return (
        [d.topic for d in rows], [d.partition for d in rows], [d.offset for d in rows],
        [d.member_index for d in rows], [str(d.letter.code) for d in rows],
        [safe_rendering(d.letter.metric, 64) for d in rows],
        [safe_rendering(d.letter.source, 64) for d in rows],
        [safe_rendering(d.letter.message, 500) for d in rows],
    )

