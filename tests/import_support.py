"""Helpers of the importer tests: the worker's own judge, and a minimal FIT encoder.

``judge`` runs each yielded message through :func:`streams.domain.process_message`, the pure
function the worker applies to every Kafka message, so a test sees exactly what the worker
would store or dead-letter. ``fit_file`` writes FIT bytes (header, one definition per data
message, CRCs) for the traps no public file shows; fitdecode only decodes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from fitdecode.utils import compute_crc

from streams.domain import Rules, process_message
from streams.importers.base import Item, Skipped
from streams.records import MessageContext, NormalisedReading

KEY = b"importer-test-pseudonym-key"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
FIT_EPOCH = datetime(1989, 12, 31, tzinfo=UTC)


def split(items: Iterable[Item]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The messages and the skip counts (by kind) of a reader's items."""
    messages: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    for item in items:
        if isinstance(item, Skipped):
            skipped[item.kind] = skipped.get(item.kind, 0) + item.count
        else:
            messages.append(item)
    return messages, skipped


def judge(messages: Iterable[dict[str, Any]]) -> list[NormalisedReading]:
    """What the worker stores of ``messages``; fails the test on any dead letter."""
    rules = Rules.default(KEY)
    stored: list[NormalisedReading] = []
    for offset, message in enumerate(messages):
        assert "event_id" not in message, "readers leave the event id to the worker"
        ctx = MessageContext(topic="health.readings.raw", partition=0, offset=offset, ingested_at=NOW)
        outcome = process_message(orjson.dumps(message), ctx, rules)
        assert outcome.dead_letters == [], (message["metric"], outcome.dead_letters[0].message)
        assert len(outcome.readings) == 1
        stored.extend(outcome.readings)
    return stored


def fit_seconds(instant: datetime) -> int:
    return int((instant - FIT_EPOCH).total_seconds())


# base type name -> (FIT base type code, struct format)
_BASE = {"enum": (0x00, "B"), "uint8": (0x02, "B"), "byte": (0x0D, "B"), "uint16": (0x84, "H"),
         "uint32": (0x86, "I"), "uint32z": (0x8C, "I")}
Field = tuple[int, str, int]


def fit_file(messages: Iterable[tuple[int, list[Field]]]) -> bytes:
    """A FIT file of ``(global message number, [(field number, base type, raw value)])``."""
    body = b""
    for global_num, fields in messages:
        body += bytes([0x40, 0, 0]) + struct.pack("<HB", global_num, len(fields))
        for num, base, _ in fields:
            code, fmt = _BASE[base]
            body += bytes([num, struct.calcsize(fmt), code])
        body += b"\x00" + b"".join(struct.pack("<" + _BASE[base][1], value) for _, base, value in fields)
    header = struct.pack("<BBHI4s", 14, 0x10, 2100, len(body), b".FIT")
    header += struct.pack("<H", compute_crc(header))
    data = header + body
    return data + struct.pack("<H", compute_crc(data))
