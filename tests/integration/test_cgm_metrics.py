# ruff: noqa: F811 - pytest fixtures imported from batch_support are used as parameters
"""The ETL target ``cgm`` on the real warehouse: hand-computed days (all in range, all low,
a gap, censored "Low"/"High", both DST changes, mmol/L input, finger-sticks) checked
against the figures worked out by hand and against :mod:`cgm_reference`, an independent
computation from the consensus definitions; and re-running a day replaces it."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from batch_support import batch_settings, normalise, reading, store, warehouse  # noqa: F401 - fixtures
from cgm_reference import MG_DL_PER_MMOL_L, band_mg_dl, band_mmol_l, daily, window

from batch import api
from batch.errors import JobNameTaken
from streams.domain.profiles import UserProfile
from streams.domain.pseudonym import user_key
from streams.sink.migrations import quote_ident
from streams.sink.profiles import upsert_profile

pytestmark = [pytest.mark.integration]
DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = date(2026, 3, 10)
SPRING, FALL = date(2026, 3, 29), date(2026, 10, 25)  # Europe/Berlin: 23 h and 25 h
MMOL = (2.9, 3.0, 3.8, 3.9, 10.0, 10.1, 13.9, 14.0)  # each band's edges


def every(minutes: float, day: date, zone: str, *, skip: tuple[time, time] | None = None) -> list[datetime]:
    """Instants every ``minutes`` from local midnight of ``day`` to the next, in UTC."""
    tz, out = ZoneInfo(zone), []
    at = datetime.combine(day, time(), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC)
    while at < end:
        local = at.astimezone(tz).time()
        if skip is None or not skip[0] <= local < skip[1]:
            out.append(at)
        at += timedelta(minutes=minutes)
    return out


class Person:
    """One person's readings as sent (docs) and as the reference sees them."""

    def __init__(self, name: str, zone: str) -> None:
        self.name, self.zone = name, zone
        self.docs: list[dict[str, Any]] = []
        self.seen: list[tuple[datetime, float, int]] = []
        self.rel_tol = 1e-9

    def mg(self, at: datetime, value: int, censored: str | None = None) -> None:
        doc = reading(self.name, "blood_glucose", value, "mg/dL", at, source="dexcom")
        if censored:
            doc["metadata"] = {"censored": censored}
        self.docs.append(doc)
        self.seen.append((at, value, {"below": 0, "above": 4}[censored] if censored else band_mg_dl(value)))

    def mmol(self, at: datetime, value: float) -> None:
        self.docs.append(reading(self.name, "blood_glucose", value, "mmol/L", at, source="libre"))
        self.seen.append((at, value * MG_DL_PER_MMOL_L, band_mmol_l(value)))
        self.rel_tol = 1e-4  # our own factor, not the catalogue's (18.016)


def people() -> dict[str, Person]:
    p = {name: Person(name, zone) for name, zone in (
        ("in_range", "America/New_York"), ("low", "UTC"), ("gap", "Asia/Kolkata"), ("censored", "UTC"),
        ("spring", "Europe/Berlin"), ("fall", "Europe/Berlin"), ("mmol", "Europe/London"),
        ("sticks", "UTC"), ("switch", "UTC"))}
    for i, at in enumerate(every(5, DAY, "America/New_York")):
        p["in_range"].mg(at, 70 + (i * 37) % 111)  # 70..180
    for i, at in enumerate(every(5, DAY, "UTC")):
        p["low"].mg(at, (45, 60, 53, 69)[i % 4])
    for i, at in enumerate(every(5, DAY, "Asia/Kolkata", skip=(time(13), time(15)))):
        p["gap"].mg(at, 100 + i % 120)
    for i, at in enumerate(every(5, DAY, "UTC")):
        if i % 29 == 0:
            p["censored"].mg(at, 40, "below")
        elif i % 47 == 0:
            p["censored"].mg(at, 400, "above")
        else:
            p["censored"].mg(at, (52, 120, 251, 180)[i % 4])
    for name, day in (("spring", SPRING), ("fall", FALL)):
        for i, at in enumerate(every(5, day, "Europe/Berlin")):
            p[name].mg(at, 90 + i % 60)
    for i, at in enumerate(every(5, DAY, "Europe/London")):
        p["mmol"].mmol(at, MMOL[i % len(MMOL)])
    for hour in (7, 12, 18, 22):  # a finger-stick meter, four times a day
        p["sticks"].mg(datetime.combine(DAY, time(hour), UTC), 150)
    # A sensor change: 15-minute readings, then every 150 s (2.5 min: rounds up to 3), then 5 min.
    for back, minutes in ((2, 15), (1, 2.5), (0, 5)):
        for i, at in enumerate(every(minutes, DAY - timedelta(days=back), "UTC")):
            p["switch"].mg(at, 100 + i % 90)
    return p


