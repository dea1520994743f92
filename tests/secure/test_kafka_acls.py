"""Kafka ACLs in the secure mode: the worker may read the raw and profile topics and write
the DLQ and its internal topics, nothing else; an ingestion producer may only write the raw
topic; the redrive grants let the principal serving the API redrive, and nothing more.
(That the worker can do its job with these ACLs is test_secure_pipeline.py.)"""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError
from pipeline_support import create_topic_as

from streams.acls import Acl, Operation, Pattern, Resource, create_acls, redrive_acls
from streams.connections import kafka_kwargs
from web.models import RedriveBody
from web.redrive import redrive

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


async def test_worker_principal_reads_raw_and_profiles_and_writes_dlq_and_internal(secure_pipeline) -> None:  # type: ignore[no-untyped-def]
    worker = secure_pipeline.settings("worker")
    await _read(worker, worker.raw_topic, group=worker.consumer_group)
    await _read(worker, secure_pipeline.profile_topic, group=worker.consumer_group)
    assert await _write(worker, worker.dlq_topic) >= 0  # the broker stored it at an offset
    assert await _write(worker, secure_pipeline.profile_topic, b"") >= 0  # an erasure's tombstone
    internal = f"{worker.app_id}-some-changelog"
    await create_topic_as(worker, internal)
    marker = uuid.uuid4().hex.encode()
    offset = await _write(worker, internal, marker)
    assert marker in await _read(worker, internal, group=worker.app_id), f"nothing at offset {offset}"


async def test_worker_principal_may_do_nothing_else(secure_pipeline) -> None:  # type: ignore[no-untyped-def]
    worker = secure_pipeline.settings("worker")
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(worker, worker.raw_topic)
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(worker, f"{worker.raw_topic}-not-granted")
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(worker, worker.dlq_topic, group=worker.consumer_group)
    with pytest.raises(TopicAuthorizationFailedError):
        await create_topic_as(worker, f"{uuid.uuid4().hex[:8]}.not-internal")
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
        await create_topic_as(producer, f"{producer.app_id}-x")


async def _records(settings, topic: str) -> list:  # type: ignore[no-untyped-def]
    """Every record of partition 0 of ``topic`` (read with ``settings``' principal)."""
    consumer = AIOKafkaConsumer(**kafka_kwargs(settings), enable_auto_commit=False,
                                group_id=f"probe-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        out: list = []
        while await consumer.position(tp) < end:
            out += (await consumer.getmany(tp, timeout_ms=1000)).get(tp, [])
        return out
    finally:
        await consumer.stop()


async def test_the_redrive_grants_let_the_worker_principal_redrive_and_nothing_more(secure_pipeline) -> None:  # type: ignore[no-untyped-def]
    """What `python -m streams acls` gives the principal serving the API (the worker's) for a DLQ
    redrive: a real redrive over SASL_SSL is refused without them and works with them."""
    admin, worker, producer = (secure_pipeline.settings(r) for r in ("admin", "worker", "producer"))
    original = b'{"user_id": "u-redrive", "metric": "heart_rate"}'
    sender = AIOKafkaProducer(**kafka_kwargs(producer), acks="all")
    await sender.start()
    try:
        meta = await sender.send_and_wait(producer.raw_topic, original, key=b"u-redrive", partition=0)
    finally:
        await sender.stop()
    dlq = AIOKafkaProducer(**kafka_kwargs(worker), acks="all")  # the worker dead-letters it
    await dlq.start()
    try:
        await dlq.send_and_wait(worker.dlq_topic, b'{"letter": 1}', key=b"u-redrive", partition=0, headers=[
            ("error.code", b"unknown_unit"), ("source.topic", worker.raw_topic.encode()),
            ("source.partition", b"0"), ("source.offset", str(meta.offset).encode()), ("dlq.id", b"d-1")])
    finally:
        await dlq.stop()
    body = RedriveBody(reason="unknown_unit")

    with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)):
        await redrive(worker, body, "before-the-grants")

    granted = redrive_acls(admin, "User:healthmate-worker")
    assert {(a.resource.name, a.name, a.operation.name) for a in granted} == {
        ("TOPIC", worker.dlq_topic, "READ"), ("TOPIC", worker.dlq_topic, "DESCRIBE"),
        ("TOPIC", worker.raw_topic, "READ"), ("TOPIC", worker.raw_topic, "WRITE"),
        ("TOPIC", worker.raw_topic, "DESCRIBE"),
        ("GROUP", "healthmate-redrive-", "READ"), ("GROUP", "healthmate-redrive-", "DESCRIBE")}
    await create_acls(admin, granted)
    report = await redrive(worker, body, "with-the-grants")
    assert (report.selected, report.refed_from_source, report.raw_offsets) == (1, 1, {0: [meta.offset + 1]})
    raw = await _records(admin, worker.raw_topic)
    assert [r.value for r in raw] == [original, original]
    assert ("redrive.dlq_id", b"d-1") in list(raw[-1].headers)

    # Least privilege: still no other consumer group, no other topic, no topic creation. (The
    # profiles topic it may write: an erasure's tombstone, see test_worker_principal_... above.)
    with pytest.raises(GroupAuthorizationFailedError):
        await _read(worker, worker.dlq_topic)  # a group that is not a redrive's
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(worker, f"{worker.raw_topic}-not-granted")
    with pytest.raises(TopicAuthorizationFailedError):
        await create_topic_as(worker, f"{uuid.uuid4().hex[:8]}.not-internal")
