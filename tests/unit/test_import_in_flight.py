"""The importer's Kafka sink holds a bounded amount of unacknowledged data, in messages and in
bytes: with a slow broker, 256 envelopes of 1 MiB would otherwise pile up (372 MB of RSS seen)."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.config import Settings
from streams.importers.packing import Message
from streams.importers.run import MAX_IN_FLIGHT, MAX_IN_FLIGHT_BYTES, KafkaSink


class SlowBroker:
    """Stands in for the producer: each message is acknowledged only when the sink waits for it,
    and what is still unacknowledged is what the producer would hold."""

    def __init__(self) -> None:
        self.unacknowledged: list[tuple[asyncio.Future[Any], int]] = []
        self.most_bytes = self.most_messages = 0

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: self.unacknowledged.remove((f, len(value))))
        self.unacknowledged.append((future, len(value)))
        self.most_bytes = max(self.most_bytes, sum(size for _, size in self.unacknowledged))
        self.most_messages = max(self.most_messages, len(self.unacknowledged))
        asyncio.get_running_loop().call_later(0.001, future.set_result, None)
        return future


async def _send_all(count: int, size: int) -> SlowBroker:
    sink = KafkaSink(Settings(dev_mode=True))
    await sink.producer.stop()
    broker = SlowBroker()
    sink.producer = broker  # type: ignore[assignment]
    for _ in range(count):
        await sink.send(Message(b"u", b"x" * size, 1))
    await sink.flush()
    assert not broker.unacknowledged
    return broker


async def test_large_envelopes_are_bounded_by_bytes() -> None:
    broker = await _send_all(100, 1024 * 1024)
    assert broker.most_bytes <= MAX_IN_FLIGHT_BYTES
    assert broker.most_messages < 100  # it waited for acknowledgements on the way


async def test_small_messages_are_bounded_by_count() -> None:
    broker = await _send_all(3 * MAX_IN_FLIGHT, 100)
    assert broker.most_messages <= MAX_IN_FLIGHT
