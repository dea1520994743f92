"""The Dexcom Clarity reader on the real G6 export and on crafted files with every trap.

Expected values come from Python's ``csv`` module reading the same file, never from the reader.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest
from import_files import FIXTURES, SECRETS, dexcom_csv

from streams.errors import ImportFileError
from streams.importers.base import ImportContext, Skipped
from streams.importers.dexcom import read_dexcom

NEW_YORK = ZoneInfo("America/New_York")


def _read(data: bytes, zone: ZoneInfo | None = NEW_YORK) -> tuple[list[dict], Counter[str]]:
    readings, skipped = [], Counter()
    for item in read_dexcom(io.BytesIO(data), "clarity.csv", ImportContext("u-cgm", zone=zone)):
        if isinstance(item, Skipped):
            skipped[item.kind] += item.count
        else:
            readings.append(item)
    return readings, skipped


def test_the_g6_export_gives_every_egv_row_in_the_zone_given() -> None:
    data = (FIXTURES / "dexcom" / "clarity-export-g6.csv").read_bytes()
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    egv = [r for r in rows if r["Event Type"] == "EGV"]
    chicago = ZoneInfo("America/Chicago")
    readings, skipped = _read(data, chicago)
    assert len(readings) == len(egv) == 2148
    assert [r["value"] for r in readings] == [float(r["Glucose Value (mg/dL)"]) for r in egv]
    assert {r["unit"] for r in readings} == {"mg/dL"} and {r["metric"] for r in readings} == {"blood_glucose"}
    first = datetime.fromisoformat(egv[0]["Timestamp (YYYY-MM-DDThh:mm:ss)"]).replace(tzinfo=chicago)
    assert datetime.fromisoformat(readings[0]["timestamp"]) == first
    assert skipped == Counter(
        {"dexcom_alert": sum(r["Event Type"] == "Alert" for r in rows), "patient_info": 3, "device_info": 1}
    )
    text = orjson.dumps(readings).decode()
    assert "Joe" not in text and "Schmoe" not in text and "1/1/1970" not in text


@pytest.mark.parametrize(("unit", "low", "high"), [("mg/dL", 40.0, 400.0), ("mmol/L", 2.2, 22.2)])
def test_low_and_high_are_censored_at_the_sensor_bounds(unit: str, low: float, high: float) -> None:
    readings, _ = _read(
        dexcom_csv(
            [
                ("2024-05-01T08:00:00", "EGV", "Low"),
                ("2024-05-01T08:05:00", "EGV", "5.6"),
                ("2024-05-01T08:10:00", "EGV", "High"),
            ],
            unit=unit,
        )
    )
    assert [(r["value"], r["unit"], r.get("metadata")) for r in readings] == [
        (low, unit, {"censored": "below"}),
        (5.6, unit, None),
        (high, unit, {"censored": "above"}),
    ]


def _fall_back_rows() -> list[tuple[str, str, str]]:
    """Every 5 minutes from 00:50 to 02:10 New York time on 2024-11-03, as the receiver shows
    them: 01:00-01:55 twice (EDT, then EST)."""
    walls = [f"00:{50 + 5 * i:02d}" for i in range(2)]
    walls += [f"01:{5 * i:02d}" for i in range(12)]  # 01:00-01:55 EDT
    walls += [f"01:{5 * i:02d}" for i in range(12)]  # 01:00-01:55 again, EST
    walls += [f"02:{5 * i:02d}" for i in range(3)]
    return [(f"2024-11-03T{w}:00", "EGV", str(100 + i)) for i, w in enumerate(walls)]


@pytest.mark.parametrize("new", [False, True], ids=["row-order", "transmitter-time"])
def test_naive_times_across_the_autumn_change_stay_five_minutes_apart(new: bool) -> None:
    rows = _fall_back_rows()
    readings, _ = _read(dexcom_csv(rows, new=new))
    instants = [datetime.fromisoformat(r["timestamp"]).astimezone(UTC) for r in readings]
    start = datetime(2024, 11, 3, 4, 50, tzinfo=UTC)  # 00:50 EDT
    assert instants == [start + timedelta(minutes=5 * i) for i in range(len(rows))]


def test_a_newer_quoted_export_with_transmitter_columns_is_read() -> None:
    readings, skipped = _read(
        dexcom_csv(
            [
                ("2024-05-01T08:00:00", "EGV", "110"),
                ("2024-05-01T08:03:00", "Calibration", "108"),
                ("2024-05-01T08:05:00", "Insulin", ""),
            ],
            new=True,
        )
    )
    assert [(r["value"], r["timestamp"]) for r in readings] == [(110.0, "2024-05-01T08:00:00-04:00")]
    assert skipped["dexcom_calibration"] == 1 and skipped["dexcom_insulin"] == 1


def test_naive_times_without_a_zone_are_refused_not_read_as_utc() -> None:
    with pytest.raises(ImportFileError, match="--zone"):
        _read(dexcom_csv([("2024-05-01T08:00:00", "EGV", "110")]), zone=None)


def test_patient_rows_never_leave_the_reader() -> None:
    data = dexcom_csv([("2024-05-01T08:00:00", "EGV", "110")], new=True)
    readings, skipped = _read(data)
    text = orjson.dumps(readings).decode()
    planted = [s for s in SECRETS if s.encode() in data]
    assert planted == ["Henriette", "Vanderbilt-Okafor", "3/17/1961"]
    assert not [s for s in planted if s in text]
    assert skipped["patient_info"] == 3


def test_a_clinics_patient_identifier_row_is_counted_as_patient_info() -> None:
    data = dexcom_csv([("2024-05-01T08:00:00", "EGV", "110")]).replace(
        b"\r\n1,", b"\r\n0,,PatientIdentifier,,WITHINGS-ACC-5550123,,,,,,,\r\n1,", 1)
    readings, skipped = _read(data)
    assert skipped == Counter({"patient_info": 4}) and len(readings) == 1
    assert b"WITHINGS-ACC-5550123" in data and "WITHINGS-ACC-5550123" not in orjson.dumps(readings).decode()


def test_a_csv_that_is_not_a_clarity_export_is_refused() -> None:
    with pytest.raises(ImportFileError, match="not a Dexcom Clarity export"):
        _read(b"date,steps\n2024-05-01,1200\n")


def test_an_owners_name_in_the_device_column_is_dropped() -> None:
    data = dexcom_csv([("2024-05-01T08:00:00", "EGV", "110")]).replace(
        b"iPhone G6", "Henriette’s iPhone".encode()
    )
    readings, _ = _read(data)
    assert [r["device_id"] for r in readings] == ["iPhone"]


def test_a_file_saved_back_by_a_spreadsheet_is_read_whole() -> None:
    """A spreadsheet in a decimal-comma locale saves the export back with semicolons, and
    writes its times without the leading zero of the hour or without seconds. Every row is
    read; before, the file was refused and the hours 0-9 of each day were lost."""
    rows = [("2024-05-01 0:05:00", "EGV", "5.6"), ("2024-05-01 9:10", "EGV", "Low"),
            ("2024-05-01 13:15:00", "EGV", "10.1"), ("01.05.2024 14:00", "EGV", "6.0")]
    text = dexcom_csv(rows, unit="mmol/L").decode("utf-8-sig").replace(",", ";").replace(".", ",")
    readings, skipped = _read(text.encode("utf-8-sig"))
    assert [(r["timestamp"], r["value"], r["unit"]) for r in readings] == [
        ("2024-05-01T00:05:00-04:00", 5.6, "mmol/L"),
        ("2024-05-01T09:10:00-04:00", 2.2, "mmol/L"),
        ("2024-05-01T13:15:00-04:00", 10.1, "mmol/L"),
    ]
    assert skipped == Counter({"patient_info": 3, "unreadable_time": 1})  # a day-first date is not guessed
