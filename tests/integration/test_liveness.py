"""``/health`` reports the consume loop's and the write chain's liveness, per partition."""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.error
import urllib.request
from datetime import UTC, datetime

import orjson
import pytest
from pipeline_support import wait_until_caught_up
from prometheus_client import CollectorRegistry

from streams.config import Settings
from streams.ingest import IngestService
from streams.metrics import Metrics
from streams.rules import rules_from_settings
from streams.sink.warehouse import Warehouse
from web.auth import mint_token
from web.status import health

pytestmark = pytest.mark.integration


def _get(port: str, path: str, token: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_health_shows_poll_and_commit_ages_of_a_running_worker(
        pipeline_settings, pipeline_env, raw_producer, pg, worker_process, monkeypatch):
    settings = pipeline_settings
    secret = secrets.token_urlsafe(48)
    worker_process.env["HEALTHMATE_API_JWT_SECRET"] = secret
    monkeypatch.setenv("HEALTHMATE_API_JWT_SECRET", secret)
    viewer = mint_token(Settings(), subject="probe-reader", roles=["viewer"], ttl_s=300)
    worker_process.start()
    doc = {"event_id": "h-1", "user_id": "u", "source": "fitbit", "metric": "steps", "value": 10,
           "unit": "count", "timestamp": int(datetime.now(UTC).timestamp() * 1000) - 60_000}
    await raw_producer.send_and_wait(settings.raw_topic, orjson.dumps(doc), key=b"u")
    await wait_until_caught_up(settings, pg, timeout=120, alive=worker_process.alive)
    port = pipeline_env["HEALTHMATE_WEB_PORT"]
    # A stranger (no token, or a bad one) learns the status and the HTTP code only.
    for token in (None, "not-a-token", viewer + "x"):
        for path in ("/health", "/health?probe=live"):
            assert await asyncio.to_thread(_get, port, path, token) == (200, {"status": "ok"})
    status, body = await asyncio.to_thread(_get, port, "/health", viewer)
    assert status == 200 and body["status"] == "ok" and body["ready"] is True
    consumer = body["consumer"]
    assert consumer["live"] is True and consumer["write_chain"] == "ok"
    assert 0 <= consumer["last_poll_age_s"] < consumer["max_poll_age_s"]
    [committed] = [p for p in consumer["partitions"] if p["topic"] == settings.raw_topic
                   and p["last_commit_age_s"] is not None and p["last_commit_age_s"] < 60]
    assert committed["partition"] in range(settings.topic_partitions)
    status, live = await asyncio.to_thread(_get, port, "/health?probe=live", viewer)
    assert status == 200 and "checks" not in live and live["consumer"]["live"] is True


async def test_a_broken_write_chain_or_a_silent_loop_is_not_live(pipeline_settings):
    settings = pipeline_settings
    ingest = IngestService(settings, rules_from_settings(settings),
                           Warehouse(settings.pg_dsn_value, settings.warehouse_schema),
                           Metrics(CollectorRegistry()))
    loop = asyncio.get_running_loop()
    assert (await health(ingest, ingest.warehouse, 30, only_liveness=True))["status"] == "ok"  # not started
    ingest.last_poll_at = loop.time() - 31
    silent = await health(ingest, ingest.warehouse, 30, only_liveness=True)
    assert silent["status"] == "degraded" and silent["consumer"]["last_poll_age_s"] >= 31
    ingest.last_poll_at = loop.time()
    assert (await health(ingest, ingest.warehouse, 30, only_liveness=True))["status"] == "ok"
    ingest.broken = "write chain failed: UndefinedTableError"
    broken = await health(ingest, ingest.warehouse, 30, only_liveness=True)
    assert broken["status"] == "degraded"
    assert broken["consumer"]["write_chain"].startswith("write chain failed")