async def _seed(settings, warehouse, persons: dict[str, Person]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    keys = {}
    for p in persons.values():
        keys[p.name] = user_key(settings.pseudonym_key_bytes, p.name)
        await upsert_profile(warehouse.pool, settings.warehouse_schema,
                             UserProfile(keys[p.name], p.zone, 1980, False, "unknown", DAY0))
        await store(warehouse, normalise(settings, p.docs))
    return keys


async def _run(settings, warehouse, job_id: str, start: date, end: date) -> None:  # type: ignore[no-untyped-def]
    try:
        await api.create_job(warehouse, {"job_id": job_id, "job_name": job_id, "target_tables": ["cgm"]})
    except JobNameTaken:
        pass  # registered by an earlier call of this test
    interval = (datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC))
    run = await api.run_job(settings, job_id, warehouse=warehouse, interval=interval)
    assert run.status == "succeeded", run.error


async def rows(warehouse, table: str) -> dict[tuple[str, date], dict[str, Any]]:  # type: ignore[no-untyped-def]
    got = await warehouse.pool.fetch(f"SELECT * FROM {quote_ident(warehouse.schema)}.{table}")
    return {(r["user_key"], r["local_day"]): dict(r) for r in got}


def assert_matches(got: dict[str, Any], want: dict[str, Any], what: str, rel_tol: float = 1e-9) -> None:
    for column, value in want.items():
        if isinstance(value, float):
            assert math.isclose(got[column], value, rel_tol=rel_tol, abs_tol=1e-9), (what, column)
        else:
            assert got[column] == value, (what, column, got[column], value)


