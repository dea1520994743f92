"""The producer side: a helper for ingestion services, and the demo/load command.

Ingestion services publish with :func:`stream_data`::

    async with AIOKafkaProducer(bootstrap_servers=..., acks="all") as producer:
        await stream_data(producer, "health.readings.raw", reading_or_envelope)

The message key is the user id, so one user's readings stay in order on one partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streams.config import Settings
from streams.connections import kafka_kwargs, require_raw_topic
from streams.synthetic import SyntheticReadings

log = logging.getLogger(__name__)


async def stream_data(producer: AIOKafkaProducer, topic: str, payload: Mapping[str, Any]) -> None:
    """Publish one reading or batch envelope (see ``streams.records``) keyed by its user.

    Returns once the broker has acknowledged the message. An integer ``user_id`` (the wide
    form allows one) is keyed by its decimal string, like the worker reads it. Raises
    ``ValueError`` when the payload has no such ``user_id`` (it would have no partition key).
    """
    user_id = payload.get("user_id")
    if user_id.__class__ is int:
        user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id:
        raise ValueError("payload needs a non-empty string or integer user_id (the partition key)")
    await producer.send_and_wait(topic, orjson.dumps(payload), key=user_id.encode())


async def produce_synthetic(
    settings: Settings, *, rate: float, count: int, bad_ratio: float, batch_size: int,
    seed: int | None = None, progress: Callable[[int], None] | None = None,
) -> int:
    """Publish ``count`` synthetic readings at about ``rate`` readings/s (0 = as fast as
    possible). ``progress`` is called with the readings sent so far after each message.
    Returns the number of messages sent."""
    producer = AIOKafkaProducer(
        **kafka_kwargs(settings), acks="all", linger_ms=10,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    sent = readings = 0
    started = time.monotonic()
    try:
        await require_raw_topic(producer, settings.raw_topic)
        generator = SyntheticReadings(datetime.now(UTC), seed=seed)
        pending = []
        for message in generator.messages(count, bad_ratio=bad_ratio, batch_size=batch_size):
            pending.append(await producer.send(settings.raw_topic, message.value, key=message.key))
            sent += 1
            readings += len(message.expected)
            if progress is not None:
                progress(readings)
            if rate > 0:
                ahead = readings / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.gather(*pending)
                    pending.clear()
                    await asyncio.sleep(ahead)
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    elapsed = time.monotonic() - started
    log.info("produced %d messages (%d readings) in %.1fs", sent, readings, elapsed)
    return sent
