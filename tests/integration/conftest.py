"""Fixtures for pipeline tests on the real Kafka and PostgreSQL.

Each test gets its own topics, consumer group, Faust app id and warehouse schema, so tests
never see each other's data.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from pipeline_support import WorkerProcess, drop_pipeline_resources, free_port

from streams.config import Settings
from streams.setup import create_topics
from streams.sink.warehouse import Warehouse


@pytest.fixture
def pipeline_env(kafka_bootstrap: str, pg_dsn: str, unique_name: str) -> dict[str, str]:
    """HEALTHMATE_* variables for an isolated pipeline (also used for worker subprocesses)."""
    return {
        "HEALTHMATE_APP_ID": f"hm-{unique_name}",
        "HEALTHMATE_DEV_MODE": "false",
        "HEALTHMATE_PSEUDONYM_KEY": f"test-key-{unique_name}",
        "HEALTHMATE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HEALTHMATE_PG_DSN": pg_dsn,
        "HEALTHMATE_RAW_TOPIC": f"{unique_name}.raw",
        "HEALTHMATE_DLQ_TOPIC": f"{unique_name}.dlq",
        "HEALTHMATE_PROFILES_TOPIC": f"{unique_name}.profiles",
        "HEALTHMATE_CONSUMER_GROUP": f"{unique_name}-sink",
        "HEALTHMATE_WAREHOUSE_SCHEMA": unique_name.lower(),
        "HEALTHMATE_TOPIC_PARTITIONS": "3",
        "HEALTHMATE_WEB_PORT": str(free_port()),
    }


@pytest.fixture
async def pipeline_settings(pipeline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
                            ) -> AsyncIterator[Settings]:
    for key, value in pipeline_env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    await create_topics(settings)
    yield settings
    await drop_pipeline_resources(settings)


@pytest.fixture
async def raw_producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                                max_request_size=4 * 1024 * 1024)
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def pg(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_dsn)
    yield conn
    await conn.close()


@pytest.fixture
def worker_process(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(pipeline_env, tmp_path / "worker.log")
    yield worker
    worker.stop()
    if os.environ.get("HEALTHMATE_TEST_SHOW_WORKER_LOG"):
        print(worker.log_path.read_text(errors="replace")[-5000:])


@pytest.fixture
async def pg_warehouse(pg_dsn: str, pg_schema: str) -> AsyncIterator[Warehouse]:
    """A started warehouse on the test's own schema."""
    wh = Warehouse(pg_dsn, pg_schema)
    await wh.start()
    yield wh
    await wh.stop()
