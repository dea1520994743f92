"""Smoke tests of the local stack: Kafka, Faust on that Kafka, PostgreSQL.

Needs ``scripts/stack.sh up``. Each test uses its own topics / app id / schema.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

pytestmark = pytest.mark.integration


async def _consume(consumer: AIOKafkaConsumer, expected: int, timeout: float) -> list:
    records: list = []
    deadline = time.monotonic() + timeout
    while len(records) < expected and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=500)
        for messages in batch.values():
            records.extend(messages)
    return records


async def test_kafka_produce_consume_round_trip(kafka_bootstrap, unique_name, create_topics, list_topics):
    topic = unique_name
    await create_topics([topic], partitions=3)
    assert topic in await list_topics()

    sent = {f"k{i}": {"seq": i, "payload": "x" * i} for i in range(50)}
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in sent.items():
            await producer.send(topic, json.dumps(value).encode(), key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{unique_name}-g",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records = await _consume(consumer, len(sent), timeout=30)
    finally:
        await consumer.stop()

    received = {r.key.decode(): json.loads(r.value) for r in records}
    assert received == sent
    assert len(records) == len(sent)  # no duplicates
    assert {r.partition for r in records} == {0, 1, 2}  # keys spread over all partitions


async def test_kafka_accepts_oversized_message(kafka_bootstrap, unique_name, create_topics):
    """The broker must accept ~2 MB messages so the pipeline can dead-letter them."""
    topic = unique_name
    await create_topics([topic])
    big = b"x" * 2_000_000
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=4_000_000)
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, big, key=b"big")
    finally:
        await producer.stop()
    assert meta.offset == 0

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4_194_304,
    )
    await consumer.start()
    try:
        records = await _consume(consumer, 1, timeout=30)
    finally:
        await consumer.stop()
    assert [len(r.value) for r in records] == [len(big)]


async def test_faust_agent_and_table_on_real_broker(kafka_bootstrap, unique_name, create_topics, list_topics):
    import faust

    app_id = unique_name
    source = f"{app_id}-readings"
    changelog = f"{app_id}-counts-changelog"
    n_messages, n_users, partitions = 60, 3, 2

    # auto.create.topics.enable=false on the broker: source topics are created explicitly;
    # Faust itself creates its internal topics (table changelog, assignor leader topic).
    await create_topics([source], partitions=partitions)
    create_topics.delete_later([changelog, f"{app_id}-__assignor-__leader"])

    app = faust.App(
        app_id,
        broker=f"kafka://{kafka_bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
    )
    readings = app.topic(source, key_type=str, value_type=str, value_serializer="json")
    counts = app.Table("counts", default=int, partitions=partitions)
    processed: list[str] = []

    @app.agent(readings)
    async def count_readings(stream):
        async for user in stream:
            counts[user] += 1
            processed.append(user)

    await asyncio.wait_for(app.start(), 60)
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for i in range(n_messages):
                user = f"u{i % n_users}"
                # key = user so one user's readings stay on one partition (co-partitioned table)
                await producer.send(source, json.dumps(user).encode(), key=json.dumps(user).encode())
            await producer.flush()
        finally:
            await producer.stop()

        deadline = time.monotonic() + 60
        while len(processed) < n_messages and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

        assert len(processed) == n_messages, f"Faust processed {len(processed)}/{n_messages} messages"
        expected = {f"u{u}": n_messages // n_users for u in range(n_users)}
        assert dict(counts.items()) == expected
    finally:
        await asyncio.wait_for(app.stop(), 30)

    # the table's changelog topic exists on the broker, with the table's partitions, and
    # got one record per update
    assert changelog in await list_topics()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([changelog])
    finally:
        await admin.close()
    assert described["error_code"] == 0
    assert len(described["partitions"]) == partitions

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        end = await consumer.end_offsets([TopicPartition(changelog, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    assert sum(end.values()) == n_messages


async def test_asyncpg_round_trip(pg_dsn, pg_schema):
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            f'CREATE TABLE "{pg_schema}".readings '
            "(user_id text NOT NULL, ts timestamptz NOT NULL, value double precision,"
            " PRIMARY KEY (user_id, ts))"
        )
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        rows = [(f"u{i % 4}", t0 + timedelta(seconds=i), float(i)) for i in range(40)]
        await conn.copy_records_to_table("readings", schema_name=pg_schema, records=rows)
        # idempotent insert: re-sending the same keys with other values changes nothing
        await conn.executemany(
            f'INSERT INTO "{pg_schema}".readings VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
            [(u, ts, -1.0) for u, ts, _ in rows[:10]],
        )
        result = await conn.fetch(
            f'SELECT user_id, count(*) AS n, sum(value) AS total FROM "{pg_schema}".readings '
            "GROUP BY user_id ORDER BY user_id"
        )
        schema_of_table = await conn.fetchval(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'readings' "
            "AND table_schema = $1",
            pg_schema,
        )
    finally:
        await conn.close()

    assert schema_of_table == pg_schema
    assert [(r["user_id"], r["n"], r["total"]) for r in result] == [
        (f"u{u}", 10, float(sum(range(u, 40, 4)))) for u in range(4)
    ]
