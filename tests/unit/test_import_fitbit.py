"""The Fitbit Takeout reader: the real resting-heart-rate file (counted with json.load) and
crafted files of every other kind, across DST changes."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from import_support import judge, split

from streams.importers.base import ImportContext, ImportFileError, Skipped
from streams.importers.fitbit import fitbit_kind, is_fitbit, read_fitbit
from streams.importers.fitbit_values import weight_unit
from streams.importers.local_time import LocalClock, day_bounds

FITBIT = Path(__file__).parents[1] / "fixtures" / "wearables" / "fitbit"
NY = ZoneInfo("America/New_York")
CTX = ImportContext(user_id="import-test-user", zone=NY)


def read(name: str, data: bytes | list | str, ctx: ImportContext = CTX):
    raw = data if isinstance(data, bytes) else (data if isinstance(data, str) else json.dumps(data)).encode()
    return split(read_fitbit(io.BytesIO(raw), f"Takeout/Fitbit/Global Export Data/{name}", ctx))


def instants(messages: list[dict], key: str = "timestamp") -> list[datetime]:
    return [datetime.fromisoformat(m[key]).astimezone(UTC) for m in messages]


def test_real_resting_heart_rate_file() -> None:
    raw = (FITBIT / "resting_heart_rate-2023-03-02.json").read_bytes()
    entries = json.loads(raw)  # the independent reading
    messages, skipped = read("resting_heart_rate-2023-03-02.json", raw)
    assert skipped == {}
    assert len(messages) == len(entries) == 2
    for m, e in zip(messages, entries, strict=True):
        month, mday, year = (int(x) for x in e["value"]["date"].split("/"))
        day = date(2000 + year, month, mday)
        assert (m["metric"], m["value"], m["unit"]) == ("resting_heart_rate", e["value"]["value"], "bpm")
        assert m["statistic"] == "average" and m["metadata"] == {"error": e["value"]["error"]}
        assert datetime.fromisoformat(m["timestamp"]) == datetime(day.year, day.month, day.day, tzinfo=NY)
        assert datetime.fromisoformat(m["timestamp_end"]) - datetime.fromisoformat(m["timestamp"]) \
            == timedelta(days=1)
    # 2024 days in a file named 2023: the content decides
    assert [m["timestamp"][:10] for m in messages] == ["2024-02-28", "2024-02-29"]
    stored = judge(messages)
    assert {(r.metric, r.unit, r.statistic) for r in stored} == {("resting_heart_rate", "/min", "average")}


def test_naive_times_need_a_zone_and_nothing_is_yielded_without_one() -> None:
    raw = (FITBIT / "resting_heart_rate-2023-03-02.json").read_bytes()
    got = []
    with pytest.raises(ImportFileError, match="needs --zone"):
        got.extend(read_fitbit(io.BytesIO(raw), "resting_heart_rate-2023-03-02.json",
                               ImportContext(user_id="u")))
    assert got == []


def test_resting_days_of_zero_are_skipped_and_days_are_local_even_on_a_dst_day() -> None:
    entries = [{"dateTime": "03/10/24 00:00:00", "value": {"date": "03/10/24", "value": 55.5, "error": 7.1}},
               {"dateTime": "03/11/24 00:00:00", "value": {"date": "03/11/24", "value": 0.0, "error": 0.0}}]
    messages, skipped = read("resting_heart_rate-2024-03-01.json", entries)
    assert skipped == {"fitbit_resting_heart_rate_empty": 1}
    [m] = messages
    assert instants([m]) == [datetime(2024, 3, 10, 5, tzinfo=UTC)]
    assert instants([m], "timestamp_end") == [datetime(2024, 3, 11, 4, tzinfo=UTC)]  # a 23-hour day


def _hr(text: str, bpm: int) -> dict:
    return {"dateTime": text, "value": {"bpm": bpm, "confidence": 2}}


def test_heart_rate_across_spring_forward() -> None:
    entries = [_hr("03/10/24 01:59:55", 60), _hr("03/10/24 02:00:05", 61), _hr("03/10/24 02:59:59", 62),
               _hr("03/10/24 03:00:05", 63)]
    messages, skipped = read("heart_rate-2024-03-10.json", entries)
    assert skipped == {"nonexistent_local_time": 2}  # 02:00-02:59 does not exist that night
    assert [m["value"] for m in messages] == [60, 63]
    assert instants(messages) == [datetime(2024, 3, 10, 6, 59, 55, tzinfo=UTC),
                                  datetime(2024, 3, 10, 7, 0, 5, tzinfo=UTC)]
    assert messages[0]["metadata"] == {"confidence": 2} and messages[0]["device_id"] is None
    stored = judge(messages)
    assert {(r.metric, r.unit, r.statistic) for r in stored} == {("heart_rate", "/min", None)}


def test_heart_rate_across_fall_back_in_recording_order() -> None:
    times = ["00:59:50", "01:00:10", "01:59:50", "01:00:10", "01:59:50", "02:00:10"]
    messages, skipped = read("heart_rate-2024-11-03.json", [_hr(f"11/03/24 {t}", 70) for t in times])
    assert skipped == {}
    got = instants(messages)
    assert got == [datetime(2024, 11, 3, 4, 59, 50, tzinfo=UTC), datetime(2024, 11, 3, 5, 0, 10, tzinfo=UTC),
                   datetime(2024, 11, 3, 5, 59, 50, tzinfo=UTC), datetime(2024, 11, 3, 6, 0, 10, tzinfo=UTC),
                   datetime(2024, 11, 3, 6, 59, 50, tzinfo=UTC), datetime(2024, 11, 3, 7, 0, 10, tzinfo=UTC)]
    assert len({m["timestamp"] for m in messages}) == len(times)  # no two share an instant
    judge(messages)


def test_local_clock_sorted_by_wall_clock_takes_the_first_occurrence() -> None:
    clock = LocalClock(NY)
    first = clock.instant(datetime(2024, 11, 3, 1, 30))  # noqa: DTZ001 - a wall-clock time
    again = clock.instant(datetime(2024, 11, 3, 1, 45))  # noqa: DTZ001
    assert first is not None and again is not None
    assert first.utcoffset() == again.utcoffset() == timedelta(hours=-4)
    start, end = day_bounds(date(2024, 11, 3), NY)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)


def test_steps_per_minute() -> None:
    entries = [{"dateTime": "01/15/24 08:00:00", "value": "0"},
               {"dateTime": "01/15/24 08:01:00", "value": "42"},
               {"dateTime": "01/15/24 08:02:00", "value": "17"}]
    messages, skipped = read("steps-2024-01-15.json", entries)
    assert skipped == {"fitbit_steps_zero": 1}
    assert [(m["value"], m["timestamp"], m["timestamp_end"]) for m in messages] == [
        (42.0, "2024-01-15T08:01:00-05:00", "2024-01-15T08:02:00-05:00"),
        (17.0, "2024-01-15T08:02:00-05:00", "2024-01-15T08:03:00-05:00")]
    assert sum(r.value for r in judge(messages)) == sum(int(e["value"]) for e in entries)


def _weigh(weight: float, bmi: float | None, time: str, fat: float | None = None,
           source: str = "Aria") -> dict:
    entry = {"logId": 1_706_000_000_000, "weight": weight, "date": "01/15/24", "time": time, "source": source}
    if bmi is not None:
        entry["bmi"] = bmi
    if fat is not None:
        entry["fat"] = fat
    return entry


def test_weight_in_pounds_is_read_from_its_bmi() -> None:
    entries = [_weigh(198.1, 30.04, "07:13:26", fat=28.74), _weigh(197.0, None, "19:00:00", source="API")]
    messages, skipped = read("weight-2024-01-01.json", entries)
    assert skipped == {"fitbit_bmi_derived": 1}
    got = [(m["metric"], m["value"], m["unit"], m["device_id"]) for m in messages]
    # the weigh-in without a BMI takes the file's unit (pounds, from the first)
    assert got == [("body_weight", 198.1, "lb", "Aria"), ("body_fat_percentage", 28.74, "%", "Aria"),
                   ("body_weight", 197.0, "lb", None)]
    assert "1706000000000" not in orjson.dumps(messages).decode()
    stored = judge(messages)
    assert [round(r.value, 3) for r in stored] == [round(198.1 * 0.45359237, 3), 28.74,
                                                   round(197.0 * 0.45359237, 3)]
    assert stored[0].unit == "kg"


def test_weight_in_kilograms_and_the_ambiguous_case() -> None:
    messages, skipped = read("weight-2024-01-01.json", [_weigh(70.0, 22.9, "07:00:00")])
    assert [(m["value"], m["unit"]) for m in messages] == [(70.0, "kg")]
    messages, skipped = read("weight-2024-01-01.json", [_weigh(70.0, None, "07:00:00")])
    assert messages == [] and skipped["fitbit_weight_unit_ambiguous"] == 1
    assert weight_unit(150.0, 31.0) is None  # 2.20 m in kg or 1.48 m in lb: both adults


def test_sleep_is_time_asleep_not_time_in_bed() -> None:
    entries = [{"logId": 44940631937, "dateOfSleep": "2024-03-10", "startTime": "2024-03-09T23:04:00.000",
                "endTime": "2024-03-10T06:55:30.000", "duration": 24930000, "minutesAsleep": 360,
                "minutesAwake": 55, "timeInBed": 415, "type": "stages", "mainSleep": True,
                "levels": {"summary": {}, "data": []}}]
    messages, skipped = read("sleep-2024-03-01.json", entries)
    [m] = messages
    assert (m["metric"], m["value"], m["unit"]) == ("sleep_duration", 360, "min")
    assert m["timestamp"] == "2024-03-09T23:04:00-05:00" and m["timestamp_end"] == "2024-03-10T06:55:30-04:00"
    assert m["metadata"] == {"main_sleep": True, "minutes_in_bed": 415, "sleep_type": "stages"}
    assert "44940631937" not in orjson.dumps(messages).decode()
    [r] = judge(messages)
    assert r.value == 360 and r.measured_until - r.measured_at == timedelta(hours=6, minutes=51, seconds=30)


def test_spo2_csv_files() -> None:
    minute = "timestamp,value\n2024-01-15T02:29:00,95.7\n2024-01-15T02:30:00,96.1\n"
    name = "Takeout/Fitbit/Oxygen Saturation (SpO2)/Minute SpO2 - 2024-01-15.csv"
    messages, _ = split(read_fitbit(io.BytesIO(minute.encode()), name, CTX))
    assert [(m["metric"], m["value"], m["timestamp"]) for m in messages] == [
        ("oxygen_saturation", 95.7, "2024-01-15T02:29:00-05:00"),
        ("oxygen_saturation", 96.1, "2024-01-15T02:30:00-05:00")]
    daily = "timestamp,average_value,lower_bound,upper_bound\n2024-01-15T00:00:00,95.9,93.1,98.2\n"
    days, _ = split(read_fitbit(io.BytesIO(daily.encode()), "Daily SpO2 - 2024-01-01-2024-01-31.csv", CTX))
    [d] = days
    assert (d["value"], d["statistic"], d["metadata"]) == (95.9, "average", {"lower_bound": 93.1,
                                                                             "upper_bound": 98.2})
    assert d["timestamp"] == "2024-01-15T00:00:00-05:00" and d["timestamp_end"] == "2024-01-16T00:00:00-05:00"
    judge(messages + days)


def test_unsupported_file_is_counted_not_read() -> None:
    items = list(read_fitbit(io.BytesIO(b"[]"), "Global Export Data/calories-2024-01-01.json",
                             ImportContext(user_id="u")))
    assert items == [Skipped("fitbit_unsupported_file")]


def test_a_malformed_entry_is_skipped_and_the_rest_goes() -> None:
    entries = [_hr("01/15/24 08:00:00", 61), {"dateTime": "garbage", "value": {"bpm": 1}},
               {"value": {"bpm": 62}}, _hr("01/15/24 08:00:10", 63)]
    messages, skipped = read("heart_rate-2024-01-15.json", entries)
    assert [m["value"] for m in messages] == [61, 63]
    assert skipped == {"fitbit_malformed_entry": 2}


def test_broken_json_names_the_entry_after_which_it_broke() -> None:
    raw = json.dumps([_hr("01/15/24 08:00:00", 61), _hr("01/15/24 08:00:10", 63)]).encode()[:-25]
    got = []
    with pytest.raises(ImportFileError, match="malformed JSON after entry 1"):
        got.extend(read_fitbit(io.BytesIO(raw), "heart_rate-2024-01-15.json", CTX))
    assert [m["value"] for m in got] == [61]


def test_kind_and_sniffing() -> None:
    head = (FITBIT / "resting_heart_rate-2023-03-02.json").read_bytes()[:64]
    assert is_fitbit("Takeout/Fitbit/Global Export Data/resting_heart_rate-2023-03-02.json", head)
    assert is_fitbit("calories-2024-01-01.json", b"[{")
    assert is_fitbit("Minute SpO2 - 2024-01-15.csv", b"\xef\xbb\xbftimestamp,value\n")
    assert not is_fitbit("export.xml", b"<?xml")
    assert not is_fitbit("heart_rate-2024-01-15.json", b'{"not": "an array"}')
    assert fitbit_kind("a/b/sleep-2024-03-01.json") == "sleep"
    assert fitbit_kind("Daily SpO2 - 2024-01-01-2024-01-31.csv") == "daily_spo2"
    assert fitbit_kind("Profile.csv") is None


def test_a_json_object_is_not_a_takeout_file_and_an_empty_array_is_empty() -> None:
    with pytest.raises(ImportFileError, match="not a JSON array"):
        read("heart_rate-2024-01-15.json", {"bpm": 60})
    assert read("heart_rate-2024-01-15.json", []) == ([], {})
