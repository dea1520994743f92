"""Building blocks of the quality rules (:mod:`streams.domain.quality`): the dimensions,
their pass/judged counts, field access that works on warehouse rows and on
``NormalisedReading`` alike, label normalisation, and the consistency check across a
sample. Pure: no I/O.
"""

from __future__ import annotations

import math
import operator
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

DIMENSIONS: Final = ("completeness", "validity", "accuracy", "consistency", "timeliness")
UNKNOWN: Final = "unknown"
OTHER: Final = "other"
#: Reject reason -> the one dimension a rejected record fails; other reasons fail validity.
REJECT_DIMENSION: Final = MappingProxyType({"missing_field": "completeness",
                                            "outlier_dropped": "accuracy"})
#: Fields every stored reading must have (completeness); expected ones are configured.
REQUIRED_FIELDS: Final = ("event_id", "user_key", "source", "metric", "value", "unit",
                          "measured_at", "ingested_at")


@dataclass(frozen=True, slots=True)
class DimensionCounts:
    """Pass and judged counts per dimension (in :data:`DIMENSIONS` order) and records seen.

    Counts add up (``a + b``), so per-batch counts can be summed into a window.
    ``to_dict``/``from_dict`` give a JSON-safe form.
    """

    passed: tuple[int, ...] = (0,) * len(DIMENSIONS)
    judged: tuple[int, ...] = (0,) * len(DIMENSIONS)
    records: int = 0

    def __add__(self, other: DimensionCounts) -> DimensionCounts:
        return DimensionCounts(tuple(a + b for a, b in zip(self.passed, other.passed, strict=True)),
                               tuple(a + b for a, b in zip(self.judged, other.judged, strict=True)),
                               self.records + other.records)

    def scores(self) -> dict[str, float]:
        """Score per dimension; 1.0 for a dimension that judged nothing."""
        pairs = zip(DIMENSIONS, self.passed, self.judged, strict=True)
        return {d: (p / j if j else 1.0) for d, p, j in pairs}

    def overall(self, weights: Mapping[str, float]) -> float:
        """Weighted mean over the dimensions that judged something; 0.0 if none did."""
        scores = self.scores()
        used = [(weights.get(d, 0.0), scores[d]) for d, j in zip(DIMENSIONS, self.judged, strict=True) if j]
        total = sum(w for w, _ in used)
        return sum(w * s for w, s in used) / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"passed": list(self.passed), "judged": list(self.judged), "records": self.records}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DimensionCounts:
        return cls(tuple(int(x) for x in doc["passed"]), tuple(int(x) for x in doc["judged"]),
                   int(doc["records"]))


_MAPPING_LIKE: dict[type, bool] = {}


def accessor(row: Any) -> Callable[[str], Any]:
    """``get(name)`` for one row: a mapping-like row (dict, asyncpg Record) or an object
    with attributes (``NormalisedReading``); ``None`` for an absent field."""
    cls = row.__class__
    mapping = _MAPPING_LIKE.get(cls)
    if mapping is None:
        mapping = _MAPPING_LIKE[cls] = isinstance(row, Mapping) or hasattr(row, "keys")
    if mapping:
        return row.get  # type: ignore[no-any-return]
    return lambda name: getattr(row, name, None)


_EXTRACTORS: dict[tuple[type, tuple[str, ...]], Callable[[Any], tuple]] = {}


def extractor(row: Any, names: tuple[str, ...]) -> Callable[[Any], tuple]:
    """A function giving the ``names`` fields of rows of ``row``'s class, as a tuple
    (``None`` for absent ones); dataclass rows take a C-speed ``attrgetter``."""
    key = (row.__class__, names)
    fn = _EXTRACTORS.get(key)
    if fn is None:
        fields = getattr(row.__class__, "__dataclass_fields__", None)
        if fields is not None and all(n in fields for n in names):
            fn = operator.attrgetter(*names)
        else:
            def fn(r: Any) -> tuple:
                return tuple(map(accessor(r), names))
        _EXTRACTORS[key] = fn
    return fn


def field_of(row: Any, name: str) -> Any:
    """Field ``name`` of one row (see :func:`accessor`)."""
    return accessor(row)(name)


def is_aware(ts: Any) -> bool:
    """Whether ``ts`` is a timezone-aware datetime."""
    return isinstance(ts, datetime) and ts.utcoffset() is not None


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (bools are not numbers)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def label(value: Any) -> str:
    """A bounded label for a metric or source: stripped, lower-case, ``unknown`` if empty."""
    text = str(value).strip().lower() if value is not None else ""
    return text or UNKNOWN


