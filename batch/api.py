"""The batch module's public async API: what the web layer, the CLI and Airflow call.

Conventions: ``warehouse`` is a started :class:`~streams.sink.warehouse.Warehouse` (its
pool and schema are used; migrations are applied by ``start``). Job ids are strings
(``batch.config.JOB_ID_PATTERN``), run ids ``UUID`` or their string form (a malformed id
raises ``JobNotFound``/``RunNotFound``). Errors:
``pydantic.ValidationError`` (invalid config, field-level ``errors()``), ``JobNotFound``,
``RunNotFound``, ``JobNameTaken``, ``InvalidRange`` (all in :mod:`batch.errors`). A run
that fails does not raise: its :class:`RunRecord` says ``failed`` or ``timed_out``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

import batch.registry as registry
from batch.config import JOB_ID_PATTERN, ETLJobConfig, PipelineType
from batch.errors import JobNotFound, RunNotFound
from batch.graph import lineage_graph
from batch.registry import RunRecord
from batch.replay import replay_range_of
from batch.runner import JobRunner, RunOptions
from streams.config import Settings
from streams.connections import warehouse_from_settings
from streams.metrics import Metrics
from streams.sink.migrations import quote_ident
from streams.sink.warehouse import Warehouse

BACKFILL_JOB_NAME = "healthmate_backfill"


def _uuid(value: UUID | str, missing: type[Exception]) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise missing(f"no such id {str(value)[:64]!r}") from None


def _job_id(value: UUID | str) -> str:
    """A job id as stored (UUIDs of older jobs included); one that no job can have raises JobNotFound."""
    text = str(value)
    if not re.match(JOB_ID_PATTERN, text):
        raise JobNotFound(f"no such id {text[:64]!r}")
    return text


async def create_job(warehouse: Warehouse, config: ETLJobConfig | Mapping[str, Any]) -> ETLJobConfig:
    """Validate and register a job; returns it with its (possibly generated) ``job_id``.

    Raises ``ValidationError`` for an invalid mapping, ``JobNameTaken`` for a duplicate name or id.
    """
    job = config if isinstance(config, ETLJobConfig) else ETLJobConfig.model_validate(dict(config))
    return await registry.insert_job(warehouse.pool, warehouse.schema, job)


async def update_job(warehouse: Warehouse, job_id: UUID | str,
                     config: ETLJobConfig | Mapping[str, Any]) -> ETLJobConfig:
    """Replace a job's whole config (its ``job_id`` stays ``job_id``); the run history is kept
    and the job's DAG follows at Airflow's next parse.

    Raises ``ValidationError``, ``JobNotFound``, or ``JobNameTaken`` for another job's name.
    """
    fields = config.to_json_dict() if isinstance(config, ETLJobConfig) else dict(config)
    job = ETLJobConfig.model_validate({**fields, "job_id": _job_id(job_id)})
    return await registry.replace_job(warehouse.pool, warehouse.schema, job)


async def list_jobs(warehouse: Warehouse, *, enabled: bool | None = None) -> list[ETLJobConfig]:
    """Every registered job, by ``job_name``; only enabled (or disabled) ones when asked."""
    return await registry.fetch_jobs(warehouse.pool, warehouse.schema, enabled=enabled)


async def get_job(warehouse: Warehouse, job_id: UUID | str) -> ETLJobConfig:
    """One job; raises ``JobNotFound``."""
    return await registry.fetch_job(warehouse.pool, warehouse.schema, _job_id(job_id))


async def delete_job(warehouse: Warehouse, job_id: UUID | str) -> None:
    """Remove a job from the registry; its runs stay in the history with ``job_id`` NULL.
    Raises ``JobNotFound``. Its DAG disappears at Airflow's next parse."""
    await registry.remove_job(warehouse.pool, warehouse.schema, _job_id(job_id))


