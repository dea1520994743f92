"""The wide message form: several metrics of one instant in one flat object. Pure: no I/O.

::

    {"user_id": str | int, "heart_rate": 75, "steps": 1200, "timestamp": str | int,
     "source": str, "device_id": str | null (optional), "event_id": str (optional),
     "units": {"heart_rate": "bpm"} (optional), "metadata": object | null (optional),
     "timestamp_end": str | int (optional), "statistic": str (optional)}

A message is wide when it has no ``metric`` key and at least one key is a catalogue
metric name (and it is not an envelope). Contract:

- Every key other than :data:`RESERVED_KEYS` names a metric and becomes one reading, in
  document order. Its unit is ``units[key]`` when ``units`` has the key, else the
  metric's canonical unit (the catalogue's first column: ``/min`` for heart_rate,
  ``{steps}`` for steps...).
- A key that is not a catalogue metric (after stripping and lower-casing) is
  dead-lettered on its own as ``unknown_metric``: it is never silently dropped, and never
  kept in metadata. Put context in ``metadata``, which every reading of the message gets.
- Each reading is then judged exactly like a single reading (same checks, same order,
  same reasons) from ``user_id``, ``device_id``, ``source``, ``timestamp`` (and
  ``timestamp_end``, ``statistic``: an interval), ``metadata`` and its own metric, value
  and unit; one bad reading never sinks the others. Its dead
  letter's payload is that reading alone, as a single-reading JSON object.
- ``user_id`` may be an integer (not a boolean), taken as its decimal string: ``1`` and
  ``"1"`` are the same user.
- ``event_id``: when given, the reading of metric ``m`` gets ``"<event_id>:<m>"``; when
  absent it is derived (:func:`streams.domain.event_ids.derive_event_id`).
- The message fails whole when ``units`` is not an object (``invalid_type``) or when it
  holds more metric keys than ``max_batch_readings`` (``oversized``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from streams.domain.decode import dumps_member, has_nonfinite
from streams.domain.judge import Rules, shown, single, str_or_none, type_name, whole
from streams.errors import Rejected, RejectReason
from streams.records import DeadLetter, MessageContext, MessageOutcome

#: Keys of a wide message that are not metrics.
RESERVED_KEYS: Final = frozenset({"user_id", "device_id", "source", "timestamp", "timestamp_end",
                                  "statistic", "units", "event_id", "metadata"})


def wide_user_id(raw: object) -> object:
    """A numeric ``user_id`` as its decimal string; anything else unchanged (judged later)."""
    return str(raw) if raw.__class__ is int else raw


def expand_wide(doc: Mapping[str, Any], rules: Rules) -> list[tuple[dict[str, Any], str | None]]:
    """The single-reading dicts of a wide message, each with its catalogue metric (None: unknown).

    Raises ``Rejected`` when the message fails whole (see the module contract).
    """
    units = doc.get("units")
    if units is None:
        units = {}
    elif units.__class__ is not dict:
        raise Rejected(RejectReason.INVALID_TYPE, f"field 'units' must be an object, got {type_name(units)}")
    keys = [k for k in doc if k not in RESERVED_KEYS]
    if len(keys) > rules.max_batch_readings:
        raise Rejected(RejectReason.OVERSIZED, "wide message has more metrics than allowed")
    shared = {"user_id": wide_user_id(doc.get("user_id")), "device_id": doc.get("device_id"),
              "source": doc.get("source"), "timestamp": doc.get("timestamp"), "metadata": doc.get("metadata")}
    shared.update({k: doc[k] for k in ("timestamp_end", "statistic") if k in doc})
    event_id = doc.get("event_id")
    catalogue = rules.catalogue
    out: list[tuple[dict[str, Any], str | None]] = []
    for key in keys:
        rule = catalogue.get(key) or catalogue.get(key.strip().lower())
        member = {**shared, "metric": key, "value": doc[key]}
        if rule is not None:
            member["unit"] = units[key] if key in units else rule.canonical_unit
            if event_id is not None:
                member["event_id"] = f"{event_id}:{rule.name}" if event_id.__class__ is str else event_id
        out.append((member, rule.name if rule else None))
    return out


def process_wide(
    value: bytes, doc: dict[str, Any], nonfinite: bool, ctx: MessageContext, rules: Rules,
    limits: tuple[datetime, datetime],
) -> MessageOutcome:
    """The outcome of one wide message (called by :func:`streams.domain.validate.process_message`)."""
    source = str_or_none(doc.get("source"))
    try:
        members = expand_wide(doc, rules)
    except Rejected as exc:
        return whole(value, exc.code, exc.message, None, source)
    outcome = MessageOutcome()
    for member, metric in members:
        try:
            if metric is None:
                raise Rejected(RejectReason.UNKNOWN_METRIC,
                               f"metric {shown(member['metric'])} is not in the catalogue")
            if nonfinite and has_nonfinite(member):
                raise Rejected(RejectReason.INVALID_TYPE, "the reading holds a NaN or infinite number")
            outcome.readings.append(single(member, ctx, rules, limits))
        except Rejected as exc:
            outcome.dead_letters.append(
                DeadLetter(dumps_member(member, nonfinite), exc.code, exc.message, metric, source))
    return outcome
