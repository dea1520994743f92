"""The Garmin FIT reader on real files (counts from fitdecode's own frames) and crafted traps."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import fitdecode
import orjson
import pytest
from import_support import fit_file, fit_seconds, judge, split

from streams.importers.base import ImportContext, ImportFileError
from streams.importers.fit import is_fit, read_fit
from streams.importers.fit_monitoring import LocalDays, expand_timestamp_16, fit_instant, step_increments

FIT = Path(__file__).parents[1] / "fixtures" / "wearables" / "fit"
CTX = ImportContext(user_id="import-test-user")
ACTIVITIES = ["activity-small-fenix2-run.fit", "garmin-fenix-5-run.fit", "garmin-fenix-5-bike.fit"]


def read(data: bytes, ctx: ImportContext = CTX):
    return split(read_fit(io.BytesIO(data), "x.fit", ctx))


def frames(data: bytes, name: str | None = None) -> list[dict]:
    """Independent reading: fitdecode's data messages as {field: value} (CRC not checked)."""
    out = []
    try:
        with fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.DISABLED) as reader:
            for frame in reader:
                if isinstance(frame, fitdecode.FitDataMessage) and (name is None or frame.name == name):
                    out.append({f.name: f.value for f in frame.fields})
    except fitdecode.FitEOFError:
        pass
    return out


@pytest.mark.parametrize("name", ACTIVITIES)
def test_activity_heart_rate_samples_match_fitdecode(name: str) -> None:
    data = (FIT / name).read_bytes()
    records = frames(data, "record")
    expected = [(r["timestamp"], r["heart_rate"]) for r in records if r.get("heart_rate") is not None]
    messages, skipped = read(data)
    assert [m["metric"] for m in messages] == ["heart_rate"] * len(expected)
    assert [(datetime.fromisoformat(m["timestamp"]), m["value"]) for m in messages] == expected
    assert skipped["ambient_temperature"] == sum(r.get("temperature") is not None for r in records)
    assert skipped["location"] == sum(r.get("position_lat") is not None for r in records)
    stored = judge(messages)
    assert {r.unit for r in stored} == {"/min"} and {r.metric for r in stored} == {"heart_rate"}


def test_hrv_and_user_profile_are_skipped_with_a_kind() -> None:
    data = (FIT / "garmin-fenix-5-run.fit").read_bytes()
    _, skipped = read(data)
    assert skipped["fit_hrv"] == len(frames(data, "hrv")) == 71
    assert skipped["fit_user_profile"] == 1


@pytest.mark.parametrize("name", [*ACTIVITIES, "MonitoringFile.fit", "WeightScaleSingleUser.fit"])
def test_device_is_the_product_never_the_serial_number(name: str) -> None:
    data = (FIT / name).read_bytes()
    file_id = frames(data, "file_id")[0]
    messages, _ = read(data)
    assert messages
    text = orjson.dumps(messages).decode()
    assert str(file_id["serial_number"]) not in text
    product = file_id.get("garmin_product") or file_id.get("product")
    assert {m["device_id"] for m in messages} == {f"{file_id['manufacturer']}-{product}"}
    assert {m["source"] for m in messages} == {"garmin"}
    assert {m["user_id"] for m in messages} == {CTX.user_id}


def test_source_override() -> None:
    data = (FIT / "garmin-fenix-5-run.fit").read_bytes()
    messages, _ = read(data, ImportContext(user_id="u", source="my-watch"))
    assert {m["source"] for m in messages} == {"my-watch"}


def test_weight_scale_file() -> None:
    data = (FIT / "WeightScaleSingleUser.fit").read_bytes()
    scales = frames(data, "weight_scale")
    messages, skipped = read(data)
    got = [(m["metric"], m["value"], m["unit"], datetime.fromisoformat(m["timestamp"])) for m in messages]
    expected = []
    for s in scales:
        expected += [("body_weight", s["weight"], "kg", s["timestamp"]),
                     ("body_fat_percentage", s["percent_fat"], "%", s["timestamp"])]
    assert got == expected
    # the user_profile's weight is a setting, not a measurement: never published
    profile_weight = frames(data, "user_profile")[0]["weight"]
    assert profile_weight not in [m["value"] for m in messages]
    assert skipped["fit_user_profile"] == 1
    assert [r.value for r in judge(messages)] == pytest.approx([75.8, 22.3, 76.09, 25.1])


