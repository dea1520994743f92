"""One scenario's isolated pipeline: its own topics, group, schema and Faust app id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from pipeline_support import drop_pipeline_resources, wait_until_caught_up

from chaos.stack import StackAddress
from chaos.traffic import Ledger
from streams.config import Settings
from streams.setup import create_topics
from streams.sink.migrations import quote_ident


def pipeline_env(address: StackAddress, name: str) -> dict[str, str]:
    return {
        "HEALTHMATE_APP_ID": f"hm-{name}",
        "HEALTHMATE_PSEUDONYM_KEY": f"chaos-key-{name}",
        "HEALTHMATE_KAFKA_BOOTSTRAP": address.kafka_bootstrap,
        "HEALTHMATE_PG_DSN": address.pg_dsn,
        "HEALTHMATE_RAW_TOPIC": f"{name}.raw",
        "HEALTHMATE_DLQ_TOPIC": f"{name}.dlq",
        "HEALTHMATE_CONSUMER_GROUP": f"{name}-sink",
        "HEALTHMATE_WAREHOUSE_SCHEMA": name,
        "HEALTHMATE_TOPIC_PARTITIONS": "4",
    }


def settings_of(env: dict[str, str]) -> Settings:
    return Settings(**{k.removeprefix("HEALTHMATE_").lower(): v for k, v in env.items()})


@dataclass
class Pipeline:
    env: dict[str, str]
    log_dir: Path
    ledger: Ledger = field(default_factory=Ledger)

    @property
    def settings(self) -> Settings:
        return settings_of(self.env)

    async def stored(self) -> int:
        conn = await asyncpg.connect(self.settings.pg_dsn_value)
        try:
            return await conn.fetchval(
                f"SELECT count(*) FROM {quote_ident(self.settings.warehouse_schema)}.health_readings")
        except asyncpg.UndefinedTableError:
            return 0
        finally:
            await conn.close()

    async def wait_for_progress(self, beyond: int, timeout: float = 60.0) -> int | None:
        """The stored count once it passes ``beyond``; None if it does not within ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                count = await self.stored()
            except (OSError, asyncpg.PostgresError):
                count = 0  # the database may be the thing that is down
            if count > beyond:
                return count
            await asyncio.sleep(0.2)
        return None

    async def caught_up(self, timeout: float) -> str | None:
        """None once sink_offsets reach the topic's end, else what was wrong."""
        conn = await asyncpg.connect(self.settings.pg_dsn_value)
        try:
            await wait_until_caught_up(self.settings, conn, timeout=timeout)
        except AssertionError as exc:
            return str(exc)[:300]
        finally:
            await conn.close()
        return None


@asynccontextmanager
async def isolated(address: StackAddress, log_dir: Path, **extra_env: str) -> AsyncIterator[Pipeline]:
    name = f"chaos_{uuid.uuid4().hex[:8]}"
    env = {**pipeline_env(address, name), **extra_env}
    pipeline = Pipeline(env, log_dir / name)
    pipeline.log_dir.mkdir(parents=True, exist_ok=True)
    await create_topics(pipeline.settings)
    try:
        yield pipeline
    finally:
        await drop_pipeline_resources(pipeline.settings)
