"""The quality gate: score extracted data with the shared quality rules, chunk by chunk.

Scores come from :class:`streams.domain.quality.DataValidator` (per metric, per chunk);
its per-dimension counts add up, so a run's score is the overall score of the summed
counts, exactly as if the validator had seen all rows at once, except that consistency is
judged within a chunk. An empty extraction has no score and passes the gate (the targets
of an empty interval are empty).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batch.errors import QualityGateFailed
from streams.domain.quality import DataValidator, DimensionCounts, QualityConfig, quality_level
from streams.domain.quality_rules import field_of, label

#: Metrics judged together for consistency (systolic must exceed diastolic).
_PAIRED = ("blood_pressure_systolic", "blood_pressure_diastolic")


@dataclass(frozen=True, slots=True)
class QualityVerdict:
    """The gate's answer: ``score``/``level`` are ``None`` when nothing was extracted."""

    score: float | None
    level: str | None
    records: int
    passed: bool


class QualityTally:
    """Sums quality counts over the chunks of one run (and, separately, per key)."""

    def __init__(self, config: QualityConfig | None = None) -> None:
        self.validator = DataValidator(config)
        self.counts = DimensionCounts()

    @property
    def weights(self) -> Mapping[str, float]:
        return self.validator.config.weights

    def readings(self, rows: Sequence[Mapping[str, Any]]) -> DimensionCounts:
        """Judge one chunk of fact rows; add to the run's counts and return the chunk's."""
        by_metric: dict[str, list] = defaultdict(list)
        for row in rows:
            by_metric[label(field_of(row, "metric"))].append(row)
        chunk = DimensionCounts()
        for metric, group in sorted(by_metric.items()):
            context = [r for m in _PAIRED for r in by_metric.get(m, ())] if metric in _PAIRED else group
            chunk = chunk + self.validator.validate_data_quality(context, metric).counts
        self.counts = self.counts + chunk
        return chunk

    def rejections(self, rejected: Mapping[tuple[str, str | None], int]) -> DimensionCounts:
        """Judge dead letters counted by ``(reason, metric)``; add to the run's counts."""
        by_metric: dict[str, dict[str, int]] = defaultdict(dict)
        for (reason, metric), n in rejected.items():
            bucket = by_metric[label(metric)]
            bucket[reason] = bucket.get(reason, 0) + n
        chunk = DimensionCounts()
        for metric, reasons in sorted(by_metric.items()):
            chunk = chunk + self.validator.validate_data_quality([], metric, rejected=reasons).counts
        self.counts = self.counts + chunk
        return chunk

    def score_of(self, counts: DimensionCounts) -> float:
        return counts.overall(self.weights)

    def verdict(self, threshold: float) -> QualityVerdict:
        if self.counts.records == 0:
            return QualityVerdict(None, None, 0, True)
        score = self.score_of(self.counts)
        return QualityVerdict(score, quality_level(score), self.counts.records, score >= threshold)

    def enforce(self, threshold: float) -> QualityVerdict:
        """The verdict; raises :class:`QualityGateFailed` when it does not pass."""
        verdict = self.verdict(threshold)
        if not verdict.passed:
            assert verdict.score is not None and verdict.level is not None
            raise QualityGateFailed(verdict.score, verdict.level, threshold)
        return verdict
