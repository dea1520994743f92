"""Data quality of readings: five dimensions, an overall score, a level, issues. Pure: no I/O.

Every record is judged on each dimension as *pass*, *fail* or *not judged*; a dimension's
score is ``passed / judged`` in [0, 1] (1.0 when nothing was judged on it). The in-stream
counters (:func:`count_batch`) and the on-demand analysis (:class:`DataValidator`) share
these definitions through :func:`judge_readings`.

Dimensions, for a stored reading (a :class:`~streams.records.NormalisedReading` or a
``health_readings`` row as a mapping):

- **completeness**: every required field (:data:`REQUIRED_FIELDS`) and every expected
  field (``QualityConfig.expected_fields``, default ``device_id``) is present and not
  empty. Always judged.
- **validity**: the metric is in the catalogue, ``value`` is a finite number the metric
  allows (not impossible), ``unit`` is accepted for the metric, ``measured_at`` is a
  timezone-aware datetime. Always judged.
- **accuracy**: the value lies within the metric's physiological (outlier) bounds and is
  not flagged ``outlier`` or ``clipped``. Judged only when validity passed.
- **consistency**: the reading conflicts with no other reading of the same sample: same
  ``event_id`` with different content; same user, metric and ``measured_at`` with a
  different value (every reading of such a group fails; exact duplicates do not); a
  systolic pressure not greater than the diastolic one of the same user at the same
  instant (both fail). Always judged, within the sample only (in-stream: the batch).
- **timeliness**: ``ingested_at - measured_at`` is at most the source's threshold
  (``QualityConfig.threshold_for(source)``). Judged when both are aware datetimes.

A *rejected* record (dead letter) is judged on one dimension only, the one its reason
belongs to (:data:`REJECT_DIMENSION`): ``missing_field`` fails completeness,
``outlier_dropped`` fails accuracy, every other reason fails validity.

The **overall** score is the weighted mean of the dimensions that judged at least one
record (weights in ``QualityConfig.weights``, renormalised); it is 0.0 for an empty sample.
Levels: excellent >= 0.95, good >= 0.85, fair >= 0.70, poor >= 0.50, else unusable.
Issues and recommendations name the metric and source; they never contain a user id,
user key, event id or reading value.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Final

from streams.domain.catalogue import DEFAULT_CATALOGUE, MetricRule
from streams.domain.quality_judge import (
    Verdict,
    count_batch,
    judge_reading,
    judge_readings,
    judge_rejection,
    tally,
)
from streams.domain.quality_rules import (
    DIMENSIONS,
    REJECT_DIMENSION,
    REQUIRED_FIELDS,
    UNKNOWN,
    DimensionCounts,
    conflicting,
    field_of,
    label,
)
from streams.errors import ConfigurationError

__all__ = [
    "ALL_METRICS", "DIMENSIONS", "LEVELS", "REJECT_DIMENSION", "REQUIRED_FIELDS", "UNKNOWN", "UNUSABLE",
    "DataQualityMetrics", "DataValidator", "DimensionCounts", "QualityConfig", "Verdict",
    "conflicting", "count_batch", "judge_reading", "judge_readings", "judge_rejection", "label",
    "meets_threshold", "quality_level", "tally",
]

#: The ``data_type`` that means every metric (the specification's name of the fact table).
ALL_METRICS: Final = "health_metrics"
LEVELS: Final = (("excellent", 0.95), ("good", 0.85), ("fair", 0.70), ("poor", 0.50))
UNUSABLE: Final = "unusable"


def quality_level(score: float) -> str:
    """The level of an overall score: excellent, good, fair, poor or unusable."""
    for name, floor in LEVELS:
        if score >= floor:
            return name
    return UNUSABLE


def meets_threshold(metrics: DataQualityMetrics | float, threshold: float) -> bool:
    """Whether the overall score (of ``metrics``, or a bare score) is at least ``threshold``."""
    score = metrics if isinstance(metrics, int | float) else metrics.overall_score
    return score >= threshold


@dataclass(frozen=True, slots=True)
class QualityConfig:
    """Knobs of the quality rules; validated on construction (``ConfigurationError``).

    ``weights`` maps dimension -> non-negative weight (missing dimensions weigh 0; at least
    one must be positive). ``timeliness_by_source`` overrides ``timeliness_default`` per
    lower-cased source. ``unit_share`` is the smallest share of readings in a non-canonical
    unit that earns a "standardise" recommendation. ``known_sources`` (lower case) bounds the
    in-stream source labels: any other source is counted as ``other``; ``None`` keeps all.
    """

    weights: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(DIMENSIONS, 1.0))
    timeliness_default: timedelta = timedelta(hours=1)
    timeliness_by_source: Mapping[str, timedelta] = field(default_factory=dict)
    expected_fields: tuple[str, ...] = ("device_id",)
    catalogue: Mapping[str, MetricRule] = field(default_factory=lambda: DEFAULT_CATALOGUE)
    unit_share: float = 0.05
    known_sources: frozenset[str] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(DIMENSIONS)
        if unknown:
            raise ConfigurationError(f"quality weights for unknown dimensions: {sorted(unknown)}")
        weights = {d: float(self.weights.get(d, 0.0)) for d in DIMENSIONS}
        if any(not math.isfinite(w) or w < 0 for w in weights.values()) or not any(weights.values()):
            raise ConfigurationError("quality weights must be finite, >= 0, and not all 0")
        by_source = {str(k).strip().lower(): v for k, v in self.timeliness_by_source.items()}
        if any(t <= timedelta(0) for t in (self.timeliness_default, *by_source.values())):
            raise ConfigurationError("timeliness thresholds must be positive")
        if not 0 < self.unit_share <= 1:
            raise ConfigurationError("unit_share must be in (0, 1]")
        object.__setattr__(self, "weights", MappingProxyType(weights))
        object.__setattr__(self, "timeliness_by_source", MappingProxyType(by_source))

    def threshold_for(self, source: str | None) -> timedelta:
        """The timeliness threshold of ``source`` (case-insensitive)."""
        return self.timeliness_by_source.get((source or "").lower(), self.timeliness_default)


@dataclass(frozen=True, slots=True)
class DataQualityMetrics:
    """The quality of one sample of one metric (``data_type``); all scores in [0, 1]."""

    data_type: str
    sample_size: int
    overall_score: float
    quality_level: str
    completeness: float
    validity: float
    accuracy: float
    consistency: float
    timeliness: float
    issues: tuple[str, ...]
    recommendations: tuple[str, ...]
    counts: DimensionCounts
    rejected: int = 0

    def dimension_scores(self) -> dict[str, float]:
        return {d: getattr(self, d) for d in DIMENSIONS}


class DataValidator:
    """Judges a sample of readings of one metric; see the module docstring for the rules."""

    def __init__(self, config: QualityConfig | None = None) -> None:
        self.config = config or QualityConfig()

    def validate_data_quality(self, data: Sequence[Any], data_type: str, *,
                              rejected: Mapping[Any, int] | None = None) -> DataQualityMetrics:
        """Score the readings of ``data`` whose metric is ``data_type`` (:data:`ALL_METRICS`:
        every reading; issues are then given metric by metric).

        ``data``: readings as mappings (``health_readings`` columns) or objects with the
        :class:`~streams.records.NormalisedReading` attributes. Readings of other metrics
        are not scored; they only serve as context for consistency (systolic/diastolic).
        ``rejected``: counts of rejected ``data_type`` records, keyed by reason or by
        ``(reason, source)``. ``sample_size`` is the number of scored readings.
        """
        from streams.domain.quality_text import describe

        metric = label(data_type)
        rows = list(data)
        verdicts = judge_readings(rows, self.config)
        every = metric == ALL_METRICS
        mine = [(r, v) for r, v in zip(rows, verdicts, strict=True)
                if every or label(field_of(r, "metric")) == metric]
        rejections: Counter[tuple[str, str]] = Counter()
        for key, n in (rejected or {}).items():
            reason, source = key if isinstance(key, tuple) else (key, None)
            rejections[(str(reason), label(source))] += int(n)
        counts = tally([v for _, v in mine]) + tally(
            judge_rejection(reason) for (reason, _), n in rejections.items() for _ in range(n))
        overall = counts.overall(self.config.weights)
        if every:
            issues, recommendations = describe(metric, [], rejections, self.config)
            for m in sorted({label(field_of(r, "metric")) for r, _ in mine}):
                more = describe(m, [(r, v) for r, v in mine if label(field_of(r, "metric")) == m], {},
                                self.config)
                issues, recommendations = issues + more[0], recommendations + more[1]
        else:
            issues, recommendations = describe(metric, mine, rejections, self.config)
        return DataQualityMetrics(
            data_type=metric, sample_size=len(mine), overall_score=overall,
            quality_level=quality_level(overall), **counts.scores(),
            issues=tuple(issues), recommendations=tuple(recommendations), counts=counts,
            rejected=sum(rejections.values()))
