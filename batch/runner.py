"""The job runner: one run = attempts with backoff, under a timeout, recorded and reported.

For each run: a ``running`` row in ``etl_job_runs`` and an OpenLineage START event; then up
to ``retry_count + 1`` attempts (exponential backoff with jitter between them, sleep and
randomness injectable); the whole run is bounded by ``timeout_minutes`` (the attempt in
flight is cancelled and the run recorded ``timed_out``). A quality-gate failure or an
invalid range is not retried. At the end: the final row, a COMPLETE or FAIL event, the
``healthmate_etl_*`` metrics, and the webhook (which never fails the run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from openlineage.client.event_v2 import RunState

import batch.lineage as lineage
import batch.registry as registry
from batch.config import ETLJobConfig, PipelineType
from batch.errors import InvalidRange, QualityGateFailed
from batch.notify import post_summary
from batch.outbound import outbound_session
from batch.pipeline import AttemptResult, BatchPipeline, day_bounds
from batch.quality_gate import QualityTally, QualityVerdict
from batch.replay import replay, resolve_bounds
from batch.schedule import resolve_interval
from streams.clock import utc_now
from streams.config import Settings
from streams.errors import HealthMateError
from streams.logs import bind_run_id
from streams.metrics import Metrics
from streams.sink.warehouse import Warehouse

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]
NOT_RETRIED = (QualityGateFailed, InvalidRange)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run: ``interval`` overrides the schedule's; ``as_of`` is the schedule's "now"
    (default: the clock); ``attempt`` numbers the first attempt (Airflow's try number);
    ``max_attempts`` defaults to ``retry_count + 1`` (Airflow passes 1 and retries itself);
    ``registered`` is False for ad-hoc jobs that are not in ``etl_jobs``."""

    trigger: str = "manual"
    run_id: uuid.UUID | None = None
    interval: tuple[datetime, datetime] | None = None
    as_of: datetime | None = None
    attempt: int = 1
    max_attempts: int | None = None
    registered: bool = True


