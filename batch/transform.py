"""What the built-in targets hold. PostgreSQL computes them (:mod:`batch.targets` has the SQL);
this module keeps only the pure assembly of ``system_performance`` rows.

Days are UTC days, except when the job reads ``user_profiles``: then each reading's day is
its calendar day in the user's profile time zone (``measured_at AT TIME ZONE zone``; no
profile, or a zone PostgreSQL does not know: UTC), and every daily row says in its
``timezone`` column which zone its ``day`` belongs to. Hours are UTC. Definitions:

- ``aggregated_health_metrics``: per day of ``measured_at``, ``user_key`` and ``metric``:
  count, min, max, mean, sample standard deviation (``None`` for one reading), and the
  50th/95th percentiles with linear interpolation (PostgreSQL's ``percentile_cont``).
  Only readings in the metric's canonical unit with a finite value count; the others are
  *rejected* (counted, not aggregated): the fact table should hold none. Only raw samples
  (``statistic`` NULL) are aggregated unless the job sets ``include_statistics``: a mean
  of daily minimums is not a mean heart rate. Summary readings left out are not rejects.
- ``user_engagement``: per day and ``user_key``: readings, distinct metrics, sorted
  distinct sources, first and last ``measured_at``, and the active-days streak: the number
  of consecutive days with at least one reading, ending on that day (at most
  :data:`batch.targets.STREAK_CAP`, the day and the 400 before it).
- ``system_performance``: per hour of ``stored_at`` (commit time): stored readings,
  rejected records (dead letters by ``created_at``) in total and by reason, processed =
  stored + rejected, mean and 95th percentile of ingest lag
  ``stored_at - coalesce(produced_at, ingested_at)`` in seconds, and the quality score
  (:mod:`streams.domain.quality`, scored in Python) of the hour's readings and rejections.
- ``cgm`` (tables ``cgm_daily`` and ``cgm_14d``, always by local day): CGM metrics by the
  international consensus on time in range, see :mod:`batch.cgm`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


def performance_rows(commits: Mapping[datetime, Mapping[str, Any]],
                     rejected: Mapping[datetime, Mapping[str, int]],
                     quality: Mapping[datetime, float]) -> list[tuple]:
    """``system_performance`` rows, hour by hour: ``commits`` maps an hour to its ``stored``,
    ``mean_lag`` and ``p95_lag`` (from SQL), ``rejected`` to its dead-letter counts by reason,
    ``quality`` to its score (0.0 when absent)."""
    out = []
    for hour in sorted(set(commits) | set(rejected)):
        c = commits.get(hour)
        by_reason = dict(sorted(rejected.get(hour, {}).items()))
        stored, n_rejected = (c["stored"] if c else 0), sum(by_reason.values())
        out.append((hour, stored + n_rejected, stored, n_rejected, by_reason, c["mean_lag"] if c else None,
                    c["p95_lag"] if c else None, quality.get(hour, 0.0)))
    return out
