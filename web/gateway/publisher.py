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
from aiokafka.partitioner import DefaultPartitioner

from streams.config import Settings
from streams.connections import kafka_kwargs
from web.errors import ApiUnavailable
from web.gateway.documents import Message
from web.gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

RETRY_AFTER_S = 2
#: Messages for one partition from which a request sends its own record batch.
OWN_BATCH_FROM = 8


class Publisher:
    def __init__(self, settings: Settings, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.topic = settings.raw_topic
        self.timeout = settings.gateway_ack_timeout_s
        self.producer: AIOKafkaProducer | None = None
        self.last_ok = 0.0
        self.last_failure = 0.0
        self._partitioner = DefaultPartitioner()

    async def start(self, *, retry_s: float = 2.0) -> None:
        """Start the producer, retrying until Kafka answers (the gateway serves nothing before)."""
        while True:
            producer = AIOKafkaProducer(
                **kafka_kwargs(self.settings), acks="all", enable_idempotence=True,
                linger_ms=self.settings.gateway_linger_ms, max_request_size=4 * 1024 * 1024,
                max_batch_size=1024 * 1024,
                request_timeout_ms=max(1000, int(self.timeout * 1000)), client_id="healthmate-gateway")
            try:
                await producer.start()
            except KafkaError as exc:
                await producer.stop()
                log.warning("Kafka not reachable (%s); retrying in %.0fs", type(exc).__name__, retry_s)
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

    @property
    def healthy(self) -> bool:
        return self.producer is not None and self.last_ok >= self.last_failure

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
        except (TimeoutError, KafkaError):
            raise self._unavailable("Kafka did not take the readings in time") from None
        # asyncio.wait, not gather under a timeout: a cancelled send future could not
        # report a delivery that happens after all.
        done, pending = await asyncio.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        for future in pending:
            future.add_done_callback(_retrieve)
        if pending or any(f.exception() is not None for f in done):
            raise self._unavailable("Kafka did not acknowledge the readings in time")
        now = time.monotonic()
        self.last_ok = now
        self.metrics.kafka_ack.observe(now - started)

    async def _send(self, producer: AIOKafkaProducer, messages: Sequence[Message]) -> list[asyncio.Future]:
        """Hand ``messages`` to the producer, each on the partition its key gives with the
        producer's default partitioner (as :meth:`AIOKafkaProducer.send` chooses). Many messages
        for one partition make a record batch of their own (one future, not one per message);
        a few join the partition's open batch, shared with other requests (fewer produce
        requests when many small requests arrive at once)."""
        partitions = sorted(await producer.partitions_for(self.topic))
        by_partition: dict[int, list[Message]] = {}
        for m in messages:
            by_partition.setdefault(self._partitioner(m.key, partitions, partitions), []).append(m)
        futures = []
        for partition, members in by_partition.items():
            if len(members) < OWN_BATCH_FROM:  # joins the batch other requests are filling
                futures.extend([await producer.send(self.topic, m.value, key=m.key, partition=partition)
                                for m in members])
                continue
            batch = producer.create_batch()
            for m in members:
                if batch.append(key=m.key, value=m.value, timestamp=None) is None:  # full
                    futures.append(await producer.send_batch(batch, self.topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=m.key, value=m.value, timestamp=None)  # a first record always fits
            futures.append(await producer.send_batch(batch, self.topic, partition=partition))
        return futures

    def _unavailable(self, message: str) -> ApiUnavailable:
        self.last_failure = time.monotonic()
        return ApiUnavailable(message + "; retry later (a retry stores nothing twice)",
                              headers={"Retry-After": str(RETRY_AFTER_S)}, reason="kafka_unavailable")


def _retrieve(future: asyncio.Future[object]) -> None:
    """Read a late send's outcome, so that asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()
