"""Batches commit strictly in the order they were handed over.

A batch's write task first does its CPU work (``prepare``), which overlaps the database time
of the batch before it, then awaits that batch's write before it does anything with an
effect (``write``): a failed or cancelled write stops every later one, so the stored offsets
never move past a batch that is not stored. What follows a commit (``after_commit``: metrics,
observers) runs in a second chain of tasks, in batch order, so the next write need not wait
for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from streams.batching import PendingBatch
from streams.sink.warehouse import BatchResult

#: What a write returns: the warehouse's answer and the clock when it committed.
Committed = tuple[BatchResult, datetime]


class CommitChain:
    """The two chains of tasks (writes, then what follows each commit) of one consumer."""

    def __init__(self, *,
                 prepare: Callable[[PendingBatch], Awaitable[Any]],
                 write: Callable[[PendingBatch, Any], Awaitable[Committed]],
                 after_commit: Callable[[PendingBatch, BatchResult, datetime], Awaitable[None]]) -> None:
        self._prepare, self._write, self._after_commit = prepare, write, after_commit
        # The newest write task and the newest post-commit task (each awaits the one before
        # it), and the post-commit task of the batch before the newest.
        self._writes: asyncio.Task[Committed | None] | None = None
        self._done: asyncio.Task[None] | None = None
        self.done_ahead: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        """No write in flight."""
        return self._writes is None or self._writes.done()

    def failure(self) -> BaseException | None:
        """What the newest write raised, once it is done (a bug or a broken schema)."""
        writes = self._writes
        if writes is not None and writes.done() and not writes.cancelled():
            return writes.exception()
        return None

    def hand_over(self, batch: PendingBatch) -> asyncio.Task[None]:
        """Write ``batch`` after every batch handed over before it.

        Returns its post-commit task, done once this batch and every earlier one is
        committed and observed; it raises what an earlier write raised (nothing is stored
        after a failed write)."""
        write = asyncio.ensure_future(self._write_after(self._writes, batch))
        self._writes = write
        self.done_ahead = self._done
        self._done = asyncio.ensure_future(self._done_after(self._done, write, batch))
        return self._done

    async def _write_after(self, previous: asyncio.Task[Committed | None] | None,
                           batch: PendingBatch) -> Committed | None:
        # CPU work first: it overlaps the database time of the batch before this one.
        prepared = await self._prepare(batch) if batch else None
        if previous is not None:
            await previous  # an earlier batch failed or was cancelled: never commit past it
        if prepared is None:
            return None
        return await self._write(batch, prepared)

    async def _done_after(self, previous: asyncio.Task[None] | None,
                          write: asyncio.Task[Committed | None], batch: PendingBatch) -> None:
        committed = await write
        if previous is not None:
            await previous
        if committed is not None:
            await self._after_commit(batch, *committed)
