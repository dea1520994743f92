"""Airflow glue: build the DAGs and run their tasks. The files in ``batch/dags/`` only call this.

- One DAG per enabled job in ``etl_jobs`` (read when Airflow parses the folder), id
  ``HEALTHMATE_AIRFLOW_DAG_PREFIX + job_id``, scheduled by the job's cron (``None``:
  manual). Airflow owns the retries (``retry_count``, exponential backoff from
  ``HEALTHMATE_AIRFLOW_RETRY_DELAY_S``) and the task timeout (``timeout_minutes`` plus a
  minute, so the runner's own timeout fires first and records ``timed_out``); each try is
  one attempt of the same run row (run id derived from the DAG run). A quality-gate
  failure or an invalid range fails the task without retries. Params ``interval_start``/``interval_end``
  (ISO-8601) override the interval.
- ``healthmate_backfill``: manual, params ``topic``, ``start``, ``end`` (``P:O[,P:O]``
  offsets or ISO-8601 times; ``end`` empty: to the current end), ``publish_dead_letters`` and
  ``engine`` (``worker``, the default, or ``spark``: Apache Spark on ``HEALTHMATE_SPARK_MASTER``).

Tasks read their configuration from the ``HEALTHMATE_*`` environment of the Airflow worker
(``make airflow`` exports it). Incomplete settings fail the DAG file's import with one clear
message (shown by ``airflow dags list-import-errors``), and a task with incomplete settings
or params fails at once, without retries.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from batch.config import ETLJobConfig

log = logging.getLogger(__name__)
START_DATE = datetime(2024, 1, 1, tzinfo=UTC)
BACKFILL_DAG_ID = "healthmate_backfill"


class SettingsIncomplete(Exception):
    """The ``HEALTHMATE_*`` environment of this Airflow process does not make valid settings."""


def _settings():  # type: ignore[no-untyped-def]
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from streams.cli import describe_settings_error
    from streams.config import Settings
    from streams.errors import ConfigurationError

    try:
        return Settings()
    except (ConfigurationError, ValidationError, SettingsError) as exc:
        raise SettingsIncomplete(f"HealthMate settings for Airflow: {describe_settings_error(exc)} "
                                 "(make airflow exports them)") from None


def _task_settings():  # type: ignore[no-untyped-def]
    """Settings inside a task: incomplete ones fail the task at once, with no retry."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return _settings()
    except SettingsIncomplete as exc:
        raise AirflowFailException(str(exc)) from None


async def _enabled_jobs(settings: Any) -> list[ETLJobConfig]:
    from batch.registry import fetch_jobs
    from streams.connections import pg_connect

    conn = await pg_connect(settings, timeout=10)
    try:
        return await fetch_jobs(conn, settings.warehouse_schema, enabled=True)
    finally:
        await conn.close()


def build_job_dags() -> dict[str, Any]:
    """``{dag_id: DAG}`` for every enabled job; empty (and logged) if the registry is unreachable.
    Raises ``SettingsIncomplete`` (an import error Airflow lists) when the settings are."""
    settings = _settings()
    try:
        jobs = asyncio.run(_enabled_jobs(settings))
    except Exception as exc:  # noqa: BLE001 - a parse must not crash on a missing registry
        log.error("no HealthMate job DAGs: the job registry could not be read (%s)", type(exc).__name__)
        return {}
    return {settings.airflow_dag_prefix + job.job_id: job_dag(job, settings) for job in jobs}


def job_dag(job: ETLJobConfig, settings: Any) -> Any:
    """The DAG of one job: a single ``run_job`` task calling :func:`run_job_task`."""
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG, Param

    with DAG(
        dag_id=settings.airflow_dag_prefix + job.job_id, schedule=job.schedule, start_date=START_DATE,
        catchup=False, max_active_runs=1, tags=["healthmate", "etl", str(job.pipeline_type)],
        description=f"HealthMate ETL job {job.job_name} ({job.job_id})",
        params={"interval_start": Param(None, type=["null", "string"]),
                "interval_end": Param(None, type=["null", "string"])},
        default_args={
            "owner": settings.airflow_owner, "retries": job.retry_count,
            "retry_delay": timedelta(seconds=settings.airflow_retry_delay_s),
            "retry_exponential_backoff": 2.0,
            "execution_timeout": timedelta(minutes=job.timeout_minutes + 1)},
    ) as dag:
        PythonOperator(task_id="run_job", python_callable=run_job_task, op_kwargs={"job_id": str(job.job_id)})
    return dag


