"""Building one single-reading wire message (README "Wire contract") from a reader's values.

Pure. The dict carries no ``event_id``: the worker derives it from (user, device, source,
metric, instant, end, statistic), so importing the same reading twice stores it once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streams.importers.base import ImportContext

__all__ = ["iso", "single_reading"]


def iso(instant: datetime) -> str:
    """``instant`` (aware) as ISO-8601 with its offset; a naive datetime is a bug here."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("a reading's instant must be timezone-aware")
    return instant.isoformat()


def single_reading(
    ctx: ImportContext,
    *,
    device_id: str | None,
    source: str,
    metric: str,
    value: float,
    unit: str,
    timestamp: datetime,
    timestamp_end: datetime | None = None,
    statistic: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One single reading of ``ctx.user_id``; optional keys appear only when set."""
    doc: dict[str, Any] = {
        "user_id": ctx.user_id,
        "device_id": device_id,
        "source": source,
        "metric": metric,
        "value": value,
        "unit": unit,
        "timestamp": iso(timestamp),
    }
    if timestamp_end is not None:
        doc["timestamp_end"] = iso(timestamp_end)
    if statistic is not None:
        doc["statistic"] = statistic
    if metadata:
        doc["metadata"] = metadata
    return doc
