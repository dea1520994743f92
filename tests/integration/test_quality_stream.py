"""In-stream quality on the real Kafka and PostgreSQL, with a real worker process.

A known mix is produced twice, with a worker restart in between. The closed 5 s windows in
``quality_windows`` must add up to exactly the hand-computed counts, and the 1 h window,
read from the table's changelog (what recovery replays), must hold both phases: had the
table been reset by the restart it would hold the second phase only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
import pytest
from pipeline_support import read_topic, wait_until_caught_up

from streams.domain.quality import DimensionCounts
from streams.sink.migrations import quote_ident

pytestmark = [pytest.mark.integration, pytest.mark.slow]

THRESHOLD = 0.9
MIN_RECORDS = 3  # windows with fewer records are "collecting": never below the threshold


@pytest.fixture
def pipeline_env(pipeline_env):
    return {**pipeline_env, "HEALTHMATE_QUALITY_WINDOWS_S": "[5, 3600]",
            "HEALTHMATE_QUALITY_WINDOW_GRACE_S": "1", "HEALTHMATE_QUALITY_TICK_INTERVAL_S": "0.5",
            "HEALTHMATE_QUALITY_THRESHOLD": str(THRESHOLD),
            "HEALTHMATE_QUALITY_MIN_RECORDS": str(MIN_RECORDS)}


def c(passed, judged, records):
    return DimensionCounts(tuple(passed), tuple(judged), records)


# Per (metric, source): passed and judged per dimension (completeness, validity, accuracy,
# consistency, timeliness), records, for one phase of mix() below.
EXPECTED = {
    ("heart_rate", "garmin"): c([8, 8, 7, 8, 7], [8, 10, 8, 8, 8], 10),
    ("steps", "fitbit"): c([2, 5, 5, 5, 5], [5, 5, 5, 5, 5], 5),
    ("blood_pressure_systolic", "withings"): c([2, 2, 2, 1, 2], [2, 2, 2, 2, 2], 2),
    ("blood_pressure_diastolic", "withings"): c([2, 2, 2, 1, 2], [2, 2, 2, 2, 2], 2),
}  # the undecodable message has no catalogue metric, so no quality window (a DLQ-rate concern)


def mix(now: datetime) -> list[tuple[bytes, bytes]]:
    """(key, value) messages with known defects; fresh event ids on every call."""
    tag = uuid.uuid4().hex[:8]

    def ts(**delta) -> str:
        return (now - timedelta(**delta)).isoformat()

    def r(i, metric, value, unit, at) -> dict:
        return {"event_id": f"{tag}-{metric}-{i}", "metric": metric, "value": value, "unit": unit,
                "timestamp": at}

    heart = [r(i, "heart_rate", 60 + i, "bpm", ts(minutes=i + 1)) for i in range(6)]
    heart += [r(6, "heart_rate", 250, "bpm", ts(minutes=7)),          # outlier: accuracy
              r(7, "heart_rate", 70, "bpm", ts(hours=3)),             # late: timeliness
              r(8, "heart_rate", 70, "furlongs", ts(minutes=9)),      # rejected unknown_unit
              r(9, "heart_rate", 70, "furlongs", ts(minutes=10))]     # rejected unknown_unit
    pressure = [r(0, "blood_pressure_systolic", 85, "mmHg", ts(minutes=2)),   # 85 <= 90: conflict
                r(0, "blood_pressure_diastolic", 90, "mmHg", ts(minutes=2)),
                r(1, "blood_pressure_systolic", 120, "mmHg", ts(minutes=3)),
                r(1, "blood_pressure_diastolic", 80, "mmHg", ts(minutes=3))]
    messages = [
        (b"u-heart", {"batch_id": f"{tag}-h", "user_id": "u-heart", "device_id": "watch-1",
                      "source": "garmin", "readings": heart}),
        (b"u-bp", {"batch_id": f"{tag}-bp", "user_id": "u-bp", "device_id": "cuff-1",
                   "source": "withings", "readings": pressure}),
    ]
    for i in range(5):  # three without a device id: completeness
        single = {"user_id": "u-steps", "source": "fitbit", **r(i, "steps", 100 * i, "count", ts(minutes=i))}
        if i >= 3:
            single["device_id"] = "band-1"
        messages.append((b"u-steps", single))
    out = [(k, orjson.dumps(v)) for k, v in messages]
    return [*out, (b"u-bad", b"{not json")]


async def closed_counts(pg, schema: str, size_s: int) -> dict[tuple[str, str], DimensionCounts]:
    rows = await pg.fetch(f"SELECT * FROM {quote_ident(schema)}.quality_windows WHERE window_size = $1",
                          timedelta(seconds=size_s))
    total: dict[tuple[str, str], DimensionCounts] = defaultdict(DimensionCounts)
    for row in rows:
        assert row["window_end"] - row["window_start"] == timedelta(seconds=size_s)
        judged = row["records"] >= MIN_RECORDS
        assert row["below_threshold"] is (judged and row["overall_score"] < THRESHOLD)
        assert (row["quality_level"] == "collecting") is not judged
        total[(row["metric"], row["source"])] += DimensionCounts.from_dict(orjson.loads(row["counts"]))
    return dict(total)


async def wait_for_windows(pg, schema: str, expected, worker, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    got: dict = {}
    while loop.time() < deadline:
        assert worker.alive(), worker.log_path.read_text(errors="replace")[-3000:]
        got = await closed_counts(pg, schema, 5)
        if got == expected:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"closed 5 s windows {got} != expected {expected}")


async def hour_counts(settings, pg) -> dict[tuple[str, str], DimensionCounts]:
    """1 h windows: open ones from the changelog's latest state per key, plus closed ones."""
    records = await read_topic(settings.kafka_bootstrap, f"{settings.app_id}-quality-windows-changelog")
    latest = {orjson.loads(rec.key): orjson.loads(rec.value) for rec in records if rec.value is not None}
    total = defaultdict(DimensionCounts, await closed_counts(pg, settings.warehouse_schema, 3600))
    for key, state in latest.items():
        metric, _, source = key.partition("|")
        for doc in (state or {}).get("open", {}).get("3600", {}).values():
            total[(metric, source)] += DimensionCounts.from_dict(doc)
    return dict(total)


