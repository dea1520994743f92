"""The consumer's rebalance listener: flush on revoke, seek to the warehouse's offsets on assignment."""

from __future__ import annotations

from typing import Protocol

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener


class RebalanceTarget(Protocol):
    """What the listener needs of the ingest service."""

    rebalances: int

    async def flush(self) -> None: ...
    def fail(self, error: BaseException, doing: str) -> None: ...
    def forget_partitions(self, revoked: list[TopicPartition]) -> None: ...
    async def seek_to_stored_offsets(self, assigned: list[TopicPartition]) -> None: ...


class ResumeFromWarehouse(ConsumerRebalanceListener):
    """Flush on revoke, seek to the warehouse's offsets on assignment.

    aiokafka only logs what a listener raises, and the partitions would stay paused for
    ever: a failure here is handed to the consume loop (``fail``), which stops the worker."""

    def __init__(self, service: RebalanceTarget) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.service.rebalances += 1
        try:
            await self.service.flush()
        except Exception as exc:  # noqa: BLE001 - handed over, see the class docstring
            self.service.fail(exc, "flushing on a partition revoke")
        self.service.forget_partitions(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        try:
            await self.service.seek_to_stored_offsets(assigned)
        except Exception as exc:  # noqa: BLE001 - handed over, see the class docstring
            self.service.fail(exc, "loading the offsets of assigned partitions")
