"""Bench data and Kafka plumbing: synthetic readings, producing them, topics, clean-up."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner
from pipeline_support import drop_schema

from streams.synthetic import SyntheticReadings

ROOT = Path(__file__).resolve().parents[1]

BOOTSTRAP = os.environ.get("HEALTHMATE_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
PG_DSN = os.environ.get("HEALTHMATE_PG_DSN", "postgresql://healthmate:healthmate@127.0.0.1:5432/healthmate")
N = int(os.environ.get("BENCH_N", "200000"))
LATENCY_S = float(os.environ.get("BENCH_LATENCY_S", "10"))
PROFILE = os.environ.get("BENCH_PROFILE") == "1"
KEEP = os.environ.get("BENCH_KEEP") == "1"
PARTITIONS = 4  # HEALTHMATE_TOPIC_PARTITIONS default
ENVELOPE = 100
OUT = ROOT / "bench" / "results.json"
WORK = ROOT / "bench" / "work"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------- test data


def make_data(n: int, seed: int) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """``n`` valid readings as (key, value) singles, and the same readings in envelopes."""
    gen = SyntheticReadings(datetime.now(UTC), seed=seed)
    envelopes = [(m.key, m.value) for m in gen.messages(n, bad_ratio=0.0, batch_size=ENVELOPE)]
    singles = []
    for key, value in envelopes:
        doc = orjson.loads(value)
        header = {k: doc[k] for k in ("user_id", "device_id", "source")}
        singles.extend((key, orjson.dumps({**header, **member})) for member in doc["readings"])
    return singles, envelopes


def make_omh(singles: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The singles' ids, users and times as Open mHealth heart-rate 2.0 data points."""
    points = []
    for i, (key, value) in enumerate(singles):
        doc = orjson.loads(value)
        at = doc["timestamp"]
        at = datetime.fromtimestamp(at / 1000, UTC).isoformat() if isinstance(at, int) else at
        points.append((key, orjson.dumps({
            "header": {"id": doc["event_id"], "creation_date_time": at, "user_id": doc["user_id"],
                       "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"}},
            "body": {"heart_rate": {"value": 50 + i % 90, "unit": "beats/min"},
                     "effective_time_frame": {"date_time": at}}})))
    return points


async def produce(topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    """Publish as fast as possible (whole record batches, keyed like the default partitioner);
    return the seconds it took."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", max_batch_size=1 << 20,
                                max_request_size=4 << 20)
    await producer.start()
    started = time.perf_counter()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        partitioner = DefaultPartitioner()
        batches = {p: producer.create_batch() for p in partitions}
        sent = []
        for key, value in messages:
            p = partitioner(key, partitions, partitions)
            if batches[p].append(key=key, value=value, timestamp=None) is None:
                sent.append(await producer.send_batch(batches[p], topic, partition=p))
                batches[p] = producer.create_batch()
                batches[p].append(key=key, value=value, timestamp=None)
        for p, batch in batches.items():
            if batch.record_count():
                sent.append(await producer.send_batch(batch, topic, partition=p))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def produce_at_rate(topic: str, messages: list[tuple[bytes, bytes]], rate: float
                          ) -> tuple[float, float]:
    """Publish at ``rate`` messages/s, paced every 5 ms; return (start wall time, achieved rate)."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=0)
    await producer.start()
    try:
        wall0 = time.time()
        t0 = time.perf_counter()
        sent = 0
        pending = []
        while sent < len(messages):
            due = min(len(messages), int((time.perf_counter() - t0) * rate) + 1)
            while sent < due:
                key, value = messages[sent]
                pending.append(await producer.send(topic, value, key=key))
                sent += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - t0
    finally:
        await producer.stop()
    return wall0, len(messages) / elapsed


async def create_topics(names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(t, PARTITIONS, 1, topic_configs={"max.message.bytes": str(4 << 20)}) for t in names])
    finally:
        await admin.close()


async def wait_group_stable(group: str, members: int, timeout: float) -> None:
    """Until consumer group ``group`` is Stable with ``members`` members."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            [response] = await admin.describe_consumer_groups([group])
            # DescribeGroups v0-v5 rows: (error_code, group_id, state, protocol_type, protocol, members, ...)
            _, _, state, _, _, joined, *_ = response.groups[0]
            if state == "Stable" and len(joined) == members:
                return
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    raise RuntimeError(f"group {group} did not settle with {members} members in {timeout:.0f}s")


async def cleanup(prefix: str, schemas: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()
    for schema in schemas:
        await drop_schema(PG_DSN, schema)


# --------------------------------------------------------------------------- worker