def backfill_dag() -> Any:
    """The manual ``healthmate_backfill`` DAG: one ``replay`` task calling :func:`backfill_task`."""
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG, Param

    with DAG(
        dag_id=BACKFILL_DAG_ID, schedule=None, start_date=START_DATE, catchup=False,
        tags=["healthmate", "replay"], description="Replay a topic range through the pipeline, idempotently",
        params={"topic": Param(None, type=["null", "string"]), "start": Param(None, type=["null", "string"]),
                "end": Param(None, type=["null", "string"]),
                "publish_dead_letters": Param(False, type="boolean"),
                "engine": Param("worker", enum=["worker", "spark"])},
        default_args={"owner": "healthmate", "retries": 2, "retry_delay": timedelta(seconds=30),
                      "retry_exponential_backoff": 2.0},
    ) as dag:
        PythonOperator(task_id="replay", python_callable=backfill_task)
    return dag


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return datetime.fromtimestamp(value.timestamp(), UTC)


def _run_id(context: dict[str, Any]) -> uuid.UUID:
    dag_run = context["dag_run"]
    return uuid.uuid5(uuid.NAMESPACE_URL, f"airflow:{dag_run.dag_id}:{dag_run.run_id}")


def _outcome(record: Any) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException

    from batch.errors import is_final

    if record.status == "succeeded":
        return record.to_json_dict()
    message = f"run {record.run_id} {record.status}: {record.error}"
    if is_final(record.error):
        raise AirflowFailException(message)  # the same input would fail again: no retry
    raise RuntimeError(message)


def run_job_task(job_id: str, **context: Any) -> dict[str, Any]:
    """Airflow callable of a job DAG: one attempt of the DAG run's run; raises unless it succeeded."""
    from batch.api import run_job

    params = context.get("params") or {}
    start, end = _aware(params.get("interval_start")), _aware(params.get("interval_end"))
    as_of = _aware(context.get("data_interval_end") or context.get("logical_date"))
    record = asyncio.run(run_job(
        _task_settings(), job_id, trigger="airflow", run_id=_run_id(context),
        attempt=context["ti"].try_number, max_attempts=1, interval=(start, end) if start and end else None,
        as_of=as_of))
    return _outcome(record)


def backfill_task(**context: Any) -> dict[str, Any]:
    """Airflow callable of ``healthmate_backfill``: replay the params' range; raises unless it succeeded."""
    from airflow.sdk.exceptions import AirflowFailException

    from batch.api import backfill
    from batch.errors import InvalidRange
    from batch.replay import replay_range_of
    from streams.cli import one_line

    params = context.get("params") or {}
    if not params.get("topic") or not params.get("start"):  # the same params would fail again: no retry
        raise AirflowFailException("healthmate_backfill needs the params 'topic' and 'start', e.g. "
                                   "-c '{\"topic\": \"health.readings.raw\", \"start\": \"0:0\"}'")
    try:
        replay_range_of(params["topic"], params["start"], params.get("end") or None,
                        engine=params.get("engine") or "worker")
    except (InvalidRange, ValueError) as exc:
        raise AirflowFailException(f"healthmate_backfill: bad range: {one_line(exc)}") from None
    settings = _task_settings()
    record = asyncio.run(backfill(
        settings, params["topic"], params["start"], params.get("end") or None,
        publish_dead_letters=bool(params.get("publish_dead_letters")),
        engine=params.get("engine") or "worker", trigger="airflow", run_id=_run_id(context),
        attempt=context["ti"].try_number, max_attempts=1))
    return _outcome(record)
