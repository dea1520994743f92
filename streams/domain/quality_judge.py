"""Judging records on the quality dimensions (the rules are in :mod:`streams.domain.quality`).

A *verdict* is one ``True``/``False``/``None`` (pass, fail, not judged) per dimension, in
:data:`~streams.domain.quality_rules.DIMENSIONS` order. The in-stream counters and the
on-demand analysis both judge through these functions. Pure: no I/O.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from streams.domain.catalogue import resolve_unit
from streams.domain.quality_rules import (
    DIMENSIONS,
    REJECT_DIMENSION,
    REQUIRED_FIELDS,
    DimensionCounts,
    conflicting,
    extractor,
    is_aware,
    is_number,
    label,
    source_label,
)
from streams.errors import Rejected
from streams.records import NormalisedReading

if TYPE_CHECKING:
    from streams.domain.quality import QualityConfig

_BAD_FLAGS = frozenset({"outlier", "clipped"})

Verdict = tuple[bool | None, ...]  # per dimension: pass, fail, or None (not judged)


@functools.lru_cache(maxsize=16)
def _layout(expected: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Fields judge_reading reads (the first seven fixed) and where completeness looks."""
    names: tuple[str, ...] = ("metric", "value", "measured_at", "ingested_at", "unit", "quality_flags",
                              "source")
    names += tuple(dict.fromkeys(f for f in (*REQUIRED_FIELDS, *expected) if f not in names))
    return names, tuple(names.index(f) for f in (*REQUIRED_FIELDS, *expected))


def judge_reading(reading: Any, config: QualityConfig, *, conflicts: bool = False) -> Verdict:
    """Pass/fail/not-judged per dimension for one stored reading.

    ``conflicts`` says whether the reading conflicts with another one of its sample
    (computed by :func:`conflicting`); a lone reading is consistent.
    """
    names, complete_at = _layout(config.expected_fields)
    fields = extractor(reading, names)(reading)
    metric, value, measured, ingested, unit, flags, source = fields[:7]
    complete = True
    for i in complete_at:
        if fields[i] is None or fields[i] == "":
            complete = False
            break
    rule = config.catalogue.get(metric) or config.catalogue.get(label(metric))
    valid = rule is not None and is_number(value) and rule.is_possible(value) and is_aware(measured)
    if valid:
        try:
            resolve_unit(rule, str(unit or ""))  # type: ignore[arg-type]
        except Rejected:
            valid = False
    accurate: bool | None = None
    if valid:
        accurate = rule.outlier_bound(value) is None and not _BAD_FLAGS.intersection(flags or ())  # type: ignore[union-attr]
    timely: bool | None = None
    if is_aware(measured) and is_aware(ingested):
        timely = ingested - measured <= config.threshold_for(source)
    return complete, valid, accurate, not conflicts, timely


def judge_rejection(reason: str) -> Verdict:
    """The verdict of one rejected record: fails the dimension of its reason, nothing else."""
    failed = REJECT_DIMENSION.get(str(reason), "validity")
    return tuple(False if d == failed else None for d in DIMENSIONS)


def tally(verdicts: Iterable[Verdict]) -> DimensionCounts:
    """Sum verdicts into counts."""
    passed, judged, records = [0] * len(DIMENSIONS), [0] * len(DIMENSIONS), 0
    for verdict in verdicts:
        records += 1
        for i, v in enumerate(verdict):
            if v is not None:
                judged[i] += 1
                passed[i] += v
    return DimensionCounts(tuple(passed), tuple(judged), records)


def judge_readings(readings: Sequence[Any], config: QualityConfig) -> list[Verdict]:
    """The verdict of each reading, consistency judged within ``readings``."""
    bad = conflicting(readings)
    return [judge_reading(r, config, conflicts=i in bad) for i, r in enumerate(readings)]


def _source(source: Any, config: QualityConfig) -> str:
    return label(source) if source is None else source_label(source, config.known_sources)


def count_batch(readings: Sequence[Any], rejections: Iterable[tuple[str, str | None, str | None]],
                config: QualityConfig) -> dict[tuple[str, str], DimensionCounts]:
    """Counts per ``(metric, source)`` label for one committed batch (the in-stream path).

    ``rejections`` holds ``(reason, metric, source)`` of each dead letter of the batch. A
    dead letter whose metric is missing or not in the catalogue is not counted: there is no
    metric whose quality it lowers (the DLQ rate alert covers it). Sources outside
    ``config.known_sources`` are counted as ``other``; a missing source as ``unknown``.
    """
    groups: dict[tuple[str, str], list[Verdict]] = defaultdict(list)
    labels: dict[tuple[Any, Any], tuple[str, str]] = {}
    for r, verdict in zip(readings, judge_readings(readings, config), strict=True):
        raw = extractor(r, ("metric", "source"))(r)
        key = labels.get(raw)
        if key is None:
            key = labels[raw] = (label(raw[0]), _source(raw[1], config))
        groups[key].append(verdict)
    for reason, metric, source in rejections:
        if metric is None or label(metric) not in config.catalogue:
            continue
        groups[(label(metric), _source(source, config))].append(judge_rejection(reason))
    return {key: tally(verdicts) for key, verdicts in groups.items()}


