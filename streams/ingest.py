"""The ingest service: raw topic -> domain -> warehouse or dead-letter topic, exactly once.

It runs inside the Faust worker as a ``mode.Service`` with its own aiokafka consumer,
because the warehouse, not Kafka, owns the consumed offsets: on every assignment the
consumer seeks to ``sink_offsets``, and every warehouse transaction moves those offsets
together with the rows it stores. Faust's agent path would commit offsets to Kafka on its
own schedule (and costs ~6k msg/s on these machines, see shared/NOTES.md).

Order of effects for one batch:
1. decode and judge every message (pure domain code, no I/O);
2. publish dead letters and wait for the broker's acks;
3. one warehouse transaction: readings + dead-letter rows + next offsets.
A crash before 3 replays the batch: the warehouse deduplicates it by ``event_id``; the
DLQ may then hold a record twice, with the same ``dlq.id`` header to deduplicate on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from mode import Service

from streams.config import Settings
from streams.domain.pseudonym import user_key
from streams.domain.validate import Rules, process_message
from streams.errors import Retryable
from streams.metrics import Metrics
from streams.records import MessageContext, NormalisedReading
from streams.sink.warehouse import DeadLetterRow, Warehouse

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ReadingProcessor = Callable[[NormalisedReading], None]
PIPELINE_VERSION = "1"


def utc_now() -> datetime:
    return datetime.now(UTC)


class PendingBatch:
    """Outcomes judged but not yet committed, and the offsets they advance to."""

    def __init__(self) -> None:
        self.readings: list[NormalisedReading] = []
        self.dead_letters: list[DeadLetterRow] = []
        self.dlq_messages: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]] = []
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.messages = 0

    @property
    def size(self) -> int:
        return len(self.readings) + len(self.dead_letters)

    def __bool__(self) -> bool:
        return bool(self.next_offsets)


class ResumeFromWarehouse(ConsumerRebalanceListener):
    def __init__(self, service: IngestService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.service.flush()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.service.seek_to_stored_offsets(assigned)


class IngestService(Service):
    """Consumes ``settings.raw_topic`` in batches and commits each batch exactly once."""

    def __init__(
        self,
        settings: Settings,
        rules: Rules,
        warehouse: Warehouse,
        metrics: Metrics,
        *,
        clock: Clock = utc_now,
        processors: Sequence[ReadingProcessor] = (),
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.rules = rules
        self.warehouse = warehouse
        self.metrics = metrics
        self.clock = clock
        self.processors = list(processors)
        self.consumer: AIOKafkaConsumer | None = None
        self.dlq_producer: AIOKafkaProducer | None = None
        self._pending = PendingBatch()
        self._write_lock = asyncio.Lock()
        self.last_commit_at: dict[tuple[str, int], datetime] = {}

    # ---- lifecycle -------------------------------------------------------------------
    async def on_start(self) -> None:
        s = self.settings
        await self._retry("warehouse start", self.warehouse.start)
        # Big enough to forward an oversized original to the DLQ (the broker caps it anyway).
        max_request = max(4 * s.max_message_bytes, 4 * 1024 * 1024)
        self.dlq_producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap, acks="all", enable_idempotence=True,
            linger_ms=5, max_request_size=max_request,
        )
        await self.dlq_producer.start()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap, group_id=s.consumer_group,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=max_request, fetch_max_bytes=max(max_request, 52428800),
        )
        self.consumer.subscribe([s.raw_topic], listener=ResumeFromWarehouse(self))
        await self.consumer.start()
        self.metrics.worker_up.set(1)

    async def on_stop(self) -> None:
        self.metrics.worker_up.set(0)
        try:
            await asyncio.wait_for(self.flush(), timeout=10)
        except (TimeoutError, Retryable):
            log.warning("stopping with an unflushed batch; it will be replayed from sink_offsets")
        if self.consumer is not None:
            await self.consumer.stop()
        if self.dlq_producer is not None:
            await self.dlq_producer.stop()
        await self.warehouse.stop()

    @Service.task
    async def _consume_forever(self) -> None:
        assert self.consumer is not None
        latency = self.settings.sink_max_latency_ms / 1000
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while not self.should_stop:
            timeout = latency if deadline is None else max(0.0, deadline - loop.time())
            fetched = await self.consumer.getmany(
                timeout_ms=int(timeout * 1000), max_records=self.settings.fetch_max_records
            )
            if fetched:
                self._judge(fetched)
                if deadline is None:
                    deadline = loop.time() + latency
            full = self._pending.size >= self.settings.sink_batch_size
            due = deadline is not None and loop.time() >= deadline
            if self._pending and (full or due):
                await self.flush()
                deadline = None

    # ---- per batch -------------------------------------------------------------------
    def _judge(self, fetched: dict[TopicPartition, list]) -> None:
        """Run the pure domain over fetched messages and add the outcomes to the batch."""
        pending, rules, key_bytes = self._pending, self.rules, self.settings.pseudonym_key_bytes
        now = self.clock()
        for tp, messages in fetched.items():
            for msg in messages:
                ctx = MessageContext(
                    topic=tp.topic, partition=tp.partition, offset=msg.offset, ingested_at=now,
                    produced_at=datetime.fromtimestamp(msg.timestamp / 1000, tz=UTC),
                )
                outcome = process_message(msg.value, ctx, rules)
                for processor in self.processors:
                    for reading in outcome.readings:
                        processor(reading)
                pending.readings.extend(outcome.readings)
                for index, letter in enumerate(outcome.dead_letters):
                    pending.dead_letters.append(
                        DeadLetterRow(tp.topic, tp.partition, msg.offset, index, letter))
                    dlq_key = user_key(key_bytes, msg.key.decode("utf-8", "replace")).encode() \
                        if msg.key else None
                    pending.dlq_messages.append((dlq_key, letter.payload, _dlq_headers(
                        tp.topic, tp.partition, msg.offset, index, letter.code, letter.message)))
            pending.next_offsets[(tp.topic, tp.partition)] = messages[-1].offset + 1
            pending.messages += len(messages)

    async def flush(self) -> None:
        """Commit the pending batch; retries until the warehouse accepts it."""
        async with self._write_lock:
            batch, self._pending = self._pending, PendingBatch()
            if not batch:
                return
            await self._retry("dead-letter publish", lambda: self._publish_dead_letters(batch))
            started = self.clock()
            result = await self._retry("warehouse write", lambda: self.warehouse.write_batch(
                self.settings.consumer_group, batch.readings, batch.dead_letters, batch.next_offsets))
            committed = self.clock()
            self._observe(batch, result.stored_by_metric, started, committed)
            await self._commit_to_kafka(batch.next_offsets)

    async def _publish_dead_letters(self, batch: PendingBatch) -> None:
        if not batch.dlq_messages:
            return
        assert self.dlq_producer is not None
        topic = self.settings.dlq_topic
        futures = [
            await self.dlq_producer.send(topic, value=value, key=key, headers=headers)
            for key, value, headers in batch.dlq_messages
        ]
        await asyncio.gather(*futures)

    async def _commit_to_kafka(self, next_offsets: dict[tuple[str, int], int]) -> None:
        """Mirror offsets to Kafka for lag tooling; the warehouse copy is authoritative."""
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        offsets = {tp: o for (t, p), o in next_offsets.items() if (tp := TopicPartition(t, p)) in assigned}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            log.info("offset mirror to Kafka skipped: %s", type(exc).__name__)

    async def seek_to_stored_offsets(self, assigned: list[TopicPartition]) -> None:
        """Position newly assigned partitions at the warehouse's offsets.

        The fetcher starts as soon as partitions are assigned, from Kafka's committed
        offsets; pausing first keeps anything it fetches before the seek from being judged.
        """
        assert self.consumer is not None
        self.consumer.pause(*assigned)
        stored = await self._retry("offset load", lambda: self.warehouse.load_offsets(
            self.settings.consumer_group, [(tp.topic, tp.partition) for tp in assigned]))
        for tp in assigned:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)
        self.consumer.resume(*assigned)
        log.info("assigned %d partition(s); resumed %d from sink_offsets", len(assigned), len(stored))

    async def _retry(self, what: str, operation: Callable):  # type: ignore[no-untyped-def]
        """Retry with capped exponential backoff. Nothing is fetched meanwhile: backpressure."""
        delay = self.settings.sink_retry_initial_s
        while True:
            try:
                return await operation()
            except Retryable as exc:
                self.metrics.sink_errors.inc()
                log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
            except KafkaError as exc:
                log.warning("%s failed (%s); retrying in %.1fs", what, type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.sink_retry_max_s)

    def _observe(self, batch: PendingBatch, stored: dict[str, int], started: datetime,
                 committed: datetime) -> None:
        m = self.metrics
        m.sink_batch_size.observe(batch.size)
        m.sink_batch_duration.observe((committed - started).total_seconds())
        by_metric = Counter(r.metric for r in batch.readings)
        for metric, count in by_metric.items():
            m.readings_consumed.labels(metric).inc(count)
        for metric, count in stored.items():
            m.readings_stored.labels(metric).inc(count)
        for reason, count in Counter(str(d.letter.code) for d in batch.dead_letters).items():
            m.readings_rejected.labels(reason).inc(count)
            m.dlq_published.labels(reason).inc(count)
        for r in batch.readings[:: max(1, len(batch.readings) // 100)]:
            m.measured_to_stored.observe(max(0.0, (committed - r.measured_at).total_seconds()))
            if r.produced_at is not None:
                m.ingested_to_stored.observe(max(0.0, (committed - r.produced_at).total_seconds()))
        for (topic, partition), _offset in batch.next_offsets.items():
            self.last_commit_at[(topic, partition)] = committed
            m.last_commit_timestamp.labels(topic, str(partition)).set(committed.timestamp())
            if self.consumer is not None:
                tp = TopicPartition(topic, partition)
                high = self.consumer.highwater(tp) if tp in self.consumer.assignment() else None
                if high is not None:
                    m.consumer_lag.labels(topic, str(partition)).set(max(0, high - _offset))


def _dlq_headers(topic: str, partition: int, offset: int, index: int, code: object, message: str
                 ) -> list[tuple[str, bytes]]:
    return [
        ("error.code", str(code).encode()),
        ("error.message", message.encode()),
        ("source.topic", topic.encode()),
        ("source.partition", str(partition).encode()),
        ("source.offset", str(offset).encode()),
        ("pipeline.version", PIPELINE_VERSION.encode()),
        ("dlq.id", f"{topic}/{partition}/{offset}/{index}".encode()),
    ]
