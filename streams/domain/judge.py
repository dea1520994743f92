"""The per-reading judge: one reading whose identity is known -> a normalised reading, or ``Rejected``.

Every input form (single reading, envelope, wide, Open mHealth, FHIR) ends here, through
:func:`judge_identity` and :func:`normalise`; :mod:`streams.domain.validate` dispatches a
message to its form. Checks for one reading run in this order; the first failure wins:

1. shape: ``event_id`` (optional), ``metric``, ``value``, ``unit``, ``timestamp`` (present,
   typed, timestamp parseable and carrying an offset unless ``Rules.naive_timestamps`` is
   ``"utc"``), ``metadata``; for a single reading ``user_id``, ``device_id`` and ``source``
   come first;
2. ``unknown_metric`` (then a missing ``event_id`` is derived:
   :func:`~streams.domain.event_ids.derive_event_id`), 3. ``unknown_unit``,
4. ``out_of_range`` (canonical value), 5. ``future_timestamp``, 6. outlier policy
(``outlier_dropped``), then the ``late`` flag.
For an interval (``timestamp_end``) the future and late checks judge its end.
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

from streams.domain.catalogue import DEFAULT_CATALOGUE, MetricRule, resolve_unit
from streams.domain.event_ids import derive_event_id
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


def whole(
    payload: bytes, code: RejectReason, message: str, metric: str | None, source: str | None
) -> MessageOutcome:
    return MessageOutcome([], [DeadLetter(payload, code, message, metric, source)])


def time_bounds(now: datetime, rules: Rules) -> tuple[datetime, datetime]:
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


def single(
    doc: Mapping[str, Any], ctx: MessageContext, rules: Rules, bounds: tuple[datetime, datetime]
) -> NormalisedReading:
    """Judge a single reading: its identity, then the reading itself."""
    user_id, device_id, source = judge_identity(doc)
    return normalise(doc, pseudonym(rules, user_id), device_id, source, ctx, rules, bounds)


def judge_identity(doc: Mapping[str, Any]) -> tuple[str, str | None, str]:
    """``(user_id, device_id, source)`` of ``doc``, checked for type, length and control
    characters; an integer ``user_id`` is its decimal string; raises ``Rejected``. Every
    input form calls this before :func:`normalise`."""
    user_id = doc.get("user_id")
    if user_id.__class__ is int:  # in every form: 1 is the user "1" (a bool is not an int here)
        user_id = str(user_id)
    if user_id.__class__ is not str or not user_id:
        reject_str("user_id", user_id)
    device_id = doc.get("device_id")
    if device_id is not None:
        if device_id.__class__ is not str:
            reject_type("device_id", "a string or null", device_id)
        check_text("device_id", device_id)
    source = doc.get("source")
    if source.__class__ is not str or not source:
        reject_str("source", source)
    if len(user_id) > _MAX_USER_ID or not user_id.isprintable():
        check_text("user_id", user_id)
    if len(source) > _MAX_SOURCE or not source.isprintable():
        check_text("source", source)
    return user_id, device_id, source


def normalise(
    f: Mapping[str, Any],
    ukey: str,
    device_id: str | None,
    source: str,
    ctx: MessageContext,
    rules: Rules,
    bounds: tuple[datetime, datetime],
) -> NormalisedReading:
    """Validate, convert, judge and pseudonymise one reading whose identity is already known."""
    event_id = f.get("event_id")  # optional: derived below when absent
    if event_id is not None:
        if event_id.__class__ is not str or not event_id:
            reject_type("event_id", "a non-empty string or absent", event_id)
        if len(event_id) > _MAX_EVENT_ID or not event_id.isprintable():
            check_text("event_id", event_id)
    raw_metric = f.get("metric")
    if raw_metric.__class__ is not str or not raw_metric:
        reject_str("metric", raw_metric)
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
        reject_type("value", "a number", raw_value)
    unit = f.get("unit")
    if unit.__class__ is not str or not unit:
        reject_str("unit", unit)
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
        reject_type("statistic", "a descriptive statistic (see the contract)", statistic)
    metadata = f.get("metadata")
    if metadata is not None and metadata.__class__ is not dict:
        reject_type("metadata", "an object or null", metadata)
    if metadata:
        check_metadata_json(orjson.dumps(metadata))
    if measured_at < OLDEST_MEASURED_AT:
        raise Rejected(RejectReason.TIMESTAMP_OUT_OF_RANGE,
                       "field 'timestamp' is before 1970-01-01T00:00:00Z")

    catalogue = rules.catalogue
    rule = catalogue.get(raw_metric) or catalogue.get(raw_metric.strip().lower())
    if rule is None:
        raise Rejected(RejectReason.UNKNOWN_METRIC, f"metric {shown(raw_metric)} is not in the catalogue")
    if event_id is None:
        event_id = derive_event_id(ukey, device_id, source, rule.name, measured_at,
                                   measured_until=measured_until, statistic=statistic)
    conv = resolve_unit(rule, unit)
    canonical = (value + conv.offset) * conv.factor / conv.divisor
    if not rule.is_possible(canonical):
        raise Rejected(RejectReason.OUT_OF_RANGE, f"{rule.name} value is outside the possible range")
    latest = measured_at if measured_until is None else measured_until
    if latest > bounds[0]:
        raise Rejected(
            RejectReason.FUTURE_TIMESTAMP, "field 'timestamp' is in the future beyond the allowed skew"
        )
    stored, flags = apply_outlier_policy(rule, canonical, rules.outlier_strategies.get(rule.name, _FLAG))
    if latest < bounds[1]:
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
        raise Rejected(RejectReason.REVERSED_INTERVAL, "field 'timestamp_end' is before 'timestamp'")
    return end


def pseudonym(rules: Rules, user_id: str) -> str:
    try:
        return rules.pseudonymise(user_id)
    except UnicodeEncodeError:
        raise Rejected(_INVALID, "field 'user_id' is not valid Unicode") from None


def reject_str(name: str, got: object) -> NoReturn:
    if got is None:
        raise Rejected(_MISSING, f"required field {name!r} is missing")
    reject_type(name, "a non-empty string", got)


def reject_type(name: str, expected: str, got: object) -> NoReturn:
    if got is None and name in ("value", "readings"):
        raise Rejected(_MISSING, f"required field {name!r} is missing")
    raise Rejected(_INVALID, f"field {name!r} must be {expected}, got {type_name(got)}")


def type_name(got: object) -> str:
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


def shown(text: str, limit: int = 40) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


def known_metric(raw: object, catalogue: Mapping[str, MetricRule]) -> str | None:
    if raw.__class__ is not str:
        return None
    name = raw.strip().lower()  # type: ignore[attr-defined]
    return name if name in catalogue else None


def str_or_none(raw: object) -> str | None:
    return raw if raw.__class__ is str else None  # type: ignore[return-value]
