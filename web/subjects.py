"""Subject rights (HIPAA right of access, GDPR Art. 15 and 17): the SQL of export and erasure.

Both take the user's pseudonym (``user_key``), never the raw id. The person's rows are
found through every table of the schema that has a ``user_key`` column (the fact table,
the daily aggregates, user engagement, any table added later, e.g. profiles, and the
partitions that ``warehouse/optimize`` detached for retention, which still hold readings),
plus the fact table's event registry. Table names come from the catalog and are quoted; nothing
from the request reaches SQL except as a parameter. The erasure register is not a person
table: erasure adds the person to it in the same transaction that deletes their rows
(:mod:`streams.sink.erasure`), so nothing of theirs is stored afterwards.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import orjson

from streams.sink.copy_encoding import READING_COLUMNS
from streams.sink.erasure import GUARDED_TABLES, REGISTER, lock_writers, register_erasure
from streams.sink.migrations import quote_ident

FACT_TABLE = "health_readings"
REGISTRY = "reading_events"
_DETACHED = re.compile(r"^health_readings_p\d{6}_detached_[a-z0-9_]+$")


def holds_readings(table: str) -> bool:
    """The fact table, or a monthly partition detached from it (same columns)."""
    return table == FACT_TABLE or bool(_DETACHED.match(table))


async def _person_tables(conn: asyncpg.Connection, schema: str) -> list[str]:
    """Tables (not partitions) of ``schema`` with a ``user_key`` column, the fact table first."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND a.attname = 'user_key' AND NOT a.attisdropped"
        " AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname", schema)
    names = [r["relname"] for r in rows if r["relname"] != REGISTER]
    return sorted(names, key=lambda n: n != FACT_TABLE)


async def export_subject(pool: asyncpg.Pool, schema: str, user_key: str) -> dict[str, list[dict[str, Any]]]:
    """Every stored row of the person, by table (readings ordered by measurement time)."""
    s = quote_ident(schema)
    out: dict[str, list[dict[str, Any]]] = {}
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        for table in await _person_tables(conn, schema):
            order = " ORDER BY measured_at, event_id" if holds_readings(table) else ""
            cols = ", ".join(READING_COLUMNS) if holds_readings(table) else "*"
            rows = await conn.fetch(f"SELECT {cols} FROM {s}.{quote_ident(table)} WHERE user_key = $1{order}",
                                    user_key)
            out[table] = [_plain(dict(r)) for r in rows]
    return out


async def erase_subject(pool: asyncpg.Pool, schema: str, user_key: str, *, erased_by: str,
                        request_id: str) -> dict[str, int]:
    """Enter the person in the erasure register and delete their rows everywhere, in one
    transaction; the count per table.

    The tables that writers fill while the erasure runs (readings with their registry, and
    profiles) are deleted from last, after :func:`~streams.sink.erasure.lock_writers`, so
    that the lock, which holds the ingest back, is taken after the slower part (derived
    tables, whose rows an ETL run may be holding)."""
    s = quote_ident(schema)
    counts: dict[str, int] = {}
    async with pool.acquire() as conn, conn.transaction():
        await register_erasure(conn, schema, user_key, erased_by=erased_by, request_id=request_id)
        tables = await _person_tables(conn, schema)
        guarded = [t for t in tables if t in GUARDED_TABLES]
        for table in [t for t in tables if t not in GUARDED_TABLES]:
            counts[table] = await _delete(conn, s, table, user_key)
        await lock_writers(conn, schema)
        for table in guarded:
            if table == FACT_TABLE:
                events = await conn.fetch(
                    f"DELETE FROM {s}.{FACT_TABLE} WHERE user_key = $1 RETURNING event_id", user_key)
                counts[table] = len(events)
                status = await conn.execute(f"DELETE FROM {s}.{REGISTRY} WHERE event_id = ANY($1::text[])",
                                            [e["event_id"] for e in events])
                counts[REGISTRY] = int(status.split()[-1])
            else:
                counts[table] = await _delete(conn, s, table, user_key)
    return counts


async def _delete(conn: asyncpg.Connection, s: str, table: str, user_key: str) -> int:
    status = await conn.execute(f"DELETE FROM {s}.{quote_ident(table)} WHERE user_key = $1", user_key)
    return int(status.split()[-1])


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row.get("metadata"), str):
        row["metadata"] = orjson.loads(row["metadata"])
    return row
