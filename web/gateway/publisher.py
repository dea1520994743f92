"""The gateway's Kafka producer: idempotent, ``acks=all``, and a deadline per request.

Contract of :meth:`Publisher.publish`: it returns only once the broker has acknowledged
every message of the request (``acks=all``: every in-sync replica has it); otherwise it
raises :class:`~web.errors.ApiUnavailable` (503 with ``Retry-After``) when the deadline
(``HEALTHMATE_GATEWAY_ACK_TIMEOUT_S``) passes or a send fails. Messages already handed to
the producer may still be delivered after a 503; a retry of the request is harmless because
the warehouse stores each event id once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams.config import Settings
from streams.connections import kafka_kwargs
from web.errors import ApiUnavailable
from web.gateway.documents import Message
from web.gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

RETRY_AFTER_S = 2


class Publisher:
    def __init__(self, settings: Settings, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.topic = settings.raw_topic
        self.timeout = settings.gateway_ack_timeout_s
        self.producer: AIOKafkaProducer | None = None
        self.last_ok = 0.0
        self.last_failure = 0.0

    async def start(self, *, retry_s: float = 2.0) -> None:
        """Start the producer, retrying until Kafka answers and the raw topic exists (the
        gateway does not listen before)."""
        while True:
            producer = AIOKafkaProducer(
                **kafka_kwargs(self.settings), acks="all", enable_idempotence=True,
                linger_ms=self.settings.gateway_linger_ms, max_request_size=4 * 1024 * 1024,
                max_batch_size=1024 * 1024,
                request_timeout_ms=max(1000, int(self.timeout * 1000)), client_id="healthmate-gateway")
            try:
                await producer.start()
                await producer.partitions_for(self.topic)  # KafkaTimeoutError while it does not exist
            except KafkaError as exc:
                await producer.stop()
                log.warning("Kafka or the topic %s not available (%s); retrying in %.0fs", self.topic,
                            type(exc).__name__, retry_s)
                await asyncio.sleep(retry_s)
                continue
            self.producer = producer
            self.last_ok = time.monotonic()
            return

    async def stop(self) -> None:
        """Flush what is pending and stop; called after the server finished its requests."""
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def healthy(self, timeout: float = 2.0) -> bool:
        """Connected, and Kafka took the last request; after a failure, a metadata round trip
        to the brokers decides (so a replica that readiness took out of service comes back
        once Kafka does, without needing a request to succeed first)."""
        producer = self.producer
        if producer is None:
            return False
        if self.last_ok >= self.last_failure:
            return True
        try:
            async with asyncio.timeout(timeout):
                await producer.client.fetch_all_metadata()
        except (TimeoutError, KafkaError, OSError):
            return False
        self.last_ok = time.monotonic()
        return True

    async def publish(self, messages: Sequence[Message]) -> None:
        """Send ``messages`` and wait for every acknowledgement (see the module contract)."""
        producer = self.producer
        if producer is None:
            raise self._unavailable("the gateway is not connected to Kafka")
        started = time.monotonic()
        deadline = started + self.timeout
        try:
            async with asyncio.timeout(self.timeout):
                futures = await self._send(producer, messages)
        except (TimeoutError, KafkaError) as exc:
            log.warning("Kafka did not take a request's messages: %s", type(exc).__name__)
            raise self._unavailable("Kafka did not take the readings in time") from None
        # asyncio.wait, not gather under a timeout: a cancelled send future could not
        # report a delivery that happens after all.
        done, pending = await asyncio.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        for future in pending:
            future.add_done_callback(_retrieve)
        failed = [f.exception() for f in done if f.exception() is not None]
        if pending or failed:
            log.warning("Kafka did not acknowledge a request: %d pending, errors %s", len(pending),
                        sorted({type(e).__name__ for e in failed}))
            raise self._unavailable("Kafka did not acknowledge the readings in time")
        now = time.monotonic()
        self.last_ok = now
        self.metrics.kafka_ack.observe(now - started)

    async def _send(self, producer: AIOKafkaProducer, messages: Sequence[Message]) -> list[asyncio.Future]:
        """Hand ``messages`` to the producer, keyed by user (the default partitioner places
        them as for every other producer of the raw topic). They join the partition's open
        record batch, shared with other requests: one produce request carries many requests'
        messages. (``send_batch`` per request was tried: aiokafka queues one batch per
        partition at a time, so concurrent requests waited on each other and timed out.)"""
        return [await producer.send(self.topic, m.value, key=m.key) for m in messages]

    def _unavailable(self, message: str) -> ApiUnavailable:
        self.last_failure = time.monotonic()
        return ApiUnavailable(message + "; retry later (a retry stores nothing twice)",
                              headers={"Retry-After": str(RETRY_AFTER_S)}, reason="kafka_unavailable")


def _retrieve(future: asyncio.Future[object]) -> None:
    """Read a late send's outcome, so that asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()
