"""Every text field that reaches PostgreSQL is bounded and free of control characters."""

from __future__ import annotations

import orjson
import pytest

from streams.domain import process_message
from streams.domain.text import MAX_LENGTHS, MAX_METADATA_BYTES, safe_rendering
from streams.errors import RejectReason

SINGLE_FIELDS = ["event_id", "user_id", "device_id", "source", "metric", "unit"]
CONTROLS = ["\x00", "\x01", "\t", "\n", "\x1b", "\x7f", "\x85", "\x9f"]


def _codes(payload: dict, ctx, rules) -> list[RejectReason]:
    out = process_message(orjson.dumps(payload), ctx, rules)
    return [d.code for d in out.dead_letters]


@pytest.mark.parametrize("field", SINGLE_FIELDS)
def test_a_field_at_its_limit_passes_the_bound_and_one_more_character_is_refused(
        field, reading, ctx, rules) -> None:
    limit = MAX_LENGTHS[field]
    at_limit = _codes(reading(**{field: "a" * limit}), ctx, rules)
    # metric and unit at the limit are unknown names, but they are not refused for length.
    assert RejectReason.TEXT_TOO_LONG not in at_limit
    assert _codes(reading(**{field: "a" * (limit + 1)}), ctx, rules) == [RejectReason.TEXT_TOO_LONG]


def test_a_12000_character_event_id_is_refused_before_the_warehouse(reading, ctx, rules) -> None:
    assert _codes(reading(event_id="x" * 12_000), ctx, rules) == [RejectReason.TEXT_TOO_LONG]


@pytest.mark.parametrize("field", SINGLE_FIELDS)
@pytest.mark.parametrize("control", CONTROLS)
def test_control_characters_are_refused_in_every_identifier(field, control, reading, ctx, rules) -> None:
    value = {"metric": "heart_rate", "unit": "bpm"}.get(field, "abc")
    codes = _codes(reading(**{field: value[:1] + control + value[1:]}), ctx, rules)
    assert codes == [RejectReason.CONTROL_CHARACTER]


@pytest.mark.parametrize("field", ["batch_id", "user_id", "source", "device_id"])
def test_envelope_identity_fields_are_bounded(field, envelope, ctx, rules) -> None:
    member = {"event_id": "m1", "metric": "heart_rate", "value": 70, "unit": "bpm",
              "timestamp": "2024-05-01T11:00:00Z"}
    too_long = envelope([member], **{field: "b" * (MAX_LENGTHS[field] + 1)})
    assert _codes(too_long, ctx, rules) == [RejectReason.TEXT_TOO_LONG]
    with_nul = envelope([member], **{field: "b\x00b"})
    assert _codes(with_nul, ctx, rules) == [RejectReason.CONTROL_CHARACTER]


def test_envelope_member_with_a_bad_event_id_does_not_sink_its_neighbours(envelope, ctx, rules) -> None:
    good = {"event_id": "ok", "metric": "heart_rate", "value": 70, "unit": "bpm",
            "timestamp": "2024-05-01T11:00:00Z"}
    out = process_message(orjson.dumps(envelope([good, {**good, "event_id": "z" * 500}])), ctx, rules)
    assert [r.event_id for r in out.readings] == ["ok"]
    assert [d.code for d in out.dead_letters] == [RejectReason.TEXT_TOO_LONG]


def test_metadata_is_bounded_in_bytes_and_may_not_hold_nul(reading, ctx, rules) -> None:
    fits = {"note": "n" * (MAX_METADATA_BYTES - 20)}
    assert _codes(reading(metadata=fits), ctx, rules) == []
    big = {"note": "n" * MAX_METADATA_BYTES}
    assert _codes(reading(metadata=big), ctx, rules) == [RejectReason.TEXT_TOO_LONG]
    assert _codes(reading(metadata={"k\x00": 1}), ctx, rules) == [RejectReason.CONTROL_CHARACTER]
    # Other control characters are legal JSON text in metadata (escaped by jsonb).
    assert _codes(reading(metadata={"note": "line\nbreak"}), ctx, rules) == []


@pytest.mark.parametrize("timestamp, code", [
    ("0001-01-01T00:00:00Z", RejectReason.TIMESTAMP_OUT_OF_RANGE),
    ("1969-12-31T23:59:59.999999Z", RejectReason.TIMESTAMP_OUT_OF_RANGE),
    (-1, RejectReason.TIMESTAMP_OUT_OF_RANGE),
    ("9999-12-31T23:59:59Z", RejectReason.FUTURE_TIMESTAMP),
])
def test_timestamps_outside_the_plausible_range_are_refused(timestamp, code, reading, ctx, rules) -> None:
    assert _codes(reading(timestamp=timestamp), ctx, rules) == [code]


def test_the_epoch_itself_is_accepted_as_a_late_reading(reading, ctx, rules) -> None:
    out = process_message(orjson.dumps(reading(timestamp="1970-01-01T00:00:00Z")), ctx, rules)
    assert [r.quality_flags for r in out.readings] == [("late",)]


@pytest.mark.parametrize("text, shown", [
    ("plain", "plain"),
    ("nul\x00here", "nul\\x00here"),
    ("bell\x07 and del\x7f", "bell\\x07 and del\\x7f"),
    ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
    (None, None),
])
def test_safe_rendering_escapes_what_postgresql_or_a_log_cannot_take(text, shown) -> None:
    assert safe_rendering(text) == shown


def test_safe_rendering_bounds_the_length() -> None:
    rendered = safe_rendering("x" * 1000, 64)
    assert rendered is not None and len(rendered) == 64 and rendered.endswith("…")
    assert safe_rendering("\x00" * 100, 10) == "\\x00\\x00\\…"  # 9 characters and the ellipsis


@pytest.mark.parametrize("timestamp", ["2024-05-01T11:00:00Z\x00junk", "2024-05-01T11:00:00\x00Z",
                                       "\x002024-05-01T11:00:00Z", "2024-05-01T11:00:00Z\n"])
def test_a_control_character_in_a_timestamp_is_refused_not_cut_off(timestamp, reading, ctx, rules) -> None:
    # datetime.fromisoformat stops at a NUL and would accept the first example (found by make chaos).
    assert _codes(reading(timestamp=timestamp), ctx, rules) == [RejectReason.CONTROL_CHARACTER]
