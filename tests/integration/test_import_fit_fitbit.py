"""FIT and Fitbit readers through the real worker (``python -m streams worker``): every
reading lands once, in canonical units at the right instants, nothing is dead-lettered, no
serial number or raw user id reaches the warehouse, and importing again stores nothing new."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from import_support import split
from pipeline_support import read_topic, wait_until_caught_up

from streams.domain.catalogue import DEFAULT_CATALOGUE
from streams.importers.base import ImportContext
from streams.importers.fit import read_fit
from streams.importers.fitbit import read_fitbit
from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "wearables"
USER = "PHI-import-user-jane.doe-19750412@example.org"
# file_id serial numbers of the fenix2 and vivofit files (the scale's, 1234, is too short to search)
SERIALS = ("3882015183", "3882708276")
FIT_FILES = ("activity-small-fenix2-run.fit", "MonitoringFile.fit", "WeightScaleSingleUser.fit")
FITBIT_CRAFTED = {
    "heart_rate-2024-11-03.json": [{"dateTime": f"11/03/24 {t}", "value": {"bpm": 70, "confidence": 2}}
                                   for t in ("00:59:50", "01:30:00", "01:00:10", "02:00:10")],
    "steps-2024-03-10.json": [{"dateTime": "03/10/24 01:59:00", "value": "12"},
                              {"dateTime": "03/10/24 02:30:00", "value": "99"},
                              {"dateTime": "03/10/24 03:00:00", "value": "30"}],
    "weight-2024-01-01.json": [{"logId": 1, "weight": 198.1, "bmi": 30.04, "fat": 28.7, "date": "01/15/24",
                                "time": "07:13:26", "source": "Aria"}],
    "sleep-2024-03-01.json": [{"logId": 2, "dateOfSleep": "2024-03-10", "minutesAsleep": 360,
                               "startTime": "2024-03-09T23:04:00.000", "endTime": "2024-03-10T06:55:30.000",
                               "timeInBed": 415, "mainSleep": True, "type": "stages"}],
}


def messages() -> list[dict]:
    out: list[dict] = []
    ctx = ImportContext(user_id=USER, zone=ZoneInfo("America/New_York"))
    for name in FIT_FILES:
        out += split(read_fit(io.BytesIO((FIXTURES / "fit" / name).read_bytes()), name, ctx))[0]
    files = {name: json.dumps(body).encode() for name, body in FITBIT_CRAFTED.items()}
    files["resting_heart_rate-2023-03-02.json"] = (
        FIXTURES / "fitbit" / "resting_heart_rate-2023-03-02.json").read_bytes()
    for name, raw in files.items():
        out += split(read_fitbit(io.BytesIO(raw), name, ctx))[0]
    return out


def _utc(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


async def _publish(producer, topic: str, docs: list[dict]) -> None:
    for doc in docs:
        await producer.send(topic, orjson.dumps(doc), key=doc["user_id"].encode())
    await producer.flush()


async def test_imports_land_once_in_canonical_units(pipeline_settings, raw_producer, pg, worker_process):
    settings = pipeline_settings
    docs = messages()
    expected = {(d["metric"], _utc(d["timestamp"]), _utc(d.get("timestamp_end")), d.get("statistic"))
                for d in docs}
    assert len(expected) == len(docs)  # no two readings share an event id
    await _publish(raw_producer, settings.raw_topic, docs)
    worker_process.start()
    try:
        await wait_until_caught_up(settings, pg, timeout=180, alive=worker_process.alive)
        s = quote_ident(settings.warehouse_schema)
        rows = await pg.fetch(f"SELECT metric, unit, measured_at, measured_until, statistic, "
                              f"row_to_json(r)::text AS text FROM {s}.health_readings r")
        stored = {(r["metric"], r["measured_at"], r["measured_until"], r["statistic"]) for r in rows}
        assert stored == expected
        assert Counter(r["metric"] for r in rows) == Counter(d["metric"] for d in docs)
        assert all(r["unit"] == DEFAULT_CATALOGUE[r["metric"]].canonical_unit for r in rows)
        assert {"heart_rate", "steps", "body_weight", "body_fat_percentage", "resting_heart_rate",
                "sleep_duration"} <= {r["metric"] for r in rows}
        text = " ".join(r["text"] for r in rows)
        assert USER not in text
        assert [serial for serial in SERIALS if serial in text] == []
        assert await read_topic(settings.kafka_bootstrap, settings.dlq_topic) == []

        await _publish(raw_producer, settings.raw_topic, docs)  # the same files again
        await wait_until_caught_up(settings, pg, timeout=180, alive=worker_process.alive)
        assert await pg.fetchval(f"SELECT count(*) FROM {s}.health_readings") == len(docs)
    finally:
        worker_process.stop()
