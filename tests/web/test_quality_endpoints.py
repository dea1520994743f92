"""Quality analysis over HTTP, and the in-stream quality level in the status."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration


async def test_analyze_returns_and_stores_the_report(client, api_worker, pg, produce, make_reading, now,
                                                     eventually):  # type: ignore[no-untyped-def]
    schema = quote_ident(api_worker.settings.warehouse_schema)
    ids = [f"q-{uuid.uuid4().hex[:10]}" for _ in range(4)]
    for i, event_id in enumerate(ids):
        await produce(make_reading(event_id, at=now - timedelta(minutes=2, seconds=i), metric="blood_glucose",
                                   value=95 + i, unit="mg/dL"))
    await eventually(lambda: pg.fetchval(
        f"SELECT count(*) = 4 FROM {schema}.health_readings WHERE event_id = ANY($1)", ids))

    reply = await client.call("POST", "/data-quality/analyze", role="analyst",
                              params={"data_type": "blood_glucose", "sample_size": "3"})
    assert reply.status == 200, reply.body
    report = reply.body
    assert report["data_type"] == "blood_glucose" and report["sample_size"] == 3
    assert report["requested_sample_size"] == 3
    assert 0 <= report["overall_score"] <= 1 and report["quality_level"]
    assert set(report["dimension_scores"]) >= {"completeness", "validity"}
    stored = await pg.fetchrow(
        f"SELECT data_type, sample_size FROM {schema}.quality_reports WHERE report_id = $1",
        uuid.UUID(report["report_id"]))
    assert dict(stored) == {"data_type": "blood_glucose", "sample_size": 3}


@pytest.mark.parametrize("params", [
    {"data_type": "heart_rate", "sample_size": "100001"},
    {"data_type": "heart_rate", "sample_size": "0"},
    {"data_type": "heart_rate", "sample_size": "ten"},
    {"sample_size": "10"},
    {"data_type": "heart_rate", "sample_size": "10", "extra": "1"},
    {"data_type": "x" * 65},
    {"data_type": "no_such_metric"},
])
async def test_analyze_rejects_bad_parameters(client, params) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("POST", "/data-quality/analyze", role="analyst", params=params)
    assert reply.status == 422, reply.body
    assert reply.body["error"] == "invalid_input"


async def test_status_shows_the_current_quality_level_per_metric(client, produce, make_reading, now,
                                                                 eventually):  # type: ignore[no-untyped-def]
    await produce(make_reading(f"ql-{uuid.uuid4().hex[:10]}", at=now - timedelta(seconds=30),
                               metric="respiratory_rate", value=16, unit="breaths/min"))

    async def level():  # type: ignore[no-untyped-def]
        reply = await client.call("GET", "/pipeline/status", role="viewer")
        assert reply.status == 200, reply.body
        return (reply.body.get("quality") or {}).get("respiratory_rate")

    entry = await eventually(level)
    # One reading is not enough to judge a window (HEALTHMATE_QUALITY_MIN_RECORDS, 20 by default).
    assert (entry["quality_level"], entry["overall_score"]) == ("collecting", None)
    assert entry["below_threshold"] is False
    assert entry["min_records"] == 20 and 1 <= entry["records"] < 20
    assert entry["sources"][0]["source"] == "garmin" and entry["sources"][0]["records"] >= 1
    assert entry["sources"][0]["collecting"] is True and 0 <= entry["sources"][0]["overall_score"] <= 1
