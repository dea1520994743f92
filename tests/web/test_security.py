"""Authentication and authorisation over HTTP: the role matrix and JWT attacks."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

pytestmark = pytest.mark.integration

ROLES = ("viewer", "analyst", "operator", "admin")
UNKNOWN_JOB = str(uuid.UUID(int=7))

# Written from the issue, not from the code: (method, path) -> least role, and a cheap,
# harmless request that passes validation (or fails it only after authorisation).
MATRIX: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("GET", "/data-pipeline/pipeline/status"): ("viewer", {}),
    ("GET", "/data-pipeline/pipeline/history"): ("viewer", {}),
    ("GET", "/data-pipeline/openapi.json"): ("viewer", {}),
    ("GET", "/data-pipeline/dlq"): ("viewer", {}),
    ("GET", "/data-pipeline/etl-jobs"): ("viewer", {}),
    ("GET", "/data-pipeline/etl-jobs/{job_id}"): ("viewer", {}),
    ("GET", "/data-pipeline/etl-jobs/{job_id}/runs/{run_id}"): ("viewer", {}),
    ("GET", "/data-pipeline/data-lineage/{job_id}"): ("viewer", {}),
    ("POST", "/data-pipeline/etl-jobs"): ("operator", {"json": {"job_name": "Not Valid"}}),
    ("POST", "/data-pipeline/etl-jobs/{job_id}/run"): ("operator", {}),
    ("PUT", "/data-pipeline/etl-jobs/{job_id}"): ("operator", {"json": {"job_name": "Not Valid"}}),
    ("DELETE", "/data-pipeline/etl-jobs/{job_id}"): ("admin", {}),
    ("POST", "/data-pipeline/data-quality/analyze"): (
        "analyst", {"params": {"data_type": "heart_rate", "sample_size": "5"}}),
    ("GET", "/data-pipeline/data-quality/reports/{report_id}"): ("analyst", {}),
    ("POST", "/data-pipeline/dlq/redrive"): ("operator", {"json": {"reason": "oversized", "dry_run": True}}),
    ("POST", "/data-pipeline/pipeline/setup"): ("admin", {}),
    ("POST", "/data-pipeline/warehouse/optimize"): ("admin", {"json": {"dry_run": True}}),
    ("GET", "/data-pipeline/fhir/Observation"): ("analyst", {"params": {"_count": "1"}}),
    ("GET", "/data-pipeline/omh/data-points"): ("analyst", {"params": {"_count": "1"}}),
    ("GET", "/data-pipeline/schemas"): ("viewer", {}),
    ("GET", "/data-pipeline/schemas/healthmate-reading.json"): ("viewer", {}),
    ("GET", "/data-pipeline/subjects/{user_id}/export"): ("admin", {}),
    ("DELETE", "/data-pipeline/subjects/{user_id}"): ("admin", {}),
    ("DELETE", "/data-pipeline/subjects/{user_id}/erasure"): ("admin", {}),
    ("POST", "/data-pipeline/imports"): ("operator", {}),  # no body, no X-User-Id: refused after the role
    ("GET", "/data-pipeline/imports/{import_id}"): ("operator", {}),
    ("GET", "/data-pipeline/cgm/{user_id}"): ("analyst", {}),
    ("GET", "/data-pipeline/cgm/{user_id}/agp"): ("analyst", {}),
}


def _path(template: str) -> str:
    return (template.replace("{job_id}", UNKNOWN_JOB).replace("{run_id}", UNKNOWN_JOB)
            .replace("{user_id}", "u-matrix-nobody")
            .replace("{report_id}", UNKNOWN_JOB).replace("{import_id}", UNKNOWN_JOB))


async def test_matrix_covers_every_documented_route(client) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("GET", "/openapi.json", role="viewer")
    documented = {(m.upper(), path) for path, ops in reply.body["paths"].items() for m, op in ops.items()
                  if path.startswith("/data-pipeline/") and op["security"]}  # not the console page
    assert documented == set(MATRIX)


@pytest.mark.parametrize("role", [*ROLES, None])
@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
async def test_role_matrix(client, route, role) -> None:  # type: ignore[no-untyped-def]
    method, template = route
    least, request = MATRIX[route]
    reply = await client.call(method, _path(template), role=role, **request)
    if role is None:
        assert reply.status == 401, reply.body
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    elif ROLES.index(role) < ROLES.index(least):
        assert reply.status == 403, reply.body
        assert reply.body["error"] == "forbidden"
    else:
        assert reply.status not in (401, 403) and reply.status < 500, reply.body


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


ISSUER, AUDIENCE = "healthmate-tests", "healthmate-api"  # as tests/web/conftest.py configures the worker


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "mallory", "roles": ["admin"], "iss": ISSUER, "aud": AUDIENCE, "iat": now,
              "exp": now + 300}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _attacks(secret: str) -> dict[str, str]:
    attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacker_pem = attacker_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
    header, _, signature = jwt.encode(_claims(roles=["viewer"]), secret, "HS256").split(".")
    return {
        "alg-none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
        "alg-none-with-signature": f"{_b64({'alg': 'none'})}.{_b64(_claims())}.{signature}",
        "rs256-confusion": jwt.encode(_claims(), attacker_pem, "RS256"),
        "wrong-secret": jwt.encode(_claims(), "x" * 48, "HS256"),
        "expired": jwt.encode(_claims(exp=int(time.time()) - 120), secret, "HS256"),
        "missing-exp": jwt.encode(_claims(exp=None), secret, "HS256"),
        "wrong-audience": jwt.encode(_claims(aud="someone-else"), secret, "HS256"),
        "missing-audience": jwt.encode(_claims(aud=None), secret, "HS256"),
        "wrong-issuer": jwt.encode(_claims(iss="evil"), secret, "HS256"),
        "tampered-payload": f"{header}.{_b64(_claims(roles=['admin']))}.{signature}",
        "garbage": "abc.def.ghi",
    }


ATTACKS = ["alg-none", "alg-none-with-signature", "rs256-confusion", "wrong-secret", "expired", "missing-exp",
           "wrong-audience", "missing-audience", "wrong-issuer", "tampered-payload", "garbage"]


@pytest.mark.parametrize("attack", ATTACKS)
async def test_jwt_attacks_are_unauthenticated(client, api_worker, attack) -> None:  # type: ignore[no-untyped-def]
    token = _attacks(api_worker.env["HEALTHMATE_API_JWT_SECRET"])[attack]
    reply = await client.call("POST", "/pipeline/setup", token=token)
    assert reply.status == 401, reply.body
    assert reply.body["error"] == "unauthenticated"


async def test_the_same_claims_properly_signed_are_accepted(client, api_worker) -> None:  # type: ignore[no-untyped-def]
    assert (api_worker.settings.api_jwt_issuer, api_worker.settings.api_jwt_audience) == (ISSUER, AUDIENCE)
    token = jwt.encode(_claims(roles=["viewer"]), api_worker.env["HEALTHMATE_API_JWT_SECRET"], "HS256")
    assert (await client.call("GET", "/dlq", token=token)).status == 200


@pytest.mark.parametrize("header", ["", "Bearer", "Basic YWRtaW46YWRtaW4=", "Token abc"])
async def test_missing_or_foreign_scheme(client, header) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("GET", "/dlq", headers={"Authorization": header} if header else {})
    assert reply.status == 401


async def test_unknown_roles_are_forbidden(client, api_worker) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("GET", "/dlq", token=api_worker.token("root", "superuser"))
    assert reply.status == 403


async def test_public_endpoints_need_no_token_and_faust_builtins_are_off(client) -> None:  # type: ignore[no-untyped-def]
    assert (await client.call("GET", "/health")).status == 200
    metrics = await client.call("GET", "/metrics")
    assert metrics.status == 200 and "healthmate_api_requests_total" in metrics.body
    for path in ("/table/", "/router/"):
        assert (await client.call("GET", path)).status == 404, path


async def test_api_metrics_use_route_templates(client) -> None:  # type: ignore[no-untyped-def]
    await client.call("GET", "/dlq", role="viewer")
    metrics = (await client.call("GET", "/metrics")).body
    lines = [line for line in metrics.splitlines() if line.startswith("healthmate_api_requests_total{")]
    assert any('route="/data-pipeline/dlq"' in line and 'status="200"' in line for line in lines)
    assert all('route="/data-pipeline/' in line for line in lines)


async def test_the_readme_token_command_works_against_the_worker(client, api_worker) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import os
    import sys

    env = {**os.environ, **api_worker.env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web", "token", "--role", "operator", "--sub", "alice", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    reply = await client.call("GET", "/pipeline/status", token=out.decode().strip())
    assert reply.status == 200, reply.body
