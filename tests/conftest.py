"""Shared fixtures.

A test that uses the Kafka or PostgreSQL fixtures (``kafka_bootstrap``, ``pg_dsn``, or any
fixture built on them) is marked ``integration`` by :func:`pytest_collection_modifyitems`:
the marker follows the fixture, so ``-m "not integration"`` runs with no service. A test that
reaches a service some other way (a subprocess against the stack) carries the marker itself.

Integration tests need the local stack:
``scripts/stack.sh up`` (Kafka on 127.0.0.1:29092, PostgreSQL on 127.0.0.1:5432).
Point them elsewhere with HEALTHMATE_KAFKA_BOOTSTRAP and HEALTHMATE_PG_DSN. When the
stack is not reachable the fixtures fail (they do not skip), with a hint to start it;
deselect with ``-m "not integration"``.

Every Kafka topic and PostgreSQL schema a test makes has a unique name and is removed
after the test, so tests can share one long-running stack.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import pytest

#: Fixtures that reach a service: a test that needs one (directly or through another fixture)
#: is an integration test.
SERVICE_FIXTURES = frozenset({"kafka_bootstrap", "pg_dsn"})
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:29092"
DEFAULT_PG_DSN = "postgresql://healthmate:healthmate@127.0.0.1:5432/healthmate"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def _require_tcp(what: str, host: str, port: int, env: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as exc:
        error = exc
    pytest.fail(
        f"{what} is not reachable at {host}:{port} ({error}). "
        f"Start the local stack with `scripts/stack.sh up`, or set {env}.",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap servers of the test broker (HEALTHMATE_KAFKA_BOOTSTRAP)."""
    bootstrap = os.environ.get("HEALTHMATE_KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP)
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    _require_tcp("Kafka", host or "127.0.0.1", int(port), "HEALTHMATE_KAFKA_BOOTSTRAP")
    return bootstrap


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of the test database (HEALTHMATE_PG_DSN)."""
    dsn = os.environ.get("HEALTHMATE_PG_DSN", DEFAULT_PG_DSN)
    parts = urlsplit(dsn)
    _require_tcp("PostgreSQL", parts.hostname or "127.0.0.1", parts.port or 5432, "HEALTHMATE_PG_DSN")
    return dsn


@pytest.fixture
def unique_name() -> str:
    """A fresh lower-case identifier, valid as a Kafka topic, Faust app id and SQL name."""
    return f"t_{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def pg_schema(pg_dsn: str) -> AsyncIterator[str]:
    """Create a unique schema, yield its name, drop it (CASCADE) afterwards."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await conn.close()
    try:
        yield name
    finally:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()


# --------------------------------------------------------------------------- Kafka topics


def _raise_for_errors(response: Any, key: str, ignore: Iterable[int] = ()) -> None:
    errors = [e for e in response.to_object()[key] if e["error_code"] not in (0, *ignore)]
    if errors:
        raise RuntimeError(f"Kafka admin request failed: {errors}")


async def create_topics(
    bootstrap: str | dict[str, Any],
    names: Iterable[str],
    partitions: int = 1,
    replication: int = 1,
    configs: dict[str, str] | None = None,
) -> list[str]:
    """Create topics with the aiokafka admin client; raise on any per-topic error.

    ``bootstrap``: an address, or client arguments (``streams.connections.kafka_kwargs``)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    names = list(names)
    client = {"bootstrap_servers": bootstrap} if isinstance(bootstrap, str) else bootstrap
    admin = AIOKafkaAdminClient(**client, client_id="healthmate-tests")
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(n, partitions, replication, topic_configs=dict(configs or {})) for n in names],
            timeout_ms=30_000,
        )
        _raise_for_errors(response, "topic_errors")
    finally:
        await admin.close()
    return names


async def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    """Delete topics; topics that do not exist (error 3) are ignored."""
    from aiokafka.admin import AIOKafkaAdminClient

    names = list(names)
    if not names:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="healthmate-tests")
    await admin.start()
    try:
        response = await admin.delete_topics(names, timeout_ms=30_000)
        _raise_for_errors(response, "topic_error_codes", ignore=(3,))  # 3 = UNKNOWN_TOPIC_OR_PARTITION
    finally:
        await admin.close()


async def list_topics(bootstrap: str) -> set[str]:
    """Names of all topics the broker reports in a metadata response."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="healthmate-tests")
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


class TopicFactory:
    """``await create_topics(names, partitions=...)`` in a test; deleted after it.

    ``delete_later(names)`` registers extra topics (e.g. ones Faust creates) for cleanup.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._to_delete: list[str] = []

    async def __call__(
        self,
        names: Iterable[str],
        partitions: int = 1,
        replication: int = 1,
        configs: dict[str, str] | None = None,
    ) -> list[str]:
        names = list(names)
        self._to_delete.extend(names)
        return await create_topics(self.bootstrap, names, partitions, replication, configs)

    def delete_later(self, names: Iterable[str]) -> None:
        self._to_delete.extend(names)

    async def cleanup(self) -> None:
        await delete_topics(self.bootstrap, dict.fromkeys(self._to_delete))
        self._to_delete.clear()


@pytest.fixture(name="create_topics")
async def create_topics_fixture(kafka_bootstrap: str) -> AsyncIterator[TopicFactory]:
    factory = TopicFactory(kafka_bootstrap)
    try:
        yield factory
    finally:
        await factory.cleanup()


@pytest.fixture(name="list_topics")
def list_topics_fixture(kafka_bootstrap: str) -> Callable[[], Awaitable[set[str]]]:
    """``await list_topics()``: topic names from a real metadata request."""

    async def _list() -> set[str]:
        return await list_topics(kafka_bootstrap)

    return _list
