"""The ETL target ``cgm`` on the real warehouse: hand-computed days (all in range, all low,
a gap, censored "Low"/"High", both DST changes, mmol/L input, finger-sticks) checked
against the figures worked out by hand and against :mod:`cgm_reference`, an independent
computation from the consensus definitions; and re-running a day replaces it."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from batch_support import normalise, store
from cgm_reference import daily, window
from cgm_support import Person, assert_matches, every, rows, run_cgm, seed, warehouse_of

from streams.sink.migrations import quote_ident

pytestmark = [pytest.mark.integration]
DAY = date(2026, 3, 10)
SPRING, FALL = date(2026, 3, 29), date(2026, 10, 25)  # Europe/Berlin: 23 h and 25 h
MMOL = (2.9, 3.0, 3.8, 3.9, 10.0, 10.1, 13.9, 14.0)  # each band's edges

@pytest.fixture
async def cgm_warehouse(batch_settings):  # type: ignore[no-untyped-def]
    """The warehouse of ``batch_settings``' schema (the integration ``warehouse`` has its own)."""
    async with warehouse_of(batch_settings) as warehouse:
        yield warehouse


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

async def test_hand_computed_days_match_the_consensus(batch_settings, cgm_warehouse) -> None:
    warehouse = cgm_warehouse
    persons = people()
    keys = await seed(batch_settings, warehouse, persons)
    await run_cgm(batch_settings, warehouse, "cgm_days", date(2026, 3, 9), date(2026, 3, 31))
    await run_cgm(batch_settings, warehouse, "cgm_fall", date(2026, 10, 24), date(2026, 10, 27))
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


async def test_rerunning_a_day_replaces_it_and_the_windows_after_it(batch_settings, cgm_warehouse) -> None:
    warehouse = cgm_warehouse
    p = Person("multi", "Europe/Berlin")
    for offset in range(0, 16, 3):  # days 0, 3, ..., 15: windows overlap
        for i, at in enumerate(every(5, DAY + timedelta(days=offset), p.zone)):
            p.mg(at, 60 + (i * 7 + offset) % 200)
    keys = await seed(batch_settings, warehouse, {"multi": p})
    await run_cgm(batch_settings, warehouse, "cgm_all", DAY, DAY + timedelta(days=16))
    first = await rows(warehouse, "cgm_daily"), await rows(warehouse, "cgm_14d")
    await run_cgm(batch_settings, warehouse, "cgm_all", DAY, DAY + timedelta(days=16))
    assert (await rows(warehouse, "cgm_daily"), await rows(warehouse, "cgm_14d")) == first, "idempotent"

    extra = Person("multi", p.zone)  # a late upload: more readings on day 3, all very high
    for at in every(5, DAY + timedelta(days=3), p.zone, skip=(time(0), time(23)))[:6]:
        extra.mg(at + timedelta(minutes=2), 300)
    await store(warehouse, normalise(batch_settings, extra.docs))
    p.seen += extra.seen
    await run_cgm(batch_settings, warehouse, "cgm_day3", DAY + timedelta(days=3), DAY + timedelta(days=4))
    day_rows, windows = await rows(warehouse, "cgm_daily"), await rows(warehouse, "cgm_14d")
    k = keys["multi"]
    for day, want in daily(p.seen, p.zone).items():
        assert_matches(day_rows[(k, day)], want, str(day))
        assert_matches(windows[(k, day)], window(p.seen, p.zone, day), f"window {day}")
    assert day_rows[(k, DAY + timedelta(days=3))]["readings"] == 294
    assert windows[(k, DAY)] == first[1][(k, DAY)], "a window ending before the day is untouched"
