"""``python -m streams import`` through the real worker: Apple Health and Dexcom Clarity files
(the real samples and crafted ones with every trap) land in the warehouse once, in canonical
units at the right instants, and no identifying value reaches the warehouse, the DLQ, the
worker's log or its metrics. Importing again stores nothing new.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
import pytest
from import_files import FIXTURES, SECRETS, apple_export, dexcom_csv, record
from pipeline_support import ROOT, read_topic, wait_until_caught_up

from streams.config import Settings
from streams.connections import kafka_kwargs

pytestmark = pytest.mark.integration

USER = "PHI-importer-user-henriette@example.org"
NY = "2024-11-03 01:30:00"


def _crafted_apple() -> bytes:
    sys_rec = record("BloodPressureSystolic", "121", "mmHg", "2024-05-01 07:00:00 +0200", source="Omron")
    dia_rec = record("BloodPressureDiastolic", "79", "mmHg", "2024-05-01 07:00:00 +0200", source="Omron")
    sleep = "HKCategoryTypeIdentifierSleepAnalysis"
    body = "".join([
        record("HeartRate", "61", "count/min", f"{NY} -0400"),
        record("HeartRate", "64", "count/min", f"{NY} -0500"),  # the same wall time an hour later
        record("RestingHeartRate", "52", "count/min", "2024-05-01 00:00:00 +0200",
               "2024-05-01 23:59:00 +0200"),
        record("OxygenSaturation", "0.97", "%", "2024-05-01 03:00:00 +0200"),
        record("BodyFatPercentage", "0.223", "%", "2024-05-01 07:01:00 +0200"),
        record("BodyMassIndex", "22.5", "count", "2024-05-01 07:01:00 +0200"),
        record("BloodGlucose", "5.5", "mmol&lt;180.1558800000541&gt;/L", "2024-05-01 07:30:00 +0200"),
        record("StepCount", "412", "count", "2024-05-01 08:00:00 +0200", "2024-05-01 08:10:00 +0200"),
        record(sleep, "HKCategoryValueSleepAnalysisInBed", "", "2024-04-30 23:00:00 +0200",
               "2024-05-01 07:00:00 +0200"),
        record(sleep, "HKCategoryValueSleepAnalysisAsleepCore", "", "2024-04-30 23:30:00 +0200",
               "2024-05-01 01:00:00 +0200"),
        record("BodyMass", "70", "kg", "2024-05-01 07:01:00 +0200",
               metadata='<MetadataEntry key="Withings User Identifier" value="WITHINGS-ACC-5550123"/>'),
        sys_rec, dia_rec,
        '<Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Omron" '
        'startDate="2024-05-01 07:00:00 +0200" endDate="2024-05-01 07:00:00 +0200">' + sys_rec + dia_rec
        + "</Correlation>\n",
        '<Workout workoutActivityType="HKWorkoutActivityTypeRunning" sourceName="Henriette’s iPhone" '
        'startDate="2024-05-01 09:00:00 +0200" endDate="2024-05-01 09:30:00 +0200"><WorkoutRoute>'
        '<Location date="2024-05-01 09:00:00 +0200" latitude="37.8212" longitude="-122.4786"/>'
        "</WorkoutRoute></Workout>\n",
    ])
    return apple_export(body)


#: metric -> (count, canonical unit) of the crafted Apple export, by construction.
CRAFTED_APPLE = {"heart_rate": (2, "/min"), "resting_heart_rate": (1, "/min"), "oxygen_saturation": (1, "%"),
                 "body_fat_percentage": (1, "%"),
                 "body_mass_index": (1, "kg/m2"), "blood_glucose": (1, "mg/dL"), "steps": (1, "{steps}"),
                 "sleep_duration": (1, "min"), "body_weight": (1, "kg"),
                 "blood_pressure_systolic": (1, "mm[Hg]"), "blood_pressure_diastolic": (1, "mm[Hg]")}


def _files(tmp_path: Path) -> list[Path]:
    export_zip = tmp_path / "export.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("apple_health_export/export.xml", _crafted_apple())
        z.writestr("apple_health_export/export_cda.xml", "<ClinicalDocument>Henriette</ClinicalDocument>")
    export_zip.write_bytes(buffer.getvalue())
    cgm = tmp_path / "cgm-dst.csv"
    rows = [("2024-11-03T01:30:00", "EGV", "Low"), ("2024-11-03T01:35:00", "EGV", "95"),
            ("2024-11-03T01:30:00", "EGV", "High"), ("2024-11-03T01:35:00", "Alert", "55")]
    cgm.write_bytes(dexcom_csv(rows, new=True))
    return [export_zip, FIXTURES / "apple" / "export.xml", FIXTURES / "dexcom" / "clarity-export-g6.csv", cgm]


def _import(files: list[Path], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams", "import", *map(str, files), "--user-id", USER,
                           "--zone", "America/New_York", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def _expected() -> Counter[str]:
    expected = Counter({m: n for m, (n, _) in CRAFTED_APPLE.items()})
    sample = ET.parse(FIXTURES / "apple" / "export.xml").getroot()
    by_type = Counter(r.get("type") for r in sample if r.tag == "Record")
    expected["heart_rate"] += by_type["HKQuantityTypeIdentifierHeartRate"]
    expected["body_mass_index"] += by_type["HKQuantityTypeIdentifierBodyMassIndex"]
    text = (FIXTURES / "dexcom" / "clarity-export-g6.csv").read_text(encoding="utf-8-sig")
    expected["blood_glucose"] += sum(1 for line in text.splitlines() if line.split(",")[2:3] == ["EGV"]) + 3
    return expected


async def _stored(pg: asyncpg.Connection, schema: str) -> list[asyncpg.Record]:
    return await pg.fetch(f'SELECT * FROM "{schema}".health_readings')


async def test_apple_and_dexcom_exports_reach_the_warehouse_exactly_once(
        pipeline_settings: Settings, pipeline_env: dict[str, str], worker_process, pg: asyncpg.Connection,
        tmp_path: Path) -> None:
    env = {**os.environ, **pipeline_env}
    files = _files(tmp_path)
    worker_process.start()
    first = _import(files, env)
    assert first.returncode == 0, first.stderr
    summaries = [orjson.loads(line) for line in first.stderr.splitlines() if line.startswith("{")]
    assert [s["format"] for s in summaries if s["readings"]] == ["apple", "apple", "dexcom", "dexcom"]
    await wait_until_caught_up(pipeline_settings, pg, alive=worker_process.alive)
    schema = pipeline_settings.warehouse_schema
    rows = await _stored(pg, schema)

    assert Counter(r["metric"] for r in rows) == _expected()
    units = {m: {r["unit"] for r in rows if r["metric"] == m} for m in CRAFTED_APPLE}
    assert units == {m: {unit} for m, (_, unit) in CRAFTED_APPLE.items()}
    assert await pg.fetchval(f'SELECT count(*) FROM "{schema}".dead_letters') == 0

    def at(metric: str, **where: object) -> list[asyncpg.Record]:
        return [r for r in rows if r["metric"] == metric and all(r[k] == v for k, v in where.items())]

    hr = {r["value"]: r["measured_at"] for r in at("heart_rate", statistic=None) if r["value"] in (61, 64)}
    assert hr == {61: datetime(2024, 11, 3, 5, 30, tzinfo=UTC), 64: datetime(2024, 11, 3, 6, 30, tzinfo=UTC)}
    assert [r["value"] for r in at("resting_heart_rate", statistic="average")] == [52]
    assert [r["value"] for r in at("oxygen_saturation")] == [pytest.approx(97.0)]
    assert [r["value"] for r in at("blood_glucose", measured_at=datetime(2024, 5, 1, 5, 30, tzinfo=UTC))] == [
        pytest.approx(5.5 * 18.01558800000541)]
    bp = {r["metric"]: r["measured_at"] for r in rows if r["metric"].startswith("blood_pressure")}
    assert set(bp.values()) == {datetime(2024, 5, 1, 5, 0, tzinfo=UTC)}
    # Dexcom, New York wall clock 01:30 twice: EDT (05:30Z) then EST (06:30Z); Low/High censored
    cgm = {r["measured_at"]: (r["value"], orjson.loads(r["metadata"]) if r["metadata"] else None)
           for r in at("blood_glucose") if r["measured_at"].year == 2024 and r["measured_at"].month == 11}
    assert cgm == {datetime(2024, 11, 3, 5, 30, tzinfo=UTC): (40.0, {"censored": "below"}),
                   datetime(2024, 11, 3, 5, 35, tzinfo=UTC): (95.0, None),
                   datetime(2024, 11, 3, 6, 30, tzinfo=UTC): (400.0, {"censored": "above"})}

    second = _import(files, env)
    assert second.returncode == 0, second.stderr
    await wait_until_caught_up(pipeline_settings, pg, alive=worker_process.alive)
    assert len(await _stored(pg, schema)) == len(rows)

    dumps = [orjson.dumps([dict(r) for r in await _stored(pg, schema)], default=str).decode(),
             orjson.dumps([dict(r) for r in await pg.fetch(f'SELECT * FROM "{schema}".dead_letters')],
                          default=str).decode(),
             worker_process.log_path.read_text(errors="replace"), first.stderr + second.stderr]
    port = pipeline_env["HEALTHMATE_WEB_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        dumps.append(response.read().decode())
    dlq = await read_topic(kafka_kwargs(pipeline_settings), pipeline_settings.dlq_topic, timeout=3)
    dumps.append(repr([(m.key, m.value, m.headers) for m in dlq]))
    for secret in (*SECRETS, "Joe", "Schmoe", "1/1/1970", "1990-02-02", "Simon", USER):
        leaks = [i for i, text in enumerate(dumps) if secret in text]
        assert not leaks, f"{secret!r} leaked into {leaks} (warehouse, dead letters, log, CLI, metrics, DLQ)"
