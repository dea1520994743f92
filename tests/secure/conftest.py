"""Fixtures for the secure mode, on the stack of ``scripts/secure_stack.sh up``.

The script writes the settings of each principal to ``.stack/secure/{admin,worker,producer}.env``
(secrets as ``*_FILE``); these fixtures read them. Without the secure stack they fail with a
hint (``make test`` starts it). Every test gets its own topics, groups, app id, ACLs and schema.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from pipeline_support import ROOT, drop_pipeline_resources, free_port

from streams.acls import create_acls, producer_acls, worker_acls
from streams.config import Settings
from streams.connections import warehouse_from_settings
from streams.setup import create_topics as create_pipeline_topics

SECURE = ROOT / ".stack" / "secure"
ROLES = ("admin", "worker", "producer")


def read_env_file(path: Path) -> dict[str, str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def settings_from(env: dict[str, str]) -> Settings:
    """Settings from exactly ``env`` (no other HEALTHMATE_* variable leaks in)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHMATE_")}
    with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
        return Settings()


@pytest.fixture(scope="session")
def secure_env() -> dict[str, dict[str, str]]:
    """``{role: HEALTHMATE_* variables}`` of the running secure stack."""
    missing = [r for r in ROLES if not (SECURE / f"{r}.env").is_file()]
    if missing:
        pytest.fail("the secure stack is not set up: run `bash scripts/secure_stack.sh up`", pytrace=False)
    envs = {r: read_env_file(SECURE / f"{r}.env") for r in ROLES}
    host, _, port = envs["admin"]["HEALTHMATE_KAFKA_BOOTSTRAP"].rpartition(":")
    pg_port = int(Path(envs["admin"]["HEALTHMATE_PG_DSN_FILE"]).read_text().rsplit(":", 1)[1].split("/")[0])
    for what, p in (("secure Kafka", int(port)), ("secure PostgreSQL", pg_port)):
        try:
            socket.create_connection(("127.0.0.1", p), timeout=3).close()
        except OSError:
            pytest.fail(f"{what} is not listening on 127.0.0.1:{p}: run `bash scripts/secure_stack.sh up`",
                        pytrace=False)
    return envs


@dataclass
class SecurePipeline:
    """One isolated pipeline on the secure stack: ``env(role)`` and ``settings(role)``."""

    envs: dict[str, dict[str, str]]
    names: dict[str, str]
    profile_topic: str

    def env(self, role: str, **extra: str) -> dict[str, str]:
        return {**self.envs[role], **self.names, **extra}

    def settings(self, role: str, **extra: str) -> Settings:
        return settings_from(self.env(role, **extra))


@pytest.fixture
def secure(secure_env: dict[str, dict[str, str]]) -> SecurePipeline:
    """The secure stack's settings per role, without topics or schema of its own."""
    return SecurePipeline(secure_env, {"HEALTHMATE_DEV_MODE": "true"}, profile_topic="")


@pytest.fixture
async def secure_pipeline(secure_env: dict[str, dict[str, str]], unique_name: str
                          ) -> AsyncIterator[SecurePipeline]:
    """Topics (created by the admin), the worker's and producer's ACLs on them, a migrated
    schema (by the migration role, with the runtime grants); all removed afterwards."""
    names = {
        "HEALTHMATE_APP_ID": f"hm-{unique_name}",
        "HEALTHMATE_DEV_MODE": "false",
        "HEALTHMATE_PSEUDONYM_KEY": f"test-key-{unique_name}",
        "HEALTHMATE_RAW_TOPIC": f"{unique_name}.raw",
        "HEALTHMATE_DLQ_TOPIC": f"{unique_name}.dlq",
        "HEALTHMATE_PROFILES_TOPIC": f"{unique_name}.profiles",
        "HEALTHMATE_CONSUMER_GROUP": f"{unique_name}-sink",
        "HEALTHMATE_WAREHOUSE_SCHEMA": unique_name,
        "HEALTHMATE_TOPIC_PARTITIONS": "2",
        "HEALTHMATE_WEB_PORT": str(free_port()),
    }
    pipeline = SecurePipeline(secure_env, names, profile_topic=f"{unique_name}.profiles")
    admin = pipeline.settings("admin")
    await create_pipeline_topics(admin)  # the profiles topic too
    acls = worker_acls(admin, "User:healthmate-worker")
    await create_acls(admin, acls + producer_acls(admin, "User:healthmate-producer"))
    warehouse = warehouse_from_settings(admin, pool_max=1)
    await warehouse.start()
    await warehouse.stop()
    yield pipeline
    await drop_pipeline_resources(admin)
