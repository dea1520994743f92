"""Fixtures of the Spark replay tests (helpers in ``tests/spark_support.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from spark_support import Pipelines

from streams.setup import create_topics
from streams.sink.migrations import quote_ident


@pytest.fixture
async def pipelines(kafka_bootstrap: str, pg_dsn: str, unique_name: str) -> AsyncIterator[Pipelines]:
    p = Pipelines(kafka_bootstrap, pg_dsn, unique_name)
    await create_topics(p.worker)
    yield p
    from conftest import delete_topics

    await delete_topics(kafka_bootstrap, [p.worker.raw_topic, p.worker.dlq_topic])
    conn = await asyncpg.connect(pg_dsn)
    try:
        for schema in p.schemas:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
    finally:
        await conn.close()


@pytest.fixture
def recent() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


