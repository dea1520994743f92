"""Input handling: 422 with field errors, unknown fields, bounds, 413, and SQL injection."""

from __future__ import annotations

import time
import uuid
from urllib.parse import quote, unquote

import pytest

from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration

INJECTIONS = [
    "'; DROP TABLE audit_log; --",
    "1' OR '1'='1",
    "\"; SELECT pg_sleep(3); --",
    "x'); DELETE FROM etl_jobs; --",
    "' UNION SELECT usename, passwd FROM pg_shadow --",
    "$1::text); TRUNCATE health_readings; --",
]


async def _tables_intact(pg, schema: str) -> None:  # type: ignore[no-untyped-def]
    for table in ("audit_log", "etl_jobs", "health_readings", "dead_letters"):
        assert await pg.fetchval("SELECT to_regclass($1)", f"{quote_ident(schema)}.{table}"), table


@pytest.mark.parametrize("evil", INJECTIONS)
async def test_sql_injection_is_stored_verbatim_or_rejected(client, api_worker, pg, evil) -> None:  # type: ignore[no-untyped-def]
    schema = api_worker.settings.warehouse_schema
    s = quote_ident(schema)
    jobs_before = await pg.fetchval(f"SELECT count(*) FROM {s}.etl_jobs")
    started = time.monotonic()

    # Token subject and a query parameter: rejected (unknown data type), audited verbatim.
    reply = await client.call("POST", "/data-quality/analyze", role="analyst", sub=evil,
                              params={"data_type": evil, "sample_size": "5"})
    assert reply.status == 422, reply.body
    row = await pg.fetchrow(f"SELECT subject, target, outcome FROM {s}.audit_log WHERE request_id = $1",
                            reply.headers["X-Request-Id"])
    assert row["subject"] == evil and evil in row["target"] and row["outcome"] == "invalid"

    # Body text fields with a pattern, enums, path ids: rejected.
    for body in ({"job_id": evil, "job_name": "ok", "target_tables": ["aggregated_health_metrics"]},
                 {"job_name": "ok_name", "target_tables": [evil]},
                 {"job_name": "ok_name", "target_tables": ["aggregated_health_metrics"], "schedule": evil}):
        assert (await client.call("POST", "/etl-jobs", role="operator", json=body, echoes=evil)).status == 422
    assert (await client.call("POST", "/dlq/redrive", role="operator", json={"reason": evil},
                              echoes=evil)).status == 422
    assert (await client.call("GET", f"/etl-jobs/{quote(evil, safe='')}", role="viewer")).status in (404, 422)
    assert (await client.call("GET", "/etl-jobs", role="viewer", params={"enabled": evil})).status == 422

    # A free-text field that is accepted: stored and read back as sent.
    url = f"https://hooks.example.org/notify?tag={quote(evil, safe='')}"
    name = f"{evil} inj_{uuid.uuid4().hex[:8]}"  # the display name is free text too
    created = await client.call("POST", "/etl-jobs", role="operator", json={
        "job_name": name, "target_tables": ["aggregated_health_metrics"], "notification_webhook_url": url})
    assert created.status == 201, created.body
    # as an operator: viewers see it masked (test_job_endpoints.py)
    fetched = await client.call("GET", f"/etl-jobs/{created.body['job_id']}", role="operator")
    assert unquote(fetched.body["job"]["notification_webhook_url"]) == unquote(url)
    assert fetched.body["job"]["job_name"] == name.strip()
    shown = await client.call("GET", f"/etl-jobs/{created.body['job_id']}", role="viewer")
    assert shown.body["job"]["notification_webhook_url"] == "https://hooks.example.org/notify?tag=***"
    assert (await client.call("DELETE", f"/etl-jobs/{created.body['job_id']}", role="admin")).status == 200

    assert time.monotonic() - started < 3, "pg_sleep ran?"
    await _tables_intact(pg, schema)
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.etl_jobs") == jobs_before


@pytest.mark.parametrize(("body", "loc"), [
    ({"reason": "unknown_unit", "surprise": 1}, ["body", "surprise"]),
    ({"reason": "unknown_unit", "max_records": 100_001}, ["body", "max_records"]),
    ({"reason": "unknown_unit", "max_records": 0}, ["body", "max_records"]),
    ({"reason": "not_a_reason"}, ["body", "reason"]),
    ({"partition": -1}, ["body", "partition"]),
    ({"partition": 0, "from_offset": 9, "to_offset": 3}, ["body"]),
    ({"reason": "unknown_unit", "dry_run": "perhaps"}, ["body", "dry_run"]),
])
async def test_invalid_bodies_answer_422_with_fields(client, body, loc) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("POST", "/dlq/redrive", role="operator", json=body)
    assert reply.status == 422, reply.body
    assert [f["loc"][: len(loc)] for f in reply.body["fields"]] == [loc], reply.body
    assert all("input" not in f for f in reply.body["fields"]), "inputs are not echoed"


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"null", b'"text"'])
async def test_malformed_json_is_422(client, raw) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("POST", "/warehouse/optimize", role="admin", data=raw,
                              headers={"Content-Type": "application/json"})
    assert reply.status == 422, reply.body


async def test_unknown_and_repeated_query_parameters_are_rejected(client) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("GET", "/dlq", role="viewer", params={"limit": "5"})
    assert reply.status == 422 and reply.body["fields"][0]["loc"] == ["query", "limit"]
    reply = await client.call("POST", "/data-quality/analyze?data_type=steps&data_type=heart_rate",
                              role="analyst")
    assert reply.status == 422 and reply.body["fields"][0]["loc"] == ["query", "data_type"]


async def test_a_body_where_none_is_taken_is_rejected(client) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("POST", "/pipeline/setup", role="admin", json={"force": True})
    assert reply.status == 422


async def test_oversized_body_is_413(client, api_worker) -> None:  # type: ignore[no-untyped-def]
    limit = api_worker.settings.api_max_body_bytes
    padding = "x" * (limit + 10)
    declared = await client.call("POST", "/dlq/redrive", role="operator",
                                 json={"reason": "oversized", "pad": padding})
    assert declared.status == 413, declared.body

    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"reason": "oversized", "pad": "'
        for _ in range(limit // 4096 + 2):
            yield b"x" * 4096
        yield b'"}'

    chunked = await client.call("POST", "/dlq/redrive", role="operator", data=chunks(),
                                headers={"Content-Type": "application/json"})
    assert chunked.status == 413, chunked.body
    small = await client.call("POST", "/dlq/redrive", role="operator",
                              json={"reason": "oversized", "dry_run": True})
    assert small.status == 200, small.body
