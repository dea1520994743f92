"""Writing a batch that PostgreSQL may refuse, for the live ingest and replays.

Two refusals are handled here, for every writer alike. An erased subject
(:class:`~streams.errors.SubjectsErased`, checked by the warehouse transaction itself): each
of their readings is dead-lettered as ``subject_erased`` with no payload (the DLQ record
keeps the key, the pseudonym, and the usual headers), and the rest of the batch is
written. A data error, below.

A data error (see ``DATA_ERRORS`` in :mod:`streams.sink.warehouse`) cannot be retried
away, and one bad reading must not hold back the others. So: find the readings PostgreSQL
refuses on their own (:meth:`~streams.sink.warehouse.Warehouse.find_refused`, a
bisection in a rolled-back transaction), dead-letter them as ``sink_rejected``, and write
the rest of the batch, with its offsets, in the same order as ever. If PostgreSQL refuses
a batch but no reading alone, the refusal is in our own rows: that is a bug, and it is
raised as ``Fatal``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson

from streams.dlq import DeadLetterRecord, dead_letter_record
from streams.domain.text import safe_rendering
from streams.errors import BatchRefused, Fatal, RejectReason, SubjectsErased
from streams.records import DeadLetter, NormalisedReading
from streams.sink.copy_encoding import DeadLetterRow, PreparedBatch
from streams.sink.warehouse import BatchResult, Warehouse

log = logging.getLogger(__name__)

#: ``call(what, operation)`` runs ``operation()``; the live ingest passes its retry loop.
Call = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]
Publish = Callable[[list[DeadLetterRecord]], Awaitable[None]]


async def run_once(what: str, operation: Callable[[], Awaitable[Any]]) -> Any:
    return await operation()


@dataclass(slots=True)
class Written:
    """What :func:`write_setting_aside_refused` stored, and what it dead-lettered instead."""

    result: BatchResult
    refused_event_ids: set[str] = field(default_factory=set)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
    splits: int = 0
    erased: int = 0  # readings of erased subjects, dead-lettered as subject_erased


async def write_setting_aside_refused(warehouse: Warehouse, group: str, prepared: PreparedBatch, *,
                                      publish: Publish, max_payload_bytes: int,
                                      call: Call = run_once) -> Written:
    """Write ``prepared``; readings PostgreSQL refuses, and readings of erased subjects, are
    published (``publish``) and booked as ``sink_rejected`` or ``subject_erased`` dead
    letters in the same transaction as the rest."""
    refused_ids: set[str] = set()
    rows: list[DeadLetterRow] = []
    splits = erased_count = 0
    while True:
        try:
            result = await call("warehouse write", partial(warehouse.write_prepared, group, prepared))
            return Written(result, refused_ids, rows, splits, erased_count)
        except SubjectsErased as erased:
            gone = [r for r in prepared.first if r.user_key in erased.user_keys]
            new_rows, records = subject_erased_letters(gone, prepared.dead_letters,
                                                       max_payload_bytes=max_payload_bytes)
            log.info("%d reading(s) of %d erased subject(s) dead-lettered as subject_erased",
                     len(gone), len(erased.user_keys))
            await call("dead-letter publish", partial(publish, records))
            ids = {r.event_id for r in gone}
            prepared = prepared.without(ids, new_rows)
            refused_ids |= ids
            rows += new_rows
            erased_count += len(gone)
        except BatchRefused as refused:
            found = await call("isolating refused readings", partial(warehouse.find_refused, prepared))
            if not found:
                raise Fatal(f"PostgreSQL refused a batch ({refused.error_class}) but no reading on its "
                            "own: a bug in the dead-letter or offset rows") from refused
            new_rows, records = sink_rejected_letters(found, prepared.dead_letters,
                                                      max_payload_bytes=max_payload_bytes)
            splits += 1
            log.warning("PostgreSQL refused %d reading(s) of a batch (%s); dead-lettered as sink_rejected",
                        len(found), refused.error_class)
            await call("dead-letter publish", partial(publish, records))
            ids = {reading.event_id for reading, _, _ in found}
            prepared = prepared.without(ids, new_rows)
            refused_ids |= ids
            rows += new_rows


async def scrub_erased_payloads(warehouse: Warehouse, records: list[DeadLetterRecord]) -> int:
    """Empty the payload of every DLQ record (about to be published) whose key, a pseudonym,
    is in the erasure register, and mark it ``subject.erased: true``; returns how many.

    For the dead letters the domain judged (a bad unit, a malformed body) of a person erased
    earlier: the reason stays, their raw message is not copied into the DLQ. Best effort
    against an erasure that commits during the publish (the raw topic holds the message
    anyway); the storing check is the warehouse transaction's."""
    keys = sorted({r.key.decode("utf-8", "replace") for r in records if r.key})
    erased = await warehouse.erased_subjects(keys) if keys else frozenset()
    return blank_payloads(records, erased)


