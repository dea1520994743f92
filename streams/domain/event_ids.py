"""Event ids for readings that come without one. Pure: no I/O.

The warehouse stores each ``event_id`` once, which is what makes redelivery and replay
safe. A reading without an ``event_id`` gets one derived from what identifies it: the
same reading sent twice gets the same id, and so is stored once.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Final

import orjson

#: Prefix of every derived id, so that they are told apart from ids the producer chose.
DERIVED_PREFIX: Final = "drv-"


def derive_event_id(user_key: str, device_id: str | None, source: str, metric: str,
                    measured_at: datetime, *, measured_until: datetime | None = None,
                    statistic: str | None = None) -> str:
    """``drv-`` + 40 hex digits of SHA-256 over (user, device, source, metric, instant).

    An interval reading's end (``measured_until``) and a ``statistic`` are part of what
    identifies it when given: the mean and the maximum of one interval are two readings.

    ``user_key`` is the user's keyed pseudonym, not the raw id: the id is stored in the
    warehouse and must not be reversible by guessing user ids. ``metric`` is the catalogue
    name, ``measured_at`` an aware datetime: two spellings of one instant (``Z`` or
    ``+02:00``, ISO string or epoch milliseconds) give the same id. ``device_id`` None and
    ``""`` differ. Two readings of one metric at one instant from one device and source
    are, by this definition, the same reading.
    """
    parts: list[str | None] = [user_key, device_id, source, metric, measured_at.astimezone(UTC).isoformat()]
    if measured_until is not None or statistic is not None:
        parts += [measured_until.astimezone(UTC).isoformat() if measured_until else None, statistic]
    text = orjson.dumps(parts)  # unambiguous framing
    return DERIVED_PREFIX + hashlib.sha256(text).hexdigest()[:40]
