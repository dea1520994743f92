"""An erased person stays erased, through real worker processes (one, then two).

The person is erased while their readings are still in the raw topic and more are being
produced. Afterwards every way their readings could come back is tried: a producer re-sends
their messages, new readings arrive, the erased range is replayed, and their dead letters
are redriven after a fix. None is stored; each is dead-lettered as ``subject_erased`` with no
payload; the other users' readings beside them are stored exactly once. The workers run as
the runtime role, as ``make run`` does.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pipeline_support import (
    WorkerProcess,
    end_offsets,
    free_port,
    read_topic,
    runtime_dsn,
    wait_until_caught_up,
)

from batch.config import ReplayRange
from batch.replay import replay
from streams.config import Settings
from streams.connections import warehouse_from_settings
from streams.domain.pseudonym import user_key
from streams.sink.migrations import quote_ident
from web.auth import mint_token

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OTHERS = ("other-1", "other-2", "other-3")
ERASED_METRIC = "healthmate_erased_readings_refused_total"


@pytest.fixture
def pipeline_env(pipeline_env: dict[str, str], pg_dsn: str) -> dict[str, str]:
    # The workers and this test's own connections run as the runtime role, as deployed.
    pipeline_env.update({
        "HEALTHMATE_PG_DSN": runtime_dsn(pg_dsn), "HEALTHMATE_PG_MIGRATION_DSN": pg_dsn,
        "HEALTHMATE_API_JWT_SECRET": secrets.token_urlsafe(48), "HEALTHMATE_SINK_MAX_LATENCY_MS": "50",
    })
    return pipeline_env


@pytest.fixture
def settings(pipeline_settings: Settings) -> Settings:
    return pipeline_settings


class Fleet:
    """``size`` worker processes of one consumer group, each with its own web port."""

    def __init__(self, env: dict[str, str], logs: Path, size: int) -> None:
        self.env, self.logs, self.size = env, logs, size
        self.workers: list[WorkerProcess] = []

    def start(self, **extra: str) -> None:
        self.workers = [WorkerProcess({
            **self.env, **extra, "HEALTHMATE_WEB_PORT": str(free_port()),
            "HEALTHMATE_DATA_DIR": str(self.logs / f"data-{i}-{uuid.uuid4().hex[:6]}")},
            self.logs / f"worker-{i}.log") for i in range(self.size)]
        for w in self.workers:
            w.start()

    def stop(self) -> None:
        for w in self.workers:
            w.stop()

    def alive(self) -> bool:
        return all(w.alive() for w in self.workers)

    def url(self, path: str, i: int = 0) -> str:
        return f"http://127.0.0.1:{self.workers[i].env['HEALTHMATE_WEB_PORT']}{path}"

    def log_tail(self) -> str:
        return "\n".join(w.log_path.read_text(errors="replace")[-2000:] for w in self.workers)


@pytest.fixture
def fleet(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(pipeline_env, tmp_path, 1)
    yield f
    f.stop()


async def _metric_sum(fleet: Fleet, name: str) -> float:
    total = 0.0
    async with aiohttp.ClientSession() as session:
        for i in range(fleet.size):
            async with session.get(fleet.url("/metrics", i)) as r:
                text = await r.text()
            total += sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))
    return total


async def _until_answering(fleet: Fleet, timeout: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        for i in range(fleet.size):
            while True:
                assert fleet.alive(), fleet.log_tail()
                try:
                    async with session.get(fleet.url("/health", i)) as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert loop.time() < deadline, fleet.log_tail()
                await asyncio.sleep(0.3)


@dataclass(frozen=True)
class Sent:
    partition: int
    offset: int
    ids: list[str]
    value: bytes
    naive: bool  # or a bad unit: dead-lettered by the domain, before the warehouse


class Traffic:
    """Readings sent, by user, with where they landed."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer, self.topic = producer, topic
        self.sent: dict[str, list[Sent]] = {}
        self.now = datetime.now(UTC)

    async def send(self, user: str, *, count: int = 1, naive: bool = False, envelope: bool = False,
                   unit: str = "bpm") -> None:
        ids = [f"er-{uuid.uuid4().hex[:12]}" for _ in range(count)]
        at = self.now - timedelta(minutes=30 + len(self.sent.get(user, ())))
        stamp = at.replace(tzinfo=None).isoformat() if naive else at.isoformat()
        readings = [{"event_id": e, "metric": "heart_rate", "value": 60 + i, "unit": unit,
                     "timestamp": stamp} for i, e in enumerate(ids)]
        common = {"user_id": user, "device_id": "d-1", "source": "fitbit"}
        if envelope:
            value = orjson.dumps({**common, "batch_id": f"b-{uuid.uuid4().hex[:8]}", "readings": readings})
        else:
            (reading,) = readings
            value = orjson.dumps({**common, **reading})
        await self.resend(user, Sent(-1, -1, ids, value, naive or unit != "bpm"))

    async def resend(self, user: str, sent: Sent) -> None:
        meta = await self.producer.send_and_wait(self.topic, sent.value, key=user.encode())
        landed = Sent(meta.partition, meta.offset, sent.ids, sent.value, sent.naive)
        self.sent.setdefault(user, []).append(landed)

    def ids(self, user: str) -> list[str]:
        return [e for sent in self.sent.get(user, ()) for e in sent.ids]


