"""The spark image's entrypoint (deploy/docker/spark-entrypoint.sh), in `executor` mode, starts
an executor that registers with a driver and runs its tasks: what Spark on Kubernetes does with
every executor pod, here on loopback with the installed Spark and no Kubernetes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipeline_support import ROOT, free_port
from spark_support import (
    Pipelines,
    StandaloneCluster,
    cli_env,
    every_form,
    everything,
    produce,
    spark_home,
    stored,
)

from batch import api
from batch.spark_jars import connector_jars

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENTRYPOINT = ROOT / "deploy" / "docker" / "spark-entrypoint.sh"


def _wait_for_port(port: int, driver: subprocess.Popen[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and driver.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.5)
    raise AssertionError(f"the driver never listened on {port} (exit {driver.poll()})")


def _finish(driver: subprocess.Popen[str], executor: subprocess.Popen[bytes], timeout: float = 300
            ) -> tuple[str, str]:
    """The driver's output once it ends; fails at once if the executor fails first (it ends
    with 0 when the driver stops it, before the driver itself has finished)."""
    deadline = time.monotonic() + timeout
    while driver.poll() is None:
        assert executor.poll() in (None, 0), f"the executor failed with exit status {executor.returncode}"
        assert time.monotonic() < deadline, "the driver did not finish"
        time.sleep(0.5)
    out, err = driver.communicate()
    return out, err


def _executor_env(driver_port: int, jars: Path) -> dict[str, str]:
    """What Spark on Kubernetes sets in an executor pod (BasicExecutorFeatureStep), and the
    image's own SPARK_HOME and SPARK_EXTRA_CLASSPATH."""
    return {"PATH": os.environ["PATH"], "HOME": "/tmp", "SPARK_HOME": spark_home(),
            "SPARK_EXTRA_CLASSPATH": f"{jars}/*",
            "SPARK_DRIVER_URL": f"spark://CoarseGrainedScheduler@127.0.0.1:{driver_port}",
            "SPARK_EXECUTOR_ID": "1", "SPARK_EXECUTOR_CORES": "1", "SPARK_EXECUTOR_MEMORY": "512m",
            "SPARK_APPLICATION_ID": "healthmate-entrypoint-test", "SPARK_RESOURCE_PROFILE_ID": "0",
            "SPARK_EXECUTOR_POD_IP": "127.0.0.1", "SPARK_EXECUTOR_POD_NAME": "healthmate-spark-exec-1",
            "SPARK_JAVA_OPT_0": "-Dhealthmate.entrypoint.test=true"}


async def test_the_entrypoint_starts_an_executor_that_runs_the_replay(
        pipelines: Pipelines, recent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    await produce(pipelines.worker, every_form(recent, 200, "entry"))
    port = free_port()
    # The driver on a known port, as spark.driver.port of k8s/spark/configmap.yaml does.
    env = {**cli_env(pipelines.spark),
           "PYSPARK_SUBMIT_ARGS": f"--conf spark.driver.port={port} pyspark-shell"}
    jars = connector_jars(pipelines.spark.spark_jars_dir)[0].parent
    # A master without workers: the driver's tasks can only run on the entrypoint's executor.
    with StandaloneCluster(workers=0) as cluster:
        driver = subprocess.Popen(
            [sys.executable, "-m", "batch", "replay", "--engine", "spark", "--master", cluster.url,
             pipelines.spark.raw_topic, everything(pipelines.spark)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        executor = None
        try:
            await asyncio.to_thread(_wait_for_port, port, driver)
            executor = subprocess.Popen([str(ENTRYPOINT), "executor"], env=_executor_env(port, jars),
                                        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
            out, err = await asyncio.to_thread(_finish, driver, executor)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait(timeout=30)
            if executor is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(executor.pid, signal.SIGTERM)
                executor.wait(timeout=30)
    assert driver.returncode == 0, err[-2000:]
    assert json.loads(out)["status"] == "succeeded"
    by_worker = await api.backfill(pipelines.worker, pipelines.worker.raw_topic, everything(pipelines.worker))
    assert by_worker.status == "succeeded"
    rows, dead = await stored(pipelines.spark)
    assert rows and (rows, dead) == await stored(pipelines.worker)
