"""ETL jobs and their lineage, through :mod:`batch.api`.

``POST /etl-jobs/{job_id}/run`` answers 202 with the ``run_id`` as soon as the job is known
to exist, and runs it in the background of this worker (``batch.api.run_job`` opens its own
pool, so a long run never starves the API). Follow it with ``GET .../runs/{run_id}`` (the
``Location`` header); until the runner has written its row the worker answers it from
memory with status ``accepted``. A worker that stops
cancels its runs, which the runner records as ``failed: cancelled``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from mode import Service
from pydantic import AwareDatetime, Field, TypeAdapter, model_validator

import batch.api as batch
from batch.config import JOB_ID_PATTERN, ETLJobConfig, PipelineType
from batch.errors import InvalidRange, JobNameTaken, JobNotFound, RunNotFound
from batch.registry import RunRecord
from streams.domain.outbound import check_outbound_url, mask_url
from streams.errors import OutboundRefused
from web import responses
from web.api import API_PREFIX, Api, Call, Reply, Route
from web.auth import Permission
from web.errors import Conflict, Forbidden, InvalidInput, NotFound, register_domain_error
from web.models import Strict

log = logging.getLogger(__name__)

# Fixed texts: the exceptions' own messages name the caller's ids (a 404 must not echo them).
register_domain_error(JobNotFound, NotFound, message="no ETL job with this id")
register_domain_error(RunNotFound, NotFound, message="no run with this id")
register_domain_error(JobNameTaken, Conflict, message="an ETL job with this name or id exists already")
register_domain_error(InvalidRange, InvalidInput, message="the replay range does not fit the topic "
                      "(unknown topic or partition, or a bad position)")

RECENT_RUNS = 10


class JobPath(Strict):
    job_id: str = Field(pattern=JOB_ID_PATTERN, description="The job's id (given at creation, or generated).")


class RunPath(Strict):
    job_id: str = Field(pattern=JOB_ID_PATTERN)
    run_id: uuid.UUID


class ListQuery(Strict):
    enabled: bool | None = Field(None, description="Only enabled (true) or disabled (false) jobs.")


class RunBody(Strict):
    """An explicit interval for a batch job; by default the schedule decides."""

    interval_start: AwareDatetime | None = None
    interval_end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> RunBody:
        if (self.interval_start is None) != (self.interval_end is None):
            raise ValueError("give both interval_start and interval_end, or neither")
        if self.interval_start and self.interval_end and self.interval_start >= self.interval_end:
            raise ValueError("interval_start must be before interval_end")
        return self


def _check_replay(call: Call, job: ETLJobConfig) -> None:
    if job.pipeline_type == PipelineType.REPLAY and not call.principal.may(Permission.REPLAY):
        raise Forbidden(f"replay jobs need the {Permission.REPLAY} permission")


def _check_webhook(api: Api, job: ETLJobConfig) -> None:
    """The SSRF guard at config time (the runner checks again, after DNS, before each send)."""
    if job.notification_webhook_url is None:
        return
    try:
        check_outbound_url(str(job.notification_webhook_url), api.settings.outbound_allow_host_list)
    except OutboundRefused as exc:
        raise InvalidInput("request validation failed", fields=[
            {"loc": ["body", "notification_webhook_url"], "msg": str(exc), "type": "value_error"}]) from None


def _shown(call: Call, job: ETLJobConfig) -> dict[str, Any]:
    """The job as this caller may see it: webhook credentials and query values masked for
    callers who cannot write jobs."""
    shown = job.to_json_dict()
    url = shown.get("notification_webhook_url")
    if url and not call.principal.may(Permission.WRITE_JOBS):
        shown["notification_webhook_url"] = mask_url(url)
    return shown


async def create(api: Api, call: Call) -> Reply:
    job: ETLJobConfig = call.body
    call.target = f"job_id={job.job_id} job_name={job.job_name}"
    _check_replay(call, job)
    _check_webhook(api, job)
    created = await batch.create_job(api.warehouse, job)
    return Reply(created.to_json_dict(), status=201,
                 headers={"Location": f"{API_PREFIX}/etl-jobs/{created.job_id}"})


async def update(api: Api, call: Call) -> dict[str, Any]:
    job: ETLJobConfig = call.body
    call.target = f"job_id={call.path.job_id} job_name={job.job_name}"
    if "job_id" in job.model_fields_set and job.job_id != call.path.job_id:
        raise Conflict("the body's job_id is not the job in the path; a job's id never changes")
    _check_replay(call, job)
    _check_webhook(api, job)
    return (await batch.update_job(api.warehouse, call.path.job_id, job)).to_json_dict()


async def list_jobs(api: Api, call: Call) -> dict[str, Any]:
    jobs = await batch.list_jobs(api.warehouse, enabled=call.query.enabled)
    return {"jobs": [_shown(call, j) for j in jobs]}


async def get_job(api: Api, call: Call) -> dict[str, Any]:
    """Config, the latest runs (newest first), and the progress of any running one."""
    job = await batch.get_job(api.warehouse, call.path.job_id)
    runs = await batch.list_runs(api.warehouse, job.job_id, limit=RECENT_RUNS)
    running = [_run_json(r) for r in runs if r.status == "running"]
    return {"job": _shown(call, job), "runs": [_run_json(r) for r in runs], "running": running}


async def get_run(api: Api, call: Call) -> dict[str, Any]:
    try:
        run = await batch.get_run(api.warehouse, call.path.run_id)
    except RunNotFound:
        accepted = api.extensions["etl_runs"].accepted.get(call.path.run_id)
        if accepted != call.path.job_id:
            raise
        return {"run_id": call.path.run_id, "job_id": accepted, "status": "accepted", "progress": 0}
    if run.job_id != call.path.job_id:
        raise NotFound("no run with this id for this ETL job")
    return _run_json(run)


def _run_json(run: RunRecord) -> dict[str, Any]:
    # Not RunRecord.to_json_dict(): orjson refuses the asyncpg UUIDs of fetched rows. The
    # response encoder writes any UUID (and datetime) as a string.
    return dataclasses.asdict(run)


async def delete_job(api: Api, call: Call) -> dict[str, Any]:
    await batch.delete_job(api.warehouse, call.path.job_id)
    api.metrics.forget_etl_job(call.path.job_id)
    return {"deleted": call.path.job_id}


async def run(api: Api, call: Call) -> Reply:
    job = await batch.get_job(api.warehouse, call.path.job_id)
    _check_replay(call, job)
    body: RunBody = call.body
    interval: tuple[datetime, datetime] | None = (
        (body.interval_start, body.interval_end) if body.interval_start and body.interval_end else None)
    run_id = uuid.uuid4()
    call.target = f"job_id={job.job_id} run_id={run_id}"
    release, call.release = call.release, None  # the slot stays taken until the run ends
    api.extensions["etl_runs"].spawn(_run_in_background(api, job.job_id, run_id, interval, release),
                                     run_id=run_id, job_id=job.job_id)
    location = f"{API_PREFIX}/etl-jobs/{job.job_id}/runs/{run_id}"
    return Reply({"run_id": str(run_id), "job_id": job.job_id, "job_name": job.job_name,
                  "status": "accepted", "location": location}, status=202, headers={"Location": location})


class BackgroundRuns(Service):
    """Holds the ETL runs this worker's API started. Stopping the worker cancels them and
    waits (up to 10 s) for the runner to record them as ``failed: cancelled``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tasks: set[asyncio.Task] = set()
        self.accepted: dict[uuid.UUID, str] = {}  # run_id -> job_id, until the task ends

    def spawn(self, coroutine: Coroutine[Any, Any, None], *, run_id: uuid.UUID, job_id: str) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        self.accepted[run_id] = job_id
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda _: self.accepted.pop(run_id, None))

    async def on_stop(self) -> None:
        pending = list(self.tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)


