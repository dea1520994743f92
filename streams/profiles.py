"""The ``user_profiles`` dimension: a Faust agent on the compacted profiles topic.

Each message of ``HEALTHMATE_PROFILES_TOPIC`` (key: the user id) is judged by the pure
:func:`streams.domain.profiles.judge_profile` and becomes an upsert (the latest
``updated_at`` wins), a delete (tombstone), or a dead letter: published to the DLQ topic
with the same headers as a reading's (``source.topic`` = the profiles topic), keyed by the
user's pseudonym, and counted once in ``dead_letters``. The warehouse write is retried
with capped backoff until it succeeds, so the agent never acknowledges a profile it has
not stored (at-least-once; every write is idempotent, which makes it effectively once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from mode import Service

from streams.config import Settings
from streams.connections import kafka_kwargs
from streams.dlq import DeadLetterPublisher, dead_letter_record
from streams.domain.profiles import ProfileDeleted, judge_profile
from streams.domain.validate import Rules
from streams.errors import Rejected, Retryable
from streams.records import DeadLetter
from streams.sink.profiles import delete_profile, record_dead_profile, upsert_profile
from streams.sink.warehouse import TRANSIENT_ERRORS, Warehouse

log = logging.getLogger(__name__)

_RETRYABLE = (*TRANSIENT_ERRORS, Retryable, KafkaError)


class ProfileAgent(Service):
    """Registers the profiles topic and agent on ``app``; ``apply`` handles one message.
    As a service, it stops its dead-letter producer when the worker stops."""

    def __init__(self, app: faust.App, settings: Settings, rules: Rules, warehouse: Warehouse,
                 clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.settings, self.rules, self.warehouse, self.clock = settings, rules, warehouse, clock
        self.dlq = DeadLetterPublisher(kafka_kwargs(settings), settings.dlq_topic,
                                       max_payload_bytes=settings.dlq_max_payload_bytes)
        self.topic = app.topic(settings.profiles_topic, key_serializer="raw", value_serializer="raw",
                               partitions=settings.topic_partitions)
        self.agent = app.agent(self.topic, name="user-profiles")(self._run)

    async def _run(self, stream: faust.StreamT) -> AsyncIterator[str]:
        async for event in stream.events():
            m = event.message
            produced = datetime.fromtimestamp(m.timestamp, tz=UTC) if m.timestamp else None
            yield await self.apply(m.key, m.value, m.topic, m.partition, m.offset, produced)

    async def apply(self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int,
                    produced_at: datetime | None = None) -> str:
        """Store, delete or dead-letter one profile message; returns what was done."""
        schema = self.settings.warehouse_schema
        try:
            outcome = judge_profile(key, value, self.rules.pseudonymise, now=self.clock(),
                                    produced_at=produced_at)
        except Rejected as exc:
            letter = DeadLetter(value or b"", exc.code, exc.message, None, None)
            record = dead_letter_record(letter, key=self._pseudonym(key), topic=topic, partition=partition,
                                        offset=offset, member_index=0,
                                        max_payload_bytes=self.settings.dlq_max_payload_bytes)
            await self._retry(lambda: self.dlq.publish([record]))
            await self._retry(lambda: record_dead_profile(self.warehouse.pool, schema, topic, partition,
                                                          offset, letter))
            log.info("profile at %s/%d/%d dead-lettered: %s", topic, partition, offset, exc.code)
            return "rejected"
        if isinstance(outcome, ProfileDeleted):
            await self._retry(lambda: delete_profile(self.warehouse.pool, schema, outcome.user_key))
            return "deleted"
        written = await self._retry(lambda: upsert_profile(self.warehouse.pool, schema, outcome))
        return "stored" if written else "older"

    def _pseudonym(self, key: bytes | None) -> bytes | None:
        try:
            return self.rules.pseudonymise(key.decode()).encode() if key else None
        except UnicodeDecodeError:
            return None

    async def _retry(self, work: Callable[[], Awaitable]):  # type: ignore[no-untyped-def]
        delay = self.settings.sink_retry_initial_s
        while True:
            try:
                return await work()
            except _RETRYABLE as exc:
                log.warning("profile write failed (%s); retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.sink_retry_max_s)

    async def on_stop(self) -> None:
        await self.dlq.stop()


async def publish_tombstone(settings: Settings, user_id: str, *, timeout_s: float = 15.0) -> None:
    """Publish a tombstone for ``user_id`` (the raw id: the topic's key) to the profiles topic
    and wait for the broker's ack, so that compaction drops the person's profile records.
    Raises ``KafkaError`` or ``TimeoutError`` if the broker does not take it."""
    producer = AIOKafkaProducer(**kafka_kwargs(settings), acks="all", enable_idempotence=True)
    try:
        await asyncio.wait_for(producer.start(), timeout_s)
        await asyncio.wait_for(producer.send_and_wait(settings.profiles_topic, value=None,
                                                      key=user_id.encode()), timeout_s)
    finally:
        await producer.stop()
