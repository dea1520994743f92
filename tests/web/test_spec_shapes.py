"""The specification's two HTTP examples, sent verbatim to a real worker; the shapes it promises."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta

import pytest
from pipeline_support import documented_level

from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration

# Byte for byte the specification's job body.
SPEC_JOB_BODY = """{"job_name": "Health Metrics Daily ETL", "pipeline_type": "batch", "source_tables": ["health_metrics", "user_profiles"], "target_tables": ["aggregated_health_metrics"], "schedule": "0 2 * * *", "enabled": true, "retry_count": 3, "timeout_minutes": 60, "batch_size": 1000, "parallel_workers": 4, "data_quality_threshold": 0.8, "notification_on_failure": true, "notification_on_success": false}"""  # noqa: E501
SPEC_ANALYZE = "/data-quality/analyze?data_type=health_metrics&sample_size=1000"
QUALITY_METRICS = {"completeness", "accuracy", "consistency", "timeliness", "validity", "overall_score",
                   "quality_level", "issues", "recommendations"}


async def test_the_spec_job_body_answers_201(client, api_worker, pg) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("POST", "/etl-jobs", role="operator", data=SPEC_JOB_BODY,
                              headers={"Content-Type": "application/json"})
    assert reply.status == 201, reply.body
    job = reply.body
    assert uuid.UUID(job["job_id"])  # generated, as none was given
    sent = json.loads(SPEC_JOB_BODY)
    for field in set(sent) - {"source_tables"}:
        assert job[field] == sent[field], field
    assert job["source_tables"] == ["health_readings", "user_profiles"]  # the alias, by its real name
    try:
        fetched = await client.call("GET", f"/etl-jobs/{job['job_id']}", role="viewer")
        assert fetched.status == 200 and fetched.body["job"]["job_name"] == "Health Metrics Daily ETL"
        again = await client.call("POST", "/etl-jobs", role="operator", data=SPEC_JOB_BODY,
                                  headers={"Content-Type": "application/json"})
        assert again.status == 409  # the display name is still unique
    finally:
        assert (await client.call("DELETE", f"/etl-jobs/{job['job_id']}", role="admin")).status == 200


async def test_a_caller_chosen_job_id_names_the_job_everywhere(client, api_worker) -> None:  # type: ignore[no-untyped-def]
    body = {**json.loads(SPEC_JOB_BODY), "job_id": "health_metrics_etl", "job_name": "Spec job, by id"}
    reply = await client.call("POST", "/etl-jobs", role="operator", json=body)
    assert reply.status == 201, reply.body
    try:
        assert reply.body["job_id"] == "health_metrics_etl"
        lineage = await client.call("GET", "/data-lineage/health_metrics_etl", role="viewer")
        assert lineage.status == 200 and lineage.body["job"]["job_id"] == "health_metrics_etl"
        run = await client.call("POST", "/etl-jobs/health_metrics_etl/run", role="operator")
        assert run.status == 202
        assert run.body["location"].startswith("/data-pipeline/etl-jobs/health_metrics_etl/runs/")
    finally:
        assert (await client.call("DELETE", "/etl-jobs/health_metrics_etl", role="admin")).status == 200


async def test_the_spec_analysis_answers_the_spec_shape(client, api_worker, pg, produce, make_reading, now,  # type: ignore[no-untyped-def]
                                                        eventually) -> None:
    schema = quote_ident(api_worker.settings.warehouse_schema)
    ids = [f"spec-{uuid.uuid4().hex[:10]}" for _ in range(3)]
    at = now - timedelta(minutes=3)
    for event_id, (metric, value, unit) in zip(ids, [("heart_rate", 70, "bpm"), ("steps", 500, "steps"),
                                                     ("body_weight", 80, "kg")], strict=True):
        await produce(make_reading(event_id, at=at, metric=metric, value=value, unit=unit))
    await eventually(lambda: pg.fetchval(
        f"SELECT count(*) = 3 FROM {schema}.health_readings WHERE event_id = ANY($1)", ids))

    reply = await client.call("POST", SPEC_ANALYZE, role="analyst")
    assert reply.status == 200, reply.body
    report = reply.body
    assert {"report_id", "data_type", "quality_metrics", "sample_size", "issues_found",
            "recommendations_count", "generated_at"} <= set(report)
    assert report["data_type"] == "health_metrics"
    assert 3 <= report["sample_size"] <= 1000
    metrics = report["quality_metrics"]
    assert set(metrics) == QUALITY_METRICS
    for name in ("completeness", "accuracy", "consistency", "timeliness", "validity", "overall_score"):
        assert isinstance(metrics[name], float) and 0 <= metrics[name] <= 1, name
    assert metrics["quality_level"] == documented_level(metrics["overall_score"])
    assert report["issues_found"] == len(metrics["issues"])
    assert report["recommendations_count"] == len(metrics["recommendations"])
    assert metrics["overall_score"] == report["overall_score"]  # today's fields stay beside
    assert datetime.fromisoformat(report["generated_at"]).tzinfo is not None
    assert re.fullmatch(r"[0-9a-f-]{36}", report["report_id"])

    stored = await client.call("GET", f"/data-quality/reports/{report['report_id']}", role="analyst")
    assert stored.status == 200 and stored.body == report
    missing = await client.call("GET", f"/data-quality/reports/{uuid.uuid4()}", role="analyst")
    assert missing.status == 404
    malformed = await client.call("GET", "/data-quality/reports/not-a-report", role="analyst")
    assert malformed.status == 422
