"""Re-feeding dead letters into the raw topic after a fix.

Selection reads the DLQ topic from its beginning to its end offsets at call time and
filters on the headers every dead letter carries (``error.code``, ``source.topic``,
``source.partition``, ``source.offset``, ``dlq.id``). Letters repeated in the DLQ after a
crash (same ``dlq.id``) and several rejected members of one envelope (same source
message) are re-fed once.

What is re-fed is the *original* message, located in the raw topic through the
``source.*`` headers: same key (so the same partition and order per user) and the same
bytes. For an envelope that is the whole envelope: members stored the first time are
deduplicated by ``event_id`` in the warehouse, so only the fixed members are added. When
the original is gone (retention), the dead letter's own payload is re-fed instead, unless
it was truncated (``payload.truncated``), in which case the letter is skipped and counted.
Re-fed records carry ``redrive.dlq_id`` and ``redrive.request_id`` headers.
Letters of an erased subject (``subject_erased``, or marked ``subject.erased``) are never
selected: re-feeding would put the person's raw message back into the raw topic, and it
could never be stored anyway.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.config import Settings
from streams.connections import kafka_kwargs
from streams.errors import RejectReason
from web.models import RedriveBody

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 2.0


@dataclass(slots=True)
class Letter:
    dlq_id: str
    partition: int
    offset: int
    value: bytes
    truncated: bool


@dataclass(slots=True)
class RedriveReport:
    scanned: int = 0
    selected: int = 0
    duplicates: int = 0
    refed_from_source: int = 0
    refed_from_dlq: int = 0
    skipped_truncated: int = 0
    limited: bool = False
    raw_offsets: dict[int, list[int]] = field(default_factory=dict)


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **kafka_kwargs(settings), group_id=f"healthmate-redrive-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=max(4 * settings.max_message_bytes, 4 * 1024 * 1024),
    )


async def _read_range(consumer: AIOKafkaConsumer, tps: list[TopicPartition], ends: dict, deadline: float):
    """Every record of ``tps`` before ``ends``; consumer already assigned and positioned."""
    loop = asyncio.get_running_loop()
    while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
        if loop.time() > deadline:
            raise TimeoutError("redrive scan took too long")
        for records in (await consumer.getmany(timeout_ms=500)).values():
            for record in records:
                if record.offset < ends[TopicPartition(record.topic, record.partition)]:
                    yield record


async def _partitions(settings: Settings, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(**kafka_kwargs(settings))
    await admin.start()
    try:
        descriptions = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(p["partition"] for d in descriptions if d.get("error_code", 0) == 0
                  for p in d.get("partitions", ()))


def _headers(record: Any) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in (record.headers or ())}


async def select_letters(settings: Settings, body: RedriveBody, report: RedriveReport,
                         deadline: float) -> list[Letter]:
    consumer = _consumer(settings)
    await consumer.start()
    chosen: dict[str, Letter] = {}
    try:
        tps = [TopicPartition(settings.dlq_topic, p) for p in await _partitions(settings, settings.dlq_topic)]
        if not tps:
            return []
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        total = sum(ends.values())  # an upper bound: retention may have removed the oldest
        loop = asyncio.get_running_loop()
        next_line = loop.time() + PROGRESS_EVERY_S
        async for record in _read_range(consumer, tps, ends, deadline):
            report.scanned += 1
            if loop.time() >= next_line:  # a long scan says it is alive in the worker log
                next_line = loop.time() + PROGRESS_EVERY_S
                log.info("redrive: scanned %d of at most %d dead letters, %d selected",
                         report.scanned, total, report.selected)
            h = _headers(record)
            if h.get("error.code") == RejectReason.SUBJECT_ERASED or h.get("subject.erased") == "true":
                continue
            partition, offset = _int(h.get("source.partition")), _int(h.get("source.offset"))
            if not body.selects(h.get("error.code"), h.get("source.topic") == settings.raw_topic,
                                partition, offset) or partition is None or offset is None:
                continue
            dlq_id = h.get("dlq.id") or f"{record.partition}@{record.offset}"
            if dlq_id in chosen:
                report.duplicates += 1
                continue
            report.selected += 1
            chosen[dlq_id] = Letter(dlq_id, partition, offset, record.value or b"",
                                    h.get("payload.truncated") == "true")
    finally:
        await consumer.stop()
    return list(chosen.values())


async def fetch_originals(settings: Settings, wanted: set[tuple[int, int]], deadline: float
                          ) -> dict[tuple[int, int], Any]:
    """The raw-topic records at (partition, offset) that still exist."""
    if not wanted:
        return {}
    consumer = _consumer(settings)
    await consumer.start()
    found: dict[tuple[int, int], Any] = {}
    try:
        for partition in sorted({p for p, _ in wanted}):
            offsets = sorted(o for p, o in wanted if p == partition)
            tp = TopicPartition(settings.raw_topic, partition)
            consumer.assign([tp])
            begin = (await consumer.beginning_offsets([tp]))[tp]
            end = min((await consumer.end_offsets([tp]))[tp], offsets[-1] + 1)
            if offsets[-1] < begin:
                continue
            consumer.seek(tp, max(begin, offsets[0]))
            async for record in _read_range(consumer, [tp], {tp: end}, deadline):
                if (partition, record.offset) in wanted:
                    found[(partition, record.offset)] = record
    finally:
        await consumer.stop()
    return found


async def redrive(settings: Settings, body: RedriveBody, request_id: str) -> RedriveReport:
    """Select, then (unless ``dry_run``) publish to the raw topic and wait for the acks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.api_redrive_timeout_s
    report = RedriveReport()
    letters = await select_letters(settings, body, report, deadline)
    sources: dict[tuple[int, int], Letter] = {}
    for letter in letters:
        sources.setdefault((letter.partition, letter.offset), letter)
    if len(sources) > body.max_records:
        report.limited = True
        sources = dict(sorted(sources.items())[: body.max_records])
    originals = await fetch_originals(settings, set(sources), deadline)
    plan: list[tuple[bytes | None, bytes, Letter]] = []
    for key, letter in sorted(sources.items()):
        original = originals.get(key)
        if original is not None:
            plan.append((original.key, original.value or b"", letter))
            report.refed_from_source += 1
        elif letter.truncated:
            report.skipped_truncated += 1
        else:
            plan.append((None, letter.value, letter))
            report.refed_from_dlq += 1
    if body.dry_run or not plan:
        return report
    producer = AIOKafkaProducer(**kafka_kwargs(settings), acks="all",
                                enable_idempotence=True, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(settings.raw_topic, value=value, key=key, headers=[
            ("redrive.dlq_id", letter.dlq_id.encode()), ("redrive.request_id", request_id.encode())])
            for key, value, letter in plan]
        for meta in await asyncio.gather(*futures):
            report.raw_offsets.setdefault(meta.partition, []).append(meta.offset)
    finally:
        await producer.stop()
    return report


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
