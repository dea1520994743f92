"""Slow clients at the gateway's door, over raw sockets to a real gateway with small timeouts.

A probe held 500 connections open for as long as it liked with request heads that never
ended, or bodies that stalled or trickled a byte every few seconds: the gateway had no read
deadline. Each test failed before the deadlines of ``web.guarded`` and ``web.body_pace``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from gateway_support import INGEST, JWT_ENV, GatewayProcess, raw_topic_size, running_gateway, token

from streams.config import Settings

pytestmark = pytest.mark.integration

HEADER_S, KEEPALIVE_S, IDLE_S = 1.0, 2.0, 1.0
MIN_RATE = 1000  # bytes/s: a byte every 0.2 s is far below it
#: The gateway answers or closes within its deadline; this margin is for a loaded machine.
MARGIN_S = 3.0
READING = json.dumps({"metric": "heart_rate", "value": 60, "unit": "bpm", "timestamp": "2026-01-01T00:00:00Z",
                      "source": "fitbit"}).encode()


@pytest.fixture
async def gateway(pipeline_env: dict[str, str], pipeline_settings: Settings, tmp_path: Path
                  ) -> AsyncIterator[GatewayProcess]:
    env = {**pipeline_env, **JWT_ENV, "HEALTHMATE_GATEWAY_HEADER_TIMEOUT_S": str(HEADER_S),
           "HEALTHMATE_GATEWAY_KEEPALIVE_TIMEOUT_S": str(KEEPALIVE_S),
           "HEALTHMATE_GATEWAY_BODY_IDLE_TIMEOUT_S": str(IDLE_S),
           "HEALTHMATE_GATEWAY_BODY_MIN_BYTES_PER_S": str(MIN_RATE)}
    async with running_gateway(env, tmp_path / "gateway.log") as process:
        yield process


def _head(settings: Settings, length: int, extra: str = "") -> bytes:
    return (f"POST {INGEST} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\n"
            f"Authorization: Bearer {token(settings)}\r\nContent-Length: {length}\r\n{extra}\r\n").encode()


async def _trickle(writer: asyncio.StreamWriter, data: bytes, every_s: float) -> None:
    """One byte every ``every_s`` seconds, until the data ends or the gateway closes."""
    try:
        for i in range(len(data)):
            writer.write(data[i:i + 1])
            await writer.drain()
            await asyncio.sleep(every_s)
    except ConnectionError:
        pass


async def _until_closed(reader: asyncio.StreamReader, limit_s: float) -> tuple[bytes, float]:
    """What the gateway sent until it closed the connection, and how long that took. A close
    while our bytes were still arriving unread is a reset (RST): closed, nothing received."""
    started = time.monotonic()
    try:
        received = await asyncio.wait_for(reader.read(), limit_s)
    except ConnectionResetError:
        received = b""
    return received, time.monotonic() - started


async def _answer(reader: asyncio.StreamReader, limit_s: float) -> tuple[bytes, bytes, float]:
    """The head and body of the gateway's answer, and how long it took to arrive."""
    started = time.monotonic()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), limit_s)
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)[1])  # type: ignore[index]
    body = await asyncio.wait_for(reader.readexactly(length), limit_s)
    return head, body, time.monotonic() - started


async def _metrics(gateway: GatewayProcess) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.base}/metrics") as response:
        return await response.text()


async def _post_ok(gateway: GatewayProcess, settings: Settings) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            gateway.url, data=READING, headers={"Content-Type": "application/x-ndjson",
                                                "Authorization": f"Bearer {token(settings)}"}) as response:
        assert response.status == 202, await response.text()


