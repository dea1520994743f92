"""Batch envelopes: members inherit identity, are judged alone, and the envelope can fail whole."""

from __future__ import annotations

import orjson
import pytest

from streams.domain import Rules, process_message, user_key
from streams.domain.pseudonym import device_key
from streams.errors import RejectReason


def test_members_inherit_user_device_and_source(
    member, envelope, encode, ctx, rules, key, user_id, device_id
):
    members = [member(event_id=f"e{i}", value=100 * i) for i in range(3)]
    out = process_message(encode(envelope(members)), ctx, rules)
    assert out.dead_letters == []
    assert [r.event_id for r in out.readings] == ["e0", "e1", "e2"]
    assert [r.value for r in out.readings] == [0.0, 100.0, 200.0]
    for stored in out.readings:
        assert (stored.user_key, stored.device_id, stored.source) == (
            user_key(key, user_id),
            device_key(key, device_id),
            "apple_health",
        )
        assert (stored.kafka_partition, stored.kafka_offset) == (3, 42)


def test_one_bad_member_never_sinks_the_batch(member, envelope, encode, ctx, rules):
    bad = member(event_id="bad", metric="heart_rate", unit="bpm", value=999)
    members = [member(event_id="ok1"), bad, member(event_id="ok2", metric="heart_rate", unit="bpm", value=60)]
    out = process_message(encode(envelope(members)), ctx, rules)
    assert [r.event_id for r in out.readings] == ["ok1", "ok2"]
    [dead] = out.dead_letters
    assert dead.code is RejectReason.OUT_OF_RANGE
    assert dead.payload == orjson.dumps(bad)  # the member alone, not the envelope
    assert orjson.loads(dead.payload) == bad
    assert (dead.metric, dead.source) == ("heart_rate", "apple_health")


def _member(drop: tuple[str, ...] = (), **fields) -> dict:
    doc = {"event_id": "evt-bad", "metric": "steps", "value": 10, "unit": "steps", "timestamp": 1714561200000}
    doc.update(fields)
    for name in drop:
        doc.pop(name)
    return doc


@pytest.mark.parametrize(
    ("bad_member", "code", "metric"),
    [
        (5, RejectReason.INVALID_TYPE, None),
        ("reading", RejectReason.INVALID_TYPE, None),
        (None, RejectReason.INVALID_TYPE, None),
        ([], RejectReason.INVALID_TYPE, None),
        ({"event_id": "x"}, RejectReason.MISSING_FIELD, None),
        (_member(drop=("unit",)), RejectReason.MISSING_FIELD, "steps"),
        (_member(value=True), RejectReason.INVALID_TYPE, "steps"),
        (_member(metric="Mood"), RejectReason.UNKNOWN_METRIC, None),
        (_member(unit="km"), RejectReason.UNKNOWN_UNIT, "steps"),
        (_member(value=-5), RejectReason.OUT_OF_RANGE, "steps"),
        (_member(timestamp="2024-05-01T10:00:00"), RejectReason.NAIVE_TIMESTAMP, "steps"),
        (_member(timestamp="2024-06-01T10:00:00Z"), RejectReason.FUTURE_TIMESTAMP, "steps"),
        (_member(metadata="x"), RejectReason.INVALID_TYPE, "steps"),
    ],
)
def test_member_level_rejections(bad_member, code, metric, member, envelope, encode, ctx, rules):
    out = process_message(encode(envelope([member(event_id="ok"), bad_member])), ctx, rules)
    assert [r.event_id for r in out.readings] == ["ok"]
    [dead] = out.dead_letters
    assert (dead.code, dead.metric, dead.source, dead.payload) == (
        code,
        metric,
        "apple_health",
        orjson.dumps(bad_member),
    )


def test_nan_member_is_rejected_alone(member, envelope, ctx, rules):
    members = [member(event_id="ok"), member(event_id="nan", value="PLACEHOLDER"), member(event_id="ok2")]
    payload = orjson.dumps(envelope(members)).replace(b'"PLACEHOLDER"', b"NaN")
    out = process_message(payload, ctx, rules)
    assert [r.event_id for r in out.readings] == ["ok", "ok2"]
    [dead] = out.dead_letters
    assert (dead.code, dead.metric) == (RejectReason.INVALID_TYPE, "steps")
    assert b'"event_id":"nan"' in dead.payload and b"NaN" in dead.payload
    assert b"ok2" not in dead.payload


