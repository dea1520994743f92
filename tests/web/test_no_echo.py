"""Error answers never repeat a value the caller put in the path or the query string."""

from __future__ import annotations

import uuid

import orjson
import pytest

pytestmark = pytest.mark.integration

MARK = "PHIMARK"


async def test_not_found_and_conflict_answers_do_not_echo_the_callers_values(client, api_worker
                                                                             ) -> None:  # type: ignore[no-untyped-def]
    job = f"{MARK}_{uuid.uuid4().hex[:8]}"
    run = str(uuid.uuid4())
    name = f"{MARK}_name_{uuid.uuid4().hex[:8]}"
    created = await client.call("POST", "/etl-jobs", role="operator",
                                json={"job_name": name, "target_tables": ["aggregated_health_metrics"]})
    assert created.status == 201, created.body
    existing = created.body["job_id"]
    body = {"job_name": name, "target_tables": ["aggregated_health_metrics"]}
    replies = {
        "job": await client.call("GET", f"/etl-jobs/{job}", role="viewer"),
        "job run": await client.call("GET", f"/etl-jobs/{job}/runs/{run}", role="viewer"),
        "run of a real job": await client.call("GET", f"/etl-jobs/{existing}/runs/{run}", role="viewer"),
        "lineage": await client.call("GET", f"/data-lineage/{job}", role="viewer"),
        "delete": await client.call("DELETE", f"/etl-jobs/{job}", role="admin"),
        "report": await client.call("GET", f"/data-quality/reports/{run}", role="analyst"),
        "erasure entry": await client.call("DELETE", f"/subjects/{MARK}-person/erasure", role="admin"),
        "name taken": await client.call("POST", "/etl-jobs", role="operator", json=body),
        "bad query": await client.call("POST", "/data-quality/analyze", role="analyst",
                                       params={"data_type": f"{MARK}_metric"}),
    }
    for what, reply in replies.items():
        assert reply.status in (404, 409, 422), (what, reply.status, reply.body)
        text = orjson.dumps(reply.body).decode()
        assert MARK not in text and run not in text and existing not in text, (what, text)
