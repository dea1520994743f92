"""process_message on single readings: the happy path and every whole-message rejection."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from streams.domain import TRANSFORMATION_VERSION, Rules, normalise_reading, process_message, user_key
from streams.domain.pseudonym import device_key
from streams.errors import ConfigurationError, Rejected, RejectReason
from streams.records import DeadLetter, MessageContext, NormalisedReading


def _dead(out) -> DeadLetter:
    assert out.readings == []
    [dead] = out.dead_letters
    return dead


def test_valid_single_reading_is_normalised(
    reading, encode, ctx, rules, key, user_id, device_id, now
) -> None:
    fields = reading(metric=" Body_Weight ", value=165, unit=" lb ", timestamp="2024-05-01T13:00:00+02:00")
    out = process_message(encode(fields), ctx, rules)
    assert out.dead_letters == []
    assert out.readings == [
        NormalisedReading(
            event_id="evt-1",
            user_key=user_key(key, user_id),
            device_id=device_key(key, device_id),
            source="fitbit",
            metric="body_weight",
            loinc_code="29463-7",
            value=pytest.approx(74.84274105),  # 165 * 0.45359237
            unit="kg",
            original_value=165.0,
            original_unit=" lb ",
            measured_at=datetime(2024, 5, 1, 11, 0, tzinfo=UTC),
            ingested_at=now,
            quality_flags=(),
            metadata={"firmware": "1.2.3"},
            kafka_topic="health.readings.raw",
            kafka_partition=3,
            kafka_offset=42,
            transformation_version=TRANSFORMATION_VERSION,
        )
    ]
    stored = out.readings[0]
    assert isinstance(stored.value, float) and isinstance(stored.original_value, float)
    assert stored.measured_at.tzinfo is UTC


@pytest.mark.parametrize(
    "fields", [{"device_id": None, "metadata": None}, {"drop": ("device_id", "metadata")}]
)
def test_optional_fields_may_be_null_or_absent(fields, reading, encode, ctx, rules) -> None:
    stored = process_message(encode(reading(**fields)), ctx, rules).readings[0]
    assert (stored.device_id, stored.metadata) == (None, None)


def test_int_value_becomes_float(reading, encode, ctx, rules) -> None:
    stored = process_message(encode(reading(value=72)), ctx, rules).readings[0]
    assert stored.value == 72.0 and type(stored.value) is float


def test_unknown_extra_fields_are_ignored(reading, encode, ctx, rules) -> None:
    assert process_message(encode(reading(note="hello")), ctx, rules).readings


@pytest.mark.parametrize("value", [None, b""])
def test_empty_value_is_malformed_json(value, ctx, rules) -> None:
    dead = _dead(process_message(value, ctx, rules))
    assert (dead.code, dead.payload, dead.metric, dead.source) == (
        RejectReason.MALFORMED_JSON,
        b"",
        None,
        None,
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b'{"event_id": "e",}',
        b"\xff\xfe{}",
        b'\xef\xbb\xbf{"a": 1}',
        b"{} {}",
        b"[" * 1025 + b"]" * 1025,
        b'{"a": ' + b"[" * 1024 + b"]" * 1024 + b"}",
        b'"\\ud800"',
        b'{"value": NaN',  # NaN *and* broken: still malformed
        b'{"value": NaN, "bad": "\\ud800"}',  # NaN plus something else orjson refuses
        b'{"value": NaN, "deep": ' + b"[" * 1024 + b"]" * 1024 + b"}",
    ],
)
def test_malformed_json(payload, ctx, rules) -> None:
    dead = _dead(process_message(payload, ctx, rules))
    assert dead.code is RejectReason.MALFORMED_JSON
    assert dead.payload == payload


def test_deeply_nested_metadata_is_malformed_json(reading, ctx, rules) -> None:
    text = orjson.dumps(reading(metadata={"x": "PLACEHOLDER"}))
    payload = text.replace(b'"PLACEHOLDER"', b"[" * 1024 + b"]" * 1024)
    assert _dead(process_message(payload, ctx, rules)).code is RejectReason.MALFORMED_JSON


@pytest.mark.parametrize("payload", [b"[1, 2]", b"42", b'"reading"', b"null", b"true", b"[{}]"])
def test_non_object_is_invalid_type(payload, ctx, rules) -> None:
    dead = _dead(process_message(payload, ctx, rules))
    assert (dead.code, dead.payload) == (RejectReason.INVALID_TYPE, payload)


@pytest.mark.parametrize("name", ["user_id", "source", "metric", "value", "unit", "timestamp"])
@pytest.mark.parametrize("how", ["absent", "null"])
def test_missing_required_field(name, how, reading, encode, ctx, rules) -> None:
    fields = reading(drop=(name,)) if how == "absent" else reading(**{name: None})
    dead = _dead(process_message(encode(fields), ctx, rules))
    assert dead.code is RejectReason.MISSING_FIELD
    assert repr(name) in dead.message


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("value", True),
        ("value", False),
        ("value", "72"),
        ("value", [72]),
        ("value", {"v": 72}),
        ("event_id", 123),
        ("event_id", ""),
        ("user_id", 9876.5),  # an integer is its decimal string (test_integer_user_id.py)
        ("user_id", ""),
        ("device_id", 5),
        ("device_id", ["d"]),
        ("source", ""),
        ("source", {"name": "fitbit"}),
        ("metric", ["heart_rate"]),
        ("metric", ""),
        ("unit", 1),
        ("unit", ""),
        ("timestamp", 1714564800000.5),
        ("timestamp", True),
        ("timestamp", "not a time"),
        ("timestamp", {"ms": 1}),
        ("metadata", "fw=1.2"),
        ("metadata", ["fw"]),
        ("metadata", 1),
    ],
)
def test_wrong_type_is_invalid_type(name, bad, reading, encode, ctx, rules) -> None:
    dead = _dead(process_message(encode(reading(**{name: bad})), ctx, rules))
    assert dead.code is RejectReason.INVALID_TYPE
    assert repr(name) in dead.message


@pytest.mark.parametrize(
    "literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1" + b"0" * 400]
)
def test_non_finite_value_is_invalid_type(literal, reading, ctx, rules) -> None:
    payload = orjson.dumps(reading(value="PLACEHOLDER")).replace(b'"PLACEHOLDER"', literal)
    dead = _dead(process_message(payload, ctx, rules))
    assert (dead.code, dead.payload, dead.metric, dead.source) == (
        RejectReason.INVALID_TYPE,
        payload,
        "heart_rate",
        "fitbit",
    )


def test_non_finite_anywhere_in_the_reading_is_invalid_type(reading, ctx, rules) -> None:
    payload = orjson.dumps(reading(metadata={"quality": "PLACEHOLDER"})).replace(b'"PLACEHOLDER"', b"NaN")
    assert _dead(process_message(payload, ctx, rules)).code is RejectReason.INVALID_TYPE


def test_huge_integer_value_is_out_of_range(reading, encode, ctx, rules) -> None:
    dead = _dead(process_message(encode(reading(value=2**63)), ctx, rules))
    assert dead.code is RejectReason.OUT_OF_RANGE


@pytest.mark.parametrize(
    ("fields", "code", "metric"),
    [
        ({"metric": "blood_alcohol"}, RejectReason.UNKNOWN_METRIC, None),
        ({"metric": "heart rate"}, RejectReason.UNKNOWN_METRIC, None),
        ({"unit": "kg"}, RejectReason.UNKNOWN_UNIT, "heart_rate"),
        (
            {"metric": "active_energy", "unit": "cal", "value": 100},
            RejectReason.UNKNOWN_UNIT,
            "active_energy",
        ),
        ({"value": 301}, RejectReason.OUT_OF_RANGE, "heart_rate"),
        ({"value": -1}, RejectReason.OUT_OF_RANGE, "heart_rate"),
        ({"metric": "body_weight", "unit": "kg", "value": 0}, RejectReason.OUT_OF_RANGE, "body_weight"),
        ({"timestamp": "2024-05-01T11:00:00"}, RejectReason.NAIVE_TIMESTAMP, "heart_rate"),
        ({"timestamp": "2024-05-01T13:00:00Z"}, RejectReason.FUTURE_TIMESTAMP, "heart_rate"),
        ({"metric": " HEART_RATE "}, None, "heart_rate"),
    ],
)
def test_semantic_rejections(fields, code, metric, reading, encode, ctx, rules) -> None:
    payload = encode(reading(**fields))
    out = process_message(payload, ctx, rules)
    if code is None:
        assert out.readings[0].metric == metric
        return
    dead = _dead(out)
    assert (dead.code, dead.metric, dead.source, dead.payload) == (code, metric, "fitbit", payload)


def test_first_failing_check_wins(reading, encode, ctx, rules) -> None:
    # unknown unit and out of range: the unit is judged first
    dead = _dead(process_message(encode(reading(unit="kg", value=1000)), ctx, rules))
    assert dead.code is RejectReason.UNKNOWN_UNIT
    # a type problem beats a semantic one
    dead = _dead(process_message(encode(reading(metric="nope", value=True)), ctx, rules))
    assert dead.code is RejectReason.INVALID_TYPE


def test_dead_letter_source_is_none_when_not_a_string(reading, encode, ctx, rules) -> None:
    dead = _dead(process_message(encode(reading(source=7)), ctx, rules))
    assert dead.source is None


def test_oversized_by_bytes_is_checked_before_decoding(reading, encode, ctx, key) -> None:
    rules = Rules.default(key, max_message_bytes=1024)
    fitting = encode(reading(metadata={"pad": ""}))
    fitting = encode(reading(metadata={"pad": "x" * (1024 - len(fitting))}))
    assert len(fitting) == 1024
    assert process_message(fitting, ctx, rules).readings
    too_big = encode(reading(metadata={"pad": "x" * (1025 - len(encode(reading(metadata={"pad": ""}))))}))
    assert len(too_big) == 1025
    dead = _dead(process_message(too_big, ctx, rules))
    assert (dead.code, dead.payload) == (RejectReason.OVERSIZED, too_big)
    garbage = b"\xff" * 1025  # not JSON at all, yet reported as oversized: size comes first
    assert _dead(process_message(garbage, ctx, rules)).code is RejectReason.OVERSIZED


def test_bytearray_and_memoryview_values_are_accepted(reading, encode, ctx, rules) -> None:
    payload = encode(reading())
    assert process_message(bytearray(payload), ctx, rules).readings
    assert process_message(memoryview(payload), ctx, rules).readings


def test_normalise_reading_alone(reading, ctx, rules) -> None:
    assert normalise_reading(reading(), ctx, rules).metric == "heart_rate"
    with pytest.raises(Rejected) as info:
        normalise_reading(reading(value=float("nan")), ctx, rules)
    assert info.value.code is RejectReason.INVALID_TYPE
    with pytest.raises(Rejected) as info:
        normalise_reading(reading(metadata={"x": float("inf")}), ctx, rules)
    assert info.value.code is RejectReason.INVALID_TYPE
    with pytest.raises(Rejected) as info:
        normalise_reading(reading(user_id="\ud800"), ctx, rules)
    assert info.value.code is RejectReason.INVALID_TYPE


@pytest.mark.parametrize(
    "payload",
    [
        b'{"readings": {}}',
        b'{"batch_id": 1, "readings": []}',
        b'{"metric": {"a": 1}, "value": 1}',
        b'{"metric": "heart_rate", "unit": {"u": 1}}',
        b'{"event_id": "e", "user_id": "u", "source": "s", "metric": "heart_rate", "value": 1e308, '
        b'"unit": "kPa", "timestamp": 0}',
        b'{"event_id": "e", "user_id": "u", "source": "s", "metric": "body_temperature", "value": -1e308, '
        b'"unit": "F", "timestamp": "9999-12-31T23:59:59-23:59"}',
        b'{"event_id": "e", "user_id": "u", "source": "s", "metric": "heart_rate", "value": 1, '
        b'"unit": "bpm", "timestamp": 253402300799999}',
        b'{"NaN": NaN, "readings": [NaN, [NaN], {"value": NaN}]}',
        b'{"batch_id": "b", "user_id": "u", "source": "s", '
        b'"readings": [null, 1, "x", [], {}, {"value": NaN}]}',
        b'{"batch_id": "b", "user_id": "u", "source": "s", "readings": [{"metric": 5}, {"metric": null}]}',
        b"{" + b'"k": 1, ' * 1000 + b'"z": 2}',
    ],
)
def test_garbage_never_raises(payload, ctx, rules) -> None:
    out = process_message(payload, ctx, rules)
    assert out.readings == [] and out.dead_letters
    assert all(isinstance(d.code, RejectReason) for d in out.dead_letters)


def test_rules_validation(key) -> None:
    with pytest.raises(ConfigurationError):
        Rules.default(b"")
    with pytest.raises(ConfigurationError):
        Rules.default(key, max_message_bytes=0)
    with pytest.raises(ConfigurationError):
        Rules.default(key, max_batch_readings=True)
    with pytest.raises(TypeError):
        Rules.default(key, max_batch_size=10)
    rules = Rules.default(key, max_batch_readings=7, transformation_version="2.0.0")
    assert (rules.max_batch_readings, rules.transformation_version, rules.max_message_bytes) == (
        7,
        "2.0.0",
        1_048_576,
    )


def test_integer_too_large_for_a_float_is_out_of_range(reading, ctx, rules) -> None:
    with pytest.raises(Rejected) as info:
        normalise_reading(reading(value=10**400), ctx, rules)
    assert info.value.code is RejectReason.OUT_OF_RANGE


@pytest.mark.parametrize("field, value", [
    ("event_id", "ev\u0000il"), ("unit", "bpm\u0000"), ("source", "gar\u0000min"),
    ("device_id", "d\u0000"), ("metadata", {"note": "a\u0000b"}),
])
def test_nul_characters_are_rejected_before_the_warehouse_sees_them(field, value):
    # PostgreSQL text/jsonb cannot store U+0000; one such reading must not fail a whole batch.
    reading = {"event_id": "e-nul", "user_id": "u", "source": "garmin", "metric": "heart_rate",
               "value": 70, "unit": "bpm", "timestamp": 1_760_000_000_000, field: value}
    ctx = MessageContext("t", 0, 0, datetime(2025, 10, 9, tzinfo=UTC))
    outcome = process_message(orjson.dumps(reading), ctx, Rules.default(b"k"))
    assert not outcome.readings
    assert [d.code for d in outcome.dead_letters] == [RejectReason.CONTROL_CHARACTER]