def test_weight_calculating_is_not_a_value() -> None:
    t = fit_seconds(datetime(2024, 5, 1, 7, tzinfo=UTC))
    data = fit_file([
        (0, [(0, "enum", 9), (1, "uint16", 1), (2, "uint16", 1), (3, "uint32z", 3_344_556_677)]),
        (30, [(253, "uint32", t), (0, "uint16", 0xFFFE), (1, "uint16", 0xFFFE)]),
        (30, [(253, "uint32", t + 60), (0, "uint16", 7580), (1, "uint16", 2230), (13, "uint16", 235)]),
    ])
    messages, skipped = read(data)
    assert skipped["weight_calculating"] == 2
    assert [(m["metric"], m["value"]) for m in messages] == [
        ("body_weight", 75.8), ("body_fat_percentage", 22.3), ("body_mass_index", 23.5)]
    assert "3344556677" not in orjson.dumps(messages).decode()
    judge(messages)


# --- monitoring -------------------------------------------------------------------------

def test_timestamp_16_expands_against_the_last_full_fit_timestamp() -> None:
    last = fit_seconds(datetime(2014, 12, 27, 6, tzinfo=UTC))  # monitoring_info of MonitoringFile.fit
    assert fit_instant(expand_timestamp_16(last, 27492)) == datetime(2014, 12, 27, 13, 43, tzinfo=UTC)
    # a counter that wrapped: 476 after 65412 is 600 s later, not 18 hours earlier
    after = expand_timestamp_16(last, 65412)
    assert expand_timestamp_16(after, 476) - after == 600
    # the trap: masking Unix seconds instead lands elsewhere (the epochs differ by 0x259E4C00)
    unix_last = int(datetime(2014, 12, 27, 6, tzinfo=UTC).timestamp())
    wrong = unix_last + ((27492 - (unix_last & 0xFFFF)) & 0xFFFF)
    assert datetime.fromtimestamp(wrong, UTC) != datetime(2014, 12, 27, 13, 43, tzinfo=UTC)


def test_real_monitoring_increments_add_up_to_the_daily_summary() -> None:
    data = (FIT / "MonitoringFile.fit").read_bytes()
    monitoring = frames(data, "monitoring")
    summaries = {m["activity_type"]: m["steps"] for m in monitoring if m.get("duration_min") is not None}
    assert summaries == {"walking": 3142, "running": 31}
    info = frames(data, "monitoring_info")[0]
    offset = info["local_timestamp"] - info["timestamp"]  # fitdecode renders both as UTC
    messages, skipped = read(data)
    totals = Counter()
    for m in messages:
        start, end = datetime.fromisoformat(m["timestamp"]), datetime.fromisoformat(m["timestamp_end"])
        assert start < end and (end - timedelta(microseconds=1) + offset).date() == date(2014, 12, 27)
        totals[m["metadata"]["activity_type"]] += m["value"]
    assert totals == summaries
    assert skipped["monitoring_daily_summary"] == 2
    # intervals of one activity type follow each other; the first starts at local midnight
    walking = [m for m in messages if m["metadata"]["activity_type"] == "walking"]
    assert walking[0]["timestamp"] == "2014-12-27T06:00:00+00:00"
    assert walking[0]["timestamp_end"] == "2014-12-27T14:15:00+00:00" and walking[0]["value"] == 100
    assert all(a["timestamp_end"] == b["timestamp"] for a, b in zip(walking, walking[1:], strict=False))
    cycles = [m for m in monitoring if m.get("cycles") is not None]
    assert len(messages) == len(cycles) == 79
    stored = judge(messages)
    assert {(r.metric, r.unit) for r in stored} == {("steps", "{steps}")}
    assert all(r.measured_until is not None for r in stored)


