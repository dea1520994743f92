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

Steps 2-3 of a batch run in a background task while the next batch is fetched and judged
(PostgreSQL works in its own process meanwhile), and that task turns its batch into COPY
data (``prepare_batch``) while the batch before it is still being written. Batches commit
strictly in order: a batch's write task awaits the previous batch's write before it
publishes or writes anything, and a failed or cancelled write stops every later one, so
``sink_offsets`` never moves past a batch that is not stored. What follows a commit
(metrics, batch observers) runs in a second chain of tasks, in batch order, so the next
write need not wait for it; the Kafka offset mirror runs on a timer, off both chains.
A batch closes when full, at its deadline, or as soon as no write is in flight (group
commit). Backpressure: a batch is handed over only once the batch before the previous one
is fully done, which bounds memory to three batches (writing, preparing, filling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service

from streams.ages import CommitAges
from streams.batching import BatchObserver, PendingBatch, ReadingProcessor
from streams.clock import Clock, utc_now
from streams.commit_chain import CommitChain, Committed
from streams.config import Settings
from streams.connections import kafka_kwargs
from streams.dlq import DeadLetterPublisher
from streams.domain.text import safe_rendering
from streams.domain.validate import Rules, process_message
from streams.errors import Retryable
from streams.metrics import Metrics
from streams.rebalance import ResumeFromWarehouse
from streams.records import MessageContext
from streams.sink.copy_encoding import PreparedBatch, prepare_batch_cooperatively
from streams.sink.refusals import scrub_erased_payloads, write_setting_aside_refused
from streams.sink.warehouse import BatchResult, Warehouse

log = logging.getLogger(__name__)



_set = object.__setattr__
#: After a permanent failure, the longest a graceful stop may take before the process exits.
FATAL_EXIT_GRACE_S = 15.0
#: How often committed offsets are mirrored to the Kafka group (lag tooling only).
OFFSET_MIRROR_INTERVAL_S = 1.0
#: About how many readings are judged between two yields to the event loop.
JUDGE_SLICE_READINGS = 500


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
        batch_observers: Sequence[BatchObserver] = (),
        stop_hooks: Sequence[Callable[[], Awaitable[None]]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.rules = rules
        self.warehouse = warehouse
        self.metrics = metrics
        self.clock = clock
        self.processors = list(processors)
        self.batch_observers = list(batch_observers)
        # Awaited on a graceful stop after the last commit (observers that hold state).
        self.stop_hooks = list(stop_hooks)
        self.consumer: AIOKafkaConsumer | None = None
        self.dlq = DeadLetterPublisher(kafka_kwargs(settings), settings.dlq_topic,
                                       max_payload_bytes=settings.dlq_max_payload_bytes)
        self._pending = PendingBatch()
        self.chain = CommitChain(prepare=self._prepare, write=self._write, after_commit=self._after_commit)
        self._produced_cache: tuple[int, datetime | None] = (-1, None)
        self.last_commit_at: dict[tuple[str, int], datetime] = {}  # wall clock, for display
        self.commit_ages = CommitAges()  # ages: one monotonic clock at both ends
        self.committed_offsets: dict[tuple[str, int], int] = {}
        self._unmirrored: dict[tuple[str, int], int] = {}
        self.rebalances = 0  # partition revokes seen; a fetch judged across one is cut short
        self.totals: Counter[str] = Counter()
        # Liveness: the event loop's clock at the last poll; why the write chain broke.
        self.last_poll_at: float | None = None
        self.broken: str | None = None
        self._failure: BaseException | None = None
        self._reported: Counter[str] = Counter()

    # ---- lifecycle -------------------------------------------------------------------
    async def on_start(self) -> None:
        s = self.settings
        await self._retry("warehouse start", self.warehouse.start)
        await self._retry("dead-letter producer start", self.dlq.start)
        # Fetch sizes must admit an oversized message so that it can be dead-lettered.
        max_fetch = max(4 * s.max_message_bytes, 4 * 1024 * 1024)
        self.consumer = AIOKafkaConsumer(
            **kafka_kwargs(s), group_id=s.consumer_group,
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=int(s.session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.session_timeout_s * 1000 / 3.5),
            max_partition_fetch_bytes=max_fetch, fetch_max_bytes=max(max_fetch, 52428800),
        )
        self.consumer.subscribe([s.raw_topic], listener=ResumeFromWarehouse(self))
        await self.consumer.start()
        self.metrics.worker_up.set(1)

    async def on_stop(self) -> None:
        self.metrics.worker_up.set(0)
        try:
            if self.broken is None:
                await asyncio.wait_for(self.flush(), timeout=10)
        except (TimeoutError, Retryable):
            log.warning("stopping with an unflushed batch; it will be replayed from sink_offsets")
        except Exception as exc:  # noqa: BLE001 - the broken chain was reported; still close clients
            log.warning("stopping with a failed write (%s); it will be replayed from sink_offsets",
                        type(exc).__name__)
        for hook in self.stop_hooks:
            try:
                await asyncio.wait_for(hook(), timeout=5)
            except Exception as exc:  # noqa: BLE001 - best effort, like the observers
                log.warning("stop hook %s failed: %s", getattr(hook, "__name__", hook), type(exc).__name__)
        if self.consumer is not None:
            with contextlib.suppress(Exception):  # best effort, as on the timer
                await asyncio.wait_for(self._mirror_offsets_to_kafka(), timeout=5)
            await self.consumer.stop()
        await self.dlq.stop()
        await self.warehouse.stop()

    def liveness(self, max_poll_age_s: float) -> dict[str, Any]:
        """Whether the consume loop and the write chain are alive, for ``/health``.

        Not live: the write chain broke, or the loop has been running without polling for
        more than ``max_poll_age_s`` (a wedged or spinning loop). Before the loop starts
        (the warehouse is still being reached) it counts as live, and readiness says why."""
        last = self.last_poll_at
        poll_age = None if last is None else asyncio.get_running_loop().time() - last
        live = self.broken is None and (poll_age is None or poll_age <= max_poll_age_s)
        return {"live": live, "write_chain": self.broken or "ok",
                "last_poll_age_s": None if poll_age is None else round(poll_age, 3),
                "max_poll_age_s": max_poll_age_s}

    @Service.task
    async def _consume_forever(self) -> None:
        assert self.consumer is not None
        latency = self.settings.sink_max_latency_ms / 1000
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        # Outcomes (readings + dead letters) per message, as last seen; the first fetch
        # assumes envelopes, so that it cannot overshoot the batch size by much either.
        per_message = max(1.0, self.settings.sink_batch_size / 50)
        while not self.should_stop:
            self._raise_if_failed()
            timeout = latency if deadline is None else max(0.0, deadline - loop.time())
            # Fetch about what fills the batch: envelopes of 100 would otherwise make one
            # fetch of fetch_max_records messages a 50 000-reading transaction.
            room = max(1.0, self.settings.sink_batch_size - self._pending.size)
            fetched = await self.consumer.getmany(
                timeout_ms=int(timeout * 1000),
                max_records=max(1, min(self.settings.fetch_max_records, round(room / per_message))),
            )
            self.last_poll_at = loop.time()
            if fetched:
                before = self._pending.size
                count = await self._judge_in_slices(fetched, per_message)
                per_message = max(1.0, (self._pending.size - before) / max(1, count))
                if deadline is None:
                    deadline = loop.time() + latency
            elif not self._pending:
                deadline = None  # a rebalance flushed the batch this deadline was for
            full = self._pending.size >= self.settings.sink_batch_size
            due = deadline is not None and loop.time() >= deadline
            # Group commit: with no write in flight, waiting for more readings only adds
            # latency; under load the writes are always busy and batches fill up.
            if self._pending and (full or due or self.chain.idle):
                self._commit_in_order()
                deadline = None
                ahead = self.chain.done_ahead
                if ahead is not None and not ahead.done():
                    await ahead  # backpressure (see the module docstring); raises if it failed
            # getmany(timeout_ms=0) can return without yielding: never starve heartbeats,
            # the web server or a stop request.
            await asyncio.sleep(0)

    def fail(self, error: BaseException, doing: str) -> None:
        """Record a permanent failure; the consume loop raises it at its next pass."""
        if self._failure is None:
            self._failure = error
            self.broken = f"{doing} failed: {type(error).__name__}"
            self.metrics.worker_up.set(0)
            log.critical("%s failed permanently (%s: %s); stopping the worker", doing,
                         type(error).__name__, safe_rendering(str(error), 300))
            # Faust's shutdown can hang waiting for its agents' streams: the supervisor must
            # see a non-zero exit all the same, so a watchdog ends the process after a grace.
            watchdog = threading.Timer(FATAL_EXIT_GRACE_S, os._exit, args=(1,))
            watchdog.daemon = True
            watchdog.start()

    def _raise_if_failed(self) -> None:
        """Stop the loop after a permanent failure: nothing after it could ever commit.

        Only a bug or a broken schema gets here (data errors are isolated, outages are
        retried), so the service crashes and the worker exits non-zero for a restart."""
        failure = self.chain.failure()
        if failure is not None:
            self.fail(failure, "warehouse write")
        if self._failure is not None:
            raise self._failure

    # ---- per batch -------------------------------------------------------------------
    async def _judge_in_slices(self, fetched: dict[TopicPartition, list], per_message: float) -> int:
        """:meth:`_judge` about :data:`JUDGE_SLICE_READINGS` readings at a time, yielding in
        between: each round trip of the write in flight would otherwise wait for the whole
        fetch (a fetch of envelopes is ~20 ms of CPU). A rebalance while this yields drops
        the rest of the fetch: aiokafka revokes every partition and the new assignment
        seeks to ``sink_offsets``, so those messages are fetched again."""
        step = max(1, int(JUDGE_SLICE_READINGS / per_message))
        generation = self.rebalances
        judged = 0
        for tp, messages in fetched.items():
            for start in range(0, len(messages), step):
                if self.rebalances != generation:
                    return judged
                judged += self._judge({tp: messages[start:start + step]})
                await asyncio.sleep(0)
        return judged

    def _judge(self, fetched: dict[TopicPartition, list]) -> int:
        """Run the pure domain over fetched messages and add the outcomes to the batch.

        Returns the number of messages judged."""
        pending, rules, processors = self._pending, self.rules, self.processors
        readings = pending.readings
        now = self.clock()
        judged = 0
        for tp, messages in fetched.items():
            # One validated context per partition, moved from message to message: building a
            # frozen MessageContext per message cost ~20% of judging a single reading (bench/).
            # Safe because process_message only reads it during the call (readings copy it).
            ctx = MessageContext(topic=tp.topic, partition=tp.partition, offset=0, ingested_at=now)
            for msg in messages:
                _set(ctx, "offset", msg.offset)
                _set(ctx, "produced_at", self._produced_at(msg.timestamp))
                outcome = process_message(msg.value, ctx, rules, msg.key)
                if processors:
                    for processor in processors:
                        for reading in outcome.readings:
                            processor(reading)
                readings += outcome.readings
                if outcome.dead_letters:
                    pending.add_dead_letters(msg, outcome.dead_letters,
                                             pseudonym_key=self.settings.pseudonym_key_bytes,
                                             max_payload_bytes=self.settings.dlq_max_payload_bytes)
            pending.next_offsets[(tp.topic, tp.partition)] = messages[-1].offset + 1
            pending.messages += len(messages)
            judged += len(messages)
        return judged

    def _produced_at(self, timestamp_ms: int) -> datetime:
        """The Kafka record timestamp as an aware datetime (records of one produce batch share it)."""
        last_ms, last = self._produced_cache
        if timestamp_ms != last_ms or last is None:
            last = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
            self._produced_cache = (timestamp_ms, last)
        return last

    def _commit_in_order(self) -> asyncio.Task[None]:
        """Hand the pending batch to the commit chain (see :mod:`streams.commit_chain`)."""
        batch, self._pending = self._pending, PendingBatch()
        return self.chain.hand_over(batch)

    @staticmethod
    async def _prepare(batch: PendingBatch) -> PreparedBatch:
        return await prepare_batch_cooperatively(batch.readings, batch.dead_letters, batch.next_offsets)

    async def _write(self, batch: PendingBatch, prepared: PreparedBatch) -> Committed:
        """Publish the batch's dead letters, then one warehouse transaction (see the module docstring)."""
        if batch.dlq_records:
            await self._retry("erasure register read",
                              lambda: scrub_erased_payloads(self.warehouse, batch.dlq_records))
        await self._retry("dead-letter publish", lambda: self.dlq.publish(batch.dlq_records))
        started = self.clock()
        written = await write_setting_aside_refused(
            self.warehouse, self.settings.consumer_group, prepared, publish=self.dlq.publish,
            max_payload_bytes=self.settings.dlq_max_payload_bytes, call=self._retry)
        if written.refused_event_ids:
            self.metrics.sink_batches_split.inc(written.splits)
            self.metrics.erased_readings_refused.inc(written.erased)
            batch.readings = [r for r in batch.readings if r.event_id not in written.refused_event_ids]
            batch.dead_letters.extend(written.dead_letters)
        committed = self.clock()
        self.metrics.sink_batch_duration.observe((committed - started).total_seconds())
        return written.result, committed

    async def flush(self) -> None:
        """Commit the pending batch and any batch in flight, in order; retries until the
        warehouse accepts them. Cancelling it cancels those commits (they are replayed)."""
        await self._commit_in_order()

    async def _after_commit(self, batch: PendingBatch, result: BatchResult, committed: datetime) -> None:
        self._observe(batch, result.stored_by_metric, committed)
        self.totals.update(stored=result.stored, duplicates=result.duplicates,
                           dead_lettered=len(batch.dead_letters))
        self._unmirrored.update(batch.next_offsets)
        for observer in self.batch_observers:
            try:
                await observer(batch.readings, batch.dead_letters)
            except Exception as exc:  # noqa: BLE001 - observers are best effort
                log.warning("batch observer %s failed: %s", getattr(observer, "__name__", observer),
                            type(exc).__name__)

    @Service.timer(OFFSET_MIRROR_INTERVAL_S)
    async def _mirror_offsets_periodically(self) -> None:
        await self._mirror_offsets_to_kafka()

    async def _mirror_offsets_to_kafka(self) -> None:
        """Mirror committed offsets to Kafka for lag tooling; the warehouse copy is
        authoritative. On a timer: a broker round trip per batch would slow the chain."""
        if self.consumer is None or not self._unmirrored:
            return
        next_offsets, self._unmirrored = self._unmirrored, {}
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
        unseen = [tp for tp in assigned if (tp.topic, tp.partition) not in stored]
        beginnings = await self.consumer.beginning_offsets(unseen) if unseen else {}
        for tp in assigned:
            offset = stored.get((tp.topic, tp.partition), beginnings.get(tp))
            self.consumer.seek(tp, offset)
            self.committed_offsets[(tp.topic, tp.partition)] = offset
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

    def _observe(self, batch: PendingBatch, stored: dict[str, int], committed: datetime) -> None:
        m = self.metrics
        m.sink_batch_size.observe(batch.size)
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
        for (topic, partition), offset in batch.next_offsets.items():
            self.last_commit_at[(topic, partition)] = committed
            self.commit_ages.mark((topic, partition))
            self.committed_offsets[(topic, partition)] = offset
            m.last_commit_timestamp.labels(topic, str(partition)).set(committed.timestamp())
        self.refresh_lag()

    @Service.timer(15.0)
    async def _refresh_lag_periodically(self) -> None:
        # A stalled partition must show growing lag even when nothing commits.
        self.refresh_lag()
        if self.totals != self._reported:
            new = self.totals - self._reported
            log.info("last 15s: %d stored, %d duplicates skipped, %d dead-lettered (%d stored in total)",
                     new["stored"], new["duplicates"], new["dead_lettered"], self.totals["stored"])
            self._reported = self.totals.copy()

    def refresh_lag(self) -> None:
        """Set the lag gauge of every assigned partition: high watermark - committed."""
        if self.consumer is None:
            return
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            done = self.committed_offsets.get((tp.topic, tp.partition))
            if high is not None and done is not None:
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, high - done))

    def forget_partitions(self, revoked: list[TopicPartition]) -> None:
        """Drop per-partition state and series of partitions this worker no longer owns."""
        for tp in revoked:
            key = (tp.topic, tp.partition)
            self.last_commit_at.pop(key, None)
            self.commit_ages.forget(key)
            self.committed_offsets.pop(key, None)
            self._unmirrored.pop(key, None)
            for gauge in (self.metrics.consumer_lag, self.metrics.last_commit_timestamp):
                with contextlib.suppress(KeyError):
                    gauge.remove(tp.topic, str(tp.partition))
