"""What a standard-form message (Open mHealth, FHIR) maps to before the common checks run.

The standard forms only translate; every reading they produce is judged by the same
``_normalise`` as the private forms, so every bound and check applies to them too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.errors import Rejected, RejectReason


@dataclass(frozen=True, slots=True)
class Mapped:
    """One unit judged on its own: a data point, an Observation, one entry of a Bundle.

    ``members`` are reading mappings for ``_normalise`` (``event_id``, ``metric``, ``value``,
    ``unit``, ``timestamp``, optional ``timestamp_end``, ``statistic``, ``metadata``).
    ``user_id`` is the raw user id (``None`` when neither the resource nor the message key
    names one). ``payload`` is what a dead letter of this unit carries; ``None`` means the
    original message bytes. When ``error`` is set the unit maps to nothing and is
    dead-lettered with it.
    """

    user_id: str | None
    device_id: str | None
    source: str
    members: list[dict[str, Any]] = field(default_factory=list)
    payload: bytes | None = None
    error: Rejected | None = None

    @classmethod
    def rejected(cls, error: Rejected, source: str, payload: bytes | None = None) -> Mapped:
        return cls(None, None, source, [], payload, error)


def violation(pointer: str, what: str) -> Rejected:
    """A ``schema_violation`` naming the JSON pointer of the first violation (no values)."""
    shown = pointer if len(pointer) <= 120 else pointer[:120] + "..."
    return Rejected(RejectReason.SCHEMA_VIOLATION, f"{shown or '/'}: {what}")


def shown(text: str, limit: int = 40) -> str:
    """``text`` cut for an error message (schema names and codes only, never values)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