def _readings(sent: list[Sent]) -> int:
    return sum(len(x.ids) for x in sent)


async def _call(fleet: Fleet, settings: Settings, method: str, path: str, role: str, *, i: int = 0,
                json: dict | None = None, sub: str = "dpo") -> tuple[int, dict]:
    token = mint_token(settings, subject=sub, roles=[role], ttl_s=300)
    async with aiohttp.ClientSession() as session, session.request(
            method, fleet.url(f"/data-pipeline{path}", i), json=json,
            headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, await r.json()


@pytest.mark.parametrize("workers", [1, 2])
async def test_an_erased_person_stays_erased(
        workers: int, settings: Settings, fleet: Fleet, raw_producer: AIOKafkaProducer,
        pg: asyncpg.Connection, pg_dsn: str) -> None:
    person = f"patient-{uuid.uuid4().hex[:8]}"
    pseudonym = user_key(settings.pseudonym_key_bytes, person)
    s = quote_ident(settings.warehouse_schema)
    fleet.size = workers
    fleet.start()
    traffic = Traffic(raw_producer, settings.raw_topic)

    # 1. Before: the person and three others, each with a reading the fix below will accept.
    for user in (person, *OTHERS):
        await traffic.send(user, count=1)
        await traffic.send(user, count=3, envelope=True)
        await traffic.send(user, count=1, naive=True)  # naive_timestamp until the fix
    phase1 = {u: len(traffic.sent[u]) for u in traffic.sent}
    phase1_ends = await end_offsets(settings.kafka_bootstrap, settings.raw_topic)
    await wait_until_caught_up(settings, pg, alive=fleet.alive)
    await _until_answering(fleet)
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.health_readings WHERE user_key = $1", pseudonym) == 4

    # 2. Erase while the person's and others' readings keep arriving (a reading in flight
    #    is either stored before the erasure, and deleted by it, or refused after it).
    async def keep_sending() -> None:
        for _ in range(10):
            for user in (person, *OTHERS):
                await traffic.send(user, count=2, envelope=True)
            await asyncio.sleep(0.1)

    sending = asyncio.create_task(keep_sending())
    await asyncio.sleep(0.4)
    status, erased = await _call(fleet, settings, "DELETE", f"/subjects/{person}", "admin", i=workers - 1)
    await sending
    await wait_until_caught_up(settings, pg, alive=fleet.alive)  # copies below land in later batches
    assert status == 200, erased
    assert erased["erasure"]["erased_by"] == "dpo"
    assert erased["profile_tombstone"] == "published"
    assert {p["place"] for p in erased["not_reached"]} >= {f"Kafka topic {settings.raw_topic}",
                                                           f"Kafka topic {settings.dlq_topic}"}
    during = {u: len(traffic.sent[u]) for u in traffic.sent}

    # 3. After: a producer's late retry of everything the person sent, and new readings.
    for sent in [x for x in traffic.sent[person] if not x.naive]:
        await traffic.resend(person, sent)
    await traffic.send(person, unit="furlongs")  # unknown_unit: the domain's reason, but no payload
    bad = traffic.sent[person][-1]
    for user in (person, *OTHERS):
        await traffic.send(user)
        await traffic.send(user, count=2, envelope=True)
    await wait_until_caught_up(settings, pg, alive=fleet.alive)
    live_erased = await _metric_sum(fleet, ERASED_METRIC)

    # 4. Replay the range that was in the raw topic at erasure time (the first phase).
    warehouse = warehouse_from_settings(settings)
    await warehouse.start()
    try:
        stats = await replay(settings, warehouse, ReplayRange(
            topic=settings.raw_topic, from_offsets=dict.fromkeys(phase1_ends, 0), to_offsets=phase1_ends),
            group=f"replay:{uuid.uuid4()}")
    finally:
        await warehouse.stop()
    assert (stats.stored, stats.erased) == (0, 4)  # the others' readings were stored already

    # 5. The fix (naive timestamps read as UTC), then redrive every naive_timestamp letter.
    fleet.stop()
    fleet.start(HEALTHMATE_NAIVE_TIMESTAMPS="utc")
    await _until_answering(fleet)
    status, redriven = await _call(fleet, settings, "POST", "/dlq/redrive", "operator",
                                   json={"reason": "naive_timestamp"})
    assert status == 200, redriven
    assert redriven["refed"] == 1 + len(OTHERS)
    await wait_until_caught_up(settings, pg, alive=fleet.alive)
    redrive_erased = await _metric_sum(fleet, ERASED_METRIC)

    # Nothing of the person is stored; everybody else's readings exactly once.
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.health_readings WHERE user_key = $1", pseudonym) == 0
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.reading_events WHERE event_id = ANY($1)",
                             traffic.ids(person)) == 0
    rows = await pg.fetch(f"SELECT event_id FROM {s}.health_readings WHERE user_key <> $1", pseudonym)
    assert len(rows) == len({r["event_id"] for r in rows})
    assert {r["event_id"] for r in rows} == {e for u in OTHERS for e in traffic.ids(u)}

    # Each of the person's readings after the erasure is a subject_erased dead letter, with no payload.
    letters = [r for r in await read_topic(settings.kafka_bootstrap, settings.dlq_topic)
               if dict(r.headers).get("error.code") == b"subject_erased"]
    assert all(r.value == b"" and r.key == pseudonym.encode() for r in letters)
    assert all(person.encode() not in b"".join(v for _, v in r.headers) for r in letters)
    positions = [(int(dict(r.headers)["source.partition"]), int(dict(r.headers)["source.offset"]))
                 for r in letters]
    after = [x for x in traffic.sent[person][during[person]:] if not x.naive]
    assert {(x.partition, x.offset) for x in after} <= set(positions)
    in_flight = traffic.sent[person][phase1[person]:during[person]]
    refused = [x for x in in_flight if (x.partition, x.offset) in set(positions)]
    stored_then_erased = erased["erased"]["health_readings"] - 4
    assert stored_then_erased + _readings(refused) == _readings(in_flight)
    assert live_erased == _readings(after) + _readings(refused)
    person_positions = {(x.partition, x.offset) for x in traffic.sent[person]}
    assert len([p for p in positions if p not in person_positions]) == redrive_erased == 1  # the redriven
    assert len(positions) == live_erased + redrive_erased  # one letter per reading, none twice
    [bad_letter] = [r for r in await read_topic(settings.kafka_bootstrap, settings.dlq_topic)
                    if (int(dict(r.headers)["source.partition"]), int(dict(r.headers)["source.offset"]))
                    == (bad.partition, bad.offset)]
    assert dict(bad_letter.headers)["error.code"] == b"unknown_unit"
    assert (bad_letter.value, dict(bad_letter.headers)["subject.erased"]) == (b"", b"true")
    booked = await pg.fetchval(f"SELECT count(*) FROM {s}.dead_letters WHERE reason = 'subject_erased'")
    assert booked == live_erased + stats.erased + redrive_erased

    # The register entry names the caller and the audited request; no raw id anywhere.
    entry = await pg.fetchrow(f"SELECT * FROM {s}.erasure_register WHERE user_key = $1", pseudonym)
    assert entry["erased_by"] == "dpo"
    assert await pg.fetchval(f"SELECT action FROM {s}.audit_log WHERE request_id = $1",
                             entry["request_id"]) == "subjects.erase"
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.erasure_register WHERE user_key = $1", person) == 0
    tombstones = [r for r in await read_topic(settings.kafka_bootstrap, settings.profiles_topic)
                  if r.key == person.encode()]
    assert [r.value for r in tombstones] == [None]

    # Lifting the entry (audited) lets the person come back as a new user.
    status, lifted = await _call(fleet, settings, "DELETE", f"/subjects/{person}/erasure", "admin")
    assert status == 200 and lifted["lifted"]["request_id"] == entry["request_id"]
    await traffic.send(person, count=1)
    await wait_until_caught_up(settings, pg, alive=fleet.alive)
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.health_readings WHERE user_key = $1", pseudonym) == 1
    assert (await _call(fleet, settings, "DELETE", f"/subjects/{person}/erasure", "admin"))[0] == 404