async def run_job(settings: Settings, job_id: UUID | str, *, warehouse: Warehouse | None = None,
                  run_id: UUID | None = None, trigger: str = "api",
                  interval: tuple[datetime, datetime] | None = None, as_of: datetime | None = None,
                  attempt: int = 1, max_attempts: int | None = None, metrics: Metrics | None = None,
                  progress: Callable[[int], None] | None = None) -> RunRecord:
    """Run a registered job to completion and return its final run record.

    Without ``warehouse``, opens (and closes) a pool of its own (connections opened on
    demand: ``parallel_workers`` + 2 at most), so a long run never starves the caller's pool.
    ``run_id``: pass one to know
    the id before the run ends (e.g. answer 202 and ``asyncio.create_task`` this call);
    reusing an id restarts that run's row. ``interval``/``as_of``: see :mod:`batch.schedule`.
    Raises ``JobNotFound``; a failed, gated or timed-out run is returned, not raised.
    """
    async with _warehouse(settings, warehouse) as wh:
        job = await get_job(wh, job_id)
        runner = JobRunner(settings, wh, metrics=metrics, progress=progress)
        options = RunOptions(trigger=trigger, run_id=run_id, interval=interval, as_of=as_of,
                             attempt=attempt, max_attempts=max_attempts)
        return await runner.run(job, options)


async def backfill(settings: Settings, topic: str, start: str, end: str | None = None, *,
                   publish_dead_letters: bool = False, engine: str = "worker",
                   run_id: UUID | None = None, trigger: str = "cli",
                   timeout_minutes: float = 60.0, attempt: int = 1, max_attempts: int | None = None,
                   progress: Callable[[int], None] | None = None) -> RunRecord:
    """Replay ``topic`` from ``start`` to ``end`` (``P:O[,P:O]`` offsets or ISO-8601 times;
    ``end`` None: to the current end) as an ad-hoc run named ``healthmate_backfill``.
    ``engine`` ``"spark"`` runs it on Apache Spark (``settings.spark_master``), with the same rows.
    Raises ``InvalidRange`` for bad positions; the run is recorded with ``job_id`` NULL."""
    spec = replay_range_of(topic, start, end, publish_dead_letters=publish_dead_letters, engine=engine)
    job = ETLJobConfig(job_id=BACKFILL_JOB_NAME, job_name=BACKFILL_JOB_NAME,
                       pipeline_type=PipelineType.REPLAY, replay=spec,
                       timeout_minutes=timeout_minutes, notification_on_failure=False)
    async with _warehouse(settings, None) as wh:
        runner = JobRunner(settings, wh, progress=progress)
        return await runner.run(job, RunOptions(trigger=trigger, run_id=run_id, registered=False,
                                                attempt=attempt, max_attempts=max_attempts))


async def list_runs(warehouse: Warehouse, job_id: UUID | str | None = None, *, limit: int = 50,
                    offset: int = 0) -> list[RunRecord]:
    """Run history, newest first; all jobs' runs (backfills included) when ``job_id`` is None.
    An unknown job id gives an empty list."""
    jid = None if job_id is None else _job_id(job_id)
    return await registry.fetch_runs(warehouse.pool, warehouse.schema, jid, limit=limit, offset=offset)


async def get_run(warehouse: Warehouse, run_id: UUID | str) -> RunRecord:
    """One run (its ``progress`` is live while it is ``running``); raises ``RunNotFound``."""
    return await registry.fetch_run(warehouse.pool, warehouse.schema, _uuid(run_id, RunNotFound))


async def job_lineage(warehouse: Warehouse, settings: Settings, job_id: UUID | str) -> dict[str, Any]:
    """The job's lineage graph (see :func:`batch.graph.lineage_graph`) with its latest
    stored run event; raises ``JobNotFound``."""
    job = await get_job(warehouse, job_id)
    raw = await warehouse.pool.fetchval(
        f"SELECT event FROM {quote_ident(warehouse.schema)}.lineage_events WHERE job_namespace = $1"
        " AND job_name = $2 ORDER BY event_time DESC, id DESC LIMIT 1",
        settings.openlineage_namespace, job.job_name)
    return lineage_graph(job, settings, orjson.loads(raw) if raw else None)


class _warehouse:
    """``async with``: the given warehouse as is, or a fresh one started and stopped here."""

    def __init__(self, settings: Settings, given: Warehouse | None, pool_max: int = 17) -> None:
        self.given = given
        self.own = None if given else warehouse_from_settings(settings, pool_max=pool_max)

    async def __aenter__(self) -> Warehouse:
        if self.own is None:
            assert self.given is not None
            return self.given
        await self.own.start()
        return self.own

    async def __aexit__(self, *exc: object) -> None:
        if self.own is not None:
            await self.own.stop()
