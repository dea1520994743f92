"""Wire contract of ``health.readings.raw`` and the pure data the domain layer hands back.

Input: the Kafka message value
------------------------------
Each message value is UTF-8 JSON (at most ``max_message_bytes`` bytes, counted before
decoding) holding exactly one JSON object of one of three shapes below, or an Open
mHealth data point (:mod:`streams.domain.omh`) or a FHIR R4 Observation or Bundle
(:mod:`streams.domain.fhir`), which are mapped to readings and judged by the same rules.

Single reading::

    {"event_id": str (optional), "user_id": str, "device_id": str | null (optional),
     "source": str, "metric": str, "value": number, "unit": str,
     "timestamp": str | int, "metadata": object | null (optional)}

Batch envelope (recognised by the presence of ``batch_id`` or ``readings``)::

    {"batch_id": str, "user_id": str, "device_id": str | null (optional), "source": str,
     "readings": [{"event_id": str (optional), "metric": str, "value": number, "unit": str,
                   "timestamp": str | int, "metadata": object | null (optional)}, ...]}

Wide form (no ``metric`` key, at least one catalogue metric named as a key; the full
contract is in :mod:`streams.domain.wide`)::

    {"user_id": str | int, "<metric>": number, ..., "timestamp": str | int, "source": str,
     "device_id": str | null (optional), "units": {"<metric>": str} (optional), ...}

- ``event_id`` is optional in every form; when absent it is derived from (user pseudonym,
  device, source, metric, instant) by :func:`streams.domain.event_ids.derive_event_id`, so
  a redelivered reading keeps its id. When given it must be a non-empty string.
- Every member of ``readings`` inherits ``user_id``, ``device_id`` and ``source`` from the
  envelope; the envelope is authoritative (member-level copies of those fields are
  ignored). An envelope holds at most ``max_batch_readings`` members.
- Each member is judged on its own: one bad member is dead-lettered alone and never sinks
  the batch. A problem with the envelope itself (missing or mistyped ``batch_id``,
  ``user_id``, ``source``, ``device_id`` or ``readings``, too many members) dead-letters
  the whole message.
- Strings marked ``str`` above (``event_id`` when given, ``user_id``, ``source``, ``metric``,
  ``unit``, ``batch_id``) must be non-empty. A required field that is absent or ``null``
  is *missing*. ``value`` must be a JSON number (``true``/``false`` are not numbers) and
  finite; ``NaN``/``Infinity`` literals, and numbers too large for a double, are rejected.
- Optional in both shapes, per reading: ``timestamp_end`` (same format as ``timestamp``)
  makes the reading an interval from ``timestamp`` to ``timestamp_end``; it may not come
  before ``timestamp`` (``out_of_range``) nor lie in the future. ``statistic`` (one of
  :data:`DESCRIPTIVE_STATISTICS`, else ``invalid_type``) marks a summary value.
- ``timestamp`` is an ISO-8601 string carrying an offset or ``Z``
  (``"2024-05-01T07:30:00+02:00"``), or an integer count of milliseconds since the Unix
  epoch (``1714541400000``). Strings without an offset are rejected as naive, unless
  ``HEALTHMATE_NAIVE_TIMESTAMPS=utc`` (``Rules.naive_timestamps``) reads them as UTC.
- ``metric`` is matched after stripping whitespace and lower-casing; ``unit`` is matched
  exactly, then after stripping, then case-insensitively where that is unambiguous
  (see :mod:`streams.domain.catalogue`).
- Text is bounded (:data:`streams.domain.text.MAX_LENGTHS`: event_id 200, user_id 256,
  device_id 128, source 64, batch_id 128, metric and unit 64 characters; metadata 16 KiB
  of compact JSON) and may hold no control character (metadata: no U+0000), so that no
  reading can make PostgreSQL refuse a batch: ``text_too_long``, ``control_character``.
- ``timestamp`` before 1970-01-01T00:00:00Z is ``timestamp_out_of_range``.
- Unknown extra fields of a single reading or envelope are ignored (a wide message
  dead-letters them, see :mod:`streams.domain.wide`).

Output
------
:class:`NormalisedReading` (one row in the warehouse) or :class:`DeadLetter` (one record
on the dead-letter topic, with a :class:`~streams.errors.RejectReason` code and a message
that never contains PHI: no user id, no device id, no reading value, no timestamp).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from streams.errors import RejectReason

#: Quality flags that can appear in :attr:`NormalisedReading.quality_flags`, in this order.
FLAG_OUTLIER: Final = "outlier"
FLAG_CLIPPED: Final = "clipped"
FLAG_LATE: Final = "late"

#: Values of ``statistic``: the Open mHealth / IEEE 1752.1 ``descriptive_statistic`` values.
DESCRIPTIVE_STATISTICS: Final = frozenset({
    "average", "count", "maximum", "median", "minimum", "standard deviation", "sum", "variance",
    "20th percentile", "80th percentile", "lower quartile", "upper quartile", "quartile deviation",
    "1st quintile", "2nd quintile", "3rd quintile", "4th quintile",
})


@dataclass(frozen=True, slots=True)
class MessageContext:
    """Where a message came from and when it was ingested (the injected clock).

    ``ingested_at`` must be timezone-aware, and so must ``produced_at`` (the Kafka record
    timestamp) when given (``ValueError`` otherwise); both are stored converted to UTC.
    ``produced_at`` is copied onto every reading of the message and never judged.
    """

    topic: str
    partition: int
    offset: int
    ingested_at: datetime
    produced_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("ingested_at", "produced_at"):
            ts = getattr(self, name)
            if ts is None and name == "produced_at":
                continue
            if ts.tzinfo is None or ts.utcoffset() is None:
                raise ValueError(f"MessageContext.{name} must be timezone-aware")
            if ts.tzinfo is not UTC:
                object.__setattr__(self, name, ts.astimezone(UTC))


@dataclass(slots=True)
class NormalisedReading:
    """One accepted reading, in canonical UCUM units, ready for the warehouse.

    Guarantees: ``value`` is a finite float within the metric's possible range (and within
    its outlier bounds if ``"clipped"`` is flagged); ``measured_at`` and ``ingested_at``
    are aware UTC datetimes (``produced_at`` too, when the context had one); ``user_key`` is
    the HMAC pseudonym, never the raw user id, and ``device_id`` the device pseudonym
    (:func:`streams.domain.pseudonym.device_key`), never the raw device id.

    An interval reading has ``measured_until`` (aware UTC, never before ``measured_at``,
    which is then the start); an instant has ``None``. ``statistic`` is one of
    :data:`DESCRIPTIVE_STATISTICS` when the value summarises several measurements (a daily
    minimum, an average), ``None`` for a raw sample.
    ``(kafka_topic, kafka_partition, kafka_offset, event_id)`` locates the source record.
    """

    event_id: str
    user_key: str
    device_id: str | None
    source: str
    metric: str
    loinc_code: str
    value: float
    unit: str
    original_value: float
    original_unit: str
    measured_at: datetime
    ingested_at: datetime
    quality_flags: tuple[str, ...]
    metadata: dict[str, Any] | None
    kafka_topic: str
    kafka_partition: int
    kafka_offset: int
    transformation_version: str
    produced_at: datetime | None = None
    measured_until: datetime | None = None
    statistic: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected record for the dead-letter topic.

    ``payload`` is the original message bytes, or, for a bad member of a batch envelope,
    that member alone re-encoded as JSON. ``message`` never contains PHI. ``metric`` is the
    normalised metric name only when it is in the catalogue; ``source`` is the reading's
    source when it was a string, else ``None``.
    """

    payload: bytes
    code: RejectReason
    message: str
    metric: str | None
    source: str | None


@dataclass(slots=True)
class MessageOutcome:
    """Everything one Kafka message turned into: stored readings and dead letters.

    Readings and dead letters each keep the order of the input. Both lists may be empty
    (an envelope with no readings).
    """

    readings: list[NormalisedReading] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
