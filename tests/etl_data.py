"""Synthetic fact rows for the ETL equality tests and ``bench/etl.py``, written by binary COPY
straight into ``health_readings`` (no validation: non-canonical units, NaN and summary rows
are put in on purpose), plus user profiles across DST and the date line."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg

from streams.domain.catalogue import DEFAULT_CATALOGUE
from streams.sink.migrations import quote_ident

COLUMNS = ("event_id", "user_key", "device_id", "source", "metric", "loinc_code", "value", "unit",
           "original_value", "original_unit", "measured_at", "ingested_at", "produced_at", "stored_at",
           "kafka_topic", "kafka_partition", "kafka_offset", "transformation_version", "statistic")
#: Profile zones, ``None`` = no profile: DST in both hemispheres, half-hour offsets, the date line.
ZONES = ("Europe/Berlin", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata",
         "Australia/Lord_Howe", "UTC", None)
METRICS = ("heart_rate", "steps", "blood_glucose", "body_weight", "oxygen_saturation")
SOURCES = ("garmin", "fitbit", "Withings", "apple_health")
MEANS = {"heart_rate": (70, 12), "steps": (900, 400), "blood_glucose": (100, 20), "body_weight": (75, 1),
         "oxygen_saturation": (97, 1.5)}


def user(i: int) -> str:
    return f"u{i:05d}"


def readings(n: int, start: datetime, days: int, users: int, seed: int = 7) -> Iterator[tuple]:
    """``n`` rows over ``days`` days from ``start`` for ``users`` users, roughly in time order
    (a few shifted a day later). Values are rounded to
    one decimal (ties), instants to the minute (duplicates), and every user skips some days
    (streaks break); about 1% are in a non-canonical unit, 0.2% NaN or infinite, 2% summaries."""
    rng = random.Random(seed)
    minutes = sorted(rng.randrange(days * 24 * 60) for _ in range(n))  # in time order, as a stream
    for i, minute in enumerate(minutes):
        u = rng.randrange(users)
        at = start + timedelta(minutes=minute)
        if (at - start).days % (u % 5 + 2) == 1:  # user u is idle on some days
            at += timedelta(days=1)
        metric = rng.choice(METRICS)
        mean, sd = MEANS[metric]
        value = round(rng.gauss(mean, sd), 1)
        unit = DEFAULT_CATALOGUE[metric].canonical_unit
        roll = rng.random()
        if roll < 0.01:
            unit = "furlongs"
        elif roll < 0.012:
            value = rng.choice((math.nan, math.inf, -math.inf))
        statistic = "average" if rng.random() < 0.02 else None
        stored = at + timedelta(seconds=rng.randrange(1, 900))
        yield (f"e{seed}-{i}", user(u), "d-1", rng.choice(SOURCES), metric, "0000-0", value, unit, value,
               unit, at, stored - timedelta(seconds=1), stored - timedelta(seconds=2), stored, "seed", 0, i,
               "1", statistic)


async def copy_readings(conn: asyncpg.Connection, schema: str, rows: Iterator[tuple], start: datetime,
                        days: int) -> None:
    """COPY ``rows`` in, after creating the monthly partitions the span (± a day) needs."""
    s = quote_ident(schema)
    first, end = start - timedelta(days=1), start + timedelta(days=days + 2)
    month = datetime(first.year, first.month, 1, tzinfo=UTC)
    while month < end:
        await conn.execute(f"SELECT {s}.create_reading_partition($1)", month)
        month = (month + timedelta(days=32)).replace(day=1)
    await conn.copy_records_to_table("health_readings", records=rows, columns=COLUMNS, schema_name=schema)


async def add_profiles(conn: asyncpg.Connection, schema: str, users: int) -> None:
    """A profile for every user whose zone (``ZONES`` in turn) is not ``None``."""
    rows = [(user(i), ZONES[i % len(ZONES)], datetime(2026, 1, 1, tzinfo=UTC))
            for i in range(users) if ZONES[i % len(ZONES)] is not None]
    await conn.copy_records_to_table("user_profiles", records=rows, schema_name=schema,
                                     columns=("user_key", "timezone", "updated_at"))
