"""Open mHealth data points: for every supported schema version, what its published schema
allows (stored, converted) and forbids (dead-lettered with the JSON pointer). The cases are
in tests/omh_examples.py (written from the published schema files)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from omh_examples import ALLOWED, AT, EXPECTED, FORBIDDEN, INTERVAL, data_point, uv

from streams.domain import process_message, user_key
from streams.domain.omh import SUPPORTED_SCHEMA_IDS
from streams.errors import RejectReason


def judge(doc: Any, ctx, rules, key: bytes | None = None):  # type: ignore[no-untyped-def]
    return process_message(orjson.dumps(doc), ctx, rules, key)


def test_every_supported_version_has_allowed_and_forbidden_cases() -> None:
    assert {f"omh:{n}:{v}" for n, v, _ in ALLOWED} == set(SUPPORTED_SCHEMA_IDS)
    assert {f"omh:{n}:{v}" for n, v, _, _ in FORBIDDEN} == set(SUPPORTED_SCHEMA_IDS)
    assert len(SUPPORTED_SCHEMA_IDS) == 37


@pytest.mark.parametrize(
    ("name", "version", "changes"), ALLOWED, ids=lambda v: v if isinstance(v, str) else ""
)
def test_published_schema_allows(name, version, changes, ctx, rules) -> None:
    out = judge(data_point(name, version, changes), ctx, rules)
    assert out.dead_letters == [], out.dead_letters
    expected = EXPECTED.get((name, version))
    if expected:
        got = [(r.metric, r.value, r.unit) for r in out.readings]
        assert [(m, u) for m, _, u in got] == [(m, u) for m, _, u in expected]
        assert [v for _, v, _ in got] == pytest.approx([v for _, v, _ in expected])
    for r in out.readings:
        assert r.metadata["omh_schema"] == f"omh:{name}:{version}"
        assert r.user_key == user_key(rules.pseudonym_key, "omh-user-1")
        assert r.source == "omh"


@pytest.mark.parametrize(
    ("name", "version", "changes", "pointer"), FORBIDDEN, ids=lambda v: v if isinstance(v, str) else ""
)
def test_published_schema_forbids(name, version, changes, pointer, ctx, rules) -> None:
    out = judge(data_point(name, version, changes), ctx, rules)
    assert out.readings == []
    [dead] = out.dead_letters
    assert dead.code is RejectReason.SCHEMA_VIOLATION, dead.message
    assert dead.message.split(":")[0] == pointer


def test_blood_pressure_gives_two_readings_with_derived_event_ids(ctx, rules) -> None:
    out = judge(data_point("blood-pressure", "4.0"), ctx, rules)
    assert [(r.event_id, r.metric) for r in out.readings] == [
        ("dp-blood-pressure-4.0#systolic", "blood_pressure_systolic"),
        ("dp-blood-pressure-4.0#diastolic", "blood_pressure_diastolic"),
    ]


def test_instant_and_descriptive_statistic(ctx, rules) -> None:
    [r] = judge(data_point("heart-rate", "2.0", {"descriptive_statistic": "minimum"}), ctx, rules).readings
    assert r.measured_at == datetime(2024, 5, 1, 10, tzinfo=UTC) and r.measured_until is None
    assert r.statistic == "minimum" and r.event_id == "dp-heart-rate-2.0"


@pytest.mark.parametrize(
    ("interval", "start", "end"),
    [
        ({"start_date_time": "2024-05-01T09:00:00Z", "end_date_time": "2024-05-01T10:00:00+01:00"}, 9, 9),
        ({"start_date_time": "2024-05-01T08:00:00Z", "duration": uv(90, "min")}, 8, 9.5),
        ({"end_date_time": "2024-05-01T10:00:00Z", "duration": uv(2, "h")}, 8, 10),
        ({"start_date_time": "2024-05-01T01:00:00Z", "duration": uv(7200, "sec")}, 1, 3),
    ],
)
def test_interval_forms(interval, start, end, ctx, rules) -> None:
    [r] = judge(
        data_point("step-count", "3.0", {"effective_time_frame": {"time_interval": interval}}), ctx, rules
    ).readings
    day = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
    assert (r.measured_at.timestamp() - day) / 3600 == start
    assert (r.measured_until.timestamp() - day) / 3600 == end


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (
            {
                "time_interval": {
                    "start_date_time": "2024-05-01T10:00:00Z",
                    "end_date_time": "2024-05-01T09:00:00Z",
                }
            },
            RejectReason.REVERSED_INTERVAL,
        ),  # the end before the start: valid by the schema, never a true measurement
        (
            {"time_interval": {"start_date_time": "2024-05-01T11:00:00Z", "duration": uv(2, "h")}},
            RejectReason.FUTURE_TIMESTAMP,
        ),  # ends an hour after "now"
        ({"time_interval": {"date": "2024-05-01", "part_of_day": "morning"}}, RejectReason.NAIVE_TIMESTAMP),
        (
            {"time_interval": {"start_date_time": "2024-05-01T09:00:00", "duration": uv(1, "h")}},
            RejectReason.SCHEMA_VIOLATION,
        ),  # an RFC 3339 date-time (the schema's format) has an offset
        (
            {"time_interval": {"start_date_time": "2024-05-01T09:00:00Z", "duration": uv(1, "Mo")}},
            RejectReason.UNKNOWN_UNIT,
        ),
        (
            {
                "time_interval": {
                    "start_date_time": "2024-05-01T09:00:00Z",
                    "end_date_time": "2024-05-01T10:00:00Z",
                    "duration": uv(1, "h"),
                }
            },
            RejectReason.SCHEMA_VIOLATION,
        ),  # matches two forms
        ({"date_time": AT, **INTERVAL}, RejectReason.SCHEMA_VIOLATION),  # both time-frame forms
        ({"time_interval": {"date": "May 1st", "part_of_day": "morning"}}, RejectReason.SCHEMA_VIOLATION),
    ],
)
def test_bad_time_frames(frame, code, ctx, rules) -> None:
    out = judge(data_point("calories-burned", "2.0", {"effective_time_frame": frame}), ctx, rules)
    assert [d.code for d in out.dead_letters] == [code], out.dead_letters


def test_a_late_interval_is_flagged_by_its_end(ctx, rules) -> None:
    old = {"time_interval": {"start_date_time": "2024-04-01T00:00:00Z", "duration": uv(1, "d")}}
    recent = {"time_interval": {"start_date_time": "2024-04-01T00:00:00Z", "end_date_time": AT}}
    [late] = judge(data_point("step-count", "3.0", {"effective_time_frame": old}), ctx, rules).readings
    [fresh] = judge(data_point("step-count", "3.0", {"effective_time_frame": recent}), ctx, rules).readings
    assert "late" in late.quality_flags and "late" not in fresh.quality_flags


def test_optional_time_frame_falls_back_to_the_source_creation_time(ctx, rules) -> None:
    provenance = {
        "source_name": "Withings",
        "source_creation_date_time": "2024-05-01T07:00:00Z",
        "modality": "sensed",
    }
    doc = data_point(
        "body-mass-index", "1.0", {"effective_time_frame": None, "body_mass_index": uv(22.5, "kg/m2")},
        acquisition_provenance=provenance
    )
    [r] = judge(doc, ctx, rules).readings
    assert r.measured_at == datetime(2024, 5, 1, 7, tzinfo=UTC) and r.source == "Withings"
    [r] = judge(data_point("heart-rate", "1.0", {"effective_time_frame": None}), ctx, rules).readings
    assert r.measured_at == datetime(2024, 5, 1, 11, tzinfo=UTC)  # header creation_date_time


def test_user_is_the_header_user_else_the_message_key(ctx, rules) -> None:
    doc = data_point("heart-rate", "2.0")
    del doc["header"]["user_id"]
    [r] = judge(doc, ctx, rules, key=b"key-user").readings
    assert r.user_key == user_key(rules.pseudonym_key, "key-user")
    [dead] = judge(doc, ctx, rules).dead_letters
    assert dead.code is RejectReason.MISSING_FIELD


@pytest.mark.parametrize(
    ("header", "code", "pointer"),
    [
        (
            {"schema_id": {"namespace": "omh", "name": "mood", "version": "1.0"}},
            RejectReason.UNSUPPORTED_SCHEMA,
            None,
        ),
        (
            {"schema_id": {"namespace": "omh", "name": "heart-rate", "version": "3.0"}},
            RejectReason.UNSUPPORTED_SCHEMA,
            None,
        ),
        (
            {"schema_id": {"namespace": "acme", "name": "heart-rate", "version": "2.0"}},
            RejectReason.UNSUPPORTED_SCHEMA,
            None,
        ),
        (
            {"schema_id": {"namespace": "omh", "name": "heart-rate"}},
            RejectReason.SCHEMA_VIOLATION,
            "/header/schema_id/version",
        ),
        ({"id": None}, RejectReason.SCHEMA_VIOLATION, "/header/id"),
        ({"creation_date_time": None}, RejectReason.SCHEMA_VIOLATION, "/header/creation_date_time"),
        ({"user_id": True}, RejectReason.SCHEMA_VIOLATION, "/header/user_id"),  # 42 is "42"
        (
            {"acquisition_provenance": {"modality": "sensed"}},
            RejectReason.SCHEMA_VIOLATION,
            "/header/acquisition_provenance/source_name",
        ),
        (
            {"acquisition_provenance": {"source_name": "x", "modality": "guessed"}},
            RejectReason.SCHEMA_VIOLATION,
            "/header/acquisition_provenance/modality",
        ),
    ],
)
def test_header_rules(header, code, pointer, ctx, rules) -> None:
    doc = data_point("heart-rate", "2.0")
    doc["header"] = {k: v for k, v in {**doc["header"], **header}.items() if v is not None}
    [dead] = judge(doc, ctx, rules).dead_letters
    assert dead.code is code
    if pointer:
        assert dead.message.startswith(pointer + ":")


def test_uuid_may_stand_for_id(ctx, rules) -> None:
    doc = data_point("heart-rate", "2.0")
    doc["header"]["uuid"] = doc["header"].pop("id")
    [r] = judge(doc, ctx, rules).readings
    assert r.event_id == "dp-heart-rate-2.0"


def test_common_checks_still_apply(ctx, rules) -> None:
    impossible = judge(data_point("heart-rate", "2.0", {"heart_rate": uv(400, "beats/min")}), ctx, rules)
    assert [d.code for d in impossible.dead_letters] == [RejectReason.OUT_OF_RANGE]
    # One impossible half of a blood pressure does not sink the other.
    half = judge(
        data_point("blood-pressure", "4.0", {"systolic_blood_pressure": uv(900, "mmHg")}), ctx, rules
    )
    assert [r.metric for r in half.readings] == ["blood_pressure_diastolic"]
    assert [(d.code, d.metric) for d in half.dead_letters] == [
        (RejectReason.OUT_OF_RANGE, "blood_pressure_systolic")
    ]
    # Schema-valid but not a unit we convert: unknown_unit, as for any other form.
    tons = judge(data_point("body-weight", "3.0", {"body_weight": uv(1, "Ton")}), ctx, rules)
    assert [d.code for d in tons.dead_letters] == [RejectReason.UNKNOWN_UNIT]


def test_dead_letter_messages_carry_no_values_or_ids(ctx, rules) -> None:
    doc = data_point("heart-rate", "2.0", {"heart_rate": uv(61.98765, "bpm")}, user_id="PHI-jane")
    [dead] = judge(doc, ctx, rules).dead_letters
    assert "61.98765" not in dead.message and "PHI-jane" not in dead.message and "bpm" not in dead.message


@pytest.mark.parametrize(
    ("date_time", "stored_at"),
    [
        ("2024-05-01t10:00:00z", datetime(2024, 5, 1, 10, tzinfo=UTC)),  # RFC 3339 allows lower case
        ("2024-05-01T12:00:00.5+02:00", datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-01T10:00:00+0200", None),  # the offset needs its colon
        ("2024-05-01 10:00:00Z", None),  # a space is ISO 8601's, not RFC 3339's
        ("2024-02-30T10:00:00Z", None),  # no such day
        ("2024-05-01T10:00:00", None),  # no offset
    ],
)
def test_date_times_are_judged_as_rfc_3339_says(date_time, stored_at, ctx, rules) -> None:
    body_changes = {"effective_time_frame": {"date_time": date_time}}
    out = judge(data_point("heart-rate", "2.0", body_changes), ctx, rules)
    if stored_at is None:
        assert [d.code for d in out.dead_letters] == [RejectReason.SCHEMA_VIOLATION]
        assert out.dead_letters[0].message.startswith("/body/effective_time_frame/date_time")
    else:
        assert [r.measured_at for r in out.readings] == [stored_at], out.dead_letters
