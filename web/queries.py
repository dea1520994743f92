"""Every SQL statement the API runs, parameterised.

Identifiers come only from configuration (the schema, already pattern-checked by
``Settings``) or from the catalog (partition names matching ``PARTITION_NAME``), and are
quoted with ``quote_ident``. Nothing from a request is ever spliced into SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from streams.domain.panels import PANEL_CODES, PANEL_LOINC, PANEL_METRICS
from streams.domain.quality_windows import COLLECTING
from streams.sink.migrations import lock_schema_ddl, quote_ident

PARTITION_NAME = re.compile(r"^health_readings_p(\d{4})(\d{2})$")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    occurred_at: datetime
    subject: str | None
    roles: tuple[str, ...]
    action: str
    target: str | None
    outcome: str
    status: int
    request_id: str


async def insert_audit(pool: asyncpg.Pool, schema: str, entry: AuditEntry) -> None:
    await pool.execute(
        f"INSERT INTO {quote_ident(schema)}.audit_log"
        " (occurred_at, subject, roles, action, target, outcome, status, request_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        entry.occurred_at, entry.subject, list(entry.roles), entry.action, entry.target,
        entry.outcome, entry.status, entry.request_id,
    )


async def dead_letters_by_reason(pool: asyncpg.Pool, schema: str) -> dict[str, int]:
    rows = await pool.fetch(
        f"SELECT reason, count(*) AS n FROM {quote_ident(schema)}.dead_letters GROUP BY reason")
    return {r["reason"]: r["n"] for r in rows}


async def dead_letter_summary(pool: asyncpg.Pool, schema: str) -> list[dict[str, Any]]:
    """Counts by reason and metric (metric is NULL when the record never got that far)."""
    rows = await pool.fetch(
        "SELECT reason, metric, count(*) AS n, min(created_at) AS first_at, max(created_at) AS last_at"
        f" FROM {quote_ident(schema)}.dead_letters GROUP BY reason, metric ORDER BY reason, metric")
    return [dict(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    month: datetime


async def reading_partitions(pool: asyncpg.Pool, schema: str) -> list[Partition]:
    """Attached monthly partitions of ``health_readings``, oldest first."""
    rows = await pool.fetch(
        "SELECT c.relname FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent"
        " JOIN pg_namespace n ON n.oid = p.relnamespace"
        " WHERE n.nspname = $1 AND p.relname = 'health_readings'", schema)
    found = []
    for r in rows:
        match = PARTITION_NAME.match(r["relname"])
        if match:
            found.append(Partition(r["relname"], datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)))
    return sorted(found, key=lambda p: p.month)


async def detach_partition(pool: asyncpg.Pool, schema: str, partition: Partition, new_name: str) -> None:
    """Detach (never drop) one partition and rename it ``new_name``, in one transaction.

    The rename frees the partition's name, so a late reading for that month makes the sink
    create a fresh, empty partition instead of failing on the detached table. Waits at most
    5 s for the parent's lock.
    """
    assert PARTITION_NAME.match(partition.name) and re.fullmatch(r"[a-z0-9_]{1,63}", new_name)
    # The schema owner's function (migration 7) does both steps, with a 5 s lock timeout.
    async with pool.acquire() as conn, conn.transaction():
        await lock_schema_ddl(conn, schema)
        await conn.execute(f"SELECT {quote_ident(schema)}.detach_reading_partition($1, $2)",
                           partition.name, new_name)


async def analyze_schema(pool: asyncpg.Pool, schema: str) -> list[str]:
    """ANALYZE every table of the schema (partitioned parents recurse); return their names."""
    rows = await pool.fetch(f"SELECT name FROM {quote_ident(schema)}.analyze_tables() AS name")
    return [r["name"] for r in rows]


async def index_usage(pool: asyncpg.Pool, schema: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT relname AS table, indexrelname AS index, idx_scan AS scans,"
        " idx_tup_read AS tuples_read, pg_relation_size(indexrelid) AS size_bytes"
        " FROM pg_stat_user_indexes WHERE schemaname = $1 ORDER BY relname, indexrelname", schema)
    return [dict(r) for r in rows]


async def migration_versions(pool: asyncpg.Pool, schema: str) -> list[int]:
    rows = await pool.fetch(f"SELECT version FROM {quote_ident(schema)}.schema_migrations ORDER BY version")
    return [r["version"] for r in rows]


FHIR_COLUMNS = ("event_id", "user_key", "device_id", "source", "metric", "loinc_code", "value", "unit",
                "measured_at", "measured_until", "statistic", "ingested_at")


async def search_readings(pool: asyncpg.Pool, schema: str, *, user_key: str | None, loinc_code: str | None,
                          since: datetime | None, before: datetime | None, limit: int, offset: int
                          ) -> list[asyncpg.Record]:
    """Stored readings for a FHIR Observation or Open mHealth data-point search, paged by
    MEASUREMENT: ``limit``/``offset`` count measurements, ordered by ``measured_at`` then key.

    A measurement is one reading, or the blood-pressure readings that share the panel key of
    :mod:`streams.domain.panels` (person, device, source, instant or interval, statistic, the
    ``metadata`` ``panel_id``): all of them come on the same page. ``loinc_code`` selects the
    measurements holding a reading with that code, the panel's 85354-9 every blood-pressure
    measurement (a search by a panel code reads only blood-pressure rows, by another code only
    that code's rows). Each row carries ``panel_id`` and ``obs_key`` (its measurement).
    """
    cols = ", ".join(FHIR_COLUMNS)
    return await pool.fetch(
        f"WITH r AS (SELECT {cols}, metadata->>'panel_id' AS panel_id,"
        " metric = ANY($7::text[]) AS in_panel,"
        " CASE WHEN metric = ANY($7::text[]) THEN 'panel:' || md5(ROW(user_key, device_id, source,"
        " measured_at, measured_until, statistic, metadata->>'panel_id')::text)"
        " ELSE 'reading:' || event_id END AS obs_key"
        f" FROM {quote_ident(schema)}.health_readings"
        " WHERE ($1::text IS NULL OR user_key = $1)"
        " AND ($2::text IS NULL OR loinc_code = $2 OR ($2 = ANY($9::text[]) AND metric = ANY($7::text[])))"
        " AND ($3::timestamptz IS NULL OR measured_at >= $3)"
        " AND ($4::timestamptz IS NULL OR measured_at < $4)),"
        " page AS (SELECT obs_key, min(measured_at) AS at FROM r GROUP BY obs_key"
        " HAVING $2::text IS NULL OR bool_or(loinc_code = $2) OR ($2 = $8 AND bool_or(in_panel))"
        " ORDER BY at, obs_key LIMIT $5 OFFSET $6)"
        f" SELECT {cols}, panel_id, obs_key FROM r JOIN page USING (obs_key)"
        " ORDER BY page.at, obs_key, event_id",
        user_key, loinc_code, since, before, limit, offset, list(PANEL_METRICS), PANEL_LOINC,
        list(PANEL_CODES))


def first_measurements(rows: list[asyncpg.Record], count: int) -> tuple[list[asyncpg.Record], bool]:
    """The rows of the first ``count`` measurements (``obs_key``) of a :func:`search_readings`
    answer fetched with ``limit=count + 1``, and whether there were more."""
    keys: list[str] = []
    for row in rows:
        if not keys or keys[-1] != row["obs_key"]:
            keys.append(row["obs_key"])
    kept = set(keys[:count])
    return [r for r in rows if r["obs_key"] in kept], len(keys) > count


async def quality_history(pool: asyncpg.Pool, schema: str, window_size_s: int, since: datetime
                          ) -> dict[str, list[dict[str, Any]]]:
    """Per metric, its closed windows of ``window_size_s`` that started at or after ``since``,
    oldest first: the worst overall score of the sources judged in it (None when every
    source was still ``collecting``) and the records of all sources."""
    rows = await pool.fetch(
        "SELECT metric, window_start, sum(records)::bigint AS records,"
        " min(overall_score) FILTER (WHERE quality_level <> $3) AS overall_score"
        f" FROM {quote_ident(schema)}.quality_windows WHERE window_size = $1 AND window_start >= $2"
        " GROUP BY metric, window_start ORDER BY metric, window_start",
        timedelta(seconds=window_size_s), since, COLLECTING)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["metric"], []).append(
            {"window_start": r["window_start"], "overall_score": r["overall_score"], "records": r["records"]})
    return out
