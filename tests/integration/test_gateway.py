"""The HTTP ingest gateway on the real Kafka, with the real worker behind it.

A 202 means stored exactly once (a retry stores nothing twice); a token binds the user;
refused requests (bad tokens, hostile bodies) put nothing on the raw topic.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import signal
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import jwt
import pytest
from gateway_support import INGEST as INGEST_PATH
from gateway_support import (
    JWT_ENV,
    SECRET,
    GatewayProcess,
    raw_topic_size,
    running_gateway,
    settings_for_tokens,
    token,
)
from pipeline_support import end_offsets, read_topic, wait_until_caught_up

from streams.config import Settings
from streams.domain.pseudonym import user_key
from streams.sink.migrations import quote_ident
from web.auth import mint_token

pytestmark = pytest.mark.integration


@pytest.fixture
async def gateway(pipeline_env: dict[str, str], pipeline_settings: Settings, tmp_path: Path
                  ) -> AsyncIterator[GatewayProcess]:
    env = {**pipeline_env, **JWT_ENV, "HEALTHMATE_GATEWAY_RATE_PER_TOKEN": "0.01",
           "HEALTHMATE_GATEWAY_BURST_PER_TOKEN": "30", "HEALTHMATE_GATEWAY_MAX_MESSAGE_BYTES": "4096"}
    async with running_gateway(env, tmp_path / "gateway.log") as process:
        yield process


async def post(url: str, body: bytes, bearer: str | None, ctype: str = "application/x-ndjson",
               encoding: str | None = None, tls: ssl.SSLContext | None = None) -> tuple[int, dict, dict]:
    headers = {"Content-Type": ctype}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    if encoding:
        headers["Content-Encoding"] = encoding
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers,
                                                                ssl=tls or True) as response:
        return response.status, await response.json(), dict(response.headers)


def ndjson(*docs: dict) -> bytes:
    return b"\n".join(json.dumps(d).encode() for d in docs) + b"\n"


def readings_body(start: datetime) -> tuple[bytes, int]:
    """Four singles, an envelope of three and a wide message of two: nine good readings, no user
    named; and one reading of a metric outside the catalogue, which the worker dead-letters."""
    at = [(start + timedelta(minutes=i)).isoformat() for i in range(8)]
    singles = [{"metric": "heart_rate", "value": 60 + i, "unit": "bpm", "timestamp": at[i],
                "source": "fitbit"} for i in range(4)]
    envelope = {"batch_id": "b-1", "source": "garmin", "device_id": "watch-1", "readings": [
        {"metric": "steps", "value": 100 + i, "unit": "count", "timestamp": at[4 + i]} for i in range(3)]}
    wide = {"heart_rate": 72, "oxygen_saturation": 97, "timestamp": at[7], "source": "oura"}
    unknown = {"metric": "mood", "value": 3, "unit": "score", "timestamp": at[0], "source": "fitbit"}
    return ndjson(*singles, envelope, wide, unknown), 4 + 3 + 2


async def test_readings_land_once_and_a_retry_stores_nothing_twice(
        gateway, pipeline_settings, worker_process, pg):
    settings = pipeline_settings
    worker_process.start()
    alice = token(settings)
    body, count = readings_body(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    first = await post(gateway.url, body, alice)
    assert first[0] == 202, first[1]
    explicit = [{"event_id": f"app-{i}", "metric": "body_temperature", "value": 36.6, "unit": "Cel",
                 "timestamp": "2026-01-02T03:04:05Z", "source": "withings", "user_id": "alice"}
                for i in range(2)]
    second = await post(gateway.url, gzip.compress(json.dumps(explicit).encode()), alice,
                        "application/json", "gzip")
    assert second[0] == 202, second[1]
    retry = await post(gateway.url, body, alice)  # the client did not see the first answer
    assert retry[0] == 202 and retry[1]["event_ids"] == first[1]["event_ids"]
    assert first[1]["accepted"] == 7 and first[1]["readings"] == count + 1
    assert first[1]["event_ids"][-1] == []  # the worker judges it: no id, a dead letter
    assert second[1]["event_ids"] == [["app-0"], ["app-1"]]

    await wait_until_caught_up(settings, pg, timeout=120, alive=worker_process.alive)
    s = quote_ident(settings.warehouse_schema)
    rows = await pg.fetch(f"SELECT event_id, user_key FROM {s}.health_readings")
    answered = {eid for answer in (first, second) for ids in answer[1]["event_ids"] for eid in ids}
    assert len(rows) == count + len(explicit)
    assert {r["event_id"] for r in rows} == answered and len(answered) == count + len(explicit)
    assert {r["user_key"] for r in rows} == {user_key(settings.pseudonym_key_bytes, "alice")}


async def test_tokens_bind_the_user_and_bad_tokens_write_nothing(gateway, pipeline_settings):
    settings = pipeline_settings
    reading = {"metric": "heart_rate", "value": 60, "unit": "bpm", "timestamp": "2026-01-01T00:00:00Z",
               "source": "fitbit"}
    claims = {"sub": "alice", "roles": ["producer"], "iss": "hm-tests", "aud": "hm-ingest",
              "iat": int(time.time()), "exp": int(time.time()) + 600}
    unsigned = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    cases = {
        "other user": (token(settings), {**reading, "user_id": "bob"}, 403),
        "viewer role": (token(settings, roles=("viewer",)), reading, 403),
        "expired": (jwt.encode({**claims, "iat": claims["iat"] - 900, "exp": claims["iat"] - 300}, SECRET,
                               "HS256"), reading, 401),
        "forged": (jwt.encode(claims, "another-secret-that-is-32-bytes-long!!", "HS256"), reading, 401),
        "alg none": (unsigned, reading, 401),
        "wrong audience": (jwt.encode({**claims, "aud": "someone-else"}, SECRET, "HS256"), reading, 401),
        "no token": (None, reading, 401),
        "service without user": (token(settings, "partner", ("ingest-service",)), reading, 400),
    }
    for name, (bearer, doc, status) in cases.items():
        got, answer, _ = await post(gateway.url, ndjson(doc), bearer)
        assert got == status, (name, answer)
        assert "bob" not in json.dumps(answer) and answer["reason"], name
    assert sum((await end_offsets(settings.kafka_bootstrap, settings.raw_topic)).values()) == 0
    partner = token(settings, "partner", ("ingest-service",))
    got, answer, _ = await post(gateway.url, ndjson({**reading, "user_id": "bob"}), partner)
    assert got == 202, answer  # a trusted service writes for any user it names
    log = gateway.log_tail(100_000)
    assert "ingest refused: other_user (403) for " + user_key(settings.pseudonym_key_bytes, "alice") in log
    assert "alice" not in log and "bob" not in log, "a raw user id reached the log"


async def test_hostile_bodies_are_refused_whole_and_leave_nothing_in_kafka(gateway, pipeline_settings):
    settings = pipeline_settings
    good = json.dumps({"metric": "heart_rate", "value": 60, "unit": "bpm",
                       "timestamp": "2026-01-01T00:00:00Z", "source": "fitbit"}).encode()
    nested = b'{"metric": "heart_rate", "metadata": ' + b'{"a": ' * 100 + b"1" + b"}" * 100 + b"}"
    bodies = {
        "oversized document": (good + b"\n" + b'{"pad": "' + b"x" * 5000 + b'"}', None, 413),
        "oversized body": (good + b"\n" + b" " * 5_000_000, None, 413),
        "gzip bomb": (gzip.compress(good + b"\n" + b" " * 20_000_000), "gzip", 413),
        "not json": (good + b"\nthis is not json\n", None, 400),
        "deeply nested": (good + b"\n" + nested, None, 400),
        "unknown form": (good + b'\n{"hello": "world"}', None, 400),
    }
    for name, (body, encoding, status) in bodies.items():
        got, answer, _ = await post(gateway.url, body, token(settings), encoding=encoding)
        assert got == status, (name, answer)
        assert answer["message"].startswith(("document 1", "the body")), (name, answer)
    got, answer, _ = await post(gateway.url, good, token(settings), ctype="text/plain")
    assert got == 415, answer
    assert sum((await end_offsets(settings.kafka_bootstrap, settings.raw_topic)).values()) == 0


async def test_the_per_token_limit_answers_429_with_retry_after(gateway, pipeline_settings):
    bearer = token(pipeline_settings)
    body = ndjson({"metric": "heart_rate", "value": 60, "unit": "bpm", "timestamp": "2026-01-01T00:00:00Z",
                   "source": "fitbit"})
    statuses = [(await post(gateway.url, body, bearer))[:3:2] for _ in range(31)]  # burst 30
    assert [s for s, _ in statuses[:30]] == [202] * 30
    status, headers = statuses[30]
    assert status == 429 and int(headers["Retry-After"]) >= 1
    other = await post(gateway.url, body, token(pipeline_settings))  # another token: its own bucket
    assert other[0] == 202
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.base}/metrics") as response:
        text = await response.text()
    assert 'healthmate_gateway_refusals_total{reason="rate_limited"} 1.0' in text
    assert "healthmate_gateway_readings_accepted_total 31.0" in text


async def test_sigterm_finishes_the_requests_in_flight(gateway, pipeline_settings):
    """A request whose body is still arriving when SIGTERM comes is answered 202 (and its
    messages are in Kafka); the gateway then exits 0 and takes no new connection."""
    lines = [json.dumps({"metric": "steps", "value": i, "unit": "count", "source": "fitbit",
                         "timestamp": f"2026-01-01T00:0{i}:00Z"}).encode() for i in range(4)]
    sent_half = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"\n".join(lines[:2]) + b"\n"
        sent_half.set()
        await asyncio.sleep(2)
        yield b"\n".join(lines[2:])

    bearer = token(pipeline_settings)
    in_flight = asyncio.create_task(post(gateway.url, slow_body(), bearer))  # type: ignore[arg-type]
    await sent_half.wait()
    await asyncio.sleep(0.5)
    assert gateway.proc is not None
    gateway.proc.send_signal(signal.SIGTERM)
    status, answer, _ = await in_flight
    assert status == 202 and answer["accepted"] == 4, answer
    assert await asyncio.to_thread(gateway.proc.wait, 30) == 0
    ends = await end_offsets(pipeline_settings.kafka_bootstrap, pipeline_settings.raw_topic)
    assert sum(ends.values()) == 4
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(gateway.url, lines[0], token(pipeline_settings))


async def test_messages_are_keyed_and_partitioned_like_every_other_producer(gateway, pipeline_settings,
                                                                            raw_producer):
    users = [f"user-{i}" for i in range(12)]
    partner = token(pipeline_settings, "partner", ("ingest-service",))
    docs = [{"user_id": u, "metric": "steps", "value": 1, "unit": "count", "source": "fitbit",
             "timestamp": "2026-01-01T00:00:00Z"} for u in users]
    assert (await post(gateway.url, ndjson(*docs), partner))[0] == 202
    probes = [await raw_producer.send_and_wait(pipeline_settings.raw_topic, b"{}", key=u.encode())
              for u in users]
    records = await read_topic(pipeline_settings.kafka_bootstrap, pipeline_settings.raw_topic)
    gateway_partition = {r.key.decode(): r.partition for r in records if r.value != b"{}"}
    assert gateway_partition == {u: probe.partition for u, probe in zip(users, probes, strict=True)}
    assert len(set(gateway_partition.values())) > 1  # the users really spread over partitions


async def test_https_when_a_certificate_is_configured(pipeline_env, pipeline_settings, tmp_path):
    cert, key = tmp_path / "gateway.pem", tmp_path / "gateway.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    trust = ssl.create_default_context(cafile=str(cert))
    env = {**pipeline_env, **JWT_ENV, "HEALTHMATE_GATEWAY_TLS_CERT_FILE": str(cert),
           "HEALTHMATE_GATEWAY_TLS_KEY_FILE": str(key)}
    body = ndjson({"metric": "heart_rate", "value": 60, "unit": "bpm", "timestamp": "2026-01-01T00:00:00Z",
                   "source": "fitbit"})
    async with running_gateway(env, tmp_path / "gateway.log", tls=trust) as gateway:
        assert gateway.url.startswith("https://")
        status, answer, _ = await post(gateway.url, body, token(pipeline_settings), tls=trust)
        assert status == 202, answer
        with pytest.raises(aiohttp.ClientError):  # no plain HTTP beside it
            await post(gateway.url.replace("https://", "http://"), body, token(pipeline_settings))


async def test_not_ready_until_its_topic_exists(kafka_bootstrap, unique_name, create_topics, tmp_path):
    topic = f"{unique_name}.raw"
    env = {"HEALTHMATE_DEV_MODE": "true", "HEALTHMATE_RAW_TOPIC": topic, "HEALTHMATE_KAFKA_BOOTSTRAP":
           kafka_bootstrap, "HEALTHMATE_GATEWAY_ACK_TIMEOUT_S": "2"}
    process = GatewayProcess(env, tmp_path / "gateway.log")
    process.start()
    try:
        with pytest.raises(AssertionError, match="did not become ready"):
            await process.wait_ready(timeout=6)
        await create_topics([topic])
        await process.wait_ready(timeout=30)
    finally:
        assert process.stop() == 0, process.log_tail()
    assert "not available" in process.log_tail()


async def test_a_subject_that_is_not_text_is_refused_and_the_gateway_keeps_serving(gateway,
                                                                                  pipeline_settings):
    """A token whose ``sub`` holds a lone surrogate (valid JSON, ``"\\ud800"``) was a 500 with
    aiohttp's plain-text page: the subject could be neither sent on nor pseudonymised."""
    now = int(time.time())
    claims = {"sub": "alice-\ud800", "roles": ["producer"], "iss": "hm-tests", "aud": "hm-ingest",
              "iat": now, "exp": now + 600}
    surrogate = jwt.encode(claims, SECRET, "HS256")
    reading = ndjson({"metric": "heart_rate", "value": 60, "unit": "bpm", "timestamp": "2026-01-01T00:00:00Z",
                      "source": "fitbit"})
    status, answer, _ = await post(gateway.url, reading, surrogate)
    assert (status, answer["message"]) == (401, "invalid token subject"), answer
    assert await raw_topic_size(pipeline_settings) == 0
    assert (await post(gateway.url, reading, token(pipeline_settings)))[0] == 202
    assert "Traceback" not in gateway.log_tail(100_000)


