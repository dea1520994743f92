# ruff: noqa: F811 - pytest fixtures imported from batch_support are used as parameters
"""A real Airflow (``airflow dags test``, SQLite metadata DB in a temp AIRFLOW_HOME) runs a
generated ETL-job DAG and the backfill DAG against the real Kafka and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from batch_support import reading, table_rows
from pipeline_support import ROOT

from batch import api
from streams.setup import create_topics
from streams.sink.migrations import quote_ident

pytestmark = [pytest.mark.integration, pytest.mark.slow]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def airflow_env(settings, home: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HEALTHMATE_"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "batch" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "HEALTHMATE_PSEUDONYM_KEY": settings.pseudonym_key.get_secret_value(), "HEALTHMATE_DEV_MODE": "false",
        "HEALTHMATE_PG_DSN": settings.pg_dsn_value, "HEALTHMATE_WAREHOUSE_SCHEMA": settings.warehouse_schema,
        "HEALTHMATE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "HEALTHMATE_RAW_TOPIC": settings.raw_topic,
        "HEALTHMATE_DLQ_TOPIC": settings.dlq_topic})
    return env


def airflow(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([AIRFLOW, *args], env=env, cwd=env["AIRFLOW_HOME"], capture_output=True,
                          text=True, timeout=timeout)
    output = f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"airflow {' '.join(args)} failed:\n{output}"
    return proc


async def test_airflow_runs_a_job_dag_and_the_backfill_dag(batch_settings, warehouse, seeded, day0, tmp_path,
                                                           kafka_bootstrap) -> None:
    settings = batch_settings
    job = await api.create_job(warehouse, {
        "job_id": "airflow_daily", "job_name": "Airflow daily",
        "target_tables": ["aggregated_health_metrics", "user_engagement"],
        "schedule": "0 3 * * *", "retry_count": 2, "timeout_minutes": 5})
    await api.create_job(warehouse, {"job_name": "switched_off", "target_tables": ["user_engagement"],
                                     "enabled": False})
    await create_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        base = datetime.now(UTC) - timedelta(hours=2)
        for i in range(6):
            doc = reading("dora", "steps", 100 * i, "count", base + timedelta(minutes=i), event_id=f"af-{i}")
            await producer.send_and_wait(settings.raw_topic, orjson.dumps(doc), key=b"dora",
                                         partition=i % 2)
    finally:
        await producer.stop()
    env = airflow_env(settings, tmp_path)
    airflow(env, "db", "migrate")

    # The factory's DAGs, as Airflow's own parser sees them: schedule, retries, timeout mapped.
    probe = subprocess.run([sys.executable, "-c", (
        "import json; from airflow.dag_processing.dagbag import DagBag;"
        "bag = DagBag();"
        "d = bag.get_dag('healthmate_etl_airflow_daily'); t = d.get_task('run_job');"
        "print(json.dumps({'dags': sorted(bag.dag_ids), 'errors': list(bag.import_errors),"
        " 'cron': d.schedule, 'retries': t.retries,"
        " 'timeout': t.execution_timeout.total_seconds(),"
        " 'backoff': t.retry_exponential_backoff, 'op_kwargs': t.op_kwargs}))")],
        env=env, capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-4000:]
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    assert seen == {"dags": ["healthmate_backfill", "healthmate_etl_airflow_daily"], "errors": [],
                    "cron": "0 3 * * *", "retries": 2, "timeout": 360.0, "backoff": 2.0,
                    "op_kwargs": {"job_id": str(job.job_id)}}

    conf = {"interval_start": (day0 - timedelta(days=2)).isoformat(), "interval_end": seeded.isoformat()}
    airflow(env, "dags", "test", "healthmate_etl_airflow_daily", "-c", json.dumps(conf))
    s = quote_ident(settings.warehouse_schema)
    expected = await warehouse.pool.fetch(
        "SELECT (measured_at AT TIME ZONE 'UTC')::date, user_key, metric, count(*), min(value), max(value)"
        f" FROM {s}.health_readings GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    got = await table_rows(warehouse.pool, s, "aggregated_health_metrics")
    assert [(r["day"], r["user_key"], r["metric"], r["count"], r["min"], r["max"]) for r in got] == \
        [tuple(r) for r in expected]
    assert len(await table_rows(warehouse.pool, s, "user_engagement")) == 5
    (run,) = await api.list_runs(warehouse, job.job_id)
    assert (run.status, run.trigger, run.attempt, run.progress) == ("succeeded", "airflow", 1, 100)

    airflow(env, "dags", "test", "healthmate_backfill", "-c",
            json.dumps({"topic": settings.raw_topic, "start": "0:0,1:0"}))
    replayed = await warehouse.pool.fetch(f"SELECT event_id, value FROM {s}.health_readings"
                                          " WHERE event_id LIKE 'af-%' ORDER BY event_id")
    assert [(r["event_id"], r["value"]) for r in replayed] == [(f"af-{i}", 100.0 * i) for i in range(6)]
    backfill = next(r for r in await api.list_runs(warehouse) if r.job_name == "healthmate_backfill")
    assert (backfill.status, backfill.trigger, backfill.job_id, backfill.rows_loaded) == \
        ("succeeded", "airflow", None, 6)
