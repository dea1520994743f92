"""Closed quality windows -> ``quality_windows`` rows (idempotent upsert) and gauges."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import asyncpg
import orjson

from streams.domain.quality import DIMENSIONS
from streams.domain.quality_windows import ClosedWindow, window_summary
from streams.errors import WarehouseUnavailable
from streams.metrics import Metrics
from streams.sink.migrations import quote_ident
from streams.sink.warehouse import TRANSIENT_ERRORS

_COLUMNS = ("metric", "source", "window_size", "window_start", "window_end", "records", *DIMENSIONS,
            "overall_score", "quality_level", "threshold", "below_threshold", "counts", "closed_at")


def snapshot_rows(metric: str, source: str, closed: Sequence[ClosedWindow], weights: Mapping[str, float],
                  threshold: float, closed_at: datetime, min_records: int = 1) -> list[tuple]:
    """One ``quality_windows`` row (in ``_COLUMNS`` order) per closed window (level
    ``collecting`` below ``min_records`` records)."""
    rows = []
    for w in closed:
        s = window_summary(w.counts, weights, threshold, min_records)
        rows.append((metric, source, timedelta(seconds=w.size_s), w.start, w.end, s["records"],
                     *(s[d] for d in DIMENSIONS), s["overall_score"], s["quality_level"], threshold,
                     s["below_threshold"], orjson.dumps(w.counts.to_dict()).decode(), closed_at))
    return rows


async def upsert_windows(pool: asyncpg.Pool, schema: str, rows: Sequence[tuple]) -> None:
    """Insert or replace the rows of ``(metric, source, window_size, window_start)``.

    Raises ``WarehouseUnavailable`` on a transient failure (the caller keeps the windows
    open and tries again later). Writing the same rows twice leaves one copy.
    """
    if not rows:
        return
    cols = ", ".join(_COLUMNS)
    params = ", ".join(f"${i}::jsonb" if c == "counts" else f"${i}" for i, c in enumerate(_COLUMNS, 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[4:])
    sql = (f"INSERT INTO {quote_ident(schema)}.quality_windows ({cols}) VALUES ({params})"
           f" ON CONFLICT (metric, source, window_size, window_start) DO UPDATE SET {updates}")
    try:
        await pool.executemany(sql, rows)
    except TRANSIENT_ERRORS as exc:
        raise WarehouseUnavailable(f"quality snapshot failed: {type(exc).__name__}") from exc


def publish_gauges(metrics: Metrics, metric: str, source: str, closed: Sequence[ClosedWindow],
                   weights: Mapping[str, float], threshold: float, gauge_size_s: int,
                   min_records: int = 1) -> None:
    """Set ``healthmate_quality_score`` and ``healthmate_quality_window_records`` from the
    latest of ``closed`` whose size is ``gauge_size_s`` (the smallest configured), and count
    judged windows below the threshold (a ``collecting`` window is never below it)."""
    for w in closed:
        if window_summary(w.counts, weights, threshold, min_records)["below_threshold"]:
            metrics.quality_windows_below_threshold.inc()
    latest = max((w for w in closed if w.size_s == gauge_size_s), key=lambda w: w.start_s, default=None)
    if latest is None:
        return
    summary = window_summary(latest.counts, weights, threshold, min_records)
    metrics.quality_window_records.labels(metric, source).set(latest.counts.records)
    for dimension in (*DIMENSIONS, "overall"):
        value = summary["overall_score" if dimension == "overall" else dimension]
        metrics.quality_score.labels(metric, source, dimension).set(value)