def blank_payloads(records: list[DeadLetterRecord], erased: frozenset[str]) -> int:
    """:func:`scrub_erased_payloads` once the erased keys are known (pure, in place)."""
    count = 0
    for record in records:
        if record.key and record.key.decode("utf-8", "replace") in erased:
            record.value = b""
            record.headers = [(k, v) for k, v in record.headers if not k.startswith("payload.")]
            record.headers.append(("subject.erased", b"true"))
            count += 1
    return count


def sink_rejected_letters(
    refused: Sequence[tuple[NormalisedReading, str, str | None]], booked: Sequence[DeadLetterRow], *,
    max_payload_bytes: int,
) -> tuple[list[DeadLetterRow], list[DeadLetterRecord]]:
    """Dead-letter rows and DLQ records for readings PostgreSQL refused (pure).

    ``refused`` holds ``(reading, asyncpg error class, SQLSTATE)``. A refused reading's
    member index follows the rejects already booked for its message, so a replay of the
    same messages books the same rows. The payload is the normalised reading (already
    pseudonymised) with its text safely rendered: the raw member bytes are not kept."""
    return _letters([(reading, DeadLetter(_refused_payload(reading), RejectReason.SINK_REJECTED,
                                          f"PostgreSQL refused the reading ({error_class})",
                                          reading.metric, reading.source),
                      [("error.pg_class", error_class.encode()),
                       ("error.sqlstate", (sqlstate or "").encode())])
                     for reading, error_class, sqlstate in refused], booked, max_payload_bytes)


def subject_erased_letters(readings: Sequence[NormalisedReading], booked: Sequence[DeadLetterRow], *,
                           max_payload_bytes: int) -> tuple[list[DeadLetterRow], list[DeadLetterRecord]]:
    """Dead-letter rows and DLQ records for readings of erased subjects (pure).

    The payload is empty: nothing of the person is kept. Member indexes follow the rejects
    already booked for the message, as for :func:`sink_rejected_letters`."""
    return _letters([(r, DeadLetter(b"", RejectReason.SUBJECT_ERASED,
                                    "the subject was erased; the reading is not stored", r.metric, r.source),
                      []) for r in readings], booked, max_payload_bytes)


def _letters(refused: Sequence[tuple[NormalisedReading, DeadLetter, list[tuple[str, bytes]]]],
             booked: Sequence[DeadLetterRow], max_payload_bytes: int
             ) -> tuple[list[DeadLetterRow], list[DeadLetterRecord]]:
    used = Counter((d.topic, d.partition, d.offset) for d in booked)
    rows: list[DeadLetterRow] = []
    records: list[DeadLetterRecord] = []
    for reading, letter, headers in refused:
        where = (reading.kafka_topic, reading.kafka_partition, reading.kafka_offset)
        index = used[where]
        used[where] += 1
        rows.append(DeadLetterRow(*where, index, letter))
        records.append(dead_letter_record(
            letter, key=reading.user_key.encode(), topic=where[0], partition=where[1], offset=where[2],
            member_index=index, max_payload_bytes=max_payload_bytes, extra_headers=headers))
    return rows, records


def _refused_payload(r: NormalisedReading) -> bytes:
    return orjson.dumps({
        "event_id": safe_rendering(r.event_id), "user_key": r.user_key,
        "device_id": safe_rendering(r.device_id), "source": safe_rendering(r.source),
        "metric": r.metric, "value": r.original_value, "unit": safe_rendering(r.original_unit),
        "timestamp": r.measured_at.isoformat(),
    })
