"""The OpenAPI document is valid OpenAPI 3.1, and real answers match what it declares.

Every route is called on the live test worker for its success answer and for its
route-specific errors (404, 409); each body is validated with jsonschema against the schema
the document declares for that path, method and status, and declared headers must be there.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

pytestmark = pytest.mark.integration

PREFIX = "/data-pipeline"


@pytest.fixture
async def document(client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    reply = await client.call("GET", "/openapi.json", role="viewer")
    assert reply.status == 200
    return reply.body


async def test_the_document_is_valid_openapi(document) -> None:  # type: ignore[no-untyped-def]
    validate(document)
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            if not op["security"]:
                continue
            assert "401" in op["responses"] and "422" in op["responses"], (method, path)
            success = [s for s in op["responses"] if s.startswith("2")]
            [content] = op["responses"][success[0]]["content"].values()
            schema = content["schema"]
            assert schema != {"type": "object"}, f"{method} {path}: no response schema"
            if "{job_id}" in path:
                assert "404" in op["responses"], f"{method} {path} can answer 404"
    # /health answers 503 when not live or not ready (tests/integration/test_liveness.py): declared.
    assert set(document["paths"]["/health"]["get"]["responses"]) == {"200", "503"}


def check(document: dict[str, Any], method: str, template: str, reply) -> None:  # type: ignore[no-untyped-def]
    op = document["paths"][PREFIX + template][method.lower()]
    assert str(reply.status) in op["responses"], f"{method} {template} answered undeclared {reply.status}"
    declared = op["responses"][str(reply.status)]
    [content] = declared["content"].values()  # one media type per answer (JSON, or FHIR JSON)
    schema = {**content["schema"], "components": document["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(reply.body), key=str)
    assert not errors, f"{method} {template} {reply.status}: {[e.message for e in errors[:3]]}"
    for header in declared.get("headers", {}):
        if header != "X-Audit":
            assert header in reply.headers, f"{method} {template}: declared header {header} missing"


async def test_real_answers_match_their_schemas(document, client, produce, make_reading, now,
                                                eventually) -> None:  # type: ignore[no-untyped-def]
    c = document

    async def call(method: str, template: str, role: str, path: str | None = None, **kw: Any):  # type: ignore[no-untyped-def]
        reply = await client.call(method, path or template, role=role, **kw)
        check(c, method, template, reply)
        return reply

    await produce(make_reading(f"oa-{uuid.uuid4().hex[:8]}", at=now - timedelta(minutes=3)))
    await produce(make_reading(f"oa-{uuid.uuid4().hex[:8]}", at=now - timedelta(minutes=3), unit="parsecs"))
    await call("GET", "/pipeline/status", "viewer")
    await call("GET", "/pipeline/history", "viewer")
    await call("POST", "/pipeline/setup", "admin")
    await call("POST", "/warehouse/optimize", "admin", json={"dry_run": True})
    await call("GET", "/dlq", "viewer")
    dry = await call("POST", "/dlq/redrive", "operator", json={"reason": "unknown_unit", "dry_run": True})
    assert dry.body["refed"] == 0
    await call("POST", "/data-quality/analyze", "analyst",
               params={"data_type": "heart_rate", "sample_size": "10"})
    await call("GET", "/fhir/Observation", "analyst", params={"code": "8867-4", "_count": "5"})
    await call("GET", "/omh/data-points", "analyst", params={"metric": "heart_rate", "_count": "5"})
    await call("GET", "/schemas", "viewer")
    await call("GET", "/schemas/healthmate-reading.json", "viewer")

    name = f"oa_{uuid.uuid4().hex[:8]}"
    body = {"job_name": name, "target_tables": ["aggregated_health_metrics"],
            "notification_on_failure": False}
    created = await call("POST", "/etl-jobs", "operator", json=body)
    job_id = created.body["job_id"]
    assert created.headers["Location"] == f"{PREFIX}/etl-jobs/{job_id}"
    await call("POST", "/etl-jobs", "operator", json=body)  # 409: the name is taken
    await call("GET", "/etl-jobs", "viewer")
    one = "/etl-jobs/{job_id}"
    await call("GET", one, "viewer", path=f"/etl-jobs/{job_id}")
    await call("PUT", one, "operator", path=f"/etl-jobs/{job_id}", json={**body, "batch_size": 500})
    other = await call("PUT", one, "operator", path=f"/etl-jobs/{job_id}",
                       json={**body, "job_id": str(uuid.uuid4())})
    assert other.status == 409, "a body naming another job is refused, not ignored"
    missing = await call("GET", one, "viewer", path=f"/etl-jobs/{uuid.uuid4()}")
    assert missing.status == 404

    started = await call("POST", "/etl-jobs/{job_id}/run", "operator", path=f"/etl-jobs/{job_id}/run", json={
        "interval_start": (now - timedelta(days=1)).isoformat(), "interval_end": now.isoformat()})
    location = started.headers["Location"]
    status = await client.call("GET", location, role="viewer")
    check(c, "GET", "/etl-jobs/{job_id}/runs/{run_id}", status)
    assert status.status == 200, "Location answers at once after 202, never 404"

    async def finished():  # type: ignore[no-untyped-def]
        reply = await client.call("GET", location, role="viewer")
        return reply if reply.body.get("status") in ("succeeded", "failed") else None

    check(c, "GET", "/etl-jobs/{job_id}/runs/{run_id}", await eventually(finished, timeout=60))
    await call("GET", "/data-lineage/{job_id}", "viewer", path=f"/data-lineage/{job_id}")
    await call("DELETE", one, "admin", path=f"/etl-jobs/{job_id}")
    await call("DELETE", one, "admin", path=f"/etl-jobs/{job_id}")  # 404 now
