"""What one batch holds between judging and its commit; shared by the live ingest and replays."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiokafka import ConsumerRecord

from streams.dlq import DeadLetterRecord, dead_letter_record
from streams.domain.pseudonym import user_key
from streams.records import DeadLetter, NormalisedReading
from streams.sink.copy_encoding import DeadLetterRow

#: A custom function called with every reading the worker judges valid.
ReadingProcessor = Callable[[NormalisedReading], None]
#: Called after each batch commits, with its stored readings and dead letters. Best effort:
#: a failure is logged and never blocks ingestion (the warehouse is already consistent).
BatchObserver = Callable[[Sequence[NormalisedReading], Sequence[DeadLetterRow]], Awaitable[None]]


class PendingBatch:
    """Outcomes judged but not yet committed, and the offsets they advance to."""

    def __init__(self) -> None:
        self.readings: list[NormalisedReading] = []
        self.dead_letters: list[DeadLetterRow] = []
        self.dlq_records: list[DeadLetterRecord] = []
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.messages = 0

    @property
    def size(self) -> int:
        return len(self.readings) + len(self.dead_letters)

    def __bool__(self) -> bool:
        return bool(self.next_offsets)

    def add_dead_letters(self, msg: ConsumerRecord, letters: Sequence[DeadLetter], *,
                         pseudonym_key: bytes, max_payload_bytes: int) -> None:
        """Book the rejects of one message: warehouse rows and DLQ records (live and replay)."""
        # The raw key is the user id (PHI): the DLQ gets its pseudonym.
        key = user_key(pseudonym_key, msg.key.decode("utf-8", "replace")).encode() if msg.key else None
        for index, letter in enumerate(letters):
            self.dead_letters.append(DeadLetterRow(msg.topic, msg.partition, msg.offset, index, letter))
            self.dlq_records.append(dead_letter_record(
                letter, key=key, topic=msg.topic, partition=msg.partition, offset=msg.offset,
                member_index=index, max_payload_bytes=max_payload_bytes))
