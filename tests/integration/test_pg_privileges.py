"""Least privilege in PostgreSQL: the migration role owns the schema; the runtime role
(``healthmate_app``, created by scripts/stack.sh) may only do what the worker and API need.
audit_log is INSERT-only for it, and a TRUNCATE guard stops even the owner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from pipeline_support import RUNTIME_USER, runtime_dsn

from streams.sink.migrations import quote_ident
from streams.sink.warehouse import Warehouse
from web import queries

pytestmark = pytest.mark.integration

@pytest.fixture
async def runtime(pg_dsn: str, pg_schema: str) -> AsyncIterator[tuple[Warehouse, asyncpg.Connection]]:
    """A warehouse migrated by the owner and run as the runtime role, and a runtime connection."""
    warehouse = Warehouse(runtime_dsn(pg_dsn), pg_schema, pool_max=1, migration_dsn=pg_dsn)
    assert warehouse.runtime_role == RUNTIME_USER
    await warehouse.start()
    conn = await asyncpg.connect(runtime_dsn(pg_dsn))
    try:
        yield warehouse, conn
    finally:
        await conn.close()
        await warehouse.stop()


REFUSED_ON_AUDIT_LOG = [
    "UPDATE {s}.audit_log SET outcome = 'x'",
    "DELETE FROM {s}.audit_log",
    "TRUNCATE {s}.audit_log",
    "ALTER TABLE {s}.audit_log DISABLE TRIGGER audit_log_append_only",
    "ALTER TABLE {s}.audit_log DISABLE TRIGGER ALL",
    "ALTER TABLE {s}.audit_log ADD COLUMN note text",
    "DROP TRIGGER audit_log_append_only ON {s}.audit_log",
    "CREATE TRIGGER t AFTER INSERT ON {s}.audit_log FOR EACH ROW"
    " EXECUTE FUNCTION {s}.audit_log_append_only()",
    "DROP TABLE {s}.audit_log",
]

REFUSED_ELSEWHERE = [
    "CREATE TABLE {s}.mine (x int)",
    "DROP TABLE {s}.health_readings",
    "TRUNCATE {s}.health_readings",
    "ALTER TABLE {s}.sink_offsets ADD COLUMN note text",
    "INSERT INTO {s}.schema_migrations (version, name) VALUES (999, 'x')",
    "DELETE FROM {s}.schema_migrations",
    "CREATE FUNCTION {s}.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "ALTER SCHEMA {s} RENAME TO elsewhere",
]


async def _insert_audit(conn: asyncpg.Connection, s: str) -> None:
    await conn.execute(f"INSERT INTO {s}.audit_log (action, outcome, status, request_id)"
                       " VALUES ('test', 'allowed', 200, 'r-1')")


@pytest.mark.parametrize("sql", REFUSED_ON_AUDIT_LOG + REFUSED_ELSEWHERE)
async def test_runtime_role_is_refused(runtime, sql: str) -> None:  # type: ignore[no-untyped-def]
    warehouse, conn = runtime
    s = quote_ident(warehouse.schema)
    await _insert_audit(conn, s)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute(sql.replace("{s}", s))
    assert await conn.fetchval(f"SELECT count(*) FROM {s}.audit_log") == 1


async def test_runtime_role_does_what_the_worker_and_api_need(runtime) -> None:  # type: ignore[no-untyped-def]
    warehouse, conn = runtime
    s = quote_ident(warehouse.schema)
    await _insert_audit(conn, s)
    month = datetime(2026, 11, 1, tzinfo=UTC)
    await warehouse.ensure_partitions([month])  # through the owner's function
    await conn.execute(f"INSERT INTO {s}.sink_offsets (consumer_group, topic, partition, next_offset)"
                       " VALUES ('g', 't', 0, 1)")
    await conn.execute(f"UPDATE {s}.sink_offsets SET next_offset = 2")
    assert await conn.fetchval(f"SELECT count(*) FROM {s}.health_readings") == 0
    partitions = await queries.reading_partitions(warehouse.pool, warehouse.schema)
    assert [p.name for p in partitions] == ["health_readings_p202611"]
    await queries.detach_partition(warehouse.pool, warehouse.schema, partitions[0], "readings_p202611_old")
    assert "audit_log" in await queries.analyze_schema(warehouse.pool, warehouse.schema)
    assert await conn.fetchval("SELECT current_user") == RUNTIME_USER


async def test_partition_function_refuses_anything_but_a_month_start(runtime) -> None:  # type: ignore[no-untyped-def]
    warehouse, conn = runtime
    s = quote_ident(warehouse.schema)
    with pytest.raises(asyncpg.RaiseError, match="not the start of a UTC month"):
        await conn.execute(f"SELECT {s}.create_reading_partition('2026-11-02T00:00:00Z')")
    with pytest.raises(asyncpg.RaiseError, match="invalid partition name"):
        await conn.execute(f"SELECT {s}.detach_reading_partition('audit_log', 'x')")


async def test_truncate_guard_stops_the_owner_too(pg_dsn: str, runtime) -> None:  # type: ignore[no-untyped-def]
    warehouse, conn = runtime
    s = quote_ident(warehouse.schema)
    await _insert_audit(conn, s)
    owner = await asyncpg.connect(pg_dsn)
    try:
        with pytest.raises(asyncpg.RaiseError, match="audit_log is append-only"):
            await owner.execute(f"TRUNCATE {s}.audit_log")
        assert await owner.fetchval(f"SELECT count(*) FROM {s}.audit_log") == 1
    finally:
        await owner.close()
