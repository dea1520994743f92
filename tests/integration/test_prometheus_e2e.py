"""A real Prometheus scrapes a real worker: stored readings and latency histograms arrive."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from pipeline_support import free_port, wait_until_caught_up

from streams.synthetic import SyntheticReadings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def prometheus(tmp_path: Path, pipeline_env: dict[str, str]):
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed: run scripts/install_system_deps.sh"
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: healthmate-worker\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{pipeline_env['HEALTHMATE_WEB_PORT']}']}}]\n"
    )
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


async def query(session: aiohttp.ClientSession, base: str, promql: str) -> list[dict]:
    async with session.get(f"{base}/api/v1/query", params={"query": promql}) as response:
        body = await response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


async def wait_for(session, base, promql: str, timeout: float = 45.0) -> list[dict]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            result = await query(session, base, promql)
        except aiohttp.ClientError:
            result = []
        if result:
            return result
        await asyncio.sleep(0.5)
    raise AssertionError(f"Prometheus never answered {promql!r} with data")


async def test_prometheus_scrapes_stored_readings_and_latency(
    pipeline_settings, raw_producer, pg, worker_process, prometheus
):
    settings = pipeline_settings
    messages = list(SyntheticReadings(datetime.now(UTC), seed=3).messages(600, bad_ratio=0.1))
    expected_stored = sum(code is None for m in messages for code in m.expected)
    worker_process.start()
    for m in messages:
        await raw_producer.send(settings.raw_topic, m.value, key=m.key)
    await raw_producer.flush()
    await wait_until_caught_up(settings, pg, timeout=90, alive=worker_process.alive)

    async with aiohttp.ClientSession() as session:
        stored = await wait_for(
            session, prometheus, f"sum(healthmate_readings_stored_total) >= {expected_stored}")
        assert float(stored[0]["value"][1]) == expected_stored
        buckets = await wait_for(session, prometheus, "healthmate_ingested_to_stored_seconds_bucket")
        assert {b["metric"]["le"] for b in buckets} >= {"0.5", "+Inf"}
        count = await wait_for(session, prometheus, "healthmate_ingested_to_stored_seconds_count > 0")
        assert float(count[0]["value"][1]) > 0
        rejected = await wait_for(session, prometheus, "sum(healthmate_readings_rejected_total) > 0")
        assert float(rejected[0]["value"][1]) == sum(
            code is not None for m in messages for code in m.expected)
        up = await wait_for(session, prometheus, 'up{job="healthmate-worker"} == 1')
        assert up
