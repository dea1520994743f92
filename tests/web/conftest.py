"""The API over HTTP against one real worker (``python -m streams worker``) per session.

The worker has its own topics, consumer group, schema, app id and web port, an HS256
secret, an issuer and an audience; tests call it with aiohttp on 127.0.0.1 and check the
warehouse with asyncpg. Settings chosen to make slow behaviour observable fast: a partition
counts as stalled after 2 s, no future skew is tolerated, retention is 12 months.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pipeline_support import WorkerProcess, drop_pipeline_resources, free_port, runtime_dsn
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from streams.config import Settings
from streams.setup import create_topics
from web.auth import mint_token

ISSUER, AUDIENCE = "healthmate-tests", "healthmate-api"


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any


@dataclass
class ApiWorker:
    settings: Settings
    env: dict[str, str]
    base_url: str
    process: WorkerProcess

    def token(self, *roles: str, sub: str = "tester", ttl_s: int = 300) -> str:
        return mint_token(self.settings, subject=sub, roles=roles, ttl_s=ttl_s)

    def log_tail(self) -> str:
        return self.process.log_path.read_text(errors="replace")[-4000:]


def _env(kafka_bootstrap: str, pg_dsn: str, name: str, data_dir: Path) -> dict[str, str]:
    return {
        "HEALTHMATE_APP_ID": f"hm-{name}", "HEALTHMATE_DEV_MODE": "false",
        "HEALTHMATE_PSEUDONYM_KEY": f"test-key-{name}", "HEALTHMATE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        # the API runs as the runtime role: it must manage with the least-privilege grants
        "HEALTHMATE_PG_DSN": runtime_dsn(pg_dsn), "HEALTHMATE_PG_MIGRATION_DSN": pg_dsn,
        "HEALTHMATE_RAW_TOPIC": f"{name}.raw",
        "HEALTHMATE_DLQ_TOPIC": f"{name}.dlq", "HEALTHMATE_PROFILES_TOPIC": f"{name}.profiles",
        "HEALTHMATE_CONSUMER_GROUP": f"{name}-sink",
        "HEALTHMATE_WAREHOUSE_SCHEMA": name, "HEALTHMATE_TOPIC_PARTITIONS": "2",
        "HEALTHMATE_WEB_PORT": str(free_port()), "HEALTHMATE_DATA_DIR": str(data_dir),
        "HEALTHMATE_API_JWT_SECRET": secrets.token_urlsafe(48), "HEALTHMATE_API_JWT_ISSUER": ISSUER,
        "HEALTHMATE_API_JWT_AUDIENCE": AUDIENCE, "HEALTHMATE_API_STALL_AFTER_S": "2",
        "HEALTHMATE_WAREHOUSE_RETENTION_MONTHS": "12", "HEALTHMATE_FUTURE_SKEW_SECONDS": "0",
        "HEALTHMATE_SINK_MAX_LATENCY_MS": "50",
        # Quality windows that close within seconds, so gauges and the console show them.
        "HEALTHMATE_QUALITY_WINDOWS_S": "[2, 3600]", "HEALTHMATE_QUALITY_WINDOW_GRACE_S": "0.5",
        "HEALTHMATE_QUALITY_TICK_INTERVAL_S": "0.5",
    }


def settings_from(env: dict[str, str]) -> Settings:
    return Settings(**{k.removeprefix("HEALTHMATE_").lower(): orjson.loads(v) if v.startswith("[") else v
                       for k, v in env.items()})


def _wait_ready(worker: ApiWorker, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.process.alive(), f"worker died:\n{worker.log_tail()}"
        try:
            with urllib.request.urlopen(f"{worker.base_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"worker not ready in {timeout}s:\n{worker.log_tail()}")


@contextmanager
def running_worker(kafka_bootstrap: str, pg_dsn: str, folder: Path, **overrides: str) -> Iterator[ApiWorker]:
    """A worker of its own (topics, schema, port), started and ready; stopped and dropped after.
    ``overrides``: extra ``HEALTHMATE_*`` variables."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    env = {**_env(kafka_bootstrap, pg_dsn, name, folder / "data"), **overrides}
    settings = settings_from(env)
    asyncio.run(create_topics(settings))
    process = WorkerProcess(env, folder / "worker.log")
    worker = ApiWorker(settings, env, f"http://127.0.0.1:{env['HEALTHMATE_WEB_PORT']}", process)
    process.start()
    try:
        _wait_ready(worker)
        yield worker
    finally:
        process.stop()
        asyncio.run(drop_pipeline_resources(settings))


