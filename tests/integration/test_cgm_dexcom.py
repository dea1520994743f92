"""The CGM target on real sensor data: the Dexcom Clarity export of a G6 in
tests/fixtures/wearables/dexcom/ (2 148 EGV rows over 9 days), read here with the csv module
and stored through the real domain code and sink, then checked against the independent
computation of :mod:`cgm_reference` and the figures counted by hand in the project's notes."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from batch_support import normalise, reading, store
from cgm_reference import band_mg_dl, daily, window
from cgm_support import DAY0, assert_matches, rows, warehouse_of

from batch import api
from streams.domain.profiles import UserProfile
from streams.domain.pseudonym import user_key
from streams.sink.profiles import upsert_profile

pytestmark = [pytest.mark.integration]
EXPORT = Path(__file__).parents[1] / "fixtures" / "wearables" / "dexcom" / "clarity-export-g6.csv"
#: Clarity times are the display device's wall clock; the person lives here (no DST change
#: between 2016-10-24 and 2016-11-01).
ZONE = "America/Los_Angeles"

@pytest.fixture
async def cgm_warehouse(batch_settings):  # type: ignore[no-untyped-def]
    """The warehouse of ``batch_settings``' schema (the integration ``warehouse`` has its own)."""
    async with warehouse_of(batch_settings) as warehouse:
        yield warehouse


def egvs() -> list[tuple[datetime, int]]:
    with EXPORT.open(encoding="utf-8-sig", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Event Type"] == "EGV"]
    zone = ZoneInfo(ZONE)
    return [(datetime.fromisoformat(r["Timestamp (YYYY-MM-DDThh:mm:ss)"]).replace(tzinfo=zone),
             int(r["Glucose Value (mg/dL)"])) for r in rows]


async def test_the_dexcom_export_matches_the_consensus_definitions(batch_settings, cgm_warehouse) -> None:
    warehouse = cgm_warehouse
    found = egvs()
    assert len(found) == 2148
    key = user_key(batch_settings.pseudonym_key_bytes, "g6-wearer")
    await upsert_profile(warehouse.pool, warehouse.schema,
                         UserProfile(key, ZONE, 1970, False, "unknown", DAY0))
    await store(warehouse, normalise(batch_settings, [
        reading("g6-wearer", "blood_glucose", value, "mg/dL", at, source="dexcom") for at, value in found]))
    job = await api.create_job(warehouse, {"job_name": "dexcom cgm", "target_tables": ["cgm"]})
    start = datetime(2016, 10, 24, tzinfo=ZoneInfo("UTC"))
    run = await api.run_job(batch_settings, job.job_id, warehouse=warehouse,
                            interval=(start, start + timedelta(days=9)))
    assert run.status == "succeeded", run.error

    seen = [(at, float(value), band_mg_dl(value)) for at, value in found]
    day_rows, windows = await rows(warehouse, "cgm_daily"), await rows(warehouse, "cgm_14d")
    expected_days = daily(seen, ZONE)
    assert sorted(d for _, d in day_rows) == sorted(expected_days) == [
        date(2016, 10, 24) + timedelta(days=i) for i in range(9)]
    for day, want in expected_days.items():
        assert_matches(day_rows[(key, day)], want, str(day))
        assert_matches(windows[(key, day)], window(seen, ZONE, day), f"window {day}")

    last = windows[(key, date(2016, 11, 1))]  # every reading of the export is in this window
    assert last["readings"] == 2148 and last["days_with_data"] == 9 and last["interval_s"] == 300
    # The notes' figures, counted from the file: TIR 94.0 %, TBR 1.6 %, TAR 4.4 %, CV 25.7 %, GMI 5.99 %.
    assert round(last["in_range_pct"], 1) == 94.0
    assert round(last["very_low_pct"] + last["low_pct"], 1) == 1.6
    assert round(last["high_pct"] + last["very_high_pct"], 1) == 4.4
    assert round(last["cv_pct"], 1) == 25.7 and round(last["gmi_pct"], 2) == 5.99
    assert round(last["active_pct"], 1) == round(100 * 2148 / (14 * 288), 1) and not last["sufficient"]
