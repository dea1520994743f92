"""The Apple Health reader on the real sample export and on crafted files with every trap.

Expected values come from the files themselves read independently (plain ``xml.etree`` on
the sample; the crafted files' own numbers), never from the reader.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from import_files import FIXTURES, SECRETS, apple_export, record

from streams.errors import ImportFileError, ImportRefused
from streams.importers.apple import read_apple
from streams.importers.base import ImportContext, Skipped

CTX = ImportContext(user_id="u-apple")


def _read(data: bytes) -> tuple[list[dict], Counter[str]]:
    readings, skipped = [], Counter()
    for item in read_apple(io.BytesIO(data), "export.xml", CTX):
        if isinstance(item, Skipped):
            skipped[item.kind] += item.count
        else:
            readings.append(item)
    return readings, skipped


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_the_sample_export_gives_one_reading_per_top_level_record_of_a_known_type() -> None:
    data = (FIXTURES / "apple" / "export.xml").read_bytes()
    root = ET.fromstring(data)  # the sample has no DTD: a plain parser reads it
    by_type = Counter(r.get("type") for r in root if r.tag == "Record")
    readings, skipped = _read(data)
    assert Counter(r["metric"] for r in readings) == {
        "body_mass_index": by_type["HKQuantityTypeIdentifierBodyMassIndex"],
        "heart_rate": by_type["HKQuantityTypeIdentifierHeartRate"],
    }
    assert skipped["workout"] == sum(1 for e in root if e.tag == "Workout")
    assert skipped["activity_summary"] == sum(1 for e in root if e.tag == "ActivitySummary")
    assert skipped["workout_route_location"] == len(root.findall(".//Location"))
    bmi = next(r for r in readings if r["metric"] == "body_mass_index")
    source = next(r for r in root if r.get("type") == "HKQuantityTypeIdentifierBodyMassIndex")
    assert (bmi["value"], bmi["unit"]) == (float(source.get("value")), "kg/m2")  # Apple's unit is "count"
    assert _instant(bmi["timestamp"]) == datetime.strptime(source.get("startDate"), "%Y-%m-%d %H:%M:%S %z")
    text = orjson.dumps(readings).decode()
    for secret in ("1990-02-02", "12345", "withings-bd2", "37.7777", "-122.426", "Simon", "0x282a45810"):
        assert secret not in text


def test_an_ios16_export_with_a_broken_dtd_and_control_characters_is_read() -> None:
    data = apple_export(
        record("HeartRate", "61", "count/min", "2024-11-03 01:30:00 -0400")
        + record("HeartRate", "64", "count/min", "2024-11-03 01:30:00 -0500")
    )
    with pytest.raises(ET.ParseError):
        ET.fromstring(data)  # what every plain parser does with it
    with pytest.raises(ET.ParseError):  # the control characters alone break it too
        ET.fromstring(data.replace(data[data.index(b"<!DOCTYPE") : data.index(b"]>") + 2], b""))
    readings, _ = _read(data)
    assert [r["value"] for r in readings] == [61.0, 64.0]
    # one wall time, two instants an hour apart: the offsets are kept exactly
    assert [_instant(r["timestamp"]) for r in readings] == [
        datetime(2024, 11, 3, 5, 30, tzinfo=UTC),
        datetime(2024, 11, 3, 6, 30, tzinfo=UTC),
    ]
    assert readings[0]["source"] == "Apple Watch"  # the owner's name and the \x0b are gone
    assert readings[0]["device_id"] == "Apple Inc. Watch Watch6,2"


@pytest.mark.parametrize(
    ("kind", "value", "unit", "metric", "expected"),
    [
        ("BodyFatPercentage", "0.223", "%", "body_fat_percentage", (22.3, "%")),
        ("OxygenSaturation", "0.97", "%", "oxygen_saturation", (97.0, "%")),
        ("BodyMassIndex", "22.53", "count", "body_mass_index", (22.53, "kg/m2")),
        (
            "BloodGlucose",
            "5.5",
            "mmol&lt;180.1558800000541&gt;/L",
            "blood_glucose",
            (5.5 * 18.01558800000541, "mg/dL"),
        ),
        ("BloodGlucose", "99", "mg/dL", "blood_glucose", (99.0, "mg/dL")),
        ("BodyTemperature", "98.6", "degF", "body_temperature", (98.6, "[degF]")),
        ("BodyMass", "154.3", "lb", "body_weight", (154.3, "lb")),
        ("Height", "5.33333", "ft", "body_height", (5.33333, "ft")),
        ("RespiratoryRate", "14", "count/min", "respiratory_rate", (14.0, "/min")),
    ],
)
def test_units_as_apple_writes_them(
    kind: str, value: str, unit: str, metric: str, expected: tuple[float, str]
) -> None:
    readings, _ = _read(apple_export(record(kind, value, unit, "2024-05-01 08:00:00 +0200")))
    assert len(readings) == 1 and readings[0]["metric"] == metric
    assert readings[0]["value"] == pytest.approx(expected[0], rel=1e-9)
    assert readings[0]["unit"] == expected[1]


def test_steps_and_energy_are_intervals() -> None:
    readings, _ = _read(
        apple_export(
            record("StepCount", "412", "count", "2024-05-01 08:00:00 +0200", "2024-05-01 08:10:00 +0200")
            + record(
                "ActiveEnergyBurned", "12.5", "kcal", "2024-05-01 08:00:00 +0200", "2024-05-01 08:10:00 +0200"
            )
        )
    )
    assert [(r["metric"], r["value"], r["unit"]) for r in readings] == [
        ("steps", 412.0, "{steps}"),
        ("active_energy", 12.5, "kcal"),
    ]
    assert all(
        _instant(r["timestamp_end"]) - _instant(r["timestamp"])
        == (timedelta(minutes=10))
        for r in readings
    )


def test_resting_heart_rate_is_a_daily_summary_not_a_sample() -> None:
    readings, _ = _read(
        apple_export(
            record(
                "RestingHeartRate",
                "54",
                "count/min",
                "2024-05-01 00:00:00 +0200",
                "2024-05-01 23:59:59 +0200",
            )
            + record("HeartRate", "80", "count/min", "2024-05-01 12:00:00 +0200")
        )
    )
    resting, sample = readings
    assert (resting["metric"], resting["statistic"]) == ("resting_heart_rate", "average")
    assert resting["value"] == 54.0
    assert "statistic" not in sample


def test_blood_pressure_comes_from_its_correlation_once_and_paired() -> None:
    start = "2024-05-01 07:00:00 +0200"
    sys_rec = record("BloodPressureSystolic", "121", "mmHg", start, device=None, source="Omron")
    dia_rec = record("BloodPressureDiastolic", "79", "mmHg", start, device=None, source="Omron")
    body = (
        sys_rec + dia_rec + '<Correlation type="HKCorrelationTypeIdentifierBloodPressure" '
        f'sourceName="Omron" startDate="{start}" endDate="{start}">' + sys_rec + dia_rec + "</Correlation>\n"
    )
    readings, skipped = _read(apple_export(body))
    assert sorted((r["metric"], r["value"], r["unit"]) for r in readings) == [
        ("blood_pressure_diastolic", 79.0, "mm[Hg]"),
        ("blood_pressure_systolic", 121.0, "mm[Hg]"),
    ]
    assert readings[0]["timestamp"] == readings[1]["timestamp"] == "2024-05-01T07:00:00+02:00"
    assert skipped["blood_pressure_record"] == 2  # the top-level copies


def test_sleep_counts_asleep_stages_only() -> None:
    kind = "HKCategoryTypeIdentifierSleepAnalysis"
    body = (
        record(
            kind,
            "HKCategoryValueSleepAnalysisInBed",
            "",
            "2024-05-01 23:00:00 +0200",
            "2024-05-02 07:00:00 +0200",
        )
        + record(
            kind,
            "HKCategoryValueSleepAnalysisAsleepCore",
            "",
            "2024-05-01 23:30:00 +0200",
            "2024-05-02 01:00:00 +0200",
        )
        + record(
            kind,
            "HKCategoryValueSleepAnalysisAwake",
            "",
            "2024-05-02 01:00:00 +0200",
            "2024-05-02 01:10:00 +0200",
        )
        + record(
            kind,
            "HKCategoryValueSleepAnalysisAsleepREM",
            "",
            "2024-05-02 01:10:00 +0200",
            "2024-05-02 01:40:00 +0200",
        )
    )
    readings, skipped = _read(apple_export(body))
    assert [(r["metric"], r["value"], r["unit"], r["metadata"]["sleep_stage"]) for r in readings] == [
        ("sleep_duration", 90.0, "min", "core"),
        ("sleep_duration", 30.0, "min", "rem"),
    ]
    assert skipped["sleep_in_bed"] == 1 and skipped["sleep_awake"] == 1


def test_identifying_data_never_leaves_the_reader() -> None:
    metadata = (
        '<MetadataEntry key="Withings User Identifier" value="WITHINGS-ACC-5550123"/>'
        '<MetadataEntry key="HKWasUserEntered" value="0"/>'
    )
    workout = (
        '<Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="5" durationUnit="min" '
        'sourceName="Henriette’s iPhone" startDate="2024-05-01 07:00:00 +0200" '
        'endDate="2024-05-01 07:05:00 +0200"><WorkoutRoute sourceName="Henriette’s iPhone">'
        '<Location date="2024-05-01 07:00:00 +0200" latitude="37.8212" longitude="-122.4786"/>'
        "</WorkoutRoute></Workout>\n"
    )
    data = apple_export(
        record("BodyMass", "70", "kg", "2024-05-01 07:00:00 +0200", metadata=metadata) + workout
    )
    readings, skipped = _read(data)
    text = orjson.dumps(readings).decode()
    planted = [s for s in SECRETS if s.encode() in data]
    assert len(planted) >= 6  # birth date, account id, owner's name, coordinates, device local id
    for secret in planted:
        assert secret not in text
    assert readings[0]["metadata"] == {"HKWasUserEntered": "0"}
    assert skipped["me"] == 1 and skipped["metadata_entry"] == 1 and skipped["workout_route"] == 1


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE HealthData [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n',
        '<!DOCTYPE HealthData [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n',
    ],
)
def test_entity_declarations_are_refused(doctype: str) -> None:
    data = apple_export(record("HeartRate", "&b;", "count/min", "2024-05-01 08:00:00 +0200"), doctype=doctype)
    with pytest.raises(ImportRefused) as refused:
        _read(data)
    assert refused.value.kind == "xml_bomb"


def test_an_external_dtd_is_never_fetched_and_undeclared_entities_fail() -> None:
    data = apple_export(
        record("HeartRate", "70", "count/min", "2024-05-01 08:00:00 +0200"),
        doctype='<!DOCTYPE HealthData SYSTEM "http://127.0.0.1:9/never.dtd">\n',
    )
    assert [r["value"] for r in _read(data)[0]] == [70.0]
    with pytest.raises(ImportFileError, match=r"XML broken at line \d+"):
        _read(apple_export(record("HeartRate", "&undeclared;", "count/min", "2024-05-01 08:00:00 +0200")))


def test_a_truncated_export_names_where_it_broke() -> None:
    data = apple_export(record("HeartRate", "70", "count/min", "2024-05-01 08:00:00 +0200") * 3)
    with pytest.raises(ImportFileError, match=r"XML broken at line \d+"):
        _read(data[: len(data) - 40])
