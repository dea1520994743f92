# ruff: noqa: F811 - pytest fixtures imported from batch_support are used as parameters
"""Lineage events (stored, validated with :mod:`lineage_check`), the lineage graph, and
webhook notifications."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from lineage_check import validate
from pipeline_support import free_port

from batch import api
from streams.sink.migrations import quote_ident

pytestmark = [pytest.mark.integration]
def day(day0):  # type: ignore[no-untyped-def]
    return day0, day0 + timedelta(days=1)


async def events(warehouse, run_id) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    rows = await warehouse.pool.fetch(
        f"SELECT event FROM {quote_ident(warehouse.schema)}.lineage_events WHERE run_id = $1 ORDER BY id",
        run_id)
    return [json.loads(r["event"]) for r in rows]


async def test_runs_emit_valid_openlineage_events_and_a_lineage_graph(batch_settings, warehouse, seeded,
                                                                      day0) -> None:
    targets = ["aggregated_health_metrics", "system_performance"]
    job = await api.create_job(warehouse, {"job_name": "lineage", "target_tables": targets})
    run = await api.run_job(batch_settings, job.job_id, warehouse=warehouse,
                            interval=(day0 - timedelta(days=2), seeded))
    start, complete = await events(warehouse, run.run_id)
    for doc in (start, complete):
        validate(doc)
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == complete["run"]["runId"] == str(run.run_id)
    assert complete["job"]["namespace"] == "healthmate" and complete["job"]["name"] == "lineage"
    assert {d["name"].rsplit(".", 1)[1] for d in complete["inputs"]} == {"health_readings", "dead_letters"}
    datasets = complete["inputs"] + complete["outputs"]
    assert all(d["namespace"] == "postgres://127.0.0.1:5432" for d in datasets)
    metrics = complete["inputs"][0]["inputFacets"]["dataQualityMetrics"]
    assert metrics["rowCount"] == run.rows_extracted
    assertion = complete["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"][0]
    assert assertion["success"] is True and assertion["actual"] == f"{run.quality_score:.4f}"
    out = {d["name"].rsplit(".", 1)[1]: d for d in complete["outputs"]}
    p95 = out["aggregated_health_metrics"]["facets"]["columnLineage"]["fields"]["p95"]["inputFields"][0]
    assert p95["field"] == "value" and p95["transformations"][0]["subtype"] == "AGGREGATION"
    fields = out["system_performance"]["facets"]["schema"]["fields"]
    assert [f["name"] for f in fields][:2] == ["hour", "processed"]

    graph = await api.job_lineage(warehouse, batch_settings, job.job_id)
    assert graph["last_run"] == {"run_id": str(run.run_id), "event_type": "COMPLETE",
                                 "event_time": complete["eventTime"]}
    ids = {n["id"] for n in graph["sources"]} | {n["id"] for n in graph["targets"]}
    ids |= {t["id"] for t in graph["transformations"]}
    assert all(e["from"] in ids and e["to"] in ids for e in graph["edges"])
    rejected = next(t for t in graph["transformations"] if t["id"].endswith("system_performance#rejected"))
    assert rejected["inputs"][0]["dataset"].endswith(".dead_letters")
    assert {"from": rejected["id"], "to": rejected["target"]} in graph["edges"]


async def test_failed_and_replay_runs_emit_fail_and_masking_transformations(batch_settings, warehouse,
                                                                            day0) -> None:
    job = await api.create_job(warehouse, {"job_name": "doomed", "target_tables": ["user_engagement"],
                                           "retry_count": 0})
    await warehouse.pool.execute(f"DROP TABLE {quote_ident(warehouse.schema)}.user_engagement")
    run = await api.run_job(batch_settings, job.job_id, warehouse=warehouse, interval=day(day0))
    start, fail = await events(warehouse, run.run_id)
    validate(fail)
    assert fail["eventType"] == "FAIL" and fail["run"]["facets"]["errorMessage"]["message"] == run.error

    replay = await api.backfill(batch_settings, "no.such.topic", "0:0")
    start, fail = await events(warehouse, replay.run_id)
    for doc in (start, fail):
        validate(doc)
    topic = fail["inputs"][0]
    assert topic["namespace"].startswith("kafka://") and topic["name"] == "no.such.topic"
    user_key = fail["outputs"][0]["facets"]["columnLineage"]["fields"]["user_key"]["inputFields"][0]
    assert user_key["field"] == "user_id" and user_key["transformations"][0]["masking"] is True


@pytest.fixture
async def webhook():  # type: ignore[no-untyped-def]
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/hook", received
    await runner.cleanup()


async def test_webhook_gets_the_summary_and_a_dead_webhook_fails_nothing(batch_settings, warehouse, seeded,
                                                                         day0, webhook) -> None:
    url, received = webhook
    base = {"target_tables": ["user_engagement"], "notification_on_success": True,
            "notification_webhook_url": url}
    ok = await api.create_job(warehouse, {"job_name": "notify_ok", **base})
    run = await api.run_job(batch_settings, ok.job_id, warehouse=warehouse, interval=day(day0))
    assert run.status == "succeeded"
    assert received == [{"event": "etl_run_finished", **run.to_json_dict()}]
    assert received[0]["rows_loaded"] == 2 and received[0]["status"] == "succeeded"

    quiet = await api.create_job(warehouse, {"job_name": "quiet", **base, "notification_on_success": False})
    await api.run_job(batch_settings, quiet.job_id, warehouse=warehouse, interval=day(day0))
    gated = await api.create_job(warehouse, {"job_name": "gated_notify", **base,
                                             "data_quality_threshold": 1.0,
                                             "target_tables": ["system_performance"]})
    failed = await api.run_job(batch_settings, gated.job_id, warehouse=warehouse,
                               interval=(day0 - timedelta(days=1), seeded))
    assert failed.status == "failed" and len(received) == 2
    assert received[1]["status"] == "failed" and received[1]["error"].startswith("quality gate:")

    dead_url = f"http://127.0.0.1:{free_port()}/hook"
    for name, target in (("dead_hook", dead_url), ("sad_hook", url.replace("/hook", "/missing"))):
        job = await api.create_job(warehouse, {"job_name": name, **base, "notification_webhook_url": target})
        run = await api.run_job(batch_settings, job.job_id, warehouse=warehouse,
                                interval=day(day0))
        assert run.status == "succeeded" and run.rows_loaded == 2
    assert len(received) == 2
