"""The gateway's Kafka outage: kill -9 the broker under HTTP load, start it again.

Pass when every request answered 202 has all its readings (by the event ids of the answer)
in the warehouse once the worker caught up, no event id is stored twice, every other
request got 503 or no answer at all (a connection error, a timeout), and the outage did
refuse some requests (else it was not tested).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import aiohttp
import asyncpg
from gateway_support import GatewayProcess
from pydantic import SecretStr

from chaos.pipeline import Pipeline
from chaos.scenarios import CATCH_UP_S, Row
from chaos.verify import Verdict
from chaos.workers import Fleet
from streams.config import Settings
from streams.sink.migrations import quote_ident
from web.auth import mint_token

JWT_SECRET = "chaos-gateway-secret-at-least-32-bytes-long"


class Broker(Protocol):
    def kill_broker(self) -> None: ...
    def start_broker(self) -> None: ...


@dataclass
class Answers:
    event_ids: list[str] = field(default_factory=list)  # of every reading answered 202
    accepted: int = 0  # requests answered 202
    unavailable: int = 0  # 503 with Retry-After
    unanswered: int = 0  # connection refused or reset, or no answer in time
    other: Counter[str] = field(default_factory=Counter)


class GatewayLoad:
    """``clients`` senders posting NDJSON requests of ``per_request`` distinct readings."""

    def __init__(self, url: str, tokens: list[str], *, clients: int = 4, per_request: int = 20) -> None:
        self.url, self.tokens, self.clients, self.per_request = url, tokens, clients, per_request
        self.answers = Answers()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._start = datetime.now(UTC) - timedelta(hours=2)
        self._n = 0

    def start(self) -> None:
        self._tasks = [asyncio.get_running_loop().create_task(self._client(i)) for i in range(self.clients)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def _body(self) -> bytes:
        lines = []
        for _ in range(self.per_request):
            self._n += 1
            at = self._start + timedelta(milliseconds=self._n)
            lines.append(json.dumps({"metric": "heart_rate", "value": 50 + self._n % 50, "unit": "bpm",
                                     "source": "polar", "device_id": "chaos", "timestamp": at.isoformat()}))
        return "\n".join(lines).encode()

    async def _client(self, i: int) -> None:
        headers = {"Authorization": f"Bearer {self.tokens[i % len(self.tokens)]}",
                   "Content-Type": "application/x-ndjson"}
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not self._stop.is_set():
                try:
                    async with session.post(self.url, data=self._body(), headers=headers) as response:
                        body = await response.read()
                        self._record(response.status, body, response.headers.get("Retry-After"))
                except (aiohttp.ClientError, TimeoutError):
                    self.answers.unanswered += 1
                    await asyncio.sleep(0.2)

    def _record(self, status: int, body: bytes, retry_after: str | None) -> None:
        a = self.answers
        if status == 202:
            a.accepted += 1
            a.event_ids.extend(eid for ids in json.loads(body)["event_ids"] for eid in ids)
        elif status == 503 and retry_after:
            a.unavailable += 1
        else:
            a.other[str(status)] += 1


async def verify_answers(settings: Settings, answers: Answers) -> Verdict:
    v = Verdict(sent=len(answers.event_ids), offsets_ok=True)
    conn = await asyncpg.connect(settings.pg_dsn_value)
    try:
        s = quote_ident(settings.warehouse_schema)
        rows = await conn.fetch(f"SELECT event_id FROM {s}.health_readings")
    finally:
        await conn.close()
    stored = Counter(r["event_id"] for r in rows)
    v.stored = len(rows)
    v.duplicated = sum(n - 1 for n in stored.values())
    lost = [eid for eid in dict.fromkeys(answers.event_ids) if eid not in stored]
    v.lost = len(lost)
    if lost:
        v.problems.append(f"{len(lost)} readings answered 202 are not stored, e.g. {lost[:3]}")
    if v.duplicated:
        v.problems.append(f"{v.duplicated} event ids stored twice")
    if answers.other:
        v.problems.append(f"answers other than 202/503: {dict(answers.other)}")
    if not answers.unavailable + answers.unanswered:
        v.problems.append("no request was refused during the outage: the fault did not bite")
    return v


def gateway_env(p: Pipeline) -> dict[str, str]:
    # No rate limit in the way: the clients send back to back, as fast as the gateway answers.
    return {**p.env, "HEALTHMATE_API_JWT_SECRET": JWT_SECRET, "HEALTHMATE_GATEWAY_ACK_TIMEOUT_S": "3",
            "HEALTHMATE_GATEWAY_RATE_PER_TOKEN": "100000", "HEALTHMATE_GATEWAY_BURST_PER_TOKEN": "100000"}


async def gateway_broker_kill(p: Pipeline, broker: Broker, *, down_s: float = 8.0) -> Row:
    row, started = Row("gateway: broker kill -9 under HTTP load"), time.monotonic()
    signer = p.settings.model_copy(update={"api_jwt_secret": SecretStr(JWT_SECRET)})
    tokens = [mint_token(signer, subject=f"chaos-user-{i}", roles=["producer"]) for i in range(4)]
    gateway = GatewayProcess(gateway_env(p), p.log_dir / "gateway.log")
    gateway.start()
    load = GatewayLoad(gateway.url, tokens)
    try:
        await gateway.wait_ready()
        with Fleet(p.env, p.log_dir) as fleet:
            load.start()
            if await p.wait_for_progress(0, timeout=90) is None:
                row.problems.append("nothing stored before the kill")
            broker.kill_broker()
            await asyncio.sleep(down_s)
            if load.answers.unavailable and (status := await _health(gateway)) != 503:
                row.problems.append(f"/health answered {status} while Kafka was down")
            await asyncio.to_thread(broker.start_broker)
            await _accepted_again(load, load.answers.accepted, row)
            if (status := await _health(gateway)) != 200:
                row.problems.append(f"/health answered {status} after Kafka came back")
            await asyncio.sleep(3)
            await load.stop()
            if (late := await p.caught_up(CATCH_UP_S)) is not None:
                row.problems.append(late)
            row.deaths = list(fleet.uncaused)
    finally:
        await load.stop()  # idempotent
        if gateway.stop() != 0:
            row.problems.append(f"the gateway did not exit 0 on SIGTERM: {gateway.log_tail(300)}")
    a = load.answers
    row.verdict = await verify_answers(p.settings, a)
    row.notes = (f"{a.accepted} requests 202, {a.unavailable} 503, {a.unanswered} unanswered; "
                 f"broker down {down_s:.0f}s")
    row.seconds = time.monotonic() - started
    return row


async def _health(gateway: GatewayProcess) -> int | None:
    try:
        async with aiohttp.ClientSession() as session, session.get(
                f"{gateway.base}/health", timeout=aiohttp.ClientTimeout(total=10)) as response:
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return None


async def _accepted_again(load: GatewayLoad, before: int, row: Row, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if load.answers.accepted > before:
            return
        await asyncio.sleep(0.5)
    row.problems.append(f"no 202 within {timeout:.0f}s of the broker's restart")
