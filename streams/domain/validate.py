"""From one Kafka message value to stored readings and dead letters: the single domain entry point.

:func:`process_message` never raises for bad input; each problem becomes a
:class:`~streams.records.DeadLetter`. It is the hot path, so it works on plain dicts with
precomputed lookup tables and no per-reading model validation.

Checks for one reading run in this order; the first failure wins:

1. shape: ``event_id`` (optional), ``metric``, ``value``, ``unit``, ``timestamp`` (present,
   typed, timestamp parseable and carrying an offset unless ``Rules.naive_timestamps`` is
   ``"utc"``), ``metadata``; for a single reading ``user_id``, ``device_id`` and ``source``
   come first;
2. ``unknown_metric`` (then a missing ``event_id`` is derived:
   :func:`~streams.domain.event_ids.derive_event_id`), 3. ``unknown_unit``,
4. ``out_of_range`` (canonical value), 5. ``future_timestamp``, 6. outlier policy
(``outlier_dropped``), then the ``late`` flag.
For an interval (``timestamp_end``) the future and late checks judge its end.

The wide form (no ``metric`` key, at least one catalogue metric as a key) is expanded by
:mod:`streams.domain.wide` into single readings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, NoReturn

import orjson

from streams.domain import fhir, omh
from streams.domain.catalogue import DEFAULT_CATALOGUE, MetricRule, resolve_unit
from streams.domain.decode import decode, dumps_member, has_nonfinite
from streams.domain.event_ids import derive_event_id
from streams.domain.mapped import Mapped
from streams.domain.outliers import OutlierStrategy, apply_outlier_policy
from streams.domain.pseudonym import Pseudonymiser, device_pseudonym_key
from streams.domain.text import MAX_LENGTHS, check_metadata_json, check_text
from streams.domain.timestamps import parse_timestamp
from streams.errors import ConfigurationError, Rejected, RejectReason
from streams.records import (
    DESCRIPTIVE_STATISTICS,
    FLAG_LATE,
    DeadLetter,
    MessageContext,
    MessageOutcome,
    NormalisedReading,
)

#: Version of these transformation rules, stored with every reading.
TRANSFORMATION_VERSION: Final = "1.0.0"

_FLAG = OutlierStrategy.FLAG
_MISSING = RejectReason.MISSING_FIELD
_INVALID = RejectReason.INVALID_TYPE
_MAX_DATETIME = datetime.max.replace(tzinfo=UTC)
_MIN_DATETIME = datetime.min.replace(tzinfo=UTC)
# The hot path tests the common case inline (short and printable); only then does
# check_text decide precisely (it accepts some non-printable text, e.g. a no-break space).
_MAX_EVENT_ID, _MAX_USER_ID = MAX_LENGTHS["event_id"], MAX_LENGTHS["user_id"]
_MAX_SOURCE, _MAX_NAME = MAX_LENGTHS["source"], min(MAX_LENGTHS["metric"], MAX_LENGTHS["unit"])
#: Readings measured before this are refused: no wearable or EHR reading is that old, and a
#: year-1 timestamp is a producer bug, not a late reading.
OLDEST_MEASURED_AT: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: What a timestamp without an offset gets (``Rules.naive_timestamps``).
NAIVE_TIMESTAMP_POLICIES: Final = ("reject", "utc")


@dataclass(frozen=True, slots=True)
class Rules:
    """Every knob of the domain layer, as plain values (never the ``Settings`` object).

    ``outlier_strategies`` maps metric name -> strategy (strings are accepted and
    converted); metrics not listed use ``flag``. The constructor validates everything and
    raises ``ConfigurationError`` on a bad value. ``pseudonym_key`` is kept out of ``repr``.
    ``pseudonymise`` is derived: a callable equal to ``user_key(pseudonym_key, user_id)``;
    ``pseudonymise_device`` likewise equals ``device_key(pseudonym_key, device_id)``.
    """

    catalogue: Mapping[str, MetricRule]
    pseudonym_key: bytes = field(repr=False)
    future_skew: timedelta
    late_after: timedelta
    outlier_strategies: Mapping[str, OutlierStrategy]
    max_message_bytes: int
    max_batch_readings: int
    transformation_version: str
    #: ``"reject"`` (dead-letter ``naive_timestamp``) or ``"utc"`` (read as UTC).
    naive_timestamps: str = "reject"
    pseudonymise: Pseudonymiser = field(init=False, repr=False, compare=False)
    pseudonymise_device: Pseudonymiser = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        catalogue = dict(self.catalogue)
        for name, rule in catalogue.items():
            if not isinstance(rule, MetricRule) or rule.name != name:
                raise ConfigurationError(f"catalogue entry {name!r} must be a MetricRule named {name!r}")
        if not isinstance(self.pseudonym_key, bytes) or not self.pseudonym_key:
            raise ConfigurationError("pseudonym_key must be non-empty bytes")
        if not isinstance(self.future_skew, timedelta) or self.future_skew < timedelta(0):
            raise ConfigurationError("future_skew must be a non-negative timedelta")
        if not isinstance(self.late_after, timedelta) or self.late_after <= timedelta(0):
            raise ConfigurationError("late_after must be a positive timedelta")
        for name in ("max_message_bytes", "max_batch_readings"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigurationError(f"{name} must be a positive integer")
        if not isinstance(self.transformation_version, str) or not self.transformation_version:
            raise ConfigurationError("transformation_version must be a non-empty string")
        if self.naive_timestamps not in NAIVE_TIMESTAMP_POLICIES:
            raise ConfigurationError(f"naive_timestamps must be one of {list(NAIVE_TIMESTAMP_POLICIES)}")
        strategies: dict[str, OutlierStrategy] = {}
        for raw_name, raw_strategy in self.outlier_strategies.items():
            name = str(raw_name).strip().lower()
            if name not in catalogue:
                raise ConfigurationError(f"outlier strategy given for unknown metric {name!r}")
            try:
                strategies[name] = OutlierStrategy(str(raw_strategy).strip().lower())
            except ValueError:
                raise ConfigurationError(
                    f"outlier strategy for {name!r} must be one of {[s.value for s in OutlierStrategy]}"
                ) from None
        object.__setattr__(self, "catalogue", MappingProxyType(catalogue))
        object.__setattr__(self, "outlier_strategies", MappingProxyType(strategies))
        object.__setattr__(self, "pseudonymise", Pseudonymiser(self.pseudonym_key))
        device_pseudonymiser = Pseudonymiser(device_pseudonym_key(self.pseudonym_key))
        object.__setattr__(self, "pseudonymise_device", device_pseudonymiser)

    @classmethod
    def default(cls, pseudonym_key: bytes, **overrides: Any) -> Rules:
        """Rules with the documented defaults, any field replaced by a keyword of the same name.

        Defaults: the default catalogue, 300 s future skew, 24 h late threshold, ``flag``
        for every metric, 1 MiB messages, 100 000 readings per envelope, version
        :data:`TRANSFORMATION_VERSION`. An unknown keyword raises ``TypeError``.
        """
        known = {f.name for f in dataclass_fields(cls) if f.init}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown Rules fields: {sorted(unknown)}")
        base = cls(
            catalogue=DEFAULT_CATALOGUE,
            pseudonym_key=pseudonym_key,
            future_skew=timedelta(seconds=300),
            late_after=timedelta(hours=24),
            outlier_strategies={},
            max_message_bytes=1_048_576,
            max_batch_readings=100_000,
            transformation_version=TRANSFORMATION_VERSION,
        )
        return replace(base, **overrides) if overrides else base


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
        return _whole(b"", RejectReason.MALFORMED_JSON, "message value is empty", None, None)
    if not isinstance(value, bytes):
        value = value.encode() if isinstance(value, str) else bytes(value)
    if len(value) > rules.max_message_bytes:
        return _whole(value, RejectReason.OVERSIZED, "message exceeds the maximum size in bytes", None, None)
    try:
        doc, nonfinite = decode(value)
    except Rejected as exc:
        return _whole(value, exc.code, exc.message, None, None)
    if doc.__class__ is not dict:
        return _whole(value, _INVALID, "message value must be a JSON object", None, None)
    limits = _limits(ctx.ingested_at, rules)
    if "readings" in doc or "batch_id" in doc:
        return _envelope(value, doc, nonfinite, ctx, rules, limits)
    if omh.is_data_point(doc):
        return _standard(value, [omh.map_data_point(doc, _key_text(key))], ctx, rules, limits)
    if fhir.is_resource(doc):
        return _standard(value, fhir.map_resource(doc, _key_text(key), rules.catalogue), ctx, rules, limits)
    if "metric" not in doc and not rules.catalogue.keys().isdisjoint(doc):
        from streams.domain.wide import process_wide  # wide.py builds on this module

        return process_wide(value, doc, nonfinite, ctx, rules, limits)
    try:
        if nonfinite and has_nonfinite(doc):
            raise Rejected(_INVALID, "the reading holds a NaN or infinite number")
        reading = _single(doc, ctx, rules, limits)
    except Rejected as exc:
        metric = _known_metric(doc.get("metric"), rules.catalogue)
        return _whole(value, exc.code, exc.message, metric, _str_or_none(doc.get("source")))
    return MessageOutcome([reading], [])


def normalise_reading(fields: Mapping[str, Any], ctx: MessageContext, rules: Rules) -> NormalisedReading:
    """Validate and normalise one *single-reading* mapping (all fields, user_id included).

    Same checks and result as :func:`process_message` for a single reading, except size
    and decoding; non-finite floats anywhere in ``fields`` are rejected ``invalid_type``.
    Raises ``Rejected`` on the first failing check.
    """
    if has_nonfinite(list(fields.values())):
        raise Rejected(_INVALID, "the reading holds a NaN or infinite number")
    return _single(fields, ctx, rules, _limits(ctx.ingested_at, rules))


# --- internals --------------------------------------------------------------------------


def _whole(
    payload: bytes, code: RejectReason, message: str, metric: str | None, source: str | None
) -> MessageOutcome:
    return MessageOutcome([], [DeadLetter(payload, code, message, metric, source)])


def _limits(now: datetime, rules: Rules) -> tuple[datetime, datetime]:
    """``(latest accepted measured_at, earliest measured_at that is not late)`` for ``now``.

    Every message of a fetch shares one ``now``: the last answer is kept (a pure memo)."""
    last = _last_limits
    if last[0] is now and last[1] is rules:
        return last[2]
    try:
        future_limit = now + rules.future_skew
    except OverflowError:
        future_limit = _MAX_DATETIME
    try:
        late_limit = now - rules.late_after
    except OverflowError:
        late_limit = _MIN_DATETIME
    limits = future_limit, late_limit
    _last_limits[:] = (now, rules, limits)
    return limits


_last_limits: list[Any] = [None, None, None]


def _single(
    doc: Mapping[str, Any], ctx: MessageContext, rules: Rules, limits: tuple[datetime, datetime]
) -> NormalisedReading:
    user_id, device_id, source = judge_identity(doc)
    return _normalise(doc, _pseudonym(rules, user_id), device_id, source, ctx, rules, limits)


def judge_identity(doc: Mapping[str, Any]) -> tuple[str, str | None, str]:
    """``(user_id, device_id, source)`` of ``doc``, checked for type, length and control
    characters; an integer ``user_id`` is its decimal string; raises ``Rejected``. Every
    input form calls this before :func:`_normalise`."""
    user_id = doc.get("user_id")
    if user_id.__class__ is int:  # in every form: 1 is the user "1" (a bool is not an int here)
        user_id = str(user_id)
    if user_id.__class__ is not str or not user_id:
        _reject_str("user_id", user_id)
    device_id = doc.get("device_id")
    if device_id is not None:
        if device_id.__class__ is not str:
            _reject_type("device_id", "a string or null", device_id)
        check_text("device_id", device_id)
    source = doc.get("source")
    if source.__class__ is not str or not source:
        _reject_str("source", source)
    if len(user_id) > _MAX_USER_ID or not user_id.isprintable():
        check_text("user_id", user_id)
    if len(source) > _MAX_SOURCE or not source.isprintable():
        check_text("source", source)
    return user_id, device_id, source


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
            _reject_str("batch_id", batch_id)
        check_text("batch_id", batch_id)
        user_id, device_id, source = judge_identity(doc)
        readings = doc.get("readings")
        if readings.__class__ is not list:
            _reject_type("readings", "a list of objects", readings)
        if len(readings) > rules.max_batch_readings:
            raise Rejected(RejectReason.OVERSIZED, "envelope has more readings than allowed")
        if nonfinite and has_nonfinite([v for k, v in doc.items() if k != "readings"]):
            raise Rejected(_INVALID, "the envelope holds a NaN or infinite number")
        ukey = _pseudonym(rules, user_id)
    except Rejected as exc:
        return _whole(value, exc.code, exc.message, None, _str_or_none(source))

    outcome = MessageOutcome()
    stored = outcome.readings
    dead = outcome.dead_letters
    for member in readings:
        try:
            if member.__class__ is not dict:
                raise Rejected(
                    _INVALID, f"each entry of 'readings' must be an object, got {_type_name(member)}"
                )
            if nonfinite and has_nonfinite(member):
                raise Rejected(_INVALID, "the reading holds a NaN or infinite number")
            stored.append(_normalise(member, ukey, device_id, source, ctx, rules, limits))
        except Rejected as exc:
            metric = (
                _known_metric(member.get("metric"), rules.catalogue) if member.__class__ is dict else None
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
            ukey = _pseudonym(rules, user_id)
        except Rejected as exc:
            outcome.dead_letters.append(DeadLetter(payload, exc.code, exc.message, None, unit.source))
            continue
        for member in unit.members:
            try:
                reading = _normalise(member, ukey, device_id, source, ctx, rules, limits)
                outcome.readings.append(reading)
            except Rejected as exc:
                metric = _known_metric(member.get("metric"), rules.catalogue)
                outcome.dead_letters.append(DeadLetter(payload, exc.code, exc.message, metric, source))
    return outcome


def _key_text(key: bytes | None) -> str | None:
    try:
        return key.decode() if key else None
    except UnicodeDecodeError:
        return None


def _normalise(
    f: Mapping[str, Any],
    ukey: str,
    device_id: str | None,
    source: str,
    ctx: MessageContext,
    rules: Rules,
    limits: tuple[datetime, datetime],
) -> NormalisedReading:
    """Validate, convert, judge and pseudonymise one reading whose identity is already known."""
    event_id = f.get("event_id")  # optional: derived below when absent
    if event_id is not None:
        if event_id.__class__ is not str or not event_id:
            _reject_type("event_id", "a non-empty string or absent", event_id)
        if len(event_id) > _MAX_EVENT_ID or not event_id.isprintable():
            check_text("event_id", event_id)
    raw_metric = f.get("metric")
    if raw_metric.__class__ is not str or not raw_metric:
        _reject_str("metric", raw_metric)
    if len(raw_metric) > _MAX_NAME or not raw_metric.isprintable():
        check_text("metric", raw_metric)
    raw_value: Any = f.get("value")
    cls = raw_value.__class__
    if cls is float or (cls is not bool and isinstance(raw_value, float)):
        if not math.isfinite(raw_value):
            raise Rejected(_INVALID, "field 'value' is NaN or infinite")
        value = float(raw_value)
    elif cls is int or (cls is not bool and isinstance(raw_value, int)):
        try:
            value = float(raw_value)
        except OverflowError:
            raise Rejected(RejectReason.OUT_OF_RANGE, "field 'value' is too large") from None
    else:
        _reject_type("value", "a number", raw_value)
    unit = f.get("unit")
    if unit.__class__ is not str or not unit:
        _reject_str("unit", unit)
    if len(unit) > _MAX_NAME or not unit.isprintable():
        check_text("unit", unit)
    raw_ts = f.get("timestamp")
    if raw_ts is None:
        raise Rejected(_MISSING, "required field 'timestamp' is missing")
    naive_utc = rules.naive_timestamps == "utc"
    measured_at = parse_timestamp(raw_ts, naive_is_utc=naive_utc)
    raw_end = f.get("timestamp_end")
    measured_until = None if raw_end is None else _interval_end(measured_at, raw_end, naive_utc)
    statistic = f.get("statistic")
    if statistic is not None and statistic not in DESCRIPTIVE_STATISTICS:
        _reject_type("statistic", "a descriptive statistic (see the contract)", statistic)
    metadata = f.get("metadata")
    if metadata is not None and metadata.__class__ is not dict:
        _reject_type("metadata", "an object or null", metadata)
    if metadata:
        check_metadata_json(orjson.dumps(metadata))
    if measured_at < OLDEST_MEASURED_AT:
        raise Rejected(RejectReason.TIMESTAMP_OUT_OF_RANGE,
                       "field 'timestamp' is before 1970-01-01T00:00:00Z")

    catalogue = rules.catalogue
    rule = catalogue.get(raw_metric) or catalogue.get(raw_metric.strip().lower())
    if rule is None:
        raise Rejected(RejectReason.UNKNOWN_METRIC, f"metric {_shown(raw_metric)} is not in the catalogue")
    if event_id is None:
        event_id = derive_event_id(ukey, device_id, source, rule.name, measured_at,
                                   measured_until=measured_until, statistic=statistic)
    conv = resolve_unit(rule, unit)
    canonical = (value + conv.offset) * conv.factor / conv.divisor
    if not rule.is_possible(canonical):
        raise Rejected(RejectReason.OUT_OF_RANGE, f"{rule.name} value is outside the possible range")
    latest = measured_at if measured_until is None else measured_until
    if latest > limits[0]:
        raise Rejected(
            RejectReason.FUTURE_TIMESTAMP, "field 'timestamp' is in the future beyond the allowed skew"
        )
    stored, flags = apply_outlier_policy(rule, canonical, rules.outlier_strategies.get(rule.name, _FLAG))
    if latest < limits[1]:
        flags = (*flags, FLAG_LATE)
    # Positional, in field order: binding 21 keywords cost ~1 us a reading (a quarter of
    # this function); tests/unit/test_process_message.py checks every field by name.
    return NormalisedReading(
        event_id, ukey, rules.pseudonymise_device(device_id) if device_id else device_id, source,
        rule.name, rule.loinc_code, stored, rule.canonical_unit, value, unit,
        measured_at, ctx.ingested_at, flags, metadata,
        ctx.topic, ctx.partition, ctx.offset, rules.transformation_version,
        ctx.produced_at, measured_until, statistic,
    )


def _interval_end(measured_at: datetime, raw_end: object, naive_utc: bool) -> datetime:
    end = parse_timestamp(raw_end, "timestamp_end", naive_is_utc=naive_utc)
    if end < measured_at:
        raise Rejected(RejectReason.OUT_OF_RANGE, "field 'timestamp_end' is before 'timestamp'")
    return end


def _pseudonym(rules: Rules, user_id: str) -> str:
    try:
        return rules.pseudonymise(user_id)
    except UnicodeEncodeError:
        raise Rejected(_INVALID, "field 'user_id' is not valid Unicode") from None


def _reject_str(name: str, got: object) -> NoReturn:
    if got is None:
        raise Rejected(_MISSING, f"required field {name!r} is missing")
    _reject_type(name, "a non-empty string", got)


def _reject_type(name: str, expected: str, got: object) -> NoReturn:
    if got is None and name in ("value", "readings"):
        raise Rejected(_MISSING, f"required field {name!r} is missing")
    raise Rejected(_INVALID, f"field {name!r} must be {expected}, got {_type_name(got)}")


def _type_name(got: object) -> str:
    """A PHI-free description of a JSON value's type."""
    if got is None:
        return "null"
    if got.__class__ is str and not got:
        return "an empty string"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(got.__class__, type(got).__name__)


def _shown(text: str, limit: int = 40) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _known_metric(raw: object, catalogue: Mapping[str, MetricRule]) -> str | None:
    if raw.__class__ is not str:
        return None
    name = raw.strip().lower()  # type: ignore[attr-defined]
    return name if name in catalogue else None


def _str_or_none(raw: object) -> str | None:
    return raw if raw.__class__ is str else None  # type: ignore[return-value]