UTC_6 = LocalDays(offset=timedelta(hours=-6))
D = datetime(2024, 1, 10, tzinfo=UTC)  # 2024-01-09 18:00 local (UTC-6)


def _h(hours: float) -> datetime:
    return D + timedelta(hours=hours)


def test_increments_across_a_local_midnight() -> None:
    midnight = _h(6)  # 2024-01-10 06:00Z = 00:00 local
    samples = [
        (_h(3), 6, 1000),    # 21:00 local: the day's first walking sample counts in full
        (_h(5.5), 6, 1500),  # +500
        (_h(6), 6, 1600),    # exactly midnight: closes the day before, +100
        (_h(6.5), 6, 40),    # 00:30: first of the new day, in full from midnight
        (_h(7), 6, 90),      # +50
        (_h(7.2), 1, 20),    # running has its own counter: first of the day, in full
        (_h(7.3), 6, 30),    # lower than 90 within the day: a reset, counts in full
        (_h(7.4), 6, 30),    # unchanged: no increment
    ]
    got = [(i.start, i.end, i.steps, i.activity_type) for i in step_increments(samples, UTC_6)]
    day_before = midnight - timedelta(days=1)
    assert got == [
        (day_before, _h(3), 1000, 6), (_h(3), _h(5.5), 500, 6), (_h(5.5), _h(6), 100, 6),
        (midnight, _h(6.5), 40, 6), (_h(6.5), _h(7), 50, 6), (midnight, _h(7.2), 20, 1),
        (_h(7), _h(7.3), 30, 6),
    ]
    assert sum(i[2] for i in got if i[0] < midnight) == 1600  # the first day's last total


def test_local_days_from_a_zone_follow_dst() -> None:
    days = LocalDays(zone=ZoneInfo("America/Chicago"))
    summer = datetime(2024, 7, 1, 5, 30, tzinfo=UTC)  # 00:30 CDT (UTC-5)
    assert days.day_of(summer) == date(2024, 7, 1)
    assert days.start_of(date(2024, 7, 1)) == datetime(2024, 7, 1, 5, tzinfo=UTC)
    assert days.start_of(date(2024, 1, 1)) == datetime(2024, 1, 1, 6, tzinfo=UTC)


def _monitoring_file(with_info: bool, start: datetime = datetime(2024, 1, 9, 6, tzinfo=UTC)) -> bytes:
    info_at = fit_seconds(start)
    full = fit_seconds(_h(2))

    def sample(at: datetime, activity: int, steps: int) -> tuple[int, list]:
        # compact form: the activity type only inside current_activity_type_intensity
        return (55, [(26, "uint16", fit_seconds(at) & 0xFFFF), (3, "uint32", steps),
                     (24, "byte", activity | (2 << 5))])

    messages = [(0, [(0, "enum", 32), (1, "uint16", 1), (2, "uint16", 1837), (3, "uint32z", 987_654_321)])]
    if with_info:
        messages.append((103, [(253, "uint32", info_at), (0, "uint32", info_at - 6 * 3600)]))
    messages += [
        (55, [(253, "uint32", full), (5, "enum", 8)]),  # a sedentary sample with a full timestamp
        sample(_h(3), 6, 1000), sample(_h(5.5), 6, 1500), sample(_h(6.5), 6, 40),
        (55, [(26, "uint16", fit_seconds(_h(6.6)) & 0xFFFF), (27, "uint8", 71)]),
        (55, [(253, "uint32", fit_seconds(_h(6))), (29, "uint16", 1440), (5, "enum", 6)]),
    ]
    return fit_file(messages)


def test_crafted_monitoring_file_across_midnight() -> None:
    messages, skipped = read(_monitoring_file(with_info=True))
    steps = [(m["timestamp"], m["timestamp_end"], m["value"]) for m in messages if m["metric"] == "steps"]
    assert steps == [
        ("2024-01-09T06:00:00+00:00", "2024-01-10T03:00:00+00:00", 1000),
        ("2024-01-10T03:00:00+00:00", "2024-01-10T05:30:00+00:00", 500),
        ("2024-01-10T06:00:00+00:00", "2024-01-10T06:30:00+00:00", 40),
    ]
    hr = [(m["timestamp"], m["value"]) for m in messages if m["metric"] == "heart_rate"]
    assert hr == [("2024-01-10T06:36:00+00:00", 71)]
    assert skipped["monitoring_daily_summary"] == 1
    assert "987654321" not in orjson.dumps(messages).decode()
    judge(messages)


