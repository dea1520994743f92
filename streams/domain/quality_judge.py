"""Judging records on the quality dimensions (the rules are in :mod:`streams.domain.quality`).

A *verdict* is one ``True``/``False``/``None`` (pass, fail, not judged) per dimension, in
:data:`~streams.domain.quality_rules.DIMENSIONS` order. The in-stream counters and the
on-demand analysis both judge through these functions. Pure: no I/O.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
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
)
from streams.errors import Rejected

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


def count_batch(readings: Sequence[Any], rejections: Iterable[tuple[str, str | None, str | None]],
                config: QualityConfig) -> dict[tuple[str, str], DimensionCounts]:
    """Counts per ``(metric, source)`` label for one committed batch (the in-stream path).

    ``rejections`` holds ``(reason, metric, source)`` of each dead letter of the batch;
    a missing metric or source is counted under ``unknown``.
    """
    groups: dict[tuple[str, str], list[Verdict]] = defaultdict(list)
    labels: dict[tuple[Any, Any], tuple[str, str]] = {}
    for r, verdict in zip(readings, judge_readings(readings, config), strict=True):
        raw = extractor(r, ("metric", "source"))(r)
        key = labels.get(raw)
        if key is None:
            key = labels[raw] = (label(raw[0]), label(raw[1]))
        groups[key].append(verdict)
    for reason, metric, source in rejections:
        groups[(label(metric), label(source))].append(judge_rejection(reason))
    return {key: tally(verdicts) for key, verdicts in groups.items()}
