"""Open mHealth data points: for every supported schema version, what its published schema
allows (stored, converted) and forbids (dead-lettered with the JSON pointer).

The expectations below are written from the schema files of github.com/openmhealth/schemas
(schema/omh/<name>-<version>.json and the IEEE 1752 schema/ieee files they reference),
not from the implementation's tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from streams.domain import process_message, user_key
from streams.domain.omh import SUPPORTED_SCHEMA_IDS
from streams.errors import RejectReason

AT = "2024-05-01T10:00:00Z"
INSTANT = {"date_time": AT}
INTERVAL = {
    "time_interval": {"start_date_time": "2024-05-01T09:00:00Z", "end_date_time": "2024-05-01T10:00:00Z"}
}


def uv(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit}


# name -> the smallest valid body of its current version (older versions adapt it below)
BODY = {
    "heart-rate": {"heart_rate": uv(61, "beats/min"), "effective_time_frame": INSTANT},
    "step-count": {"step_count": uv(1200, "steps"), "effective_time_frame": INTERVAL},
    "blood-pressure": {
        "systolic_blood_pressure": uv(121, "mmHg"),
        "diastolic_blood_pressure": uv(79, "mmHg"),
        "effective_time_frame": INSTANT,
    },
    "body-weight": {"body_weight": uv(70, "kg"), "effective_time_frame": INSTANT},
    "body-temperature": {"body_temperature": uv(36.6, "C"), "effective_time_frame": INSTANT},
    "oxygen-saturation": {"oxygen_saturation": uv(97, "%"), "effective_time_frame": INSTANT},
    "respiratory-rate": {"respiratory_rate": uv(15, "breaths/min"), "effective_time_frame": INSTANT},
    "blood-glucose": {"blood_glucose": uv(5.5, "mmol/L"), "effective_time_frame": INSTANT},
    "sleep-duration": {"sleep_duration": uv(7.5, "h"), "effective_time_frame": INTERVAL},
    "calories-burned": {"kcal_burned": uv(250, "kcal"), "effective_time_frame": INTERVAL},
    "body-height": {"body_height": uv(70, "in"), "effective_time_frame": INSTANT},
    "body-mass-index": {"body_mass_index": uv(22.5, "kg/m^2"), "effective_time_frame": INSTANT},
    "body-fat-percentage": {"body_fat_percentage": uv(21, "%"), "effective_time_frame": INSTANT},
}
# (name, version, body changes) -> (metric, canonical value, canonical unit) of every reading
ALLOWED = [
    (
        "heart-rate",
        "1.0",
        {
            "effective_time_frame": None,
            "descriptive_statistic": "count",
            "temporal_relationship_to_physical_activity": "at rest",
            "user_notes": "ok",
        },
    ),
    ("heart-rate", "1.1", {"temporal_relationship_to_sleep": "on waking"}),
    ("heart-rate", "2.0", {"descriptive_statistic": "minimum"}),
    ("step-count", "2.0", {"step_count": 1200, "descriptive_statistic": "sum"}),
    ("step-count", "3.0", {}),
    ("blood-pressure", "3.0", {"body_posture": "sitting", "descriptive_statistic": "quartile deviation"}),
    ("blood-pressure", "3.1", {"temporal_relationship_to_physical_activity": "at rest"}),
    ("blood-pressure", "4.0", {"descriptive_statistic": "20th percentile", "body_posture": "lying down"}),
    ("body-weight", "2.0", {"body_weight": uv(154, "lb")}),
    ("body-weight", "3.0", {"body_weight": uv(70500, "g")}),
    ("body-temperature", "3.0", {"body_temperature": uv(98.6, "F"), "measurement_location": "oral"}),
    (
        "body-temperature",
        "4.0",
        {"body_temperature": uv(310.15, "K"), "temporal_relationship_to_sleep": "on waking"},
    ),
    (
        "oxygen-saturation",
        "1.0",
        {
            "effective_time_frame": None,
            "system": "peripheral",
            "supplemental_oxygen_flow_rate": uv(0, "LPM"),
            "measurement_method": "pulse oximetry",
        },
    ),
    (
        "oxygen-saturation",
        "2.0",
        {"system": "peripheral capillary", "supplemental_oxygen_flow_rate": uv(2, "L/min")},
    ),
    ("respiratory-rate", "1.0", {"effective_time_frame": None}),
    ("respiratory-rate", "2.0", {"temporal_relationship_to_physical_activity": "during exercise"}),
    (
        "blood-glucose",
        "3.0",
        {"specimen_source": "capillary blood", "temporal_relationship_to_meal": "fasting"},
    ),
    ("blood-glucose", "4.0", {"blood_glucose": uv(99, "mg/dL"), "descriptive_statistic": "average"}),
    ("sleep-duration", "1.0", {"effective_time_frame": INSTANT}),
    ("sleep-duration", "2.0", {"sleep_duration": uv(27000, "sec"), "descriptive_statistic": "median"}),
    ("calories-burned", "2.0", {"activity_name": "walking"}),
    ("calories-burned", "3.0", {"descriptive_statistic": "sum"}),
    ("body-height", "1.0", {"effective_time_frame": None, "body_height": uv(1.8, "m")}),
    ("body-height", "2.0", {"body_height": uv(172, "cm")}),
    ("body-mass-index", "2.0", {"effective_time_frame": None}),
    ("body-mass-index", "3.0", {}),
    ("body-fat-percentage", "1.0", {"effective_time_frame": None}),
    ("body-fat-percentage", "2.0", {}),
]
EXPECTED = {
    ("heart-rate", "1.0"): [("heart_rate", 61, "/min")],
    ("step-count", "2.0"): [("steps", 1200, "{steps}")],
    ("blood-pressure", "3.0"): [
        ("blood_pressure_systolic", 121, "mm[Hg]"),
        ("blood_pressure_diastolic", 79, "mm[Hg]"),
    ],
    ("body-weight", "2.0"): [("body_weight", 154 * 0.45359237, "kg")],  # lb -> kg
    ("body-weight", "3.0"): [("body_weight", 70.5, "kg")],
    ("body-temperature", "3.0"): [("body_temperature", 37.0, "Cel")],  # °F -> Cel
    ("body-temperature", "4.0"): [("body_temperature", 37.0, "Cel")],
    ("blood-glucose", "3.0"): [("blood_glucose", 5.5 * 18.016, "mg/dL")],
    ("sleep-duration", "1.0"): [("sleep_duration", 450, "min")],  # hours -> min
    ("sleep-duration", "2.0"): [("sleep_duration", 450, "min")],
    ("calories-burned", "2.0"): [("active_energy", 250, "kcal")],
    ("body-height", "1.0"): [("body_height", 180, "cm")],
    ("body-height", "2.0"): [("body_height", 172, "cm")],
    ("body-mass-index", "3.0"): [("body_mass_index", 22.5, "kg/m2")],
    ("body-fat-percentage", "2.0"): [("body_fat_percentage", 21, "%")],
}
# (name, version, body changes, JSON pointer of the first violation)
FORBIDDEN = [
    ("heart-rate", "1.0", {"heart_rate": uv(61, "bpm")}, "/body/heart_rate/unit"),
    (
        "heart-rate",
        "1.1",
        {"temporal_relationship_to_sleep": "asleep"},
        "/body/temporal_relationship_to_sleep",
    ),
    ("heart-rate", "2.0", {"effective_time_frame": None}, "/body/effective_time_frame"),
    ("heart-rate", "2.0", {"heart_rate": {"unit": "beats/min"}}, "/body/heart_rate/value"),
    ("step-count", "2.0", {}, "/body/step_count"),  # 2.0: a bare number, not a unit-value
    (
        "step-count",
        "2.0",
        {"step_count": 10, "descriptive_statistic": "count"},
        "/body/descriptive_statistic",
    ),
    ("step-count", "3.0", {"effective_time_frame": INSTANT}, "/body/effective_time_frame/time_interval"),
    ("step-count", "3.0", {"step_count": 1200}, "/body/step_count"),
    ("blood-pressure", "3.0", {"body_posture": "kneeling"}, "/body/body_posture"),
    ("blood-pressure", "3.0", {"descriptive_statistic": "20th percentile"}, "/body/descriptive_statistic"),
    (
        "blood-pressure",
        "3.1",
        {"temporal_relationship_to_physical_activity": "asleep"},
        "/body/temporal_relationship_to_physical_activity",
    ),
    ("blood-pressure", "4.0", {"diastolic_blood_pressure": None}, "/body/diastolic_blood_pressure"),
    (
        "blood-pressure",
        "4.0",
        {"effective_time_frame": {"time_interval": {"date": "2024-05-01", "part_of_day": "morning"}}},
        "/body/effective_time_frame/time_interval",
    ),
    ("body-weight", "2.0", {"body_weight": uv(11, "stone")}, "/body/body_weight/unit"),
    ("body-weight", "3.0", {"effective_time_frame": None}, "/body/effective_time_frame"),
    ("body-temperature", "3.0", {"measurement_location": "ear"}, "/body/measurement_location"),
    ("body-temperature", "4.0", {"body_temperature": uv(37, "Cel")}, "/body/body_temperature/unit"),
    ("oxygen-saturation", "1.0", {"pulse": 60}, "/body/pulse"),  # additionalProperties: false
    (
        "oxygen-saturation",
        "1.0",
        {"supplemental_oxygen_flow_rate": uv(2, "L/min")},
        "/body/supplemental_oxygen_flow_rate/unit",
    ),
    ("oxygen-saturation", "2.0", {"system": "peripheral"}, "/body/system"),
    ("respiratory-rate", "1.0", {"respiratory_rate": uv(15, "/min")}, "/body/respiratory_rate/unit"),
    ("respiratory-rate", "2.0", {"effective_time_frame": None}, "/body/effective_time_frame"),
    ("blood-glucose", "3.0", {"specimen_source": "blood"}, "/body/specimen_source"),
    (
        "blood-glucose",
        "4.0",
        {"temporal_relationship_to_meal": "lunch"},
        "/body/temporal_relationship_to_meal",
    ),
    ("sleep-duration", "1.0", {"sleep_duration": uv(1, "d")}, "/body/sleep_duration/unit"),
    ("sleep-duration", "2.0", {"effective_time_frame": INSTANT}, "/body/effective_time_frame/time_interval"),
    ("calories-burned", "2.0", {"effective_time_frame": INSTANT}, "/body/effective_time_frame/time_interval"),
    ("calories-burned", "3.0", {"kcal_burned": uv(250, "Cal")}, "/body/kcal_burned/unit"),
    ("body-height", "1.0", {"body_height": uv(70, "inch")}, "/body/body_height/unit"),
    ("body-height", "2.0", {"effective_time_frame": None}, "/body/effective_time_frame"),
    ("body-mass-index", "2.0", {"body_mass_index": uv(22.5, "kg/m2")}, "/body/body_mass_index/unit"),
    ("body-mass-index", "3.0", {"effective_time_frame": None}, "/body/effective_time_frame"),
    (
        "body-fat-percentage",
        "1.0",
        {"body_fat_percentage": uv(21, "percent")},
        "/body/body_fat_percentage/unit",
    ),
    ("body-fat-percentage", "2.0", {"effective_time_frame": None}, "/body/effective_time_frame"),
]


def data_point(name: str, version: str, changes: dict[str, Any] | None = None, **header: Any) -> dict:
    body = {**BODY[name], **(changes or {})}
    body = {k: v for k, v in body.items() if v is not None}
    head = {
        "id": f"dp-{name}-{version}",
        "creation_date_time": "2024-05-01T11:00:00Z",
        "schema_id": {"namespace": "omh", "name": name, "version": version},
        "user_id": "omh-user-1",
        **header,
    }
    return {"header": head, "body": body}


def judge(doc: Any, ctx, rules, key: bytes | None = None):  # type: ignore[no-untyped-def]
    return process_message(orjson.dumps(doc), ctx, rules, key)


def test_every_supported_version_has_allowed_and_forbidden_cases() -> None:
    assert {f"omh:{n}:{v}" for n, v, _ in ALLOWED} == set(SUPPORTED_SCHEMA_IDS)
    assert {f"omh:{n}:{v}" for n, v, _, _ in FORBIDDEN} == set(SUPPORTED_SCHEMA_IDS)
    assert len(SUPPORTED_SCHEMA_IDS) == 28


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
            RejectReason.OUT_OF_RANGE,
        ),  # the end before the start
        (
            {"time_interval": {"start_date_time": "2024-05-01T11:00:00Z", "duration": uv(2, "h")}},
            RejectReason.FUTURE_TIMESTAMP,
        ),  # ends an hour after "now"
        ({"time_interval": {"date": "2024-05-01", "part_of_day": "morning"}}, RejectReason.NAIVE_TIMESTAMP),
        (
            {"time_interval": {"start_date_time": "2024-05-01T09:00:00", "duration": uv(1, "h")}},
            RejectReason.NAIVE_TIMESTAMP,
        ),
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
        "body-mass-index", "2.0", {"effective_time_frame": None}, acquisition_provenance=provenance
    )
    [r] = judge(doc, ctx, rules).readings
    assert r.measured_at == datetime(2024, 5, 1, 7, tzinfo=UTC) and r.source == "Withings"
    [r] = judge(data_point("body-mass-index", "2.0", {"effective_time_frame": None}), ctx, rules).readings
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
        ({"user_id": 42}, RejectReason.SCHEMA_VIOLATION, "/header/user_id"),
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
