"""Replay a topic range through the streaming domain and the exactly-once sink.

Every message goes through :func:`streams.domain.validate.process_message` with the rules
of :func:`streams.rules.rules_from_settings`, and every batch through
:func:`streams.sink.refusals.write_setting_aside_refused`, so a replay stores exactly what the
live worker would: readings deduplicated by ``event_id`` and dead-letter rows by source
position. Replaying a range twice therefore leaves the warehouse unchanged. Offsets are
recorded under a group of the replay's own (``replay:<run_id>``); the live worker's
``sink_offsets`` are never touched. Each message is judged as of its Kafka timestamp
(``ingested_at`` = record time), so a replay's verdicts do not depend on when it runs.
Dead letters are published to the DLQ again only when ``publish_dead_letters`` is set.
Readings of subjects in the erasure register are refused by the write itself and booked as
``subject_erased`` dead letters (``ReplayStats.erased``), like the live worker's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from batch.config import ReplayRange
from batch.errors import InvalidRange
from batch.quality_gate import QualityTally
from streams.batching import PendingBatch
from streams.config import Settings
from streams.connections import kafka_kwargs
from streams.dlq import DeadLetterPublisher, DeadLetterRecord
from streams.domain.validate import Rules, process_message
from streams.records import MessageContext
from streams.rules import rules_from_settings
from streams.sink.copy_encoding import prepare_batch
from streams.sink.refusals import scrub_erased_payloads, write_setting_aside_refused
from streams.sink.warehouse import Warehouse

_OFFSETS = re.compile(r"^\s*\d+\s*:\s*\d+\s*(,\s*\d+\s*:\s*\d+\s*)*$")


@dataclass(slots=True)
class ReplayStats:
    messages: int = 0
    readings: int = 0
    stored: int = 0
    dead_letters: int = 0
    total: int = 0  # messages in the resolved range
    erased: int = 0  # readings of erased subjects, dead-lettered as subject_erased


def parse_position(text: str) -> datetime | dict[int, int]:
    """``"P:O[,P:O...]"`` (partition offsets) or an ISO-8601 time with an offset or ``Z``."""
    if _OFFSETS.match(text):
        return {int(p): int(o) for p, o in (part.split(":") for part in text.split(","))}
    try:
        ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRange(f"{text!r} is neither P:O[,P:O] offsets nor an ISO-8601 time") from None
    if ts.tzinfo is None:
        raise InvalidRange(f"{text!r} has no UTC offset")
    return ts


def replay_range_of(topic: str, start: str, end: str | None, *, publish_dead_letters: bool = False,
                    engine: str = "worker") -> ReplayRange:
    """The :class:`ReplayRange` that CLI/Airflow positions describe (``end`` None: to the end)."""
    if engine not in ("worker", "spark"):  # a CLI argument or an Airflow param
        raise InvalidRange(f"engine must be 'worker' or 'spark', not {engine[:20]!r}")
    kind: Literal["worker", "spark"] = "spark" if engine == "spark" else "worker"
    first = parse_position(start)
    last = parse_position(end) if end else None
    if isinstance(first, dict):
        if isinstance(last, datetime):
            raise InvalidRange("give offsets for both ends, or times for both ends")
        return ReplayRange(topic=topic, from_offsets=first, to_offsets=last,
                           publish_dead_letters=publish_dead_letters, engine=kind)
    if not isinstance(last, datetime):
        raise InvalidRange("a time range needs an end time")
    return ReplayRange(topic=topic, start_time=first, end_time=last,
                       publish_dead_letters=publish_dead_letters, engine=kind)


async def _partitions(settings: Settings, topic: str) -> set[int]:
    admin = AIOKafkaAdminClient(**kafka_kwargs(settings))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = {p["partition"] for p in described.get("partitions") or ()}
    if described.get("error_code") or not partitions:
        raise InvalidRange(f"topic {topic!r} does not exist or has no partitions")
    return partitions


async def resolve(consumer: AIOKafkaConsumer, settings: Settings, spec: ReplayRange
                  ) -> dict[TopicPartition, tuple[int, int]]:
    """``{partition: (first offset, end offset exclusive)}``, clamped to what the log holds."""
    partitions = await _partitions(settings, spec.topic)
    tps = [TopicPartition(spec.topic, p) for p in sorted(partitions)]
    begins, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
    if spec.from_offsets is not None:
        unknown = sorted(set(spec.from_offsets) - partitions)
        if unknown:
            raise InvalidRange(f"topic {spec.topic!r} has no partitions {unknown}")
        to = spec.to_offsets or {}
        chosen = [tp for tp in tps if tp.partition in spec.from_offsets]
        bounds = {tp: (spec.from_offsets[tp.partition], to.get(tp.partition, ends[tp])) for tp in chosen}
    else:
        assert spec.start_time is not None and spec.end_time is not None
        starts = await consumer.offsets_for_times({tp: int(spec.start_time.timestamp() * 1000) for tp in tps})
        stops = await consumer.offsets_for_times({tp: int(spec.end_time.timestamp() * 1000) for tp in tps})
        bounds = {tp: (starts[tp].offset if starts[tp] else ends[tp],
                       stops[tp].offset if stops[tp] else ends[tp]) for tp in tps}
    return {tp: (max(lo, begins[tp]), min(hi, ends[tp])) for tp, (lo, hi) in bounds.items()}


async def resolve_bounds(settings: Settings, spec: ReplayRange) -> dict[int, tuple[int, int]]:
    """``{partition: (first offset, end offset exclusive)}`` of ``spec`` (see :func:`resolve`)."""
    consumer = AIOKafkaConsumer(**kafka_kwargs(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp.partition: b for tp, b in (await resolve(consumer, settings, spec)).items()}
    finally:
        await consumer.stop()


async def replay(settings: Settings, warehouse: Warehouse, spec: ReplayRange, *, group: str,
                 tally: QualityTally | None = None,
                 progress: Callable[[float], None] = lambda f: None) -> ReplayStats:
    """Replay ``spec`` into ``warehouse`` (started) with sink offsets under ``group``."""
    rules = rules_from_settings(settings)
    tally = tally or QualityTally()
    stats = ReplayStats()
    consumer = AIOKafkaConsumer(
        **kafka_kwargs(settings), group_id=f"healthmate-replay-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=max(4 * settings.max_message_bytes, 4 * 1024 * 1024))
    dlq = None
    if spec.publish_dead_letters:
        dlq = DeadLetterPublisher(kafka_kwargs(settings), settings.dlq_topic,
                                  max_payload_bytes=settings.dlq_max_payload_bytes)
    await consumer.start()
    try:
        resolved = await resolve(consumer, settings, spec)
        bounds = {tp: b for tp, b in resolved.items() if b[0] < b[1]}
        stats.total = sum(hi - lo for lo, hi in bounds.values())
        if dlq is not None and bounds:
            await dlq.start()
        consumer.assign(list(bounds))
        for tp, (lo, _) in bounds.items():
            consumer.seek(tp, lo)
        pending, open_ = PendingBatch(), set(bounds)
        while open_:
            fetched = await consumer.getmany(*open_, timeout_ms=500, max_records=settings.fetch_max_records)
            for tp, messages in fetched.items():
                stop = bounds[tp][1]
                for msg in messages:
                    if msg.offset >= stop:
                        break
                    judge_message(settings, rules, msg, pending)
                    stats.messages += 1
            for tp in list(open_):
                if await consumer.position(tp) >= bounds[tp][1]:
                    open_.discard(tp)
                    consumer.pause(tp)
                    pending.next_offsets[(tp.topic, tp.partition)] = bounds[tp][1]
            if pending.size >= settings.sink_batch_size or (not open_ and pending):
                await flush_batch(settings, warehouse, dlq, group, pending, stats, tally)
                pending = PendingBatch()
            progress(stats.messages / stats.total if stats.total else 1.0)
    finally:
        await consumer.stop()
        if dlq is not None:
            await dlq.stop()
    progress(1.0)
    return stats


def judge_message(settings: Settings, rules: Rules, msg: ConsumerRecord, pending: PendingBatch) -> None:
    """Judge one record as of its Kafka timestamp and book the outcome in ``pending``.

    Every replay engine calls this (the worker path here, Spark's tasks in
    :mod:`batch.spark_replay`): one function, so both judge alike."""
    at = datetime.fromtimestamp(msg.timestamp / 1000, tz=UTC)
    outcome = process_message(msg.value, MessageContext(msg.topic, msg.partition, msg.offset, at, at), rules,
                              msg.key)
    pending.readings.extend(outcome.readings)
    pending.add_dead_letters(msg, outcome.dead_letters, pseudonym_key=settings.pseudonym_key_bytes,
                             max_payload_bytes=settings.dlq_max_payload_bytes)
    pending.next_offsets[(msg.topic, msg.partition)] = msg.offset + 1
    pending.messages += 1


async def _publish_nothing(records: list[DeadLetterRecord]) -> None:
    """A replay that does not republish dead letters (``publish_dead_letters`` unset)."""


async def flush_batch(settings: Settings, warehouse: Warehouse, dlq: DeadLetterPublisher | None, group: str,
                      batch: PendingBatch, stats: ReplayStats, tally: QualityTally) -> None:
    """Publish the batch's dead letters (when ``dlq``), then write it in one warehouse
    transaction under ``group`` (the exactly-once sink the worker uses); add to ``stats`` and
    ``tally``. Every replay engine calls this."""
    publish = dlq.publish if dlq is not None else _publish_nothing
    if dlq is not None:
        await scrub_erased_payloads(warehouse, batch.dlq_records)
    await publish(batch.dlq_records)
    written = await write_setting_aside_refused(
        warehouse, group, prepare_batch(batch.readings, batch.dead_letters, batch.next_offsets),
        publish=publish, max_payload_bytes=settings.dlq_max_payload_bytes)
    result = written.result
    batch.readings = [r for r in batch.readings if r.event_id not in written.refused_event_ids]
    batch.dead_letters.extend(written.dead_letters)
    stats.readings += len(batch.readings)
    stats.stored += result.stored
    stats.dead_letters += len(batch.dead_letters)
    stats.erased += written.erased
    if batch.readings:
        tally.readings(batch.readings)  # type: ignore[arg-type]
    rejected: dict[tuple[str, str | None], int] = {}
    for row in batch.dead_letters:
        key = (str(row.letter.code), row.letter.metric)
        rejected[key] = rejected.get(key, 0) + 1
    if rejected:
        tally.rejections(rejected)
