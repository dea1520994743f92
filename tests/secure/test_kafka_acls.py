"""Kafka ACLs in the secure mode: the worker may read the raw and profile topics and write
the DLQ and its internal topics, nothing else; an ingestion producer may only write the raw
topic. (That the worker can do its job with these ACLs is test_secure_pipeline.py.)"""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

from streams.acls import Acl, Operation, Pattern, Resource, create_acls
from streams.connections import kafka_kwargs

pytestmark = pytest.mark.integration


async def _write(settings, topic: str, value: bytes = b"{}") -> int:  # type: ignore[no-untyped-def]
    """Write ``value`` to partition 0 of ``topic``; the offset the broker stored it at."""
    producer = AIOKafkaProducer(**kafka_kwargs(settings), acks="all", request_timeout_ms=10_000)
    await producer.start()
    try:
        metadata = await producer.send_and_wait(topic, value, key=b"k", partition=0)
    finally:
        await producer.stop()
    return metadata.offset


async def _read(settings, topic: str, group: str | None = None) -> list[bytes]:  # type: ignore[no-untyped-def]
    """The values fetched from partition 0 of ``topic`` (none is fine; a refusal raises)."""
    consumer = AIOKafkaConsumer(**kafka_kwargs(settings), enable_auto_commit=False,
                                group_id=group or f"not-granted-{uuid.uuid4().hex[:6]}",
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        fetched = await consumer.getmany(tp, timeout_ms=1000)
        await consumer.position(tp)
    finally:
        await consumer.stop()
    return [record.value for record in fetched.get(tp, [])]


async def _create_topic(settings, name: str) -> None:  # type: ignore[no-untyped-def]
    admin = AIOKafkaAdminClient(**kafka_kwargs(settings))
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, 1, 1)], timeout_ms=10_000)
    finally:
        await admin.close()
    codes = [e[1] for e in response.topic_errors]
    if codes != [0]:
        raise TopicAuthorizationFailedError(f"create {name}: error {codes}")


async def test_worker_principal_reads_raw_and_profiles_and_writes_dlq_and_internal(secure_pipeline) -> None:  # type: ignore[no-untyped-def]
    worker = secure_pipeline.settings("worker")
    await _read(worker, worker.raw_topic, group=worker.consumer_group)
    await _read(worker, secure_pipeline.profile_topic, group=worker.consumer_group)
    assert await _write(worker, worker.dlq_topic) >= 0  # the broker stored it at an offset
    internal = f"{worker.app_id}-some-changelog"
    await _create_topic(worker, internal)
    marker = uuid.uuid4().hex.encode()
    offset = await _write(worker, internal, marker)
    assert marker in await _read(worker, internal, group=worker.app_id), f"nothing at offset {offset}"


async def test_worker_principal_may_do_nothing_else(secure_pipeline) -> None:  # type: ignore[no-untyped-def]
    worker = secure_pipeline.settings("worker")
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(worker, worker.raw_topic)
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(worker, secure_pipeline.profile_topic)
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(worker, worker.dlq_topic, group=worker.consumer_group)
    with pytest.raises(TopicAuthorizationFailedError):
        await _create_topic(worker, f"{uuid.uuid4().hex[:8]}.not-internal")
    with pytest.raises(GroupAuthorizationFailedError):
        await _read(worker, worker.raw_topic)  # a consumer group not granted


async def test_producer_principal_may_only_write_the_raw_topic(secure_pipeline) -> None:  # type: ignore[no-untyped-def]
    producer = secure_pipeline.settings("producer")
    assert await _write(producer, producer.raw_topic) >= 0  # acknowledged: stored
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(producer, producer.dlq_topic)
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(producer, secure_pipeline.profile_topic)
    # give it a consumer group, so that only the topic's READ can be what is missing
    group = f"{producer.app_id}-producer-probe"
    await create_acls(secure_pipeline.settings("admin"), [
        Acl("User:healthmate-producer", Resource.GROUP, group, Pattern.LITERAL, op)
        for op in (Operation.READ, Operation.DESCRIBE)])
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(producer, producer.raw_topic, group=group)
    with pytest.raises(TopicAuthorizationFailedError):
        await _create_topic(producer, f"{producer.app_id}-x")
