# ruff: noqa: F811 - pytest fixtures imported from batch_support are used as parameters
"""``make airflow`` and ``make airflow-test`` as docs/how-to/batch-jobs.md gives them, on the local stack.

Each runs the real Makefile target with its own AIRFLOW_HOME (HEALTHMATE_AIRFLOW_HOME) and
a job registered in a throwaway schema: the job's DAG must be listed, a backfill without
its params must fail at once with a clear message, no retry, the run's and the failed task's
state printed and a non-zero exit (a run that succeeds: exit 0), and incomplete settings
must stop before Airflow starts (one line, exit 2 from scripts/airflow.sh).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipeline_support import ROOT, drop_pipeline_resources

from batch import api
from streams.setup import create_topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]
VENV = Path(sys.executable).parent.parent


def make(target: str, env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    # -o: never rebuild the venv from here; VENV: the interpreter running the tests.
    return subprocess.run(["make", "-s", f"VENV={VENV}", "-o", f"{VENV}/.installed", target, *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def make_env(settings, home: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HEALTHMATE_"))}
    env.update({"HEALTHMATE_AIRFLOW_HOME": str(home), "PYTHONPATH": str(ROOT),
                "HEALTHMATE_WAREHOUSE_SCHEMA": settings.warehouse_schema,
                "HEALTHMATE_PG_DSN": settings.pg_dsn_value,
                "HEALTHMATE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap})
    return env


async def test_make_airflow_lists_job_dags_and_airflow_test_fails_fast(batch_settings, warehouse,
                                                                     tmp_path) -> None:
    await api.create_job(warehouse, {"job_id": "make_daily", "job_name": "Make daily",  # DAG id from job id
                                     "target_tables": ["user_engagement"],
                                     "schedule": "0 4 * * *"})
    env = make_env(batch_settings, tmp_path / "airflow")
    prepared = make("airflow", env)
    assert prepared.returncode == 0, prepared.stdout[-3000:] + prepared.stderr[-3000:]
    assert "local stack, using the development configuration" in prepared.stderr
    listed = [line.strip() for line in prepared.stdout.splitlines() if line.startswith("  ")]
    assert listed == ["healthmate_backfill", "healthmate_etl_make_daily"], prepared.stdout

    started = time.monotonic()
    failed = make("airflow-test", env, "DAG=healthmate_backfill", "PARAMS={}")
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "healthmate_backfill needs the params 'topic' and 'start'" in output, output[-3000:]
    assert "up_for_retry" not in output.lower() and "up for retry" not in output.lower()
    assert time.monotonic() - started < 120, "a missing param must not wait for retries"
    # The verdict is printed: the run's final state and the failed task by name.
    verdict = [line for line in failed.stdout.splitlines() if line.startswith("airflow-test:")]
    assert len(verdict) == 2, output[-3000:]
    assert re.fullmatch(r"airflow-test: healthmate_backfill run manual__\S+: failed", verdict[0]), verdict
    assert verdict[1] == "airflow-test:   task replay: failed (try 1)", verdict


async def test_make_airflow_test_prints_success_and_exits_zero(batch_settings, warehouse, tmp_path) -> None:
    """The same target on a run that succeeds (a replay of an empty topic) exits 0 and says so."""
    await create_topics(batch_settings)
    try:
        env = make_env(batch_settings, tmp_path / "airflow")
        assert make("airflow", env).returncode == 0
        params = json.dumps({"topic": batch_settings.raw_topic, "start": "0:0"})
        ran = make("airflow-test", env, "DAG=healthmate_backfill", f"PARAMS={params}")
        verdict = [line for line in ran.stdout.splitlines() if line.startswith("airflow-test:")]
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        assert re.fullmatch(r"airflow-test: healthmate_backfill run manual__\S+: success", verdict[0])
        assert verdict[1:] == ["airflow-test:   task replay: success (try 1)"], verdict
    finally:
        await drop_pipeline_resources(batch_settings)


def test_incomplete_settings_stop_before_airflow(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HEALTHMATE_"))}
    env.update({"HEALTHMATE_AIRFLOW_HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
                "HEALTHMATE_DEV_MODE": "false"})
    env["PYTHON"] = sys.executable
    result = subprocess.run(["bash", "scripts/airflow.sh", "prepare"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)  # what `make airflow` runs; make itself exits 2 always
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "healthmate: configuration error: HEALTHMATE_PSEUDONYM_KEY is not set. Set it, or set "
        "HEALTHMATE_DEV_MODE=true for local development with a fixed, non-secret key."]
    assert not (tmp_path / "airflow.db").exists(), "Airflow must not have started"