def test_monitoring_without_a_local_day_is_not_guessed() -> None:
    data = _monitoring_file(with_info=False)
    messages, skipped = read(data)
    assert [m["metric"] for m in messages] == ["heart_rate"]
    assert skipped["monitoring_steps_no_local_day"] == 3
    with_zone, _ = read(data, ImportContext(user_id="u", zone=ZoneInfo("America/Chicago")))
    assert [m["value"] for m in with_zone if m["metric"] == "steps"] == [1000, 500, 40]


# --- damage -------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "where"), [("activity-filecrc.fit", "bad CRC (checksum at byte 769)"),
                                             ("activity-unexpected-eof.fit", "cut short at byte 768")])
def test_damaged_file_yields_nothing_and_names_where(name: str, where: str) -> None:
    got = []
    with pytest.raises(ImportFileError) as err:
        got.extend(read_fit(io.BytesIO((FIT / "invalid" / name).read_bytes()), name, CTX))
    assert got == []
    assert where in str(err.value)


def test_salvage_yields_what_came_before_the_damage_then_raises() -> None:
    data = (FIT / "activity-small-fenix2-run.fit").read_bytes()
    cut = data[: len(data) // 2]
    before = [r for r in frames(cut, "record") if r.get("heart_rate") is not None]
    assert 0 < len(before) < 2808
    got = []
    with pytest.raises(ImportFileError, match="cut short"):
        got.extend(read_fit(io.BytesIO(cut), "cut.fit", CTX))
    assert got == []
    salvaged = []
    with pytest.raises(ImportFileError, match="cut short"):
        salvaged.extend(read_fit(io.BytesIO(cut), "cut.fit", ImportContext(user_id="u", salvage=True)))
    messages, skipped = split(salvaged)
    assert [(datetime.fromisoformat(m["timestamp"]), m["value"]) for m in messages] == [
        (r["timestamp"], r["heart_rate"]) for r in before]
    judge(messages)


def test_a_flipped_byte_fails_the_crc() -> None:
    data = bytearray((FIT / "garmin-fenix-5-run.fit").read_bytes())
    data[len(data) // 2] ^= 0x01
    with pytest.raises(ImportFileError, match="damaged FIT file"):
        list(read_fit(io.BytesIO(bytes(data)), "x.fit", CTX))


def test_not_a_fit_file() -> None:
    with pytest.raises(ImportFileError, match="not a FIT file"):
        list(read_fit(io.BytesIO(b'[{"dateTime": "01/01/24 00:00:00"}]' * 3), "x.fit", CTX))


def test_is_fit() -> None:
    for name in ACTIVITIES:
        assert is_fit(name, (FIT / name).read_bytes()[:16])
    assert not is_fit("x.fit", b'[{"dateTime": "01/01/24"}]')
    assert not is_fit("x.fit", b"\x0e\x10")


def test_a_file_starting_mid_day_takes_its_first_samples_as_baselines() -> None:
    samples = [(_h(3), 6, 1000), (_h(5.5), 6, 1500), (_h(6.5), 6, 40)]
    baselines: list[datetime] = []
    got = [(i.start, i.end, i.steps) for i in step_increments(samples, UTC_6, covered_from=_h(1),
                                                               baselines=baselines)]
    # 1000 steps were counted since midnight, partly in an earlier file: not counted again
    assert got == [(_h(3), _h(5.5), 500), (_h(6), _h(6.5), 40)]
    assert baselines == [_h(3)]


def test_crafted_monitoring_file_that_starts_mid_day() -> None:
    messages, skipped = read(_monitoring_file(with_info=True, start=_h(1)))  # 19:00 local
    assert [m["value"] for m in messages if m["metric"] == "steps"] == [500, 40]
    assert skipped["monitoring_partial_day_baseline"] == 1