async def _run_in_background(api: Api, job_id: str, run_id: uuid.UUID,
                             interval: tuple[datetime, datetime] | None,
                             release: Callable[[], None] | None = None) -> None:
    try:
        record = await batch.run_job(api.settings, job_id, run_id=run_id, trigger="api", interval=interval,
                                     metrics=api.metrics)
        log.info("ETL run %s of job %s finished: %s", run_id, job_id, record.status)
    except Exception as exc:  # noqa: BLE001 - a background task has nobody else to tell
        log.error("ETL run %s of job %s could not run: %s", run_id, job_id, type(exc).__name__)
    finally:
        if release is not None:
            release()


async def lineage(api: Api, call: Call) -> dict[str, Any]:
    return await batch.job_lineage(api.warehouse, api.settings, call.path.job_id)


ROUTES = [
    Route("POST", "/etl-jobs", "etl_jobs.create", "Register an ETL job (201 with its config and Location).",
          create, Permission.WRITE_JOBS, body_model=ETLJobConfig, status=201, tag="etl-jobs",
          response=ETLJobConfig, errors=(409,), headers=("Location",)),
    Route("GET", "/etl-jobs", "etl_jobs.list", "Every registered ETL job.", list_jobs,
          Permission.READ_JOBS, query_model=ListQuery, tag="etl-jobs", response=responses.JobList),
    Route("GET", "/etl-jobs/{job_id}", "etl_jobs.get", "A job's config, latest runs and progress.",
          get_job, Permission.READ_JOBS, path_model=JobPath, tag="etl-jobs", response=responses.JobDetail,
          errors=(404,)),
    Route("PUT", "/etl-jobs/{job_id}", "etl_jobs.update",
          "Replace a job's config (the job_id stays; run history is kept). A body job_id other "
          "than the path's answers 409.", update, Permission.WRITE_JOBS, path_model=JobPath,
          body_model=ETLJobConfig, tag="etl-jobs", response=ETLJobConfig, errors=(404, 409)),
    Route("DELETE", "/etl-jobs/{job_id}", "etl_jobs.delete", "Remove a job (its run history stays).",
          delete_job, Permission.DELETE_JOBS, path_model=JobPath, tag="etl-jobs", response=responses.Deleted,
          errors=(404,)),
    Route("POST", "/etl-jobs/{job_id}/run", "etl_jobs.run",
          "Start a run in the background; 202 with its run_id and Location (which answers at once: "
          "status `accepted` until the runner has started).", run, Permission.RUN_JOBS,
          path_model=JobPath, body_model=RunBody, status=202, tag="etl-jobs", response=responses.RunStarted,
          errors=(404,), headers=("Location",), heavy=True),
    Route("GET", "/etl-jobs/{job_id}/runs/{run_id}", "etl_jobs.run_status", "One run of a job.",
          get_run, Permission.READ_JOBS, path_model=RunPath, tag="etl-jobs",
          response=TypeAdapter(RunRecord | responses.AcceptedRun), errors=(404,)),
    Route("GET", "/data-lineage/{job_id}", "lineage.get",
          "The job's lineage graph: sources, transformations, targets, edges, last run.", lineage,
          Permission.READ_LINEAGE, path_model=JobPath, tag="lineage", response=responses.Lineage,
          errors=(404,)),
]
