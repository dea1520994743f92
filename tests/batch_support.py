"""Helpers of the batch tests: settings for an isolated schema, and fact rows made by the real
domain code (``process_message``) and stored by the real sink (``Warehouse.write_batch``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from streams.config import Settings
from streams.domain.validate import process_message
from streams.errors import RejectReason
from streams.records import DeadLetter, MessageContext, NormalisedReading
from streams.rules import rules_from_settings
from streams.sink.copy_encoding import DeadLetterRow
from streams.sink.migrations import quote_ident
from streams.sink.warehouse import Warehouse

DAY = datetime(2026, 3, 10, tzinfo=UTC)


def batch_env(kafka_bootstrap: str, pg_dsn: str, name: str) -> dict[str, str]:
    """HEALTHMATE_* variables for a pipeline of its own (topics, schema, groups named ``name``)."""
    return {
        "HEALTHMATE_DEV_MODE": "false",
        "HEALTHMATE_PSEUDONYM_KEY": f"test-key-{name}",
        "HEALTHMATE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HEALTHMATE_PG_DSN": pg_dsn,
        "HEALTHMATE_RAW_TOPIC": f"{name}.raw",
        "HEALTHMATE_DLQ_TOPIC": f"{name}.dlq",
        "HEALTHMATE_CONSUMER_GROUP": f"{name}-sink",
        "HEALTHMATE_WAREHOUSE_SCHEMA": name,
        "HEALTHMATE_ETL_RETRY_INITIAL_S": "0.01",
        "HEALTHMATE_SINK_BATCH_SIZE": "7",  # several warehouse transactions per replay
        "HEALTHMATE_OUTBOUND_ALLOW_HOSTS": "127.0.0.1",  # the tests' local webhook receivers
    }


def settings_for(env: dict[str, str]) -> Settings:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return Settings()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def reading(user: str, metric: str, value: Any, unit: str, at: datetime, *, source: str = "garmin",
            device: str | None = "d-1", event_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id or f"e-{uuid.uuid4().hex[:12]}", "user_id": user, "device_id": device,
            "source": source, "metric": metric, "value": value, "unit": unit,
            "timestamp": at.isoformat().replace("+00:00", "Z")}


def normalise(settings: Settings, docs: Iterable[dict[str, Any]], *, lag: timedelta = timedelta(minutes=2)
              ) -> list[NormalisedReading]:
    """Readings as the live worker would make them (ingested ``lag`` after measurement)."""
    rules = rules_from_settings(settings)
    out: list[NormalisedReading] = []
    for i, doc in enumerate(docs):
        at = datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00")) + lag
        outcome = process_message(orjson.dumps(doc), MessageContext("seed", 0, i, at, at), rules)
        assert not outcome.dead_letters, outcome.dead_letters
        out.extend(outcome.readings)
    return out


async def store(warehouse: Warehouse, readings: list[NormalisedReading],
                dead_letters: Iterable[DeadLetterRow] = ()) -> None:
    await warehouse.write_batch("seed", readings, list(dead_letters), {})


def sample_day(day: datetime = DAY) -> list[dict[str, Any]]:
    """Two users, several metrics and sources, units that need converting."""
    h = timedelta(hours=1)
    return [
        reading("alice", "heart_rate", 61, "bpm", day + 1 * h),
        reading("alice", "heart_rate", 75, "bpm", day + 2 * h, source="fitbit"),
        reading("alice", "heart_rate", 88.5, "beats/min", day + 3 * h),
        reading("alice", "heart_rate", 70, "bpm", day + 23 * h),
        reading("alice", "body_weight", 150, "lb", day + 7 * h, source="withings"),
        reading("alice", "steps", 4200, "count", day + 9 * h),
        reading("bob", "heart_rate", 55, "bpm", day + 4 * h),
        reading("bob", "blood_glucose", 5.5, "mmol/L", day + 5 * h, source="dexcom"),
        reading("bob", "blood_glucose", 6.1, "mmol/L", day + 6 * h, source="dexcom"),
        reading("bob", "blood_glucose", 7.9, "mmol/L", day + 8 * h, source="dexcom"),
    ]


# ----------------------------------------------------------------------------- fixtures
# Import them by name into a test module to use them.


@pytest.fixture
def day0() -> datetime:
    """Midnight (UTC) starting yesterday: recent enough that no reading is late or future."""
    return datetime.combine(datetime.now(UTC).date(), time(), UTC) - timedelta(days=1)


@pytest.fixture
async def batch_settings(pg_dsn: str, unique_name: str) -> AsyncIterator[Settings]:
    """Settings of an isolated schema (dropped afterwards); Kafka from the environment."""
    kafka = os.environ.get("HEALTHMATE_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
    yield settings_for(batch_env(kafka, pg_dsn, unique_name))
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(unique_name)} CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def warehouse(batch_settings: Settings) -> AsyncIterator[Warehouse]:
    wh = Warehouse(batch_settings.pg_dsn_value, batch_settings.warehouse_schema, pool_max=6)
    await wh.start()
    yield wh
    await wh.stop()


def history(day0: datetime) -> list[dict[str, Any]]:
    """Earlier days: alice is active three days running, bob has a gap."""
    d1, d2, h = day0 - timedelta(days=1), day0 - timedelta(days=2), timedelta(hours=1)
    return [reading("alice", "heart_rate", 65, "bpm", d1 + 10 * h),
            reading("alice", "steps", 3000, "count", d1 + h),
            reading("alice", "heart_rate", 60, "bpm", d2 + 5 * h),
            reading("bob", "heart_rate", 58, "bpm", d2 + 6 * h)]


def dead_letters() -> list[DeadLetterRow]:
    unit = DeadLetter(b"{}", RejectReason.UNKNOWN_UNIT, "unit", "heart_rate", "garmin")
    missing = DeadLetter(b"{}", RejectReason.MISSING_FIELD, "missing", None, None)
    return [DeadLetterRow("seed", 0, 100, 0, unit), DeadLetterRow("seed", 0, 101, 0, missing)]


@pytest.fixture
async def seeded(batch_settings: Settings, warehouse: Warehouse, day0: datetime) -> datetime:
    """Three days of facts and two dead letters; returns the time just after they were stored."""
    await store(warehouse, normalise(batch_settings, sample_day(day0) + history(day0)), dead_letters())
    return datetime.now(UTC) + timedelta(seconds=1)


async def table_rows(pool: asyncpg.Pool, schema_q: str, table: str) -> list[asyncpg.Record]:
    """Every row of a target table, in key order."""
    return await pool.fetch(f"SELECT * FROM {schema_q}.{quote_ident(table)} ORDER BY 1, 2, 3")
