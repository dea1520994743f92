"""Errors of the batch module, under the pipeline's one base class.

Messages never contain PHI (no user id or key, no reading value): they are stored in
``etl_job_runs.error`` and sent in webhook summaries.
"""

from __future__ import annotations

from streams.errors import HealthMateError

#: Every quality-gate failure message starts with this (Airflow does not retry those).
QUALITY_GATE_PREFIX = "quality gate:"


def is_final(error: str | None) -> bool:
    """Whether a run's recorded ``error`` is one that retrying cannot fix (gate, bad range)."""
    return (error or "").startswith((QUALITY_GATE_PREFIX, "InvalidRange:"))


class BatchError(HealthMateError):
    """Base of every deliberate batch error."""


class JobNotFound(BatchError):
    """No ETL job has this id (API: 404)."""


class RunNotFound(BatchError):
    """No run has this id (API: 404)."""


class JobNameTaken(BatchError):
    """Another job already has this ``job_name`` (API: 409)."""


class QualityGateFailed(BatchError):
    """The extracted data scored below the job's threshold; nothing was loaded. Not retried."""

    def __init__(self, score: float, level: str, threshold: float) -> None:
        super().__init__(f"{QUALITY_GATE_PREFIX} score {score:.3f} ({level}) is below the threshold "
                         f"{threshold:.3f}; nothing was loaded")
        self.score = score
        self.level = level
        self.threshold = threshold
        self.extracted = 0  # set by the pipeline: rows read before the gate stopped the run
        self.rejected = 0


class InvalidRange(BatchError):
    """A replay range that cannot be resolved (unknown topic, bad position syntax). Not retried."""


class SparkUnavailable(BatchError):
    """The Spark engine cannot run here (no Java, no connector jars, no master). Retried by the
    runner like any other failure: a cluster that was down may be back."""