async def test_hand_computed_days_match_the_consensus(batch_settings, warehouse) -> None:
    persons = people()
    keys = await _seed(batch_settings, warehouse, persons)
    await _run(batch_settings, warehouse, "cgm_days", date(2026, 3, 9), date(2026, 3, 31))
    await _run(batch_settings, warehouse, "cgm_fall", date(2026, 10, 24), date(2026, 10, 27))
    day_rows, windows = await rows(warehouse, "cgm_daily"), await rows(warehouse, "cgm_14d")
    assert {k for k, _ in day_rows} == set(keys.values()), "one person per scenario, nobody else"

    def row(name: str, day: date = DAY) -> dict[str, Any]:
        return day_rows[(keys[name], day)]

    # By hand first: what a clinician would count on the sheet.
    in_range, low = row("in_range"), row("low")
    assert (in_range["readings"], in_range["in_range_pct"], in_range["active_pct"]) == (288, 100, 100)
    assert low["very_low_pct"] == 50 and low["low_pct"] == 50 and low["in_range_pct"] == 0
    assert row("gap")["readings"] == 288 - 24 and row("gap")["interval_s"] == 300
    assert math.isclose(row("gap")["active_pct"], 100 * 264 / 288)
    spring, fall = row("spring", SPRING), row("fall", FALL)
    assert (spring["readings"], spring["expected"], spring["active_pct"]) == (276, 276, 100), "a 23-hour day"
    assert (fall["readings"], fall["expected"], fall["active_pct"]) == (300, 300, 100), "a 25-hour day"
    assert row("censored")["censored_below"] == 10 and row("censored")["censored_above"] == 6
    assert row("sticks")["interval_s"] == 900 and math.isclose(row("sticks")["active_pct"], 100 * 4 / 96)
    assert not row("sticks")["sufficient"] and row("in_range")["sufficient"]
    mmol = row("mmol")
    assert [mmol[b] for b in ("very_low_pct", "low_pct", "in_range_pct", "high_pct", "very_high_pct")] == [
        12.5, 25, 25, 25, 12.5], "3.0-3.8 low, 3.9-10.0 in range, 10.1-13.9 high: by the mmol/L ranges"
    stored_units = await warehouse.pool.fetch(
        f"SELECT DISTINCT unit FROM {quote_ident(warehouse.schema)}.health_readings WHERE user_key = $1",
        keys["mmol"])
    assert [r["unit"] for r in stored_units] == ["mg/dL"], "mmol/L is canonicalised at ingest"

    # Then every column of every row against the independent computation.
    for p in persons.values():
        for day, want in daily(p.seen, p.zone).items():
            assert_matches(day_rows[(keys[p.name], day)], want, f"{p.name} {day}", p.rel_tol)
            w = window(p.seen, p.zone, day)
            assert_matches(windows[(keys[p.name], day)], w, f"{p.name} window {day}", p.rel_tol)
            assert windows[(keys[p.name], day)]["first_day"] == day - timedelta(days=13)
    spring_window = windows[(keys["spring"], SPRING)]
    assert spring_window["expected"] == 13 * 288 + 276 and not spring_window["sufficient"]
    assert [row("switch", DAY - timedelta(days=b))["interval_s"] for b in (2, 1, 0)] == [900, 180, 300]
    assert windows[(keys["switch"], DAY)]["interval_s"] == 300, "the median of the days' intervals"


async def test_rerunning_a_day_replaces_it_and_the_windows_after_it(batch_settings, warehouse) -> None:
    p = Person("multi", "Europe/Berlin")
    for offset in range(0, 16, 3):  # days 0, 3, ..., 15: windows overlap
        for i, at in enumerate(every(5, DAY + timedelta(days=offset), p.zone)):
            p.mg(at, 60 + (i * 7 + offset) % 200)
    keys = await _seed(batch_settings, warehouse, {"multi": p})
    await _run(batch_settings, warehouse, "cgm_all", DAY, DAY + timedelta(days=16))
    first = await rows(warehouse, "cgm_daily"), await rows(warehouse, "cgm_14d")
    await _run(batch_settings, warehouse, "cgm_all", DAY, DAY + timedelta(days=16))
    assert (await rows(warehouse, "cgm_daily"), await rows(warehouse, "cgm_14d")) == first, "idempotent"

    extra = Person("multi", p.zone)  # a late upload: more readings on day 3, all very high
    for at in every(5, DAY + timedelta(days=3), p.zone, skip=(time(0), time(23)))[:6]:
        extra.mg(at + timedelta(minutes=2), 300)
    await store(warehouse, normalise(batch_settings, extra.docs))
    p.seen += extra.seen
    await _run(batch_settings, warehouse, "cgm_day3", DAY + timedelta(days=3), DAY + timedelta(days=4))
    day_rows, windows = await rows(warehouse, "cgm_daily"), await rows(warehouse, "cgm_14d")
    k = keys["multi"]
    for day, want in daily(p.seen, p.zone).items():
        assert_matches(day_rows[(k, day)], want, str(day))
        assert_matches(windows[(k, day)], window(p.seen, p.zone, day), f"window {day}")
    assert day_rows[(k, DAY + timedelta(days=3))]["readings"] == 294
    assert windows[(k, DAY)] == first[1][(k, DAY)], "a window ending before the day is untouched"
