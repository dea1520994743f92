"""The audit trail: a row for every data read and state change, denied and failed calls too."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration


async def test_calls_leave_audit_rows(client, api_worker, pg) -> None:  # type: ignore[no-untyped-def]
    sub = f"auditor-{uuid.uuid4().hex[:8]}"
    calls = [
        (await client.call("GET", "/pipeline/status", role="viewer", sub=sub), "pipeline.status", "ok", 200),
        (await client.call("GET", "/dlq", role="viewer", sub=sub), "dlq.summary", "ok", 200),
        (await client.call("POST", "/pipeline/setup", role="viewer", sub=sub),
         "pipeline.setup", "denied", 403),
        (await client.call("POST", "/dlq/redrive", role="operator", sub=sub, json={"reason": "nope"}),
         "dlq.redrive", "invalid", 422),
        (await client.call("POST", "/dlq/redrive", role="operator", sub=sub,
                           json={"reason": "oversized", "dry_run": True}), "dlq.redrive", "ok", 200),
        (await client.call("GET", f"/etl-jobs/{uuid.UUID(int=1)}", role="viewer", sub=sub),
         "etl_jobs.get", "not_found", 404),
        (await client.call("DELETE", f"/etl-jobs/{uuid.UUID(int=1)}", role="operator", sub=sub),
         "etl_jobs.delete", "denied", 403),
        (await client.call("POST", "/warehouse/optimize", sub=sub),
         "warehouse.optimize", "unauthenticated", 401),
    ]
    s = quote_ident(api_worker.settings.warehouse_schema)
    request_ids = [c[0].headers["X-Request-Id"] for c in calls]
    rows = {r["request_id"]: r for r in await pg.fetch(
        f"SELECT * FROM {s}.audit_log WHERE request_id = ANY($1)", request_ids)}
    assert len(rows) == len(calls)
    for reply, action, outcome, status in calls:
        assert reply.status == status, reply.body
        row = rows[reply.headers["X-Request-Id"]]
        assert (row["action"], row["outcome"], row["status"]) == (action, outcome, status)
        assert row["occurred_at"].tzinfo is not None
        if outcome == "unauthenticated":
            assert row["subject"] is None and row["roles"] == []
        else:
            assert row["subject"] == sub and len(row["roles"]) == 1
    redrive = rows[calls[4][0].headers["X-Request-Id"]]
    assert redrive["target"] == "reason=oversized dry_run"
    assert rows[calls[5][0].headers["X-Request-Id"]]["target"] == f"job_id={uuid.UUID(int=1)}"


async def test_spec_reads_are_audited_too(client, api_worker, pg) -> None:  # type: ignore[no-untyped-def]
    # Every answer under /data-pipeline/ leaves an audit row (issue 14), the API's own description too.
    s = quote_ident(api_worker.settings.warehouse_schema)
    for path in ("/openapi.json", "/schemas"):
        reply = await client.call("GET", path, role="viewer")
        assert reply.status == 200 and reply.headers["X-Request-Id"]
        assert await pg.fetchval(f"SELECT count(*) FROM {s}.audit_log WHERE request_id = $1",
                                 reply.headers["X-Request-Id"]) == 1, path


async def test_audit_log_is_append_only(client, api_worker, pg) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("GET", "/dlq", role="viewer")
    s = quote_ident(api_worker.settings.warehouse_schema)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pg.execute(f"UPDATE {s}.audit_log SET outcome = 'ok' WHERE request_id = $1",
                         reply.headers["X-Request-Id"])
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pg.execute(f"DELETE FROM {s}.audit_log WHERE request_id = $1", reply.headers["X-Request-Id"])