def test_infinity_in_member_metadata_is_rejected_alone(member, envelope, ctx, rules):
    members = [member(event_id="ok"), member(event_id="inf", metadata={"q": "PLACEHOLDER"})]
    payload = orjson.dumps(envelope(members)).replace(b'"PLACEHOLDER"', b"-Infinity")
    out = process_message(payload, ctx, rules)
    assert [r.event_id for r in out.readings] == ["ok"]
    assert [d.code for d in out.dead_letters] == [RejectReason.INVALID_TYPE]


def test_nan_at_envelope_level_rejects_the_whole_message(member, envelope, ctx, rules):
    payload = orjson.dumps(envelope([member()], extra="PLACEHOLDER")).replace(b'"PLACEHOLDER"', b"NaN")
    out = process_message(payload, ctx, rules)
    assert out.readings == []
    [dead] = out.dead_letters
    assert (dead.code, dead.payload) == (RejectReason.INVALID_TYPE, payload)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"drop": ("user_id",)}, RejectReason.MISSING_FIELD),
        ({"drop": ("source",)}, RejectReason.MISSING_FIELD),
        ({"drop": ("readings",)}, RejectReason.MISSING_FIELD),
        ({"drop": ("batch_id",)}, RejectReason.MISSING_FIELD),
        ({"user_id": None}, RejectReason.MISSING_FIELD),
        ({"readings": None}, RejectReason.MISSING_FIELD),
        ({"user_id": 12.5}, RejectReason.INVALID_TYPE),  # an integer is its decimal string
        ({"user_id": ""}, RejectReason.INVALID_TYPE),
        ({"source": ["s"]}, RejectReason.INVALID_TYPE),
        ({"device_id": 7}, RejectReason.INVALID_TYPE),
        ({"batch_id": 7}, RejectReason.INVALID_TYPE),
        ({"readings": {"event_id": "e"}}, RejectReason.INVALID_TYPE),
        ({"readings": "many"}, RejectReason.INVALID_TYPE),
    ],
)
def test_envelope_level_problems_reject_the_whole_message(change, code, member, envelope, encode, ctx, rules):
    doc = envelope([member(), member(event_id="e2")])
    for name, new_value in change.items():
        if name == "drop":
            for dropped in new_value:
                doc.pop(dropped)
        else:
            doc[name] = new_value
    payload = encode(doc)
    out = process_message(payload, ctx, rules)
    assert out.readings == []
    [dead] = out.dead_letters
    assert (dead.code, dead.payload, dead.metric) == (code, payload, None)


def test_envelope_without_device_is_fine(member, envelope, encode, ctx, rules):
    out = process_message(encode(envelope([member()], drop=("device_id",))), ctx, rules)
    assert out.readings[0].device_id is None


def test_member_cannot_override_the_envelope_identity(member, envelope, encode, ctx, rules, key, user_id):
    sneaky = member(user_id="someone-else", source="other", device_id="other-device")
    stored = process_message(encode(envelope([sneaky])), ctx, rules).readings[0]
    assert (stored.user_key, stored.source) == (user_key(key, user_id), "apple_health")


def test_empty_envelope_yields_nothing(envelope, encode, ctx, rules):
    out = process_message(encode(envelope([])), ctx, rules)
    assert (out.readings, out.dead_letters) == ([], [])


def test_oversized_envelope_is_rejected_whole(member, envelope, encode, ctx, key):
    rules = Rules.default(key, max_batch_readings=3)
    three = encode(envelope([member(event_id=f"e{i}") for i in range(3)]))
    assert len(process_message(three, ctx, rules).readings) == 3
    four = encode(envelope([member(event_id=f"e{i}") for i in range(4)]))
    out = process_message(four, ctx, rules)
    assert out.readings == []
    [dead] = out.dead_letters
    assert (dead.code, dead.payload, dead.source) == (RejectReason.OVERSIZED, four, "apple_health")


def test_member_outlier_strategies_apply(member, envelope, encode, ctx, key):
    rules = Rules.default(key, outlier_strategies={"steps": "drop"})
    members = [member(event_id="a", value=60_000), member(event_id="b", value=100)]
    out = process_message(encode(envelope(members)), ctx, rules)
    assert [r.event_id for r in out.readings] == ["b"]
    assert [d.code for d in out.dead_letters] == [RejectReason.OUTLIER_DROPPED]
