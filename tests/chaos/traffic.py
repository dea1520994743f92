"""What the fault suite sends, and what each message must become.

The :class:`Ledger` keys every message by a hash of its bytes, so the raw topic itself
is the ground truth at the end: a message the producer retried after a broker failure
may be in the topic twice, and that is fine (the warehouse deduplicates by event id,
and each copy is judged at its own offset).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams.synthetic import SyntheticMessage, SyntheticReadings


@dataclass(frozen=True)
class Expect:
    """One message's fate: ids that must be stored, how many members must be dead-lettered,
    and ids that may go either way (duplicate JSON keys), but then exactly one way.

    ``whole``: nothing of the message may be stored, and at least one dead letter must
    cover it (one for the message, or one per member: both keep the contract).
    """

    kind: str
    stored: tuple[str, ...] = ()
    dead: int = 0
    either: tuple[str, ...] = ()
    whole: bool = False


class Ledger:
    def __init__(self) -> None:
        self.by_hash: dict[bytes, Expect] = {}

    @staticmethod
    def digest(value: bytes) -> bytes:
        return hashlib.blake2b(value, digest_size=16).digest()

    def add(self, value: bytes, expect: Expect) -> None:
        self.by_hash[self.digest(value)] = expect

    def lookup(self, value: bytes | None) -> Expect | None:
        return self.by_hash.get(self.digest(value or b""))


def new_producer(bootstrap: str, *, gzip: bool = False) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
        max_request_size=64 * 1024 * 1024, request_timeout_ms=15_000,
        compression_type="gzip" if gzip else None)


async def send_surely(producer: AIOKafkaProducer, topic: str, key: bytes, value: bytes) -> None:
    """Send until acknowledged: broker faults are the point, so an error means try again."""
    while True:
        try:
            await (await producer.send(topic, value, key=key))
            return
        except KafkaError:
            await asyncio.sleep(0.5)


class Load:
    """Valid traffic (2% spoilt the usual ways) at ``rate`` readings/s until stopped.

    ``envelope_share`` of the messages are envelopes of ``envelope_size`` readings, the rest
    single readings.
    """

    def __init__(self, ledger: Ledger, producer: AIOKafkaProducer, topic: str, rate: float,
                 *, seed: int = 11, envelope_share: float = 0.3, envelope_size: int = 20) -> None:
        self.ledger, self.producer, self.topic, self.rate = ledger, producer, topic, rate
        self.envelope_share, self.envelope_size = envelope_share, envelope_size
        self.synthetic = SyntheticReadings(datetime.now(UTC), seed=seed)
        self.readings = 0
        self._task: asyncio.Task | None = None
        self._pending: set[asyncio.Future] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop sending and wait until everything sent so far is acknowledged (idempotent)."""
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        await asyncio.gather(*self._pending)

    async def backlog(self, readings: int) -> None:
        """Send ``readings`` as fast as the broker takes them (no rate), and wait for the acks."""
        while self.readings < readings:
            await asyncio.gather(*(self._send(self._next()) for _ in range(500)))

    def offered_rate(self, seconds: float) -> float:
        return self.readings / seconds

    def _next(self) -> SyntheticMessage:
        batch = self.envelope_size if self.synthetic.rng.random() < self.envelope_share else 1
        (m,) = self.synthetic.messages(batch, bad_ratio=0.02, batch_size=batch)
        self.ledger.add(m.value, Expect(
            "load", tuple(e for e, c in zip(m.event_ids, m.expected, strict=True) if c is None),
            sum(c is not None for c in m.expected)))
        self.readings += batch
        return m

    def _send(self, m: SyntheticMessage) -> asyncio.Future:
        return asyncio.ensure_future(send_surely(self.producer, self.topic, m.key, m.value))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        tick = 0.05
        while True:
            # At most two ticks' worth per tick: a producer that falls behind offers less
            # (see offered_rate) instead of starving the event loop.
            due = min(self.rate * (loop.time() - started) - self.readings, 2 * tick * self.rate)
            while due > 0:
                m = self._next()
                self._pending.add(self._send(m))
                due -= len(m.expected)
            self._pending = {f for f in self._pending if not f.done()}
            await asyncio.sleep(tick)