def times(counts: dict, n: int) -> dict:
    return {k: DimensionCounts(tuple(p * n for p in v.passed), tuple(j * n for j in v.judged), v.records * n)
            for k, v in counts.items()}


async def produce(producer, settings) -> None:
    for key, value in mix(datetime.now(UTC)):
        await producer.send(settings.raw_topic, value, key=key)
    await producer.flush()


async def test_windows_match_the_mix_and_survive_a_restart(pipeline_settings, raw_producer, pg,
                                                          worker_process):
    settings = pipeline_settings
    schema = settings.warehouse_schema
    worker_process.start()
    await produce(raw_producer, settings)
    await wait_until_caught_up(settings, pg, timeout=60, alive=worker_process.alive)
    await wait_for_windows(pg, schema, EXPECTED, worker_process)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while (await hour_counts(settings, pg)) != EXPECTED:
        assert loop.time() < deadline, f"1 h window never reached {EXPECTED}"
        await asyncio.sleep(0.25)

    url = f"http://127.0.0.1:{worker_process.env['HEALTHMATE_WEB_PORT']}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        exposition = await response.text()
    assert 'healthmate_quality_score{dimension="completeness",metric="steps",source="fitbit"}' in exposition
    assert "healthmate_quality_windows_below_threshold_total" in exposition

    worker_process.stop()
    worker_process.start()
    await produce(raw_producer, settings)
    await wait_until_caught_up(settings, pg, timeout=60, alive=worker_process.alive)
    await wait_for_windows(pg, schema, times(EXPECTED, 2), worker_process)
    deadline = loop.time() + 15
    while (hours := await hour_counts(settings, pg)) != times(EXPECTED, 2):
        assert loop.time() < deadline, f"1 h windows {hours} != both phases (reset would give one)"
        await asyncio.sleep(0.25)
    below = await pg.fetch(f"SELECT DISTINCT metric FROM {quote_ident(schema)}.quality_windows "
                           "WHERE below_threshold")
    assert "steps" in {r["metric"] for r in below}  # 3 of 5 without a device: 0.88 < 0.9
    assert "unknown" not in {r["metric"] for r in below}
