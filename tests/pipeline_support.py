"""Helpers shared by the integration tests and the benchmark: real Kafka, real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAuthorizationFailedError

from streams.config import Settings
from streams.connections import kafka_kwargs, pg_connect_kwargs
from streams.sink.migrations import quote_ident

# A bootstrap address (plaintext), or aiokafka client arguments (streams.connections.kafka_kwargs).
Kafka = str | Mapping[str, Any]


def _client_args(kafka: Kafka) -> dict[str, Any]:
    return {"bootstrap_servers": kafka} if isinstance(kafka, str) else dict(kafka)

ROOT = Path(__file__).resolve().parents[1]


RUNTIME_USER, RUNTIME_PASSWORD = "healthmate_app", "healthmate_app"  # scripts/stack.sh creates it


def runtime_dsn(owner_dsn: str) -> str:
    """``owner_dsn`` as the local stack's runtime role (least privilege, no ownership)."""
    parts = urlsplit(owner_dsn)
    netloc = f"{RUNTIME_USER}:{RUNTIME_PASSWORD}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reader(kafka: Kafka) -> AIOKafkaConsumer:
    # A group id avoids aiokafka 0.14's group-less coordinator, whose stop() re-raises
    # CancelledError; the reader only assign()s, so it never joins that group.
    return AIOKafkaConsumer(
        **_client_args(kafka), group_id=f"test-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False,
        max_partition_fetch_bytes=64 * 1024 * 1024,
    )


async def partitions_of(kafka: Kafka, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(**_client_args(kafka))
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = sorted(p["partition"] for p in description["partitions"])
    assert partitions, f"topic {topic} has no partitions"
    return partitions


async def end_offsets(kafka: Kafka, topic: str) -> dict[int, int]:
    consumer = _reader(kafka)
    await consumer.start()
    try:
        partitions = await partitions_of(kafka, topic)
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: o for tp, o in ends.items()}
    finally:
        await consumer.stop()


async def read_topic(kafka: Kafka, topic: str, *, timeout: float = 20.0) -> list:
    """Every record of ``topic`` up to its end offsets at call time."""
    ends = await end_offsets(kafka, topic)
    consumer = _reader(kafka)
    await consumer.start()
    records: list = []
    try:
        tps = [TopicPartition(topic, p) for p in ends]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while [tp for tp in tps if await consumer.position(tp) < ends[tp.partition]]:
            if loop.time() > deadline:
                raise AssertionError(f"timed out reading {topic}")
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def wait_until_caught_up(settings: Settings, pg: asyncpg.Connection, *, timeout: float = 120.0,
                               alive: Callable[[], bool] = lambda: True) -> None:
    """Wait until sink_offsets has reached the raw topic's end offsets."""
    ends = await end_offsets(kafka_kwargs(settings), settings.raw_topic)
    s = quote_ident(settings.warehouse_schema)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    stored: dict[int, int] = {}
    while loop.time() < deadline:
        assert alive(), "the worker died"
        try:
            rows = await pg.fetch(
                f"SELECT partition, next_offset FROM {s}.sink_offsets WHERE consumer_group=$1 AND topic=$2",
                settings.consumer_group, settings.raw_topic)
            stored = {r["partition"]: r["next_offset"] for r in rows}
        except asyncpg.UndefinedTableError:
            stored = {}
        if all(stored.get(p, 0) >= end for p, end in ends.items()):
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"not caught up: stored {stored}, end {ends}")


class WorkerProcess:
    """A real ``python -m streams worker`` process, stopped by its pid."""

    def __init__(self, env: dict[str, str], log_path: Path, checkout: Path = ROOT) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.checkout = checkout  # whose streams/ runs (bench/compare.py runs an older one)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", "-l", "info",
             "--web-port", self.env["HEALTHMATE_WEB_PORT"], "--web-host", "127.0.0.1"],
            cwd=self.checkout, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, grace: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


async def drop_pipeline_resources(settings: Settings) -> None:
    """Delete the test's topics (its raw/dlq prefix and Faust app id) and drop its schema."""
    admin = AIOKafkaAdminClient(**kafka_kwargs(settings))
    await admin.start()
    try:
        existing = await admin.list_topics()
        ours = [t for t in existing if t.startswith(settings.raw_topic.rsplit(".", 1)[0])
                or t.startswith(settings.app_id)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()
    await drop_schema(settings.pg_migration_dsn_value, settings.warehouse_schema,
                      **pg_connect_kwargs(settings))


async def drop_schema(dsn: str, schema: str, **connect_kwargs: Any) -> None:
    conn = await asyncpg.connect(dsn, **connect_kwargs)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
    finally:
        await conn.close()


def documented_level(score: float) -> str:
    """The quality level of a score as the docs define it (>= 0.95 excellent, >= 0.85 good,
    >= 0.70 fair, >= 0.50 poor, else unusable), written here independently of the code."""
    for level, floor in (("excellent", 0.95), ("good", 0.85), ("fair", 0.70), ("poor", 0.50)):
        if score >= floor:
            return level
    return "unusable"


async def create_topic_as(settings: Settings, name: str) -> None:
    """Create a one-partition topic with ``settings``' principal; a refusal raises
    ``TopicAuthorizationFailedError`` (naming the error codes)."""
    admin = AIOKafkaAdminClient(**kafka_kwargs(settings), request_timeout_ms=10_000)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, 1, 1)], timeout_ms=10_000)
    finally:
        await admin.close()
    codes = [e[1] for e in response.topic_errors]
    if codes != [0]:
        raise TopicAuthorizationFailedError(f"create {name}: error {codes}")


async def assert_stored_once(pg: asyncpg.Connection, schema: str, expected: Counter[str]) -> None:
    """The warehouse holds ``expected`` readings by metric, each once: no event id twice, no
    (user, metric, instant, source) twice, and no dead letter."""
    s = quote_ident(schema)
    by_metric = Counter({r["metric"]: r["n"] for r in await pg.fetch(
        f"SELECT metric, count(*) AS n FROM {s}.health_readings GROUP BY metric")})
    assert by_metric == expected, f"stored {by_metric - expected} too many, {expected - by_metric} missing"
    assert await pg.fetchval(f"SELECT count(*) - count(DISTINCT event_id) FROM {s}.health_readings") == 0
    twice = await pg.fetch(f"SELECT user_key, metric, measured_at, source FROM {s}.health_readings "
                           "GROUP BY user_key, metric, measured_at, source HAVING count(*) > 1 LIMIT 5")
    assert twice == [], f"stored twice: {twice}"
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.dead_letters") == 0


def vm_hwm_mb(pid: int) -> float | None:
    """A live process's peak resident memory (``VmHWM``) in MB; None once it is gone.

    Not ``ru_maxrss`` of ``wait4``: the kernel carries the forking parent's peak across
    ``exec`` into it, so a child of a large pytest process would report pytest's size."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class PeakRss:
    """A child's peak RSS (:func:`vm_hwm_mb`), sampled every 20 ms from now until it exits:
    VmHWM only grows, so the last sample is within 20 ms of the true peak."""

    def __init__(self, pid: int) -> None:
        self.mb = 0.0
        self._thread = threading.Thread(target=self._sample, args=(pid,), daemon=True)
        self._thread.start()

    def _sample(self, pid: int) -> None:
        while (mb := vm_hwm_mb(pid)) is not None:
            self.mb = max(self.mb, mb)
            time.sleep(0.02)

    def result(self) -> float:
        """The peak, once the process has exited."""
        self._thread.join(10)
        return self.mb
