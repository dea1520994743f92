"""The outside probe's findings, over HTTP against the real worker (and a raw socket where
aiohttp's client would refuse to send the request): each failed before issue 14."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import quote

import jwt
import orjson
import pytest

from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration

INTERNAL = ["http://127.0.0.1:5432/", "http://localhost:6066/data-pipeline/pipeline/setup",
            "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/hook", "http://0x7f000001/",
            "http://2130706433/", "http://0177.0.0.1/", "http://127.1/", "http://[::1]/",
            "http://[::ffff:127.0.0.1]/", "http://[::ffff:169.254.169.254]/", "http://0.0.0.0/",
            "http://224.0.0.1/", "http://[fe80::1]/"]


async def _audit(pg, api_worker, request_id: str):  # type: ignore[no-untyped-def]
    s = quote_ident(api_worker.settings.warehouse_schema)
    return await pg.fetchrow(f"SELECT * FROM {s}.audit_log WHERE request_id = $1", request_id)


@pytest.mark.parametrize("url", INTERNAL)
async def test_webhooks_to_internal_addresses_are_refused_at_config_time(client, url) -> None:  # type: ignore[no-untyped-def]
    body = {"job_name": f"ssrf_{uuid.uuid4().hex[:8]}", "target_tables": ["user_engagement"],
            "notification_webhook_url": url}
    reply = await client.call("POST", "/etl-jobs", role="operator", json=body)
    assert reply.status == 422, reply.body
    assert reply.body["fields"][0]["loc"] == ["body", "notification_webhook_url"]
    ok = await client.call("POST", "/etl-jobs", role="operator",
                           json={**body, "notification_webhook_url": "https://hooks.example.org/x"})
    assert ok.status == 201, ok.body
    updated = await client.call("PUT", f"/etl-jobs/{ok.body['job_id']}", role="operator",
                                json={**body, "job_id": ok.body["job_id"]})
    assert updated.status == 422, updated.body
    assert (await client.call("DELETE", f"/etl-jobs/{ok.body['job_id']}", role="admin")).status == 200


async def test_webhook_secrets_are_masked_for_viewers(client) -> None:  # type: ignore[no-untyped-def]
    url = "https://bot:hunter2@hooks.example.org/notify?token=s3cr3t-token&team=ops"
    created = await client.call("POST", "/etl-jobs", role="operator", json={
        "job_name": f"masked_{uuid.uuid4().hex[:8]}", "target_tables": ["user_engagement"],
        "notification_webhook_url": url})
    assert created.status == 201, created.body
    job_id = created.body["job_id"]
    for role in ("viewer", "analyst"):
        listed = await client.call("GET", "/etl-jobs", role=role)
        one = await client.call("GET", f"/etl-jobs/{job_id}", role=role)
        for text in (orjson.dumps(listed.body).decode(), orjson.dumps(one.body).decode()):
            assert "hunter2" not in text and "s3cr3t-token" not in text and "bot:" not in text
        assert one.body["job"]["notification_webhook_url"] == \
            "https://***@hooks.example.org/notify?token=***&team=***"
    stored = await client.call("GET", f"/etl-jobs/{job_id}", role="operator")
    assert "s3cr3t-token" in stored.body["job"]["notification_webhook_url"]  # stored as given
    assert (await client.call("DELETE", f"/etl-jobs/{job_id}", role="admin")).status == 200


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/data-pipeline/no/such/path", 404), ("GET", "/data-pipeline", 404),
    ("OPTIONS", "/data-pipeline/pipeline/status", 405), ("PATCH", "/data-pipeline/etl-jobs", 405),
    ("TRACE", "/data-pipeline/dlq", 405), ("DELETE", "/data-pipeline/pipeline/status", 405),
])
async def test_unmatched_calls_answer_json_with_a_request_id_and_are_audited(
        client, api_worker, pg, method, path, status) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call(method, path, role="viewer", sub="edge-prober")
    assert reply.status == status
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.body["request_id"] == reply.headers["X-Request-Id"]
    if status == 405:
        assert "GET" in reply.headers["Allow"] or "POST" in reply.headers["Allow"]
    row = await _audit(pg, api_worker, reply.headers["X-Request-Id"])
    assert row is not None and row["status"] == status and row["subject"] == "edge-prober"
    assert row["target"] == f"{method} {path}"


async def _raw(api_worker, request: bytes) -> tuple[int, dict[str, str], bytes]:  # type: ignore[no-untyped-def]
    port = int(api_worker.env["HEALTHMATE_WEB_PORT"])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=10)  # the server closes the connection
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


async def test_an_oversized_header_answers_431_json_without_echo_and_is_audited(
        api_worker, pg) -> None:  # type: ignore[no-untyped-def]
    token = api_worker.token("viewer")
    filler = "x" * 9000
    request = (f"GET /data-pipeline/pipeline/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {token}{filler}\r\n\r\n").encode()
    status, headers, body = await _raw(api_worker, request)
    assert status == 431
    assert headers["content-type"].startswith("application/json")
    doc = orjson.loads(body)
    assert doc["error"] == "request_header_fields_too_large" and doc["request_id"] == headers["x-request-id"]
    assert token[:20] not in body.decode() and "xxxxxxxx" not in body.decode()
    assert "server" not in headers and headers["x-content-type-options"] == "nosniff"
    row = await _audit(pg, api_worker, headers["x-request-id"])
    assert row is not None and (row["action"], row["status"]) == ("http.bad_request", 431)
    # A header just under the limit still reaches the route.
    ok_status, _, _ = await _raw(api_worker, (
        f"GET /data-pipeline/pipeline/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Authorization: Bearer {token}\r\nX-Pad: {'y' * 7000}\r\n\r\n").encode())
    assert ok_status == 200


async def test_a_garbled_request_answers_400_json_and_is_audited(api_worker, pg) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = await _raw(api_worker, b"GET /data-pipeline/dlq HTTP/1.1\r\nBad Header\r\n\r\n")
    assert status == 400 and orjson.loads(body)["error"] == "bad_request"
    assert await _audit(pg, api_worker, headers["x-request-id"]) is not None


async def test_an_unknown_expectation_answers_417_json_without_echo_and_is_audited(
        api_worker, pg) -> None:  # type: ignore[no-untyped-def]
    """aiohttp answered a plain-text 417 that echoed the header's value."""
    status, headers, body = await _raw(api_worker, (
        "GET /data-pipeline/pipeline/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {api_worker.token('viewer')}\r\nExpect: PHI-henriette\r\n\r\n").encode())
    assert status == 417 and headers["content-type"].startswith("application/json"), body
    assert orjson.loads(body)["error"] == "expectation_failed" and b"henriette" not in body
    assert "server" not in headers and headers["x-content-type-options"] == "nosniff"
    row = await _audit(pg, api_worker, headers["x-request-id"])
    assert row is not None and (row["action"], row["status"]) == ("http.bad_request", 417)


