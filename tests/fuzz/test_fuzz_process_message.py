"""Property: ``process_message`` never raises, accounts for every reading, and hands the
warehouse only bounded, clean text (the contract of streams.domain.text)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import orjson
from fuzz.strategies import NOW, encoded, envelope, json_values, message_values, single
from hypothesis import given
from hypothesis import strategies as st

from streams.domain import Rules, fhir, omh
from streams.domain.decode import decode
from streams.domain.text import MAX_LENGTHS, MAX_METADATA_BYTES
from streams.domain.validate import process_message
from streams.domain.wide import RESERVED_KEYS
from streams.errors import Rejected, RejectReason
from streams.records import MessageContext

RULES = Rules.default(b"fuzz-key")
CTX = MessageContext("fuzz.raw", 0, 0, NOW)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHECKED = ("event_id", "device_id", "source", "metric", "unit")


def assert_clean(reading) -> None:  # type: ignore[no-untyped-def]
    for name in CHECKED:
        text = getattr(reading, name)
        if text is None:
            continue
        assert len(text) <= MAX_LENGTHS[name], (name, len(text))
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text), (name, text)
        text.encode("utf-8")  # no lone surrogate: PostgreSQL text must be valid UTF-8
    assert reading.original_unit.encode("utf-8") and len(reading.original_unit) <= MAX_LENGTHS["unit"]
    if reading.metadata is not None:
        blob = orjson.dumps(reading.metadata)
        assert len(blob) <= MAX_METADATA_BYTES and b"\\u0000" not in blob
    assert math.isfinite(reading.value) and math.isfinite(reading.original_value)
    assert reading.measured_at.tzinfo is not None and reading.measured_at >= EPOCH


def check(value: bytes) -> None:
    out = process_message(value, CTX, RULES)
    for reading in out.readings:
        assert_clean(reading)
    for letter in out.dead_letters:
        assert isinstance(letter.code, RejectReason) and isinstance(letter.payload, bytes)
    try:
        doc, _ = decode(value)  # the pipeline's own decoder decides what the shape is
    except Rejected:
        doc = None
    total = len(out.readings) + len(out.dead_letters)
    whole = total == 1 and out.dead_letters and not out.readings  # refused (or one member) as a whole
    if not isinstance(doc, dict):
        assert whole
    elif "readings" in doc or "batch_id" in doc:
        assert whole or total == len(doc["readings"])  # each member judged once
    elif omh.is_data_point(doc) or fhir.is_resource(doc):
        assert total >= 1
    elif "metric" not in doc and not RULES.catalogue.keys().isdisjoint(doc):
        assert whole or total == len(doc.keys() - RESERVED_KEYS)  # wide: one outcome per metric key
    else:
        assert total == 1  # a single reading, or any other object: exactly one outcome


@given(message_values)
def test_any_message_value(value: bytes) -> None:
    check(value)


@given(st.binary(max_size=2000))
def test_arbitrary_bytes(value: bytes) -> None:
    check(value)


@given(encoded(json_values))
def test_arbitrary_json(value: bytes) -> None:
    check(value)


@given(st.one_of(encoded(single), encoded(envelope)))
def test_reading_shaped_json(value: bytes) -> None:
    check(value)
