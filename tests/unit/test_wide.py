"""The wide message form: one reading per metric key, each judged like a single reading."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import orjson
import pytest

from streams.domain import DEFAULT_CATALOGUE, Rules, process_message, user_key
from streams.domain.wide import RESERVED_KEYS
from streams.errors import RejectReason
from streams.records import MessageContext

TS = "2024-05-01T11:30:00Z"


def wide(drop: tuple[str, ...] = (), **fields) -> dict:
    doc = {"user_id": 1, "heart_rate": 75, "steps": 1200, "timestamp": TS, "source": "fitbit"}
    doc.update(fields)
    for name in drop:
        doc.pop(name)
    return doc


def test_the_spec_example_becomes_one_reading_per_metric(ctx, rules, key) -> None:
    out = process_message(orjson.dumps(wide()), ctx, rules)
    assert out.dead_letters == []
    assert [(r.metric, r.value, r.unit) for r in out.readings] == [
        ("heart_rate", 75.0, "/min"), ("steps", 1200.0, "{steps}")]
    for r in out.readings:
        assert r.user_key == user_key(key, "1")
        assert (r.source, r.device_id, r.metadata) == ("fitbit", None, None)
        assert r.measured_at == datetime(2024, 5, 1, 11, 30, tzinfo=UTC)
        assert r.event_id.startswith("drv-")
    assert len({r.event_id for r in out.readings}) == 2


def test_every_catalogue_metric_defaults_to_its_canonical_unit(ctx, rules) -> None:
    def typical(rule) -> float:  # type: ignore[no-untyped-def]  # inside the outlier bounds
        low = rule.outlier_low if rule.outlier_low is not None else rule.min_value
        high = rule.outlier_high if rule.outlier_high is not None else rule.max_value
        return float((low + high) / 2)

    values = {name: typical(rule) for name, rule in DEFAULT_CATALOGUE.items()}
    doc = {"user_id": "u", "source": "garmin", "timestamp": TS, **values}
    out = process_message(orjson.dumps(doc), ctx, rules)
    assert out.dead_letters == []
    assert {r.metric: (r.value, r.unit, r.original_unit) for r in out.readings} == {
        m: (v, DEFAULT_CATALOGUE[m].canonical_unit, DEFAULT_CATALOGUE[m].canonical_unit)
        for m, v in values.items()}


def test_units_convert_and_only_for_their_metric(ctx, rules) -> None:
    doc = wide(body_temperature=98.6, units={"body_temperature": "F", "heart_rate": "bpm", "sleep": "h"})
    out = process_message(orjson.dumps(doc), ctx, rules)
    by_metric = {r.metric: r for r in out.readings}
    assert by_metric["body_temperature"].value == pytest.approx(37.0)
    assert by_metric["body_temperature"].original_unit == "F"
    assert by_metric["heart_rate"].original_unit == "bpm"
    assert by_metric["steps"].original_unit == "{steps}"


def test_unknown_keys_are_dead_lettered_one_by_one(ctx, rules) -> None:
    doc = wide(mood=3, hartrate=70)
    out = process_message(orjson.dumps(doc), ctx, rules)
    assert [r.metric for r in out.readings] == ["heart_rate", "steps"]
    assert [(d.code, d.metric, d.source) for d in out.dead_letters] == [
        (RejectReason.UNKNOWN_METRIC, None, "fitbit")] * 2
    payloads = [orjson.loads(d.payload) for d in out.dead_letters]
    assert [(p["metric"], p["value"]) for p in payloads] == [("mood", 3), ("hartrate", 70)]
    assert all("heart_rate" not in p for p in payloads)  # the member alone


def test_one_bad_metric_never_sinks_the_others(ctx, rules) -> None:
    doc = wide(heart_rate=999, units={"steps": "km"}, oxygen_saturation=True, body_weight=80)
    out = process_message(orjson.dumps(doc), ctx, rules)
    assert [r.metric for r in out.readings] == ["body_weight"]
    assert [(d.metric, d.code) for d in out.dead_letters] == [
        ("heart_rate", RejectReason.OUT_OF_RANGE), ("steps", RejectReason.UNKNOWN_UNIT),
        ("oxygen_saturation", RejectReason.INVALID_TYPE)]


def test_nan_fails_only_its_metric(ctx, rules) -> None:
    payload = orjson.dumps(wide(heart_rate="NAN")).replace(b'"NAN"', b"NaN")
    out = process_message(payload, ctx, rules)
    assert [r.metric for r in out.readings] == ["steps"]
    [dead] = out.dead_letters
    assert (dead.metric, dead.code) == ("heart_rate", RejectReason.INVALID_TYPE)


def test_metric_keys_match_like_metric_names(ctx, rules) -> None:
    out = process_message(orjson.dumps(wide(drop=("heart_rate",), Heart_Rate=70)), ctx, rules)
    assert sorted(r.metric for r in out.readings) == ["heart_rate", "steps"]


@pytest.mark.parametrize(("user_id", "same_as"), [(1, "1"), ("1", "1"), (0, "0"), (-7, "-7"),
                                                  (12345678901234567890, "12345678901234567890")])
def test_numeric_user_id_is_its_decimal_string(user_id, same_as, ctx, rules, key) -> None:
    out = process_message(orjson.dumps(wide(user_id=user_id)), ctx, rules)
    assert {r.user_key for r in out.readings} == {user_key(key, same_as)}


@pytest.mark.parametrize(("user_id", "code"), [
    (True, RejectReason.INVALID_TYPE), (1.5, RejectReason.INVALID_TYPE),
    (None, RejectReason.MISSING_FIELD), ("", RejectReason.INVALID_TYPE)])
def test_bad_user_id_rejects_every_metric(user_id, code, ctx, rules) -> None:
    out = process_message(orjson.dumps(wide(user_id=user_id)), ctx, rules)
    assert out.readings == []
    assert [d.code for d in out.dead_letters] == [code, code]
    assert all("user_id" in d.message for d in out.dead_letters)


@pytest.mark.parametrize(("drop", "fields", "code"), [
    (("timestamp",), {}, RejectReason.MISSING_FIELD),
    (("source",), {}, RejectReason.MISSING_FIELD),
    ((), {"device_id": 5}, RejectReason.INVALID_TYPE),
    ((), {"metadata": "x"}, RejectReason.INVALID_TYPE),
    ((), {"timestamp": "2024-05-01T11:30:00"}, RejectReason.NAIVE_TIMESTAMP),
    ((), {"timestamp": "2030-01-01T00:00:00Z"}, RejectReason.FUTURE_TIMESTAMP),
    ((), {"units": {"heart_rate": None}}, RejectReason.MISSING_FIELD),
    ((), {"units": {"heart_rate": 5}}, RejectReason.INVALID_TYPE),
    # The bounds on text apply to every form (streams.domain.text).
    ((), {"source": "s" * 65}, RejectReason.TEXT_TOO_LONG),
    ((), {"user_id": "u" * 257}, RejectReason.TEXT_TOO_LONG),
    ((), {"device_id": "d\u0007"}, RejectReason.CONTROL_CHARACTER),
    ((), {"event_id": "e" * 195}, RejectReason.TEXT_TOO_LONG),  # + ":heart_rate" passes 200
    ((), {"units": {"heart_rate": "b" * 65}}, RejectReason.TEXT_TOO_LONG),
    ((), {"timestamp": "1969-12-31T23:59:59Z"}, RejectReason.TIMESTAMP_OUT_OF_RANGE),
])
def test_shared_fields_are_judged_per_reading(drop, fields, code, ctx, rules) -> None:
    out = process_message(orjson.dumps(wide(drop=drop, **fields)), ctx, rules)
    expected = 1 if "units" in fields else 2  # units name one metric
    assert [d.code for d in out.dead_letters] == [code] * expected
    assert len(out.readings) == 2 - expected


@pytest.mark.parametrize("units", [[], "bpm", 3, True])
def test_units_not_an_object_fails_the_whole_message(units, ctx, rules) -> None:
    payload = orjson.dumps(wide(units=units))
    out = process_message(payload, ctx, rules)
    assert out.readings == []
    [dead] = out.dead_letters
    assert (dead.code, dead.payload, dead.metric) == (RejectReason.INVALID_TYPE, payload, None)


def test_more_metrics_than_an_envelope_may_hold_is_oversized(ctx, key) -> None:
    rules = Rules.default(key, max_batch_readings=2)
    assert len(process_message(orjson.dumps(wide()), ctx, rules).readings) == 2
    [dead] = process_message(orjson.dumps(wide(mood=1)), ctx, rules).dead_letters
    assert dead.code is RejectReason.OVERSIZED


def test_given_event_id_is_suffixed_with_the_metric(ctx, rules) -> None:
    out = process_message(orjson.dumps(wide(event_id="w-1")), ctx, rules)
    assert [r.event_id for r in out.readings] == ["w-1:heart_rate", "w-1:steps"]
    [dead, _] = process_message(orjson.dumps(wide(event_id=7)), ctx, rules).dead_letters
    assert dead.code is RejectReason.INVALID_TYPE and "event_id" in dead.message


def test_metadata_goes_to_every_reading(ctx, rules) -> None:
    out = process_message(orjson.dumps(wide(metadata={"fw": "2"}, device_id="d")), ctx, rules)
    # device_id is stored as its keyed pseudonym, like the user id
    device = rules.pseudonymise_device("d")
    assert [(r.metadata, r.device_id) for r in out.readings] == [({"fw": "2"}, device)] * 2


def test_a_metric_key_is_needed_and_metric_means_a_single_reading(ctx, rules) -> None:
    doc = {"user_id": "u", "mood": 3, "timestamp": TS, "source": "s"}
    out = process_message(orjson.dumps(doc), ctx, rules)
    [dead] = out.dead_letters
    assert dead.code is RejectReason.MISSING_FIELD and "'metric'" in dead.message
    single = {"user_id": "u", "metric": "steps", "value": 5, "unit": "steps", "heart_rate": 70,
              "timestamp": TS, "source": "s"}
    out = process_message(orjson.dumps(single), ctx, rules)
    assert [r.metric for r in out.readings] == ["steps"]  # extra keys of a single are ignored


def test_reserved_keys_are_never_metrics() -> None:
    assert RESERVED_KEYS.isdisjoint(DEFAULT_CATALOGUE)


def test_naive_timestamps_can_be_read_as_utc(ctx, rules) -> None:
    utc_rules = dataclasses.replace(rules, naive_timestamps="utc")
    out = process_message(orjson.dumps(wide(timestamp="2024-05-01T11:30:00")), ctx, utc_rules)
    assert [r.measured_at for r in out.readings] == [datetime(2024, 5, 1, 11, 30, tzinfo=UTC)] * 2
    aware = process_message(orjson.dumps(wide()), ctx, utc_rules)
    assert [r.event_id for r in out.readings] == [r.event_id for r in aware.readings]


def test_redelivery_gives_the_same_event_ids(rules) -> None:
    payload = orjson.dumps(wide())
    first = process_message(payload, MessageContext("t", 0, 1, datetime(2024, 5, 1, 12, tzinfo=UTC)), rules)
    again = process_message(payload, MessageContext("t", 2, 99, datetime(2024, 5, 2, 12, tzinfo=UTC)), rules)
    assert [r.event_id for r in first.readings] == [r.event_id for r in again.readings]


def test_an_interval_applies_to_every_metric_of_the_message(ctx, rules) -> None:
    doc = wide(timestamp="2024-05-01T10:00:00Z", timestamp_end="2024-05-01T11:00:00Z", statistic="average")
    out = process_message(orjson.dumps(doc), ctx, rules)
    assert [(r.metric, r.measured_until, r.statistic) for r in out.readings] == [
        (m, datetime(2024, 5, 1, 11, tzinfo=UTC), "average") for m in ("heart_rate", "steps")]
    [bad, _] = process_message(orjson.dumps(wide(statistic="mode")), ctx, rules).dead_letters
    assert bad.code is RejectReason.INVALID_TYPE and "statistic" in bad.message