class JobRunner:
    """Runs jobs against a started ``warehouse``. Tests inject ``clock``, ``sleep``, ``rng``."""

    def __init__(self, settings: Settings, warehouse: Warehouse, *, clock: Callable[[], datetime] = utc_now,
                 sleep: Sleep = asyncio.sleep, rng: Callable[[], float] = random.random,
                 metrics: Metrics | None = None, progress: Callable[[int], None] | None = None) -> None:
        self.settings = settings
        self.warehouse = warehouse
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.metrics = metrics
        self.on_progress = progress
        self._progress = 0

    def backoff(self, failed_attempts: int) -> float:
        """Delay before the next attempt: doubling from ``etl_retry_initial_s``, capped at
        ``etl_retry_max_s``, times a jitter factor in [0.5, 1)."""
        s = self.settings
        delay = min(s.etl_retry_max_s, s.etl_retry_initial_s * 2 ** (failed_attempts - 1))
        return delay * (0.5 + self.rng() / 2)

    async def run(self, job: ETLJobConfig, options: RunOptions = RunOptions()) -> registry.RunRecord:
        """Run ``job`` to its end and return the final record (a failed run is not raised;
        cancelling the caller records ``failed: cancelled`` and re-raises)."""
        run_id = options.run_id or uuid.uuid4()
        with bind_run_id(str(run_id)):
            record = await self._run(job, options, run_id)
            log.info("ETL run of %s finished: %s", job.job_name, record.status)
        return record

    async def _run(self, job: ETLJobConfig, options: RunOptions, run_id: uuid.UUID) -> registry.RunRecord:
        log.info("ETL run of %s (%s) starting, trigger %s", job.job_name, job.pipeline_type, options.trigger)
        pool, schema = self.warehouse.pool, self.warehouse.schema
        interval = (resolve_interval(job, options.interval, options.as_of or self.clock())
                    if job.pipeline_type == PipelineType.BATCH else None)
        started = self.clock()
        await registry.start_run(pool, schema, run_id=run_id, job=job, registered=options.registered,
                                 trigger=options.trigger, attempt=options.attempt, interval=interval,
                                 started_at=started)
        async with outbound_session(self.settings.outbound_allow_host_list) as session:
            await lineage.record(pool, self.settings, lineage.run_event(
                RunState.START, job, run_id, self.settings, at=started, interval=interval), session)
            reporter = asyncio.create_task(self._report_progress(run_id))
            status, error, result = "succeeded", None, None
            try:
                async with asyncio.timeout(job.timeout_minutes * 60):
                    result = await self._attempts(job, run_id, interval, options)
            except TimeoutError:
                status, error = "timed_out", f"timed out after {job.timeout_minutes:g} minutes"
            except QualityGateFailed as exc:
                status, error = "failed", str(exc)
                verdict = QualityVerdict(exc.score, exc.level, exc.extracted, False)
                result = AttemptResult(exc.extracted, 0, exc.rejected, verdict)
            except asyncio.CancelledError:
                await self._finish(session, job, run_id, started, interval, "failed", "cancelled", None)
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is recorded, then reported
                status, error = "failed", _describe(exc)
            finally:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            return await self._finish(session, job, run_id, started, interval, status, error, result)

    async def _attempts(self, job: ETLJobConfig, run_id: uuid.UUID,
                        interval: tuple[datetime, datetime] | None, options: RunOptions) -> AttemptResult:
        limit = options.max_attempts or job.retry_count + 1
        for n in range(limit):
            attempt = options.attempt + n
            if n:
                await registry.update_run(self.warehouse.pool, self.warehouse.schema, run_id, attempt=attempt,
                                          progress=0)
            self._progress = 0
            try:
                return await self.attempt(job, run_id, interval)
            except NOT_RETRIED:
                raise
            except Exception:
                if n + 1 >= limit:
                    raise
                await self.sleep(self.backoff(n + 1))
        raise AssertionError("unreachable")

    async def attempt(self, job: ETLJobConfig, run_id: uuid.UUID, interval: tuple[datetime, datetime] | None
                      ) -> AttemptResult:
        """One attempt: a batch pipeline over the interval's days, or a replay."""
        tally = QualityTally(self.settings.quality_rules)
        if job.pipeline_type == PipelineType.REPLAY:
            assert job.replay is not None
            if job.replay.engine == "spark":
                from batch.spark_replay import spark_replay  # pyspark loads only for Spark runs

                bounds = await resolve_bounds(self.settings, job.replay)
                stats, _ = await asyncio.to_thread(
                    spark_replay, self.settings, job.replay, bounds, group=f"replay:{run_id}", tally=tally,
                    progress=self._set_progress)
            else:
                stats = await replay(self.settings, self.warehouse, job.replay, group=f"replay:{run_id}",
                                     tally=tally, progress=self._set_progress)
            if self.metrics is not None:
                self.metrics.erased_readings_refused.inc(stats.erased)
            return AttemptResult(stats.messages, stats.stored, stats.dead_letters, tally.verdict(0.0))
        assert interval is not None
        pipeline = BatchPipeline(self.warehouse.pool, self.warehouse.schema, job, tally,
                                 progress=self._set_progress)
        return await pipeline.run(day_bounds(*interval))

    def _set_progress(self, fraction: float) -> None:
        self._progress = max(0, min(100, int(fraction * 100)))
        if self.on_progress is not None:
            self.on_progress(self._progress)

    async def _report_progress(self, run_id: uuid.UUID) -> None:
        written = -1
        while True:
            await asyncio.sleep(0.5)
            if self._progress != written:
                written = self._progress
                await registry.update_run(self.warehouse.pool, self.warehouse.schema, run_id,
                                          progress=written)

    async def _finish(self, session: aiohttp.ClientSession, job: ETLJobConfig, run_id: uuid.UUID,
                      started: datetime, interval: tuple[datetime, datetime] | None, status: str,
                      error: str | None, result: AttemptResult | None) -> registry.RunRecord:
        pool, schema, finished = self.warehouse.pool, self.warehouse.schema, self.clock()
        values: dict[str, Any] = {"status": status, "error": error, "finished_at": finished}
        if result is not None:
            values.update(rows_extracted=result.extracted, rows_loaded=result.loaded,
                          rows_rejected=result.rejected, quality_score=result.quality.score,
                          quality_level=result.quality.level)
        if status == "succeeded":
            values["progress"] = 100
        await registry.update_run(pool, schema, run_id, **values)
        quality = None if result is None else {
            "rows": result.extracted, "score": result.quality.score, "level": result.quality.level,
            "threshold": job.data_quality_threshold}
        state = RunState.COMPLETE if status == "succeeded" else RunState.FAIL
        await lineage.record(pool, self.settings, lineage.run_event(
            state, job, run_id, self.settings, at=finished, interval=interval, quality=quality, error=error),
            session)
        if self.metrics is not None:
            # The label is the job id, never its free-text name (ad-hoc backfills share one id).
            self.metrics.etl_runs.labels(job.job_id, status).inc()
            self.metrics.etl_run_duration.labels(job.job_id).observe((finished - started).total_seconds())
        record = await registry.fetch_run(pool, schema, run_id)
        wanted = job.notification_on_success if status == "succeeded" else job.notification_on_failure
        if wanted and job.notification_webhook_url is not None:
            summary = {"event": "etl_run_finished", **record.to_json_dict()}
            await post_summary(session, str(job.notification_webhook_url), summary,
                               timeout_s=self.settings.etl_http_timeout_s,
                               allow_hosts=self.settings.outbound_allow_host_list)
        return record


def _describe(exc: BaseException) -> str:
    """A PHI-free description: our own errors' messages are PHI-free by contract; for any
    other exception only its type is kept (driver messages may quote row values)."""
    if isinstance(exc, HealthMateError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__

