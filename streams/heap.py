"""Garbage-collector settings for a long-running process, applied once it has started.

Everything alive after start-up (modules, models, the catalogue, clients) lives as long as the
process. Left in the collector's sight, each full collection scans those objects again:
tens of milliseconds on a busy machine, paid by whichever message or request is in flight
(the p99 latency). The per-message garbage is mostly freed by reference counting, so the
young generations can be collected less often too.
"""

from __future__ import annotations

import gc

#: Allocations between two collections of the youngest generation (CPython's default: 700).
YOUNG_THRESHOLD = 50_000


def settle_heap(young_threshold: int = YOUNG_THRESHOLD) -> None:
    """Collect once, move every surviving object out of the collector's sight
    (:func:`gc.freeze`), and collect the young generations less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, 20, 20)
