"""Building one single-reading wire message (README "Wire contract") from a reader's values.

Pure. The dict carries no ``event_id``: the worker derives it from (user, device, source,
metric, instant, end, statistic), so importing the same reading twice stores it once.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from streams.importers.base import ImportContext

__all__ = ["iso", "plain_name", "single_reading"]

_NOT_PLAIN = re.compile(r"[^0-9A-Za-z ._+-]")


def plain_name(text: str) -> str | None:
    """A product or app name from a file, kept to letters, digits and `` ._+-`` (64 at most).

    Names written by a vendor's software can hold anything; a device id or a metadata value
    built from one must never carry a control character or run past the wire limits.
    """
    return _NOT_PLAIN.sub("", text)[:64] or None


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
