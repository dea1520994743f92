"""The specification's Python API for the batch side: thin facades over :mod:`batch.api`.

``from batch import DataPipelineManager, BatchDataProcessor, DataWarehouseManager,
ETLJobConfig, PipelineType``. Jobs, runs, targets, quality gates and lineage are the real
ones (:mod:`batch.runner`, :mod:`batch.registry`); these classes only translate the
specification's configuration dicts into :class:`~streams.config.Settings` and call them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

import batch.api as api
import batch.registry as registry
from batch.config import ETLJobConfig
from batch.errors import JobNotFound
from batch.registry import RunRecord
from batch.runner import JobRunner, RunOptions
from batch.targets import CGM_TARGETS, TARGETS
from streams.config import Settings
from streams.connections import warehouse_from_settings
from streams.errors import ConfigurationError
from streams.setup import coming_months, create_topics
from streams.sink.migrations import apply_migrations, quote_ident


def settings_from(kafka_config: Mapping[str, Any] | None = None,
                  warehouse_config: Mapping[str, Any] | None = None,
                  base: Settings | None = None) -> Settings:
    """``base`` (default: the environment) with the specification's config dicts applied.

    ``kafka_config``: ``bootstrap_servers`` (list or string), ``topics`` (the first is the
    raw topic the worker ingests), ``consumer_group``. ``warehouse_config``:
    ``connection_string`` (a PostgreSQL DSN), ``schema``. Without a pseudonym key the base
    is the dev-mode default (fixed, non-secret key), as for ``make run``.
    """
    if base is None:
        try:
            base = Settings()  # type: ignore[call-arg]  # read from the environment
        except ConfigurationError:
            base = Settings.model_validate({"dev_mode": True})
    changes: dict[str, Any] = {}
    kafka, warehouse = dict(kafka_config or {}), dict(warehouse_config or {})
    if "bootstrap_servers" in kafka:
        servers = kafka["bootstrap_servers"]
        changes["kafka_bootstrap"] = ",".join(servers) if isinstance(servers, list | tuple) else str(servers)
    if kafka.get("topics"):
        changes["raw_topic"] = kafka["topics"][0]
    if kafka.get("consumer_group"):
        changes["consumer_group"] = kafka["consumer_group"]
    if "connection_string" in warehouse:
        changes["pg_dsn"] = warehouse["connection_string"]
    if "schema" in warehouse:
        changes["warehouse_schema"] = warehouse["schema"]
    values = {**base.model_dump(), **changes}
    return Settings.model_validate(values)


def as_job(config: ETLJobConfig | Mapping[str, Any]) -> ETLJobConfig:
    """``config`` validated (``pydantic.ValidationError`` names the bad fields)."""
    return config if isinstance(config, ETLJobConfig) else ETLJobConfig.model_validate(dict(config))


def run_summary(run: RunRecord) -> dict[str, Any]:
    """What ``run_complete_pipeline`` returns: ids, status, row counts, quality, error."""
    out = run.to_json_dict()
    return {k: out[k] for k in ("run_id", "job_id", "job_name", "status", "rows_extracted", "rows_loaded",
                                "rows_rejected", "quality_score", "quality_level", "interval_start",
                                "interval_end", "error")}


class DataWarehouseManager:
    """The warehouse: schema (migrations), coming partitions, and reads of the targets.

    ``start()`` opens a pool and applies the migrations (``Warehouse.start``); use
    ``async with``. ``warehouse`` is the underlying :class:`Warehouse` for :mod:`batch.api`.
    """

    def __init__(self, settings: Settings | None = None, *, warehouse_config: Mapping[str, Any] | None = None
                 ) -> None:
        self.settings = settings or settings_from(warehouse_config=warehouse_config)
        self.warehouse = warehouse_from_settings(self.settings)

    async def start(self) -> None:
        await self.warehouse.start()

    async def stop(self) -> None:
        await self.warehouse.stop()

    async def __aenter__(self) -> DataWarehouseManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def ensure_partitions(self, now: datetime | None = None) -> list[datetime]:
        """Create this month's ``health_readings`` partition and ``warehouse_partitions_ahead`` more."""
        months = coming_months(now or datetime.now(UTC), self.settings.warehouse_partitions_ahead)
        await self.warehouse.ensure_partitions(months)
        return months

    async def read_target(self, table: str, first_day: date, last_day: date) -> list[dict[str, Any]]:
        """Rows of a built-in target (``aggregated_health_metrics``, ``user_engagement``,
        ``system_performance``, ``cgm_daily``, ``cgm_14d``) whose day (or hour) is in
        ``[first_day, last_day]``."""
        target = TARGETS.get(table) or CGM_TARGETS.get(table)
        if target is None:
            raise ValueError(f"unknown target {table[:64]!r}; known: {sorted([*TARGETS, *CGM_TARGETS])}")
        column = quote_ident(target.time_column)
        bounds: tuple[Any, Any] = (first_day, last_day)
        if target.time_column not in ("day", "local_day"):
            bounds = (datetime.combine(first_day, datetime.min.time(), UTC),
                      datetime.combine(last_day, datetime.max.time(), UTC))
        rows = await self.warehouse.pool.fetch(
            f"SELECT * FROM {quote_ident(self.warehouse.schema)}.{quote_ident(target.name)}"
            f" WHERE {column} BETWEEN $1 AND $2 ORDER BY 1, 2", *bounds)
        return [dict(r) for r in rows]