_NOT_LOOKED_UP = object()


def count_stored_batch(readings: Sequence[NormalisedReading],
                       rejections: Iterable[tuple[str, str | None, str | None]],
                       config: QualityConfig) -> dict[tuple[str, str], DimensionCounts]:
    """:func:`count_batch` for readings the domain produced, in one pass: the same counts.

    It relies on what :class:`~streams.records.NormalisedReading` guarantees (every
    required field present, ``value`` a finite float, aware UTC datetimes), so per reading
    it only looks at what can vary: the expected fields, the metric's rule for its unit,
    the bounds, the flags, the consistency within the batch and the timeliness. This is
    the ingest hot path (``make bench``); tests hold it equal to :func:`count_batch`.
    """
    expected = config.expected_fields
    if not all(name in _READING_FIELDS for name in expected):
        return count_batch(readings, rejections, config)
    get_expected = attrgetter(*expected) if len(expected) > 1 else None
    single_expected = expected[0] if len(expected) == 1 else None
    bad = conflicting(readings)
    catalogue, threshold_for = config.catalogue, config.threshold_for
    labels: dict[tuple[str, str], tuple[str, str]] = {}
    rules: dict[tuple[str, str], Any] = {}
    thresholds: dict[str, Any] = {}
    totals: dict[tuple[str, str], list[int]] = {}
    bad_flags = _BAD_FLAGS
    for i, r in enumerate(readings):
        metric, source, value = r.metric, r.source, r.value
        raw = (metric, source)
        acc = totals.get(labels.get(raw) or _label_of(raw, labels, config))
        if acc is None:
            acc = totals[labels[raw]] = [0] * (1 + 2 * len(DIMENSIONS))
        acc[0] += 1
        if single_expected is not None:
            present = getattr(r, single_expected)
            complete = present is not None and present != ""
        elif get_expected is not None:
            complete = all(v is not None and v != "" for v in get_expected(r))
        else:
            complete = True
        rule = rules.get((metric, r.unit), _NOT_LOOKED_UP)
        if rule is _NOT_LOOKED_UP:
            rule = rules[(metric, r.unit)] = _rule_for(catalogue, metric, r.unit)
        valid = rule is not None and rule.is_possible(value)
        # Verdict order: completeness, validity, accuracy, consistency, timeliness.
        acc[1] += complete
        acc[2] += 1
        acc[3] += valid
        acc[4] += 1
        if valid:
            acc[5] += rule.outlier_bound(value) is None and not bad_flags.intersection(r.quality_flags)
            acc[6] += 1
        acc[7] += i not in bad
        acc[8] += 1
        limit = thresholds.get(source)
        if limit is None:
            limit = thresholds[source] = threshold_for(source)
        acc[9] += r.ingested_at - r.measured_at <= limit
        acc[10] += 1
    out = {key: DimensionCounts(tuple(a[1::2]), tuple(a[2::2]), a[0]) for key, a in totals.items()}
    for reason, rejected_metric, rejected_source in rejections:
        if rejected_metric is None or label(rejected_metric) not in catalogue:
            continue  # as in count_batch: no catalogue metric, no quality series
        key = (label(rejected_metric), _source(rejected_source, config))
        out[key] = out.get(key, DimensionCounts()) + tally([judge_rejection(reason)])
    return out


_READING_FIELDS = frozenset(NormalisedReading.__dataclass_fields__)


def _label_of(raw: tuple[str, str], labels: dict[tuple[str, str], tuple[str, str]],
              config: QualityConfig) -> tuple[str, str]:
    key = labels[raw] = (label(raw[0]), _source(raw[1], config))
    return key


def _rule_for(catalogue: Any, metric: str, unit: str) -> Any:
    """The quality catalogue's rule of ``metric`` if it accepts ``unit``, else None."""
    rule = catalogue.get(metric) or catalogue.get(label(metric))
    if rule is None:
        return None
    try:
        resolve_unit(rule, str(unit or ""))
    except Rejected:
        return None
    return rule
