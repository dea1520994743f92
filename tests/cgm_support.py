"""Helpers of the CGM tests: readings of one person as sent and as the independent reference
(:mod:`cgm_reference`) sees them, seeding them through the real domain code and sink, running
the ``cgm`` target, reading its tables."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from batch_support import normalise, reading, store
from cgm_reference import MG_DL_PER_MMOL_L, band_mg_dl, band_mmol_l

from batch import api
from batch.errors import JobNameTaken
from streams.domain.profiles import UserProfile
from streams.domain.pseudonym import user_key
from streams.sink.migrations import quote_ident
from streams.sink.profiles import upsert_profile

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)


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

async def seed(settings, warehouse, persons: dict[str, Person]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    keys = {}
    for p in persons.values():
        keys[p.name] = user_key(settings.pseudonym_key_bytes, p.name)
        await upsert_profile(warehouse.pool, settings.warehouse_schema,
                             UserProfile(keys[p.name], p.zone, 1980, False, "unknown", DAY0))
        await store(warehouse, normalise(settings, p.docs))
    return keys


async def run_cgm(settings, warehouse, job_id: str, start: date, end: date) -> None:  # type: ignore[no-untyped-def]
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