class BatchDataProcessor:
    """Runs ETL work without registering it: an ad-hoc job config, or a topic backfill.

    Runs are recorded in ``etl_job_runs`` like every run (``job_id`` NULL for ad-hoc ones).
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or settings_from()

    async def process(self, job_config: ETLJobConfig | Mapping[str, Any],
                      interval: tuple[datetime, datetime] | None = None) -> dict[str, Any]:
        """Run ``job_config`` once (its schedule's latest interval unless given); the run summary."""
        job = as_job(job_config)
        async with DataWarehouseManager(self.settings) as wh:
            runner = JobRunner(self.settings, wh.warehouse)
            return run_summary(await runner.run(job, RunOptions(trigger="python", registered=False,
                                                                interval=interval)))

    async def backfill(self, topic: str, start: str, end: str | None = None) -> dict[str, Any]:
        """Replay ``topic`` from ``start`` to ``end`` (see :func:`batch.api.backfill`)."""
        return run_summary(await api.backfill(self.settings, topic, start, end, trigger="python"))


class DataPipelineManager:
    """The whole pipeline from the specification's three arguments.

    ``db_session``: None (a pool is opened from ``warehouse_config``), or an asyncpg pool or
    connection, used for the migrations and the job registry (runs always open their own
    pool, as :func:`batch.api.run_job` does, so a long run never starves the caller's).
    """

    def __init__(self, db_session: asyncpg.Pool | asyncpg.Connection | None = None,
                 kafka_config: Mapping[str, Any] | None = None,
                 warehouse_config: Mapping[str, Any] | None = None, *,
                 settings: Settings | None = None) -> None:
        self.db = db_session
        self.kafka_config = dict(kafka_config or {})
        self.settings = settings_from(kafka_config, warehouse_config, settings)

    async def setup_pipeline_infrastructure(self) -> dict[str, Any]:
        """Topics (raw, DLQ, profiles, and every topic of ``kafka_config``), migrations, coming
        partitions. Idempotent. Returns ``topics_created``, ``migrations_applied``, ``partitions``."""
        created = await create_topics(self.settings)
        for name in self.kafka_config.get("topics") or ():
            created += await create_topics(self.settings.model_copy(update={"raw_topic": name}))
        applied: list[int] = []
        if self.db is not None:
            if isinstance(self.db, asyncpg.Pool):
                async with self.db.acquire() as conn:
                    applied = await apply_migrations(conn, self.settings.warehouse_schema)
            else:
                applied = await apply_migrations(self.db, self.settings.warehouse_schema)
        async with DataWarehouseManager(self.settings) as wh:
            applied += wh.warehouse.applied_migrations
            months = await wh.ensure_partitions()
        return {"topics_created": sorted(set(created)), "migrations_applied": applied,
                "partitions": [f"health_readings_p{m:%Y%m}" for m in months]}

    async def register_job(self, job_config: ETLJobConfig | Mapping[str, Any]) -> ETLJobConfig:
        """Create the job, or replace the config of the job with its ``job_id`` (an upsert)."""
        job = as_job(job_config)
        if self.db is not None:
            return await _upsert(self.db, self.settings.warehouse_schema, job)
        async with DataWarehouseManager(self.settings) as wh:
            return await _upsert(wh.warehouse.pool, self.settings.warehouse_schema, job)

    async def run_complete_pipeline(self, job_config: ETLJobConfig | Mapping[str, Any], *,
                                    interval: tuple[datetime, datetime] | None = None) -> dict[str, Any]:
        """Register (upsert) ``job_config`` and run it now to its end (its schedule's latest
        interval unless ``interval`` is given). Returns :func:`run_summary` of the run: a failed
        or gated run is returned with its status, not raised."""
        job = await self.register_job(job_config)
        return run_summary(await api.run_job(self.settings, job.job_id, trigger="python", interval=interval))


async def _upsert(db: registry.Executor, schema: str, job: ETLJobConfig) -> ETLJobConfig:
    try:
        return await registry.replace_job(db, schema, job)
    except JobNotFound:
        return await registry.insert_job(db, schema, job)
