"""Publishing to the dead-letter topic.

The value is the original bytes (for a bad envelope member, that member's JSON alone),
cut to ``max_payload_bytes`` so that no payload can exceed the broker's limit and wedge
the pipeline; a cut payload carries ``payload.truncated`` and ``payload.original_bytes``
headers. Records are gzip-compressed: the DLQ is low-volume and payloads compress well.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams.records import DeadLetter

PIPELINE_VERSION = "1"


@dataclass(slots=True)
class DeadLetterRecord:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def dead_letter_record(letter: DeadLetter, *, key: bytes | None, topic: str, partition: int,
                       offset: int, member_index: int, max_payload_bytes: int,
                       extra_headers: Sequence[tuple[str, bytes]] = ()) -> DeadLetterRecord:
    """The DLQ record for one rejected reading or message (pure)."""
    headers = [*extra_headers,
        ("error.code", str(letter.code).encode()),
        ("error.message", letter.message.encode()),
        ("source.topic", topic.encode()),
        ("source.partition", str(partition).encode()),
        ("source.offset", str(offset).encode()),
        ("pipeline.version", PIPELINE_VERSION.encode()),
        ("dlq.id", f"{topic}/{partition}/{offset}/{member_index}".encode()),
    ]
    value = letter.payload
    if len(value) > max_payload_bytes:
        headers += [("payload.truncated", b"true"), ("payload.original_bytes", str(len(value)).encode())]
        value = value[:max_payload_bytes]
    return DeadLetterRecord(key, value, headers)


class DeadLetterPublisher:
    """An idempotent producer for the DLQ. ``publish`` returns once every record is acked."""

    def __init__(self, kafka: Mapping[str, Any], topic: str, *, max_payload_bytes: int) -> None:
        self.kafka = kafka  # client arguments: streams.connections.kafka_kwargs(settings)
        self.topic = topic
        self.max_request_size = max_payload_bytes + 64 * 1024
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            **self.kafka, acks="all", enable_idempotence=True, linger_ms=5,
            compression_type="gzip", max_request_size=self.max_request_size,
        )
        await self._producer.start()

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(self, records: list[DeadLetterRecord]) -> None:
        """Send ``records``; on failure, keep only the unacknowledged ones in the list,
        restart the producer (an idempotent producer is unusable after a fatal error), and
        raise, so the caller can retry without re-sending what already landed."""
        if not records:
            return
        if self._producer is None:
            await self.start()
        assert self._producer is not None
        sent: list[tuple[DeadLetterRecord, asyncio.Future | BaseException]] = []
        for record in records:
            try:
                future = await self._producer.send(
                    self.topic, value=record.value, key=record.key, headers=record.headers)
            except KafkaError as exc:
                sent.append((record, exc))
            else:
                sent.append((record, future))
        futures = [f for _, f in sent if isinstance(f, asyncio.Future)]
        outcomes = iter(await asyncio.gather(*futures, return_exceptions=True))
        failed: list[DeadLetterRecord] = []
        first_error: BaseException | None = None
        for record, attempt in sent:
            result = next(outcomes) if isinstance(attempt, asyncio.Future) else attempt
            if isinstance(result, BaseException):
                failed.append(record)
                first_error = first_error or result
        records[:] = failed
        if first_error is not None:
            await self.stop()
            raise first_error
