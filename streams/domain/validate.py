"""From one Kafka message value to stored readings and dead letters: the single domain entry point.

:func:`process_message` never raises for bad input; each problem becomes a
:class:`~streams.records.DeadLetter`. It is the hot path, so it works on plain dicts with
precomputed lookup tables and no per-reading model validation.

This module only dispatches a message to its input form: a single reading, a batch
envelope, the wide form (:mod:`streams.domain.wide`), an Open mHealth data point
(:mod:`streams.domain.omh`) or a FHIR resource (:mod:`streams.domain.fhir`). Each reading
of every form is then judged by :mod:`streams.domain.judge`, which lists the checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.domain.decode import decode, dumps_member, has_nonfinite
from streams.domain.fhir import is_resource, map_resource
from streams.domain.judge import (
    TRANSFORMATION_VERSION,
    Rules,
    judge_identity,
    known_metric,
    normalise,
    pseudonym,
    reject_str,
    reject_type,
    single,
    str_or_none,
    time_bounds,
    type_name,
    whole,
)
from streams.domain.mapped import Mapped
from streams.domain.omh import is_data_point, map_data_point
from streams.domain.text import check_text
from streams.domain.wide import process_wide
from streams.errors import Rejected, RejectReason
from streams.records import DeadLetter, MessageContext, MessageOutcome, NormalisedReading

__all__ = ["TRANSFORMATION_VERSION", "Rules", "normalise_reading", "process_message"]

_INVALID = RejectReason.INVALID_TYPE


def process_message(
    value: bytes | None, ctx: MessageContext, rules: Rules, key: bytes | None = None
) -> MessageOutcome:
    """Turn one Kafka message value into stored readings and dead letters; never raises for bad input.

    Steps: empty check (``None``/empty -> ``malformed_json``), size check on the raw bytes
    (``oversized``), decode, then a single reading or a batch envelope (see
    :mod:`streams.records`). A rejected single reading or envelope yields one dead letter
    carrying the original bytes; a rejected envelope member yields one dead letter
    carrying that member alone, and the other members are still judged. An Open mHealth
    data point or a FHIR resource is mapped to readings first (:mod:`streams.domain.omh`,
    :mod:`streams.domain.fhir`); ``key`` (the Kafka message key, UTF-8) is then the user
    when the resource names none.
    """
    if not value:
        return whole(b"", RejectReason.MALFORMED_JSON, "message value is empty", None, None)
    if not isinstance(value, bytes):
        value = value.encode() if isinstance(value, str) else bytes(value)
    if len(value) > rules.max_message_bytes:
        return whole(value, RejectReason.OVERSIZED, "message exceeds the maximum size in bytes", None, None)
    try:
        doc, nonfinite = decode(value)
    except Rejected as exc:
        return whole(value, exc.code, exc.message, None, None)
    if doc.__class__ is not dict:
        return whole(value, _INVALID, "message value must be a JSON object", None, None)
    limits = time_bounds(ctx.ingested_at, rules)
    if "readings" in doc or "batch_id" in doc:
        return _envelope(value, doc, nonfinite, ctx, rules, limits)
    if is_data_point(doc):
        return _standard(value, [map_data_point(doc, _key_text(key))], ctx, rules, limits)
    if is_resource(doc):
        return _standard(value, map_resource(doc, _key_text(key), rules.catalogue), ctx, rules, limits)
    if "metric" not in doc and not rules.catalogue.keys().isdisjoint(doc):
        return process_wide(value, doc, nonfinite, ctx, rules, limits)
    try:
        if nonfinite and has_nonfinite(doc):
            raise Rejected(_INVALID, "the reading holds a NaN or infinite number")
        reading = single(doc, ctx, rules, limits)
    except Rejected as exc:
        metric = known_metric(doc.get("metric"), rules.catalogue)
        return whole(value, exc.code, exc.message, metric, str_or_none(doc.get("source")))
    return MessageOutcome([reading], [])


def normalise_reading(fields: Mapping[str, Any], ctx: MessageContext, rules: Rules) -> NormalisedReading:
    """Validate and normalise one *single-reading* mapping (all fields, user_id included).

    Same checks and result as :func:`process_message` for a single reading, except size
    and decoding; non-finite floats anywhere in ``fields`` are rejected ``invalid_type``.
    Raises ``Rejected`` on the first failing check.
    """
    if has_nonfinite(list(fields.values())):
        raise Rejected(_INVALID, "the reading holds a NaN or infinite number")
    return single(fields, ctx, rules, time_bounds(ctx.ingested_at, rules))


# --- the forms ---------------------------------------------------------------------------


def _envelope(
    value: bytes,
    doc: dict[str, Any],
    nonfinite: bool,
    ctx: MessageContext,
    rules: Rules,
    limits: tuple[datetime, datetime],
) -> MessageOutcome:
    source = doc.get("source")
    try:
        batch_id = doc.get("batch_id")
        if batch_id.__class__ is not str or not batch_id:
            reject_str("batch_id", batch_id)
        check_text("batch_id", batch_id)
        user_id, device_id, source = judge_identity(doc)
        readings = doc.get("readings")
        if readings.__class__ is not list:
            reject_type("readings", "a list of objects", readings)
        if len(readings) > rules.max_batch_readings:
            raise Rejected(RejectReason.OVERSIZED, "envelope has more readings than allowed")
        if nonfinite and has_nonfinite([v for k, v in doc.items() if k != "readings"]):
            raise Rejected(_INVALID, "the envelope holds a NaN or infinite number")
        ukey = pseudonym(rules, user_id)
    except Rejected as exc:
        return whole(value, exc.code, exc.message, None, str_or_none(source))

    outcome = MessageOutcome()
    stored = outcome.readings
    dead = outcome.dead_letters
    for member in readings:
        try:
            if member.__class__ is not dict:
                raise Rejected(
                    _INVALID, f"each entry of 'readings' must be an object, got {type_name(member)}"
                )
            if nonfinite and has_nonfinite(member):
                raise Rejected(_INVALID, "the reading holds a NaN or infinite number")
            stored.append(normalise(member, ukey, device_id, source, ctx, rules, limits))
        except Rejected as exc:
            metric = (
                known_metric(member.get("metric"), rules.catalogue) if member.__class__ is dict else None
            )
            dead.append(DeadLetter(dumps_member(member, nonfinite), exc.code, exc.message, metric, source))
    return outcome


def _standard(
    value: bytes, units: list[Mapped], ctx: MessageContext, rules: Rules, limits: tuple[datetime, datetime]
) -> MessageOutcome:
    """Judge mapped standard-form units; each member goes through :func:`_normalise`."""
    outcome = MessageOutcome()
    for unit in units:
        payload = value if unit.payload is None else unit.payload
        try:
            if unit.error is not None:
                raise unit.error
            user_id, device_id, source = judge_identity(
                {"user_id": unit.user_id, "device_id": unit.device_id, "source": unit.source})
            ukey = pseudonym(rules, user_id)
        except Rejected as exc:
            outcome.dead_letters.append(DeadLetter(payload, exc.code, exc.message, None, unit.source))
            continue
        for member in unit.members:
            try:
                reading = normalise(member, ukey, device_id, source, ctx, rules, limits)
                outcome.readings.append(reading)
            except Rejected as exc:
                metric = known_metric(member.get("metric"), rules.catalogue)
                outcome.dead_letters.append(DeadLetter(payload, exc.code, exc.message, metric, source))
    return outcome


def _key_text(key: bytes | None) -> str | None:
    try:
        return key.decode() if key else None
    except UnicodeDecodeError:
        return None


