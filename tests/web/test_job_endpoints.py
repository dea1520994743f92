"""ETL jobs and lineage over HTTP: the full life of a job, on the real worker and warehouse."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration


def job_body(name: str, **extra: object) -> dict[str, object]:
    return {"job_name": name, "target_tables": ["aggregated_health_metrics"],
            "notification_on_failure": False, **extra}


async def test_job_lifecycle_create_list_get_run_lineage_delete(
        client, api_worker, pg, produce, make_reading, now, eventually):  # type: ignore[no-untyped-def]
    ids = [f"job-{uuid.uuid4().hex[:10]}" for _ in range(3)]
    for i, event_id in enumerate(ids):
        await produce(make_reading(event_id, at=now - timedelta(minutes=10 + i), value=70 + i))
    schema = quote_ident(api_worker.settings.warehouse_schema)
    await eventually(lambda: pg.fetchval(
        f"SELECT count(*) = 3 FROM {schema}.health_readings WHERE event_id = ANY($1)", ids))

    name = f"api_{uuid.uuid4().hex[:8]}"
    # The worker's schema is shared with every test of tests/web (imports, CGM, hostile input):
    # the day's quality is theirs, not this test's, so the lifecycle does not hang on the gate.
    created = await client.call("POST", "/etl-jobs", role="operator",
                                json=job_body(name, data_quality_threshold=0.0))
    assert created.status == 201, created.body
    job_id = created.body["job_id"]
    assert created.body["job_name"] == name and created.body["source_tables"] == ["health_readings"]

    listed = await client.call("GET", "/etl-jobs", role="viewer")
    assert listed.status == 200 and job_id in [j["job_id"] for j in listed.body["jobs"]]
    assert job_id not in [j["job_id"] for j in
                          (await client.call("GET", "/etl-jobs", role="viewer", params={"enabled": "false"})
                           ).body["jobs"]]
    got = await client.call("GET", f"/etl-jobs/{job_id}", role="viewer")
    assert got.status == 200 and got.body["job"]["job_id"] == job_id and got.body["runs"] == []

    started = await client.call("POST", f"/etl-jobs/{job_id}/run", role="operator", json={
        "interval_start": (now - timedelta(days=1)).isoformat(), "interval_end": now.isoformat()})
    assert started.status == 202, started.body
    run_id = started.body["run_id"]
    assert started.headers["Location"] == f"/data-pipeline/etl-jobs/{job_id}/runs/{run_id}"

    async def finished():  # type: ignore[no-untyped-def]
        reply = await client.call("GET", started.headers["Location"], role="viewer")
        assert reply.status == 200, reply.body  # `accepted` until the runner has recorded it
        return reply.body if reply.body["status"] not in ("accepted", "running") else None

    run = await eventually(finished, timeout=60)
    assert run["status"] == "succeeded", run
    assert run["rows_extracted"] >= 3 and run["trigger"] == "api"
    got = await client.call("GET", f"/etl-jobs/{job_id}", role="viewer")
    assert [r["run_id"] for r in got.body["runs"]] == [run_id] and got.body["running"] == []

    graph = await client.call("GET", f"/data-lineage/{job_id}", role="viewer")
    assert graph.status == 200, graph.body
    assert any(s["name"].endswith("health_readings") for s in graph.body["sources"])
    assert any(t["name"].endswith("aggregated_health_metrics") for t in graph.body["targets"])
    assert graph.body["edges"] and graph.body["last_run"]["run_id"] == run_id

    again = await client.call("POST", "/etl-jobs", role="operator", json=job_body(name))
    assert again.status == 409, again.body

    changed = {**job_body(name), "enabled": False, "retry_count": 5}
    updated = await client.call("PUT", f"/etl-jobs/{job_id}", role="operator", json=changed)
    assert updated.status == 200, updated.body
    body = updated.body
    assert (body["job_id"], body["enabled"], body["retry_count"]) == (job_id, False, 5)
    got = await client.call("GET", f"/etl-jobs/{job_id}", role="viewer")
    assert got.body["job"]["retry_count"] == 5 and [r["run_id"] for r in got.body["runs"]] == [run_id]
    missing = await client.call("PUT", f"/etl-jobs/{uuid.UUID(int=9)}", role="operator", json=changed)
    assert missing.status == 404, missing.body

    deleted = await client.call("DELETE", f"/etl-jobs/{job_id}", role="admin")
    assert deleted.status == 200 and deleted.body == {"deleted": job_id}
    assert (await client.call("GET", f"/etl-jobs/{job_id}", role="viewer")).status == 404
    assert (await client.call("DELETE", f"/etl-jobs/{job_id}", role="admin")).status == 404
    assert (await client.call("GET", f"/data-lineage/{job_id}", role="viewer")).status == 404
    assert (await client.call("POST", f"/etl-jobs/{job_id}/run", role="operator")).status == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"target_tables": ["aggregated_health_metrics"]}, "job_name"),
    (job_body("bad\u0007name"), "job_name"),
    ({**job_body("ok_name"), "job_id": "no spaces allowed"}, "job_id"),
    (job_body("ok_name", target_tables=["users"]), "target_tables"),
    (job_body("ok_name", retry_count=11), "retry_count"),
    (job_body("ok_name", schedule="every day"), "schedule"),
    (job_body("ok_name", surprise=True), "surprise"),
])
async def test_invalid_job_configs_answer_field_errors(client, body, field) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("POST", "/etl-jobs", role="operator", json=body)
    assert reply.status == 422, reply.body
    assert any(f["loc"][:2] == ["body", field] for f in reply.body["fields"]), reply.body


@pytest.mark.parametrize("path", ["/etl-jobs/not%20an%20id", "/etl-jobs/..%2Fetc",
                                  "/data-lineage/1%27%20OR%20%271%27%3D%271",
                                  "/etl-jobs/00000000-0000-0000-0000-000000000007/runs/nope"])
async def test_malformed_ids_are_rejected(client, path) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("GET", path, role="viewer")
    assert reply.status == 422, reply.body
    assert reply.body["fields"][0]["loc"][0] == "path"


async def test_run_interval_is_validated(client) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("POST", f"/etl-jobs/{uuid.uuid4()}/run", role="operator",
                              json={"interval_start": "2026-01-02T00:00:00"})
    assert reply.status == 422, reply.body


async def test_viewers_see_webhook_urls_masked(client) -> None:  # type: ignore[no-untyped-def]
    url = "https://hook-user:hook-pass@hooks.example.com/notify?token=tok-secret&team=a"
    created = await client.call("POST", "/etl-jobs", role="operator",
                                json=job_body(f"mask_{uuid.uuid4().hex[:8]}", notification_webhook_url=url))
    assert created.status == 201, created.body
    job_id = created.body["job_id"]
    as_operator = await client.call("GET", f"/etl-jobs/{job_id}", role="operator")
    assert as_operator.body["job"]["notification_webhook_url"] == url  # stored as given
    for reply in (await client.call("GET", f"/etl-jobs/{job_id}", role="viewer"),
                  await client.call("GET", "/etl-jobs", role="analyst")):
        text = str(reply.body)
        assert reply.status == 200 and "hooks.example.com/notify" in text
        assert not any(secret in text for secret in ("hook-user", "hook-pass", "tok-secret"))