def source_label(source: Any, known: Collection[str] | None) -> str:
    """The bounded label of a producer's ``source``: itself (lower-cased) when it is one of
    ``known``, else ``other``; ``known=None`` keeps every source (the on-demand analysis)."""
    text = label(source)
    return text if known is None or text in known else OTHER


_CONFLICT_FIELDS: Final = ("event_id", "user_key", "metric", "measured_at", "value", "source", "unit")
_SYSTOLIC: Final = "blood_pressure_systolic"
_DIASTOLIC: Final = "blood_pressure_diastolic"


def conflicting(readings: Sequence[Any], tolerance: float = 1e-9) -> set[int]:
    """Indices of readings that conflict with another one of ``readings``.

    Every reading of a group fails when the group holds a conflict: readings sharing an
    ``event_id`` whose value or metric, source, user, unit or ``measured_at`` differ;
    readings sharing user, metric and ``measured_at`` whose values differ; and, per user
    and instant, each systolic pressure not above a diastolic one (both fail).
    """
    n = len(readings)
    if n and _all_dataclass_rows(readings):
        # The usual batch: every event id and every (user, metric, instant) once, so only
        # blood pressure pairs can conflict. Sets built from attrgetters run at C speed.
        if (len(set(map(_EVENT_ID, readings))) == n
                and len(set(map(_INSTANT, readings))) == n):
            pressure = [i for i, r in enumerate(readings) if r.metric in _PRESSURE]
            rows = [_CONFLICT_ROW(readings[i]) for i in pressure]
            return {pressure[i] for i in _pressure_conflicts(rows)}
    rows = _conflict_rows(readings)

    def same(va: Any, vb: Any) -> bool:
        if is_number(va) and is_number(vb):
            return abs(va - vb) <= tolerance * max(1.0, abs(va), abs(vb))
        return bool(va == vb)

    first_event: dict[Any, int] = {}
    first_instant: dict[tuple, int] = {}
    bad_events: set[Any] = set()
    bad_instants: set[tuple] = set()
    for i, (event_id, user, metric, at, value, source, unit) in enumerate(rows):
        j = first_event.setdefault(event_id, i)
        if j != i and event_id is not None:
            e = rows[j]
            if not same(e[4], value) or (e[1], e[2], e[3], e[5], e[6]) != (user, metric, at, source, unit):
                bad_events.add(event_id)
        instant = (user, metric, at)
        j = first_instant.setdefault(instant, i)
        if j != i and not same(rows[j][4], value):
            bad_instants.add(instant)
    bad: set[int] = set()
    if bad_events or bad_instants:
        bad = {i for i, r in enumerate(rows) if r[0] in bad_events or (r[1], r[2], r[3]) in bad_instants}
    return bad | _pressure_conflicts(rows)


_EVENT_ID: Final = operator.attrgetter("event_id")
_INSTANT: Final = operator.attrgetter("user_key", "metric", "measured_at")
_CONFLICT_ROW: Final = operator.attrgetter(*_CONFLICT_FIELDS)
_PRESSURE: Final = frozenset((_SYSTOLIC, _DIASTOLIC))


def _all_dataclass_rows(readings: Sequence[Any]) -> bool:
    """Whether every row is of one dataclass with all of :data:`_CONFLICT_FIELDS`."""
    cls = readings[0].__class__
    fields = getattr(cls, "__dataclass_fields__", None)
    return (fields is not None and all(name in fields for name in _CONFLICT_FIELDS)
            and all(r.__class__ is cls for r in readings))


def _conflict_rows(readings: Sequence[Any]) -> list[tuple]:
    """The :data:`_CONFLICT_FIELDS` of each reading; one extractor when all share a class."""
    if not readings:
        return []
    cls = readings[0].__class__
    if all(r.__class__ is cls for r in readings):
        return list(map(extractor(readings[0], _CONFLICT_FIELDS), readings))
    return [extractor(r, _CONFLICT_FIELDS)(r) for r in readings]


def _pressure_conflicts(rows: list[tuple]) -> set[int]:
    """Indices of systolic and diastolic readings of one user and instant where the
    systolic value is not above the diastolic one (both fail)."""
    pressure: dict[tuple, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        metric = row[2]
        if metric == _SYSTOLIC or metric == _DIASTOLIC:
            pressure[(row[1], row[3])].append(i)
    bad: set[int] = set()
    for idx in pressure.values():
        for s in (i for i in idx if rows[i][2] == _SYSTOLIC):
            for d in (i for i in idx if rows[i][2] == _DIASTOLIC):
                vs, vd = rows[s][4], rows[d][4]
                if is_number(vs) and is_number(vd) and vs <= vd:
                    bad.update((s, d))
    return bad
