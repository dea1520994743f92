"""On-demand quality analysis of one metric from the warehouse, persisted in ``quality_reports``.

Called by the REST endpoint ``POST /data-pipeline/data-quality/analyze`` and usable from
ETL jobs. The scoring rules are :class:`streams.domain.quality.DataValidator`'s.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from streams.domain.quality import ALL_METRICS, DIMENSIONS, DataValidator, QualityConfig
from streams.domain.quality_rules import label
from streams.errors import HealthMateError, WarehouseUnavailable
from streams.sink.copy_encoding import READING_COLUMNS
from streams.sink.migrations import quote_ident
from streams.sink.warehouse import TRANSIENT_ERRORS, Warehouse

MAX_SAMPLE_SIZE = 100_000
_PARTNER = {"blood_pressure_systolic": "blood_pressure_diastolic",
            "blood_pressure_diastolic": "blood_pressure_systolic"}


class InvalidAnalysisRequest(HealthMateError, ValueError):
    """The request cannot be analysed (unknown data type, bad sample size): a client error."""


class ReportNotFound(HealthMateError, LookupError):
    """No stored quality report has this id."""


async def analyze_quality(
    warehouse_or_pool: Warehouse | asyncpg.Pool,
    schema: str,
    data_type: str,
    sample_size: int,
    *,
    config: QualityConfig | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> dict[str, Any]:
    """Analyse the last ``sample_size`` readings of ``data_type`` and persist the report.

    Sample: the ``sample_size`` most recently *measured* rows of ``health_readings`` with
    ``metric = data_type`` (fewer if fewer exist); for a blood-pressure metric, the other
    pressure of the same users over the same span is read too, for the consistency check.
    Rejections: the dead letters of ``data_type`` created since the earliest ``ingested_at``
    of the sample (all time if the sample is empty) count as rejected records in the scores;
    ``dlq_share`` is their share of all dead letters of that period (``None`` if there
    were none).

    ``data_type`` is a catalogue metric or ``health_metrics`` (every metric; no dead letter
    is left out then, whatever its metric).

    Returns the report (JSON-safe): ``report_id`` (uuid string), ``data_type``,
    ``sample_size`` (rows analysed), ``requested_sample_size``, ``overall_score``,
    ``quality_level``, ``dimension_scores`` (the five dimensions), ``issues``,
    ``recommendations``, ``rejected``, ``rejected_by_reason``, ``dlq_share``,
    ``period_start`` (ISO-8601 or ``None``), ``generated_at`` (ISO-8601 UTC), and in the
    specification's shape ``quality_metrics`` (the five dimensions, ``overall_score``,
    ``quality_level``, ``issues``, ``recommendations``), ``issues_found`` and
    ``recommendations_count``. The same
    report is stored in ``<schema>.quality_reports`` before returning.

    Raises ``InvalidAnalysisRequest`` for a data type outside the catalogue or a sample
    size outside 1..``MAX_SAMPLE_SIZE``; ``WarehouseUnavailable`` on a transient failure.
    """
    config = config or QualityConfig()
    metric = label(data_type)
    if metric not in config.catalogue and metric != ALL_METRICS:
        raise InvalidAnalysisRequest(f"unknown data_type {data_type!r}")
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) \
            or not 1 <= sample_size <= MAX_SAMPLE_SIZE:
        raise InvalidAnalysisRequest(f"sample_size must be an integer in 1..{MAX_SAMPLE_SIZE}")
    pool = warehouse_or_pool.pool if isinstance(warehouse_or_pool, Warehouse) else warehouse_or_pool
    s = quote_ident(schema)
    cols = ", ".join(READING_COLUMNS)
    try:
        async with pool.acquire() as conn:
            only = None if metric == ALL_METRICS else metric  # None: every metric
            rows = await conn.fetch(
                f"SELECT {cols} FROM {s}.health_readings WHERE ($1::text IS NULL OR metric = $1)"
                " ORDER BY measured_at DESC, event_id LIMIT $2", only, sample_size)
            context = await _partner_rows(conn, s, cols, metric, rows)
            since = min((r["ingested_at"] for r in rows), default=None)
            rejected = await conn.fetch(
                f"SELECT reason, coalesce(source, '') AS source, count(*) AS n FROM {s}.dead_letters"
                " WHERE ($1::text IS NULL OR metric = $1) AND ($2::timestamptz IS NULL OR created_at >= $2)"
                " GROUP BY reason, source", only, since)
            all_rejected = await conn.fetchval(
                f"SELECT count(*) FROM {s}.dead_letters WHERE ($1::timestamptz IS NULL OR created_at >= $1)",
                since)
            rejections = {(r["reason"], r["source"] or None): r["n"] for r in rejected}
            # Scoring 100 000 rows takes seconds of CPU: off the event loop, so that the
            # worker's web server (health probes) and ingest keep answering meanwhile.
            m = await asyncio.to_thread(DataValidator(config).validate_data_quality, [*rows, *context],
                                        metric, rejected=rejections)
            by_reason: dict[str, int] = {}
            for (reason, _), n in sorted(rejections.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
                by_reason[reason] = by_reason.get(reason, 0) + n
            report_id, generated_at = new_id(), clock().astimezone(UTC)
            scores = m.dimension_scores()
            report: dict[str, Any] = {
                "report_id": str(report_id), "data_type": metric, "sample_size": m.sample_size,
                "requested_sample_size": sample_size, "overall_score": m.overall_score,
                "quality_level": m.quality_level, "dimension_scores": m.dimension_scores(),
                "issues": list(m.issues), "recommendations": list(m.recommendations),
                "rejected": m.rejected, "rejected_by_reason": by_reason,
                "dlq_share": (m.rejected / all_rejected) if all_rejected else None,
                "period_start": since.isoformat() if since else None,
                "generated_at": generated_at.isoformat(),
                # The specification's shape, beside the fields above.
                "quality_metrics": {**scores, "overall_score": m.overall_score,
                                    "quality_level": m.quality_level, "issues": list(m.issues),
                                    "recommendations": list(m.recommendations)},
                "issues_found": len(m.issues), "recommendations_count": len(m.recommendations),
            }
            await conn.execute(
                f"INSERT INTO {s}.quality_reports (report_id, data_type, sample_size, overall_score,"
                f" quality_level, {', '.join(DIMENSIONS)}, report, generated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12)",
                report_id, metric, m.sample_size, m.overall_score, m.quality_level,
                *(scores[d] for d in DIMENSIONS), orjson.dumps(report).decode(),
                generated_at)
    except TRANSIENT_ERRORS as exc:
        raise WarehouseUnavailable(f"quality analysis failed: {type(exc).__name__}") from exc
    return report


async def _partner_rows(conn: asyncpg.Connection, s: str, cols: str, metric: str, rows: list) -> list:
    """The other blood pressure of the sample's users over the sample's span (else nothing)."""
    partner = _PARTNER.get(metric)
    if partner is None or not rows:
        return []
    return await conn.fetch(
        f"SELECT {cols} FROM {s}.health_readings WHERE metric = $1 AND measured_at BETWEEN $2 AND $3"
        " AND user_key = ANY($4::text[])", partner, min(r["measured_at"] for r in rows),
        max(r["measured_at"] for r in rows), list({r["user_key"] for r in rows}))


async def get_report(warehouse_or_pool: Warehouse | asyncpg.Pool, schema: str, report_id: str
                     ) -> dict[str, Any]:
    """A stored report, as :func:`analyze_quality` returned it; raises ``ReportNotFound``."""
    try:
        rid = uuid.UUID(str(report_id))
    except ValueError:
        raise ReportNotFound("no such quality report") from None
    pool = warehouse_or_pool.pool if isinstance(warehouse_or_pool, Warehouse) else warehouse_or_pool
    try:
        raw = await pool.fetchval(
            f"SELECT report FROM {quote_ident(schema)}.quality_reports WHERE report_id = $1", rid)
    except TRANSIENT_ERRORS as exc:
        raise WarehouseUnavailable(f"quality report read failed: {type(exc).__name__}") from exc
    if raw is None:
        raise ReportNotFound("no such quality report")
    return orjson.loads(raw) if isinstance(raw, str | bytes) else raw
