"""Versioned warehouse migrations, applied idempotently under an advisory lock.

Each migration runs once per schema, in order, inside one transaction together with the
row that records it in ``schema_migrations``. Add new migrations at the end; never edit
one that has shipped.
"""

from __future__ import annotations

import asyncpg

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "readings fact table, event registry, sink offsets, dead letters", """
CREATE TABLE {s}.health_readings (
    event_id               text        NOT NULL,
    user_key               text        NOT NULL,
    device_id              text,
    source                 text        NOT NULL,
    metric                 text        NOT NULL,
    loinc_code             text        NOT NULL,
    value                  double precision NOT NULL,
    unit                   text        NOT NULL,
    original_value         double precision NOT NULL,
    original_unit          text        NOT NULL,
    measured_at            timestamptz NOT NULL,
    ingested_at            timestamptz NOT NULL,
    produced_at            timestamptz,
    stored_at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    quality_flags          text[]      NOT NULL DEFAULT '{{}}',
    kafka_topic            text        NOT NULL,
    kafka_partition        integer     NOT NULL,
    kafka_offset           bigint      NOT NULL,
    transformation_version text        NOT NULL,
    metadata               jsonb,
    PRIMARY KEY (event_id, measured_at)
) PARTITION BY RANGE (measured_at);
CREATE INDEX ON {s}.health_readings (metric, measured_at);
CREATE INDEX ON {s}.health_readings (user_key, measured_at);

-- health_readings is partitioned by measured_at, so its primary key cannot make
-- event_id unique on its own; this registry does, whatever the timestamp says.
CREATE TABLE {s}.reading_events (
    event_id    text PRIMARY KEY,
    measured_at timestamptz NOT NULL
);

CREATE TABLE {s}.sink_offsets (
    consumer_group text    NOT NULL,
    topic          text    NOT NULL,
    partition      integer NOT NULL,
    next_offset    bigint  NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- One row per dead-lettered record (the payload itself lives only in the DLQ topic).
CREATE TABLE {s}.dead_letters (
    topic        text    NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint  NOT NULL,
    member_index integer NOT NULL,
    reason       text    NOT NULL,
    metric       text,
    source       text,
    message      text    NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset", member_index)
);
CREATE INDEX ON {s}.dead_letters (reason, created_at);
"""),
)


async def apply_migrations(conn: asyncpg.Connection, schema: str) -> list[int]:
    """Bring ``schema`` up to date; return the versions applied now (empty if none).

    Safe to call concurrently from several processes: an advisory lock serialises them.
    """
    s = quote_ident(schema)
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {s}.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch(f"SELECT version FROM {s}.schema_migrations")}
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            await conn.execute(sql.format(s=s))
            await conn.execute(
                f"INSERT INTO {s}.schema_migrations (version, name) VALUES ($1, $2)", version, name
            )
            applied_now.append(version)
    return applied_now


def quote_ident(name: str) -> str:
    """Quote an identifier that came from configuration (already pattern-checked)."""
    return '"' + name.replace('"', '""') + '"'
