"""In-stream quality: batch observer -> increments topic -> agent -> table -> snapshots.

Flow, per committed ingest batch:

1. :meth:`QualityStream.observe` (an ingest ``BatchObserver``) judges the batch with the
   pure rules and adds its counts to those of the batches before it, for up to
   :data:`COALESCE_S` and never across a window boundary; then one message per
   (metric, source) goes to the internal topic ``<app_id>-quality-increments``, keyed
   ``"metric|source"``:
   ``{"at": <clock, epoch s>, "batch": <id>, "counts": DimensionCounts.to_dict()}``
   (``at`` and windows of the first batch, which every merged batch shares). A Faust
   message per batch and key cost about a tenth of the worker's CPU (``make bench``).
2. The agent adds the counts to the tumbling windows of every configured size in a plain
   Faust table (``quality-windows``) keyed ``"metric|source"``; the windowing is
   :mod:`streams.domain.quality_windows` (processing time = the injected clock, carried in
   ``at``, so tests move time by sending messages).
3. Every ``quality_tick_interval_s`` a timer reads the clock and sends a keyed tick
   ``{"at": now}`` for each table key with a window past ``end + grace``. The agent, on
   any message for a key, writes that key's due windows to ``quality_windows`` and then
   removes them from the table. Only the agent writes the table (Faust requires stream
   context for changelog writes), and a key's messages are ordered in one partition, so a
   window is never closed while an increment for it is in flight on that partition.

Guarantees: table state is recovered from its changelog on restart. A window whose
snapshot failed stays open and is retried at the next tick; a snapshot written twice is
upserted. Redelivered increments are recognised by batch id and ignored. Not guaranteed: a
crash between the warehouse commit and the send of its increments loses those counts (at
most the last :data:`COALESCE_S`; a graceful stop sends them after the last commit).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import faust

from streams.clock import Clock
from streams.config import Settings
from streams.domain.quality import DimensionCounts, QualityConfig
from streams.domain.quality_judge import count_stored_batch
from streams.domain.quality_windows import (
    ClosedWindow,
    apply_increment,
    close_windows,
    due_windows,
    window_start,
    window_summary,
)
from streams.metrics import Metrics
from streams.quality.snapshots import publish_gauges, snapshot_rows, upsert_windows
from streams.records import NormalisedReading
from streams.sink.copy_encoding import DeadLetterRow
from streams.sink.warehouse import Warehouse

log = logging.getLogger(__name__)

#: ``sink(metric, source, windows)``: persist closed windows; raise to keep them open.
SnapshotSink = Callable[[str, str, Sequence[ClosedWindow]], Awaitable[None]]
#: The longest the counts of consecutive batches are merged before they are sent.
COALESCE_S = 1.0


def batch_id(readings: Sequence[NormalisedReading], dead_letters: Sequence[DeadLetterRow]) -> str:
    """An id for a committed batch: its last offset in each partition (disjoint per batch)."""
    last: dict[tuple[str, int], int] = {}
    for r in readings:
        key, offset = (r.kafka_topic, r.kafka_partition), r.kafka_offset
        if offset > last.get(key, -1):
            last[key] = offset
    for d in dead_letters:
        last[(d.topic, d.partition)] = max(d.offset, last.get((d.topic, d.partition), -1))
    text = ",".join(f"{t}:{p}:{o}" for (t, p), o in sorted(last.items()))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


class MergedIncrements:
    """Counts of consecutive committed batches that share their windows, not yet sent."""

    def __init__(self) -> None:
        self.at = 0.0  # the clock of the first batch: its windows are every batch's
        self.batches: list[str] = []
        self.counts: dict[tuple[str, str], DimensionCounts] = {}

    def add(self, at: float, batch: str, counts: dict[tuple[str, str], DimensionCounts]) -> None:
        if not self.batches:
            self.at = at
        self.batches.append(batch)
        for key, c in counts.items():
            before = self.counts.get(key)
            self.counts[key] = c if before is None else before + c

    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        """``(key, value)`` of the increment messages, one per (metric, source)."""
        # One batch keeps its own id; several get an id of their ids (a redelivery repeats it).
        batch = self.batches[0] if len(self.batches) == 1 else hashlib.blake2b(
            ",".join(self.batches).encode(), digest_size=12).hexdigest()
        return [(f"{metric}|{source}", {"at": self.at, "batch": batch, "counts": c.to_dict()})
                for (metric, source), c in self.counts.items()]


class QualityStream:
    """Registers the quality topic, table, agent and timer on ``app``.

    ``sink`` defaults to the warehouse upsert + gauges; tests pass their own. ``clock``
    must be the clock the ingest service uses.
    """

    def __init__(self, app: faust.App, settings: Settings, metrics: Metrics, clock: Clock, *,
                 warehouse: Warehouse | None = None, sink: SnapshotSink | None = None,
                 config: QualityConfig | None = None) -> None:
        """``warehouse`` receives the closed windows, unless another ``sink`` is given."""
        self.app, self.settings, self.metrics, self.clock = app, settings, metrics, clock
        self.warehouse = warehouse
        self.config = config or settings.quality_rules
        self.sizes = sorted(set(settings.quality_windows_s))
        self.grace = settings.quality_window_grace_s
        self.threshold = settings.quality_threshold
        self.min_records = settings.quality_min_records
        metrics.quality_min_records.set(self.min_records)
        self.sink = sink or self.write_snapshots
        self.topic = app.topic(f"{settings.app_id}-quality-increments", partitions=settings.topic_partitions,
                               internal=True, key_serializer="json", value_serializer="json")
        self.table = app.Table("quality-windows", default=None, partitions=settings.topic_partitions)
        self.agent = app.agent(self.topic, name="quality-windows")(self._run)
        app.timer(settings.quality_tick_interval_s, name="quality-tick")(self.tick)
        self._merged = MergedIncrements()

    # ---- producer side ------------------------------------------------------------------
    async def observe(self, readings: Sequence[NormalisedReading], dead_letters: Sequence[DeadLetterRow]
                      ) -> None:
        """Ingest ``BatchObserver``: merge the batch's counts; send what was merged before
        when this batch is too late or in other windows for it (see the module docstring)."""
        at = self.clock().timestamp()
        rejections = [(str(d.letter.code), d.letter.metric, d.letter.source) for d in dead_letters]
        counts = count_stored_batch(readings, rejections, self.config)
        merged = self._merged
        if merged.batches and (at - merged.at >= COALESCE_S or not self._same_windows(at, merged.at)):
            self._send_merged()
        self._merged.add(at, batch_id(readings, dead_letters), counts)

    def _same_windows(self, a: float, b: float) -> bool:
        return all(window_start(a, size) == window_start(b, size) for size in self.sizes)

    def _take_merged(self) -> list[tuple[str, dict[str, Any]]]:
        merged, self._merged = self._merged, MergedIncrements()
        return merged.messages()

    def _send_merged(self) -> None:
        for key, value in self._take_merged():
            self.topic.send_soon(key=key, value=value)

    async def send_merged_now(self) -> None:
        """Send what is merged and wait for the producer to take it (the ingest service
        calls this once it has committed its last batch on a graceful stop)."""
        for key, value in self._take_merged():
            await self.topic.send(key=key, value=value)

    async def tick(self) -> None:
        """Send the merged counts, then a tick for every key that has a window due to close
        (timer body)."""
        if self._merged.batches:
            self._send_merged()
        now = self.clock().timestamp()
        for key, state in list(self.table.items()):
            if due_windows(state, now, self.grace):
                await self.topic.send(key=key, value={"at": now})

    # ---- the agent ----------------------------------------------------------------------
    async def _run(self, stream: faust.StreamT) -> AsyncIterator[int]:
        async for event in stream.events():
            try:
                yield await self.apply(event.key, event.value)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.warning("malformed quality message skipped: %s", type(exc).__name__)
                yield 0

    async def apply(self, key: str, doc: dict[str, Any]) -> int:
        """Apply one increment or tick (agent body; needs stream context). Returns the
        number of windows closed."""
        state = self.table.get(key)
        now = float(doc["at"])
        changed = False
        if "counts" in doc:
            state, late = apply_increment(state, now, DimensionCounts.from_dict(doc["counts"]),
                                          self.sizes, doc.get("batch"))
            changed = True
            if late:
                self.metrics.quality_late_increments.inc(late)
        due = due_windows(state, now, self.grace)
        if due and state is not None:
            metric, _, source = key.partition("|")
            try:
                await self.sink(metric, source, due)
            except Exception as exc:  # noqa: BLE001 - keep the windows open; retried next tick
                log.warning("quality snapshot of %d window(s) failed: %s", len(due), type(exc).__name__)
                due = []
            else:
                state, changed = close_windows(state, due), True
        if changed:
            self.table[key] = state
        return len(due)

    async def write_snapshots(self, metric: str, source: str, closed: Sequence[ClosedWindow]) -> None:
        """Default sink: upsert into ``quality_windows``, then update the gauges."""
        weights = self.config.weights
        rows = snapshot_rows(metric, source, closed, weights, self.threshold, self.clock(), self.min_records)
        assert self.warehouse is not None, "QualityStream needs a warehouse or another sink"
        await upsert_windows(self.warehouse.pool, self.settings.warehouse_schema, rows)
        publish_gauges(self.metrics, metric, source, closed, weights, self.threshold, self.sizes[0],
                       self.min_records)

    # ---- reads --------------------------------------------------------------------------
    def open_windows(self, metric: str | None = None, source: str | None = None) -> list[dict[str, Any]]:
        """Scores of the open windows this worker holds, optionally for one metric/source.

        For the API. Only partitions assigned to this worker are visible (a single worker
        sees everything). Sorted by metric, source, size, start.
        """
        out = []
        for key, state in list(self.table.items()):
            m, _, s = key.partition("|")
            if (metric and m != metric) or (source and s != source) or not state:
                continue
            for size, windows in state["open"].items():
                for start, doc in windows.items():
                    summary = window_summary(DimensionCounts.from_dict(doc), self.config.weights,
                                             self.threshold, self.min_records)
                    w = ClosedWindow(int(size), int(start), DimensionCounts.from_dict(doc))
                    out.append({"metric": m, "source": s, "window_size_s": w.size_s,
                                "window_start": w.start.isoformat(), "window_end": w.end.isoformat(),
                                **summary})
        return sorted(out, key=lambda d: (d["metric"], d["source"], d["window_size_s"], d["window_start"]))