@pytest.fixture(scope="session")
def api_worker(kafka_bootstrap: str, pg_dsn: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[ApiWorker]:
    with running_worker(kafka_bootstrap, pg_dsn, tmp_path_factory.mktemp("api-worker")) as worker:
        yield worker


@pytest.fixture(scope="session")
def strict_worker(kafka_bootstrap: str, pg_dsn: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[ApiWorker]:
    """A second worker with tight limits (tests/web/test_throttling.py), started only if asked for."""
    with running_worker(kafka_bootstrap, pg_dsn, tmp_path_factory.mktemp("strict-worker"),
                        HEALTHMATE_API_RATE_PER_SUBJECT="0.2", HEALTHMATE_API_BURST_PER_SUBJECT="5",
                        HEALTHMATE_API_RATE_PER_ADDRESS="0.1", HEALTHMATE_API_BURST_PER_ADDRESS="60",
                        HEALTHMATE_API_HEAVY_CONCURRENCY="1") as worker:
        yield worker


@pytest.fixture(scope="session")
def roomy_worker(kafka_bootstrap: str, pg_dsn: str, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[ApiWorker]:
    """A worker whose rate limits never bite (tests/web/test_label_bounds.py makes thousands of calls)."""
    with running_worker(kafka_bootstrap, pg_dsn, tmp_path_factory.mktemp("roomy-worker"),
                        HEALTHMATE_API_RATE_PER_SUBJECT="100000", HEALTHMATE_API_BURST_PER_SUBJECT="100000",
                        HEALTHMATE_API_RATE_PER_ADDRESS="100000", HEALTHMATE_API_BURST_PER_ADDRESS="100000",
                        HEALTHMATE_API_HEAVY_CONCURRENCY="64") as worker:
        yield worker


class Client:
    """``await client.call("GET", "/pipeline/status", role="viewer")`` -> Reply."""

    def __init__(self, session: aiohttp.ClientSession, worker: ApiWorker) -> None:
        self.session = session
        self.worker = worker

    async def call(self, method: str, path: str, *, role: str | None = None, token: str | None = None,
                   sub: str = "tester", json: Any = None, data: Any = None, params: Any = None,
                   headers: dict[str, str] | None = None, echoes: str | None = None) -> Reply:
        """``echoes``: input of the caller's own that an error may quote back (not a leak)."""
        headers = dict(headers or {})
        if role is not None:
            token = self.worker.token(role, sub=sub)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = self.worker.base_url + (path if path.startswith("/health") or path.startswith("/metrics")
                                      or path.startswith("/data-pipeline") else "/data-pipeline" + path)
        async with self.session.request(method, url, json=json, data=data, params=params,
                                        headers=headers) as response:
            raw = await response.read()
            try:
                body: Any = await response.json(content_type=None) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            reply = Reply(response.status, body, response.headers)
        if reply.status >= 400 and path.startswith(("/data-pipeline", "/pipeline", "/dlq", "/etl", "/data-",
                                                     "/warehouse", "/openapi")):
            assert_safe_error(reply, self.worker, echoes)
        return reply


LEAKS = ("Traceback", "File \"", "SELECT ", "INSERT ", "asyncpg", "postgresql://", "password")


def assert_safe_error(reply: Reply, worker: ApiWorker, echoes: str | None = None) -> None:
    """Every API error is the documented JSON shape and discloses nothing internal."""
    assert isinstance(reply.body, dict), reply.body
    assert set(reply.body) <= {"error", "message", "request_id", "fields"}, reply.body
    assert reply.body["request_id"] == reply.headers["X-Request-Id"]
    text = orjson.dumps(reply.body).decode()
    if echoes:
        text = text.replace(orjson.dumps(echoes).decode()[1:-1], "").replace(repr(echoes), "")
    for leak in (*LEAKS, worker.env["HEALTHMATE_API_JWT_SECRET"], worker.env["HEALTHMATE_PSEUDONYM_KEY"]):
        assert leak not in text, f"error body discloses {leak!r}: {text}"


@pytest.fixture
async def client(api_worker: ApiWorker) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield Client(session, api_worker)


@pytest.fixture
async def roomy_client(roomy_worker: ApiWorker) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield Client(session, roomy_worker)


@pytest.fixture
async def strict(strict_worker: ApiWorker) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield Client(session, strict_worker)


@pytest.fixture
async def strict_pg(strict_worker: ApiWorker) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(strict_worker.settings.pg_dsn_value)
    yield conn
    await conn.close()


@pytest.fixture
async def pg(api_worker: ApiWorker) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(api_worker.settings.pg_migration_dsn_value)
    yield conn
    await conn.close()


@pytest.fixture
async def producer(api_worker: ApiWorker) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=api_worker.settings.kafka_bootstrap, acks="all")
    await producer.start()
    yield producer
    await producer.stop()


async def _eventually(check, *, timeout: float = 20.0, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s; last value: {last!r}")


@pytest.fixture
def eventually():  # type: ignore[no-untyped-def]
    """``await eventually(check)``: await ``check()`` until truthy; return it, or fail with the last value."""
    return _eventually


def reading(event_id: str, *, at: datetime, metric: str = "heart_rate", value: float = 72,
            unit: str = "bpm", user: str = "u-api-1") -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user, "device_id": "d-1", "source": "garmin",
            "metric": metric, "value": value, "unit": unit, "timestamp": at.isoformat()}


@pytest.fixture
def produce(producer: AIOKafkaProducer, api_worker: ApiWorker):  # type: ignore[no-untyped-def]
    """``await produce(doc_or_bytes, key="u-1", partition=None)`` -> RecordMetadata (raw topic)."""

    async def _produce(doc: Any, key: str = "u-api-1", partition: int | None = None):  # type: ignore[no-untyped-def]
        value = doc if isinstance(doc, bytes) else orjson.dumps(doc)
        return await producer.send_and_wait(api_worker.settings.raw_topic, value, key=key.encode(),
                                            partition=partition)

    return _produce


@pytest.fixture
def make_reading():  # type: ignore[no-untyped-def]
    """``make_reading(event_id, at=datetime, metric=..., value=..., unit=...)`` -> dict."""
    return reading


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    """A headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium,
    with the browser console's log kept (CSP violations and script errors show there)."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, "install chromium and chromium-driver (scripts/install_system_deps.sh)"
    options = Options()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
