"""Tumbling quality windows per (metric, source), as a pure state machine. No I/O, no clock.

The in-stream path keeps one JSON-safe *state* per (metric, source) key in a plain Faust
table. Windows are aligned to the Unix epoch (``start = floor(at / size) * size``) and
keyed by *processing time*: ``at`` is the injected clock's reading when the ingest
service committed the batch, carried in each message. Nothing here reads a clock, so the
caller (and a test) decides when time moves.

State shape::

    {"open":   {"<size_s>": {"<start_s>": DimensionCounts.to_dict()}},
     "closed": {"<size_s>": <end_s of the latest closed window>},
     "recent": [<batch ids applied lately, newest last>]}

A window closes when ``end + grace <= now``. An increment for a window that has already
closed is *late*: it is dropped and counted, never reopening a window whose snapshot was
written. An increment whose ``batch`` id is in ``recent`` is a redelivery and is ignored.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from streams.domain.quality import DimensionCounts, quality_level

RECENT_BATCHES: Final = 64
#: The level of a window that holds too few records to be judged (``window_summary``).
COLLECTING: Final = "collecting"


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """One window whose counts are final: the content of a ``quality_windows`` row."""

    size_s: int
    start_s: int
    counts: DimensionCounts

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_s, tz=UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.start_s + self.size_s, tz=UTC)


def new_state() -> dict[str, Any]:
    return {"open": {}, "closed": {}, "recent": []}


def window_start(at: float, size_s: int) -> int:
    """Start (epoch seconds) of the ``size_s`` tumbling window holding instant ``at``."""
    return math.floor(at / size_s) * size_s


def apply_increment(state: Mapping[str, Any] | None, at: float, counts: DimensionCounts,
                    sizes: Iterable[int], batch: str | None = None) -> tuple[dict[str, Any], int]:
    """Add ``counts`` observed at ``at`` to the window of each size; a new state is returned.

    Returns ``(state, late)``: ``late`` is the number of window sizes whose window for
    ``at`` had already closed (those counts are dropped). A ``batch`` id already applied
    changes nothing.
    """
    new = copy.deepcopy(dict(state)) if state else new_state()
    if batch is not None:
        if batch in new["recent"]:
            return new, 0
        new["recent"] = [*new["recent"], batch][-RECENT_BATCHES:]
    late = 0
    for size in sizes:
        start = window_start(at, size)
        if start + size <= new["closed"].get(str(size), -math.inf):
            late += 1
            continue
        windows = new["open"].setdefault(str(size), {})
        current = windows.get(str(start))
        total = counts if current is None else DimensionCounts.from_dict(current) + counts
        windows[str(start)] = total.to_dict()
    return new, late


def due_windows(state: Mapping[str, Any] | None, now: float, grace_s: float) -> list[ClosedWindow]:
    """Open windows with ``end + grace_s <= now``, oldest first, smaller sizes first."""
    if not state:
        return []
    due = [ClosedWindow(int(size), int(start), DimensionCounts.from_dict(doc))
           for size, windows in state["open"].items() for start, doc in windows.items()
           if int(start) + int(size) + grace_s <= now]
    return sorted(due, key=lambda w: (w.start_s + w.size_s, w.size_s))


def close_windows(state: Mapping[str, Any], closed: Iterable[ClosedWindow]) -> dict[str, Any]:
    """A new state without ``closed`` windows, with each size's closed mark moved forward."""
    new = copy.deepcopy(dict(state))
    for w in closed:
        size = str(w.size_s)
        new["open"].get(size, {}).pop(str(w.start_s), None)
        if not new["open"].get(size):
            new["open"].pop(size, None)
        new["closed"][size] = max(new["closed"].get(size, -math.inf), w.start_s + w.size_s)
    return new


def window_summary(counts: DimensionCounts, weights: Mapping[str, float], threshold: float,
                   min_records: int = 1) -> dict[str, Any]:
    """Scores, overall score, level and ``below_threshold`` of a window's counts.

    A window holding fewer than ``min_records`` records is not judged yet: its level is
    ``collecting`` and ``below_threshold`` is false, whatever its scores (a few seconds into
    a window, one bad record would make it "unusable"). The scores are still given.
    """
    overall = counts.overall(weights)
    collecting = counts.records < min_records
    return {"records": counts.records, **counts.scores(), "overall_score": overall,
            "quality_level": COLLECTING if collecting else quality_level(overall),
            "below_threshold": not collecting and overall < threshold, "collecting": collecting}
