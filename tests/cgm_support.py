"""Helpers of the CGM tests: readings of one person as sent and as the independent reference
(:mod:`cgm_reference`) sees them, seeding them through the real domain code and sink, running
the ``cgm`` target, reading its tables."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
from streams.sink.warehouse import Warehouse

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




#: The fortnight the API and console tests show: 14 local days in Berlin ending on END.
END, ZONE = date(2026, 11, 20), "Europe/Berlin"


def fortnight(name: str) -> Person:
    """Two weeks of a 5-minute sensor: meals at 8, 13 and 19 h, a night low on some days, a
    censored "Low" and "High", one day without the sensor and a 3-hour gap every night."""
    p = Person(name, ZONE)
    for back in range(14):
        day = END - timedelta(days=back)
        if back == 9:
            continue  # sensor off for a day
        for at in every(5, day, ZONE, skip=(time(2), time(5))):
            hour = at.astimezone(ZoneInfo(ZONE)).hour + at.minute / 60
            meals = sum(90 * math.exp(-((hour - meal) ** 2) / 1.5) for meal in (8, 13, 19.5))
            night_low = 35 if hour < 2 and back % 3 == 0 else 0
            value = round(95 + meals + (back * 7 + at.minute) % 25 - 12 - night_low)
            p.mg(at, max(41, value))
        p.mg(datetime.combine(day, time(5, 30), ZoneInfo(ZONE)).astimezone(UTC), *(
            (40, "below") if back % 4 == 0 else (400, "above") if back % 4 == 1 else (130, None)))
    return p


@asynccontextmanager
async def warehouse_of(settings: Any) -> AsyncIterator[Warehouse]:
    """A started warehouse on ``settings``' own schema (as the schema's owner)."""
    warehouse = Warehouse(settings.pg_migration_dsn_value, settings.warehouse_schema, pool_max=4)
    await warehouse.start()
    try:
        yield warehouse
    finally:
        await warehouse.stop()


async def seed_worker(settings: Any, person: Person) -> str:
    """Store ``person``'s readings and profile in a worker's warehouse; returns the pseudonym."""
    async with warehouse_of(settings) as warehouse:
        return (await seed(settings, warehouse, {person.name: person}))[person.name]


async def compute_over_http(client: Any, eventually: Any, first: date, last: date) -> None:
    """Register and run a ``cgm`` job through the API (as an operator), for local days ``[first, last]``."""
    created = await client.call("POST", "/etl-jobs", role="operator", json={
        "job_name": f"cgm {uuid.uuid4().hex[:8]}", "target_tables": ["cgm"],
        "notification_on_failure": False})
    assert created.status == 201, created.body
    started = await client.call("POST", f"/etl-jobs/{created.body['job_id']}/run", role="operator", json={
        "interval_start": datetime.combine(first, time(), UTC).isoformat(),
        "interval_end": datetime.combine(last + timedelta(days=1), time(), UTC).isoformat()})
    assert started.status == 202, started.body

    async def finished() -> Any:
        reply = await client.call("GET", started.headers["Location"], role="viewer")
        return reply.body if reply.body.get("status") in ("succeeded", "failed") else None

    run = await eventually(finished, timeout=90)
    assert run["status"] == "succeeded", run
