"""The job registry (``etl_jobs``) and run history (``etl_job_runs``) in PostgreSQL.

Every function takes an asyncpg pool (or connection) and the warehouse schema; SQL is
parameterised and the schema is quoted. The schema must be migrated (``Warehouse.start``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg
import orjson

from batch.config import ETLJobConfig
from batch.errors import JobNameTaken, JobNotFound, RunNotFound
from streams.sink.migrations import quote_ident

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection

RUN_COLUMNS = ("run_id", "job_id", "job_name", "pipeline_type", "trigger", "status", "attempt",
               "interval_start", "interval_end", "started_at", "finished_at", "rows_extracted",
               "rows_loaded", "rows_rejected", "quality_score", "quality_level", "progress", "error")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One row of ``etl_job_runs``. ``status``: running, succeeded, failed or timed_out.

    ``job_id`` is ``None`` for ad-hoc backfills (and runs of a deleted job); ``error``
    holds no PHI; ``quality_score``/``quality_level`` are ``None`` when nothing was scored.
    """

    run_id: UUID
    job_id: str | None
    job_name: str
    pipeline_type: str
    trigger: str
    status: str
    attempt: int
    interval_start: datetime | None
    interval_end: datetime | None
    started_at: datetime
    finished_at: datetime | None
    rows_extracted: int
    rows_loaded: int
    rows_rejected: int
    quality_score: float | None
    quality_level: str | None
    progress: int
    error: str | None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-safe form (UUIDs and datetimes as strings), for the API and webhooks."""
        return orjson.loads(orjson.dumps(asdict(self)))


def _s(schema: str) -> str:
    return quote_ident(schema)


def _job(row: asyncpg.Record) -> ETLJobConfig:
    config = row["config"]
    if isinstance(config, str):
        return ETLJobConfig.model_validate_json(config)
    return ETLJobConfig.model_validate(config)


async def insert_job(db: Executor, schema: str, job: ETLJobConfig) -> ETLJobConfig:
    try:
        await db.execute(
            f"INSERT INTO {_s(schema)}.etl_jobs (job_id, job_name, pipeline_type, enabled, schedule, config)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
            job.job_id, job.job_name, str(job.pipeline_type), job.enabled, job.schedule,
            orjson.dumps(job.to_json_dict()).decode())
    except asyncpg.UniqueViolationError as exc:
        if "job_name" in (exc.constraint_name or ""):
            raise JobNameTaken(f"an ETL job named {job.job_name!r} exists already") from None
        raise JobNameTaken(f"an ETL job with id {job.job_id} exists already") from None
    return job


async def replace_job(db: Executor, schema: str, job: ETLJobConfig) -> ETLJobConfig:
    """Replace the registered config of ``job.job_id``; raises JobNotFound / JobNameTaken."""
    try:
        done = await db.execute(
            f"UPDATE {_s(schema)}.etl_jobs SET job_name = $2, pipeline_type = $3, enabled = $4,"
            " schedule = $5, config = $6::jsonb WHERE job_id = $1",
            job.job_id, job.job_name, str(job.pipeline_type), job.enabled, job.schedule,
            orjson.dumps(job.to_json_dict()).decode())
    except asyncpg.UniqueViolationError:
        raise JobNameTaken(f"an ETL job named {job.job_name!r} exists already") from None
    if done.endswith(" 0"):
        raise JobNotFound(f"no ETL job {job.job_id}")
    return job


async def fetch_job(db: Executor, schema: str, job_id: str) -> ETLJobConfig:
    row = await db.fetchrow(f"SELECT config FROM {_s(schema)}.etl_jobs WHERE job_id = $1", job_id)
    if row is None:
        raise JobNotFound(f"no ETL job {job_id}")
    return _job(row)


async def fetch_jobs(db: Executor, schema: str, *, enabled: bool | None = None) -> list[ETLJobConfig]:
    rows = await db.fetch(
        f"SELECT config FROM {_s(schema)}.etl_jobs WHERE $1::boolean IS NULL OR enabled = $1"
        " ORDER BY job_name", enabled)
    return [_job(r) for r in rows]


async def remove_job(db: Executor, schema: str, job_id: str) -> None:
    done = await db.execute(f"DELETE FROM {_s(schema)}.etl_jobs WHERE job_id = $1", job_id)
    if done.endswith(" 0"):
        raise JobNotFound(f"no ETL job {job_id}")


async def start_run(db: Executor, schema: str, *, run_id: UUID, job: ETLJobConfig, registered: bool,
                    trigger: str, attempt: int, interval: tuple[datetime, datetime] | None,
                    started_at: datetime) -> None:
    """Insert the run as ``running``; a known ``run_id`` (an Airflow retry) is restarted."""
    start, end = interval or (None, None)
    await db.execute(
        f"INSERT INTO {_s(schema)}.etl_job_runs (run_id, job_id, job_name, pipeline_type, trigger,"
        " status, attempt, interval_start, interval_end, started_at)"
        " VALUES ($1, $2, $3, $4, $5, 'running', $6, $7, $8, $9)"
        " ON CONFLICT (run_id) DO UPDATE SET status = 'running', attempt = EXCLUDED.attempt,"
        " finished_at = NULL, progress = 0, error = NULL",
        run_id, job.job_id if registered else None, job.job_name, str(job.pipeline_type), trigger,
        attempt, start, end, started_at)


async def update_run(db: Executor, schema: str, run_id: UUID, **values: Any) -> None:
    """Set columns of a run (names from :data:`RUN_COLUMNS` only)."""
    unknown = set(values) - set(RUN_COLUMNS)
    if unknown or not values:
        raise ValueError(f"unknown run columns: {sorted(unknown)}")
    names = list(values)
    assignments = ", ".join(f"{quote_ident(n)} = ${i + 2}" for i, n in enumerate(names))
    await db.execute(f"UPDATE {_s(schema)}.etl_job_runs SET {assignments} WHERE run_id = $1",
                     run_id, *(values[n] for n in names))


async def fetch_run(db: Executor, schema: str, run_id: UUID) -> RunRecord:
    row = await db.fetchrow(f"SELECT * FROM {_s(schema)}.etl_job_runs WHERE run_id = $1", run_id)
    if row is None:
        raise RunNotFound(f"no run {run_id}")
    return _run(row)


async def fetch_runs(db: Executor, schema: str, job_id: str | None, *, limit: int = 50,
                     offset: int = 0) -> list[RunRecord]:
    rows = await db.fetch(
        f"SELECT * FROM {_s(schema)}.etl_job_runs WHERE ($1::text IS NULL OR job_id = $1)"
        " ORDER BY started_at DESC, run_id LIMIT $2 OFFSET $3", job_id, limit, offset)
    return [_run(r) for r in rows]


def _run(row: asyncpg.Record) -> RunRecord:
    values = {c: row[c] for c in RUN_COLUMNS}
    values["run_id"] = UUID(str(values["run_id"]))  # asyncpg's own UUID type -> uuid.UUID
    return RunRecord(**values)