async def _raw_answer(gateway: GatewayProcess, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 30)  # the gateway closes after a refusal
    writer.close()
    return int(answer.split(b" ", 2)[1]), answer.partition(b"\r\n\r\n")[2]


async def test_requests_the_parser_refuses_answer_json_and_never_quote_the_token(gateway, pipeline_settings):
    """aiohttp's own answer quoted the start of the refused line: the bearer token, whose
    payload is the user id in base64."""
    bearer = mint_token(settings_for_tokens(pipeline_settings), subject="PHI-henriette", roles=["producer"],
                        ttl_s=600)
    padded = bearer + "A" * 9000  # a header field over HEALTHMATE_API_MAX_HEADER_BYTES
    head = "POST /ingest/v1/readings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    cases = {
        "header too large": (f"{head}Authorization: Bearer {padded}\r\nContent-Length: 2\r\n\r\n{{}}", 431,
                             "headers_too_large"),
        "bare LF": (f"{head}Authorization: Bearer {bearer}\r\nContent-Length: 2\r\n\r\n{{}}"
                    .replace("\r\n", "\n"), 400, "malformed_http"),
        "two lengths": (f"{head}Authorization: Bearer {bearer}\r\nContent-Length: 2\r\n"
                        "Content-Length: 2\r\n\r\n{}", 400, "malformed_http"),
    }
    for name, (request, status, reason) in cases.items():
        got, body = await _raw_answer(gateway, request.encode())
        answer = json.loads(body)
        assert (got, answer["reason"]) == (status, reason), (name, body)
        assert bearer[:20] not in body.decode() and "Bearer" not in body.decode(), name
    for method, path, status in (("GET", "/ingest/v1/nowhere", 404), ("DELETE", INGEST_PATH, 405)):
        got, body = await _raw_answer(gateway, f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                               "Connection: close\r\n\r\n".encode())
        assert got == status and json.loads(body)["request_id"], body
    assert await raw_topic_size(pipeline_settings) == 0
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.base}/metrics") as response:
        text = await response.text()
    assert 'healthmate_gateway_refusals_total{reason="headers_too_large"} 1.0' in text
    assert 'healthmate_gateway_refusals_total{reason="malformed_http"} 2.0' in text


async def test_a_client_that_leaves_mid_body_is_a_counted_refusal_not_a_fault(gateway, pipeline_settings):
    """It was logged as an ERROR with a traceback and counted as a 503 'unavailable': closing
    500 slow connections wrote 500 tracebacks, and looked like a Kafka outage."""
    for _ in range(3):
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(f"POST {INGEST_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     f"Authorization: Bearer {token(pipeline_settings)}\r\nContent-Length: 1000\r\n\r\n"
                     '{"metric": "heart_rate"'.encode())
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.close()
    await asyncio.sleep(0.5)
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.base}/metrics") as response:
        text = await response.text()
    assert 'healthmate_gateway_refusals_total{reason="body_incomplete"} 3.0' in text
    assert "Traceback" not in gateway.log_tail(100_000) and 'reason="unavailable"' not in text
    assert await raw_topic_size(pipeline_settings) == 0