async def test_a_nul_byte_in_a_path_or_parameter_still_leaves_an_audit_row(
        client, api_worker, pg) -> None:  # type: ignore[no-untyped-def]
    replies = [
        await client.call("GET", "/etl-jobs/" + quote("abc\x00def"), role="viewer", sub="nul\x00prober"),
        await client.call("GET", "/etl-jobs", role="viewer", params={"enabled": "tr\x00ue"}),
        await client.call("GET", "/data-pipeline/nope\x00" + quote("\x1b[2J"), role="viewer"),
        await client.call("POST", "/data-quality/analyze", role="analyst",
                          params={"data_type": "heart\x00rate", "sample_size": "1"}),
    ]
    for reply in replies:
        assert reply.status in (401, 404, 422), reply.body
        row = await _audit(pg, api_worker, reply.headers["X-Request-Id"])
        assert row is not None, reply.body
        for text in (row["target"] or "", row["subject"] or ""):
            assert "\x00" not in text and "\x1b" not in text
    row = await _audit(pg, api_worker, replies[0].headers["X-Request-Id"])
    assert row["target"] == "job_id=abc\\x00def" and row["subject"] == "nul\\x00prober"


async def test_security_headers_and_no_server_version(client) -> None:  # type: ignore[no-untyped-def]
    for path, role in (("/pipeline/status", "viewer"), ("/health", None), ("/data-pipeline/nope", "viewer"),
                       ("/metrics", None)):
        reply = await client.call("GET", path, role=role)
        assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"], path
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert "Server" not in reply.headers, (path, reply.headers.get("Server"))


def _token(api_worker, **claims: Any) -> str:  # type: ignore[no-untyped-def]
    now = int(time.time())
    base = {"sub": "probe", "roles": ["viewer"], "iss": "healthmate-tests", "aud": "healthmate-api",
            "iat": now, "exp": now + 300, **claims}
    return jwt.encode({k: v for k, v in base.items() if v is not None},
                      api_worker.env["HEALTHMATE_API_JWT_SECRET"], "HS256")


@pytest.mark.parametrize("claims", [
    {"exp": int(time.time()) + 100 * 365 * 86400}, {"iat": None, "exp": int(time.time()) + 30 * 86400},
    {"aud": ""}, {"aud": []}, {"aud": ["healthmate-api", ""]},
], ids=["far-future-exp", "far-future-no-iat", "empty-aud", "empty-aud-list", "aud-with-empty"])
async def test_long_lived_tokens_and_empty_audiences_are_refused(client, api_worker, claims) -> None:  # type: ignore[no-untyped-def]
    reply = await client.call("GET", "/pipeline/status", token=_token(api_worker, **claims))
    assert reply.status == 401, reply.body
    assert (await client.call("GET", "/pipeline/status", token=_token(api_worker))).status == 200
