"""The last hour of the pipeline, per minute, for the console's charts (``GET /pipeline/history``).

:class:`PipelineHistory` keeps, in this worker's memory, one bucket per minute of the wall
clock (``floor(epoch / 60)``) for the last hour: readings stored and dead letters published
(fed by the ingest service after each committed batch, like ``throughput``) and the largest
total consumer lag sampled in that minute (sampled by a timer and by every status call).
It is this worker's view: with several workers, each answers for its own partitions, and
the history starts empty when the worker starts. Pure: the caller passes the time.

The quality series (each metric's score over its last closed windows) is read from the
warehouse's ``quality_windows`` by :func:`web.queries.quality_history`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

BUCKET_S = 60
BUCKETS = 60  # one hour


@dataclass(slots=True)
class Bucket:
    readings: int = 0
    dead_letters: int = 0
    lag: int | None = None  # the largest total lag sampled in the minute; None: not sampled


class PipelineHistory:
    """Per-minute readings, dead letters and lag of the last :data:`BUCKETS` minutes."""

    def __init__(self) -> None:
        self._buckets: dict[int, Bucket] = {}

    def _bucket(self, at: datetime) -> Bucket:
        minute = int(at.timestamp()) // BUCKET_S
        bucket = self._buckets.get(minute)
        if bucket is None:
            bucket = self._buckets[minute] = Bucket()
            for old in [m for m in self._buckets if m <= minute - BUCKETS]:
                del self._buckets[old]
        return bucket

    def record_batch(self, at: datetime, readings: int, dead_letters: int) -> None:
        bucket = self._bucket(at)
        bucket.readings += readings
        bucket.dead_letters += dead_letters

    def record_lag(self, at: datetime, total_lag: int) -> None:
        bucket = self._bucket(at)
        bucket.lag = total_lag if bucket.lag is None else max(bucket.lag, total_lag)

    def points(self, now: datetime) -> list[dict[str, Any]]:
        """The last hour, oldest first, one point per minute (the current one included);
        minutes with nothing committed count 0, minutes without a lag sample have lag None."""
        last = int(now.timestamp()) // BUCKET_S
        out = []
        for minute in range(last - BUCKETS + 1, last + 1):
            b = self._buckets.get(minute, Bucket())
            out.append({"at": datetime.fromtimestamp(minute * BUCKET_S, UTC), "readings": b.readings,
                        "dead_letters": b.dead_letters, "lag": b.lag})
        return out