async def test_heads_that_never_end_are_closed_and_counted(gateway, pipeline_settings):
    """Slowloris: 20 connections trickle header lines (a byte every 0.2 s, never a blank line).
    Each is closed about HEADER_S after its first byte, unanswered; a silent connection is
    closed after KEEPALIVE_S; a normal request right after is served."""
    connections = [await asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(20)]
    silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    opened = time.monotonic()
    head = f"POST {INGEST} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {'a' * 200}".encode()
    trickles = [asyncio.create_task(_trickle(writer, head, 0.2)) for _, writer in connections]
    closed = await asyncio.gather(*(_until_closed(reader, HEADER_S + MARGIN_S) for reader, _ in connections))
    assert all(received == b"" for received, _ in closed), closed  # closed, no answer
    assert max(seconds for _, seconds in closed) < HEADER_S + MARGIN_S
    silent, _ = await _until_closed(silent_reader, KEEPALIVE_S + MARGIN_S)
    assert silent == b"" and time.monotonic() - opened >= KEEPALIVE_S - 0.1
    for task in trickles:
        task.cancel()
    for _, writer in [*connections, (silent_reader, silent_writer)]:
        writer.close()
    await _post_ok(gateway, pipeline_settings)
    text = await _metrics(gateway)
    assert 'healthmate_gateway_refusals_total{reason="header_timeout"} 20.0' in text, text
    assert "Traceback" not in gateway.log_tail(100_000) and "X-Pad" not in gateway.log_tail(100_000)


@pytest.mark.parametrize(("every_s", "reason"), [(None, "body_idle"), (0.2, "body_too_slow")])
async def test_a_body_that_stalls_or_trickles_answers_408_and_sends_nothing(gateway, pipeline_settings,
                                                                            every_s, reason):
    """A body that stops (idle) or arrives a byte every 0.2 s (never idle, far below
    MIN_RATE): 408 JSON with the reason, the connection closed, nothing on the raw topic."""
    body = READING + b"\n" + READING
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(_head(pipeline_settings, len(body)) + body[:10])
    await writer.drain()
    trickle = asyncio.create_task(_trickle(writer, body[10:], every_s) if every_s else asyncio.sleep(0))
    head, answer, seconds = await _answer(reader, IDLE_S + MARGIN_S)
    assert head.startswith(b"HTTP/1.1 408 "), head
    assert b"Connection: close" in head and b"Server:" not in head, head
    assert json.loads(answer)["reason"] == reason, answer
    assert READING.decode()[:20] not in answer.decode()
    rest, _ = await _until_closed(reader, 10 + MARGIN_S)  # after aiohttp's lingering close (10 s at most)
    assert rest == b""
    trickle.cancel()
    writer.close()
    await _post_ok(gateway, pipeline_settings)
    assert await raw_topic_size(pipeline_settings) == 1  # only the 202's reading
    assert f'healthmate_gateway_refusals_total{{reason="{reason}"}} 1.0' in await _metrics(gateway)


async def test_an_honest_slow_body_is_accepted(gateway, pipeline_settings):
    """A body sent in pieces, each within IDLE_S and above MIN_RATE on average, is a 202."""
    lines = [json.dumps({"metric": "steps", "value": i, "unit": "count", "source": "fitbit",
                         "timestamp": f"2026-01-01T00:0{i}:00Z", "note": "x" * 600}).encode() + b"\n"
             for i in range(5)]
    body = b"".join(lines)
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(_head(pipeline_settings, len(body)))
    for line in lines:  # ~700 bytes every 0.5 s: about 1400 bytes/s
        await asyncio.sleep(0.5)
        writer.write(line)
        await writer.drain()
    head, answer, _ = await _answer(reader, 10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 202 "), answer


async def test_an_unknown_expectation_answers_json_and_no_answer_names_the_server(gateway, pipeline_settings):
    """aiohttp answered ``Expect: foo`` with a plain-text 417 echoing the value, and every
    answer carried ``Server: Python/aiohttp``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(_head(pipeline_settings, len(READING), "Expect: PHI-henriette\r\n"))
    await writer.drain()
    head, answer, _ = await _answer(reader, 10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 417 ") and b"Server:" not in head, head
    assert json.loads(answer)["reason"] == "expectation_failed" and b"henriette" not in answer
    async with aiohttp.ClientSession() as session:
        for method, path in (("GET", "/health"), ("GET", "/metrics"), ("GET", "/nowhere")):
            async with session.request(method, f"{gateway.base}{path}") as response:
                assert "Server" not in response.headers, (path, response.headers["Server"])
        async with session.post(gateway.url, data=READING, headers={
                "Content-Type": "application/x-ndjson", "Authorization": f"Bearer {token(pipeline_settings)}",
                "Expect": "100-continue"}) as response:
            assert response.status == 202 and "Server" not in response.headers
    assert await raw_topic_size(pipeline_settings) == 1
