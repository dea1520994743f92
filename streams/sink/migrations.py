"""Versioned warehouse migrations, applied idempotently under an advisory lock.

``{s}`` in a migration's SQL stands for the quoted schema name (plain text replacement, not
``str.format``: braces in SQL literals need no escaping). Each migration runs once per
schema, in order, inside one transaction together with the
row that records it in ``schema_migrations``. Add new migrations at the end; never edit
one that has shipped.
"""

from __future__ import annotations

import asyncpg

from streams.sink import device_migration
from streams.sink.cgm_tables import CGM_TABLES

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
    quality_flags          text[]      NOT NULL DEFAULT '{}',
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
    (2, "data quality: closed quality windows and on-demand quality reports", """
-- One row per closed tumbling window per (metric, source); scores in [0,1], counts in
-- counts = {"passed": [5 ints], "judged": [5 ints], "records": n}, dimensions in the order
-- completeness, validity, accuracy, consistency, timeliness. Upserted: a rewrite of the
-- same window replaces its row.
CREATE TABLE {s}.quality_windows (
    metric          text             NOT NULL,
    source          text             NOT NULL,
    window_size     interval         NOT NULL,
    window_start    timestamptz      NOT NULL,
    window_end      timestamptz      NOT NULL,
    records         bigint           NOT NULL,
    completeness    double precision NOT NULL,
    validity        double precision NOT NULL,
    accuracy        double precision NOT NULL,
    consistency     double precision NOT NULL,
    timeliness      double precision NOT NULL,
    overall_score   double precision NOT NULL,
    quality_level   text             NOT NULL,
    threshold       double precision NOT NULL,
    below_threshold boolean          NOT NULL,
    counts          jsonb            NOT NULL,
    closed_at       timestamptz      NOT NULL,
    PRIMARY KEY (metric, source, window_size, window_start)
);
CREATE INDEX ON {s}.quality_windows (window_end) WHERE below_threshold;

CREATE TABLE {s}.quality_reports (
    report_id      uuid             PRIMARY KEY,
    data_type      text             NOT NULL,
    sample_size    integer          NOT NULL,
    overall_score  double precision NOT NULL,
    quality_level  text             NOT NULL,
    completeness   double precision NOT NULL,
    validity       double precision NOT NULL,
    accuracy       double precision NOT NULL,
    consistency    double precision NOT NULL,
    timeliness     double precision NOT NULL,
    report         jsonb            NOT NULL,
    generated_at   timestamptz      NOT NULL
);
CREATE INDEX ON {s}.quality_reports (data_type, generated_at);
"""),
    (3, "batch: ETL job registry, run history, lineage events, analytics targets", """
CREATE TABLE {s}.etl_jobs (
    job_id        uuid        PRIMARY KEY,
    job_name      text        NOT NULL UNIQUE,
    pipeline_type text        NOT NULL CHECK (pipeline_type IN ('batch', 'replay')),
    enabled       boolean     NOT NULL,
    schedule      text,
    config        jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per run (Airflow retries of one DAG run update the same row's attempt).
-- job_id is NULL for ad-hoc backfills and for runs of a job deleted since.
CREATE TABLE {s}.etl_job_runs (
    run_id         uuid        PRIMARY KEY,
    job_id         uuid        REFERENCES {s}.etl_jobs (job_id) ON DELETE SET NULL,
    job_name       text        NOT NULL,
    pipeline_type  text        NOT NULL,
    trigger        text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'timed_out')),
    attempt        integer     NOT NULL DEFAULT 1,
    interval_start timestamptz,
    interval_end   timestamptz,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    rows_extracted bigint      NOT NULL DEFAULT 0,
    rows_loaded    bigint      NOT NULL DEFAULT 0,
    rows_rejected  bigint      NOT NULL DEFAULT 0,
    quality_score  double precision,
    quality_level  text,
    progress       smallint    NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    error          text
);
CREATE INDEX ON {s}.etl_job_runs (job_id, started_at DESC);

-- OpenLineage run events, as sent (also POSTed to HEALTHMATE_OPENLINEAGE_URL when set).
CREATE TABLE {s}.lineage_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        uuid        NOT NULL,
    job_namespace text        NOT NULL,
    job_name      text        NOT NULL,
    event_type    text        NOT NULL,
    event_time    timestamptz NOT NULL,
    event         jsonb       NOT NULL
);
CREATE INDEX ON {s}.lineage_events (job_namespace, job_name, event_time);
CREATE INDEX ON {s}.lineage_events (run_id);

-- system_performance reads an hour of commits at a time.
CREATE INDEX ON {s}.health_readings (stored_at);

CREATE TABLE {s}.aggregated_health_metrics (
    day      date             NOT NULL,
    user_key text             NOT NULL,
    metric   text             NOT NULL,
    unit     text             NOT NULL,
    count    bigint           NOT NULL,
    min      double precision NOT NULL,
    max      double precision NOT NULL,
    mean     double precision NOT NULL,
    stddev   double precision,
    p50      double precision NOT NULL,
    p95      double precision NOT NULL,
    PRIMARY KEY (day, user_key, metric)
);

CREATE TABLE {s}.user_engagement (
    day                date        NOT NULL,
    user_key           text        NOT NULL,
    readings           bigint      NOT NULL,
    metrics_tracked    integer     NOT NULL,
    sources            text[]      NOT NULL,
    first_reading      timestamptz NOT NULL,
    last_reading       timestamptz NOT NULL,
    active_days_streak integer     NOT NULL,
    PRIMARY KEY (day, user_key)
);

CREATE TABLE {s}.system_performance (
    hour               timestamptz      PRIMARY KEY,
    processed          bigint           NOT NULL,
    stored             bigint           NOT NULL,
    rejected           bigint           NOT NULL,
    rejected_by_reason jsonb            NOT NULL,
    mean_ingest_lag_s  double precision,
    p95_ingest_lag_s   double precision,
    quality_score      double precision NOT NULL
);
"""),
    (4, "API audit log (append-only)", """
-- One row per API call that reads data or changes state. No PHI: the subject is the
-- caller's token subject, the target an ETL job id, a data type or a DLQ selector.
CREATE TABLE {s}.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    subject     text,
    roles       text[]      NOT NULL DEFAULT '{}',
    action      text        NOT NULL,
    target      text,
    outcome     text        NOT NULL,
    status      integer     NOT NULL,
    request_id  text        NOT NULL
);
CREATE INDEX ON {s}.audit_log (occurred_at);
CREATE INDEX ON {s}.audit_log (subject, occurred_at);
CREATE FUNCTION {s}.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON {s}.audit_log
    FOR EACH ROW EXECUTE FUNCTION {s}.audit_log_append_only();
"""),
    (5, "user_profiles dimension, caller-chosen ETL job ids, time zone of daily aggregates", """
-- Fed from the compacted topic health.users.profiles (streams/profiles.py); one row per
-- user, the latest updated_at wins. Safe Harbor: an age over 89 keeps no birth year.
CREATE TABLE {s}.user_profiles (
    user_key    text        PRIMARY KEY,
    timezone    text        NOT NULL DEFAULT 'UTC',
    birth_year  smallint    CHECK (birth_year >= 1900),
    age_over_89 boolean     NOT NULL DEFAULT false,
    sex         text        NOT NULL DEFAULT 'unknown'
                            CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    updated_at  timestamptz NOT NULL,
    CHECK (NOT (age_over_89 AND birth_year IS NOT NULL))
);

-- job_id: any safe identifier the caller gives (existing UUIDs keep their text form).
ALTER TABLE {s}.etl_job_runs DROP CONSTRAINT etl_job_runs_job_id_fkey;
ALTER TABLE {s}.etl_jobs ALTER COLUMN job_id TYPE text USING job_id::text;
ALTER TABLE {s}.etl_job_runs ALTER COLUMN job_id TYPE text USING job_id::text;
ALTER TABLE {s}.etl_job_runs ADD CONSTRAINT etl_job_runs_job_id_fkey
    FOREIGN KEY (job_id) REFERENCES {s}.etl_jobs (job_id) ON DELETE SET NULL;

-- The zone whose calendar `day` is: the user's own when the job reads user_profiles.
ALTER TABLE {s}.aggregated_health_metrics ADD COLUMN timezone text NOT NULL DEFAULT 'UTC';
ALTER TABLE {s}.user_engagement ADD COLUMN timezone text NOT NULL DEFAULT 'UTC';
"""),
    (6, "interval readings and descriptive statistics", """
-- measured_at is the start of an interval reading (or the instant); statistic is NULL for
-- a raw sample, else an Open mHealth descriptive_statistic ('minimum', 'average', ...).
ALTER TABLE {s}.health_readings ADD COLUMN IF NOT EXISTS measured_until timestamptz;
ALTER TABLE {s}.health_readings ADD COLUMN IF NOT EXISTS statistic text;
"""),
    (7, "least privilege: audit_log TRUNCATE guard, partition and ANALYZE functions", """
-- The runtime role owns nothing: DDL it needs runs through these SECURITY DEFINER functions,
-- which do one fixed thing each, with validated arguments.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON {s}.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.audit_log_append_only();

CREATE FUNCTION {s}.create_reading_partition(p_start timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' AS $$
BEGIN
    IF p_start IS NULL OR p_start <> date_trunc('month', p_start) THEN
        RAISE EXCEPTION 'not the start of a UTC month: %', p_start;
    END IF;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %s.%I PARTITION OF %s.health_readings'
                   ' FOR VALUES FROM (%L) TO (%L)', '{s}', 'health_readings_p' || to_char(p_start, 'YYYYMM'),
                   '{s}', p_start, p_start + interval '1 month');
END $$;

CREATE FUNCTION {s}.detach_reading_partition(p_name text, p_new_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s' AS $$
BEGIN
    IF p_name !~ '^health_readings_p[0-9]{6}$' OR p_new_name !~ '^[a-z0-9_]{1,63}$' THEN
        RAISE EXCEPTION 'invalid partition name';
    END IF;
    EXECUTE format('ALTER TABLE %s.health_readings DETACH PARTITION %s.%I', '{s}', '{s}', p_name);
    EXECUTE format('ALTER TABLE %s.%I RENAME TO %I', '{s}', p_name, p_new_name);
END $$;

CREATE FUNCTION {s}.analyze_tables() RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.oid = '{s}'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
             ORDER BY c.relname LOOP
        EXECUTE format('ANALYZE %s.%I', '{s}', t);
        RETURN NEXT t;
    END LOOP;
END $$;

REVOKE ALL ON FUNCTION {s}.create_reading_partition(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION {s}.detach_reading_partition(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION {s}.analyze_tables() FROM PUBLIC;
"""),
    (9, "detached partitions stay readable and erasable by the role that detached them", """
-- A detached partition is a table of its own: without this, the runtime role could no
-- longer export or erase a person's readings in it (subject rights).
CREATE OR REPLACE FUNCTION {s}.detach_reading_partition(p_name text, p_new_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s' AS $$
BEGIN
    IF p_name !~ '^health_readings_p[0-9]{6}$' OR p_new_name !~ '^[a-z0-9_]{1,63}$' THEN
        RAISE EXCEPTION 'invalid partition name';
    END IF;
    EXECUTE format('ALTER TABLE %s.health_readings DETACH PARTITION %s.%I', '{s}', '{s}', p_name);
    EXECUTE format('ALTER TABLE %s.%I RENAME TO %I', '{s}', p_name, p_new_name);
    EXECUTE format('GRANT SELECT, DELETE ON %s.%I TO SESSION_USER', '{s}', p_new_name);
END $$;
REVOKE ALL ON FUNCTION {s}.detach_reading_partition(text, text) FROM PUBLIC;
"""),
    (10, "batch: the daily ETL reads one day of a monthly partition", """
-- The ETL statements select a day (or a local day's UTC span) of measured_at; without an
-- index led by measured_at each one scans the whole month. BRIN: readings arrive about in
-- measured_at order, and it costs the ingest path next to nothing to maintain.
CREATE INDEX ON {s}.health_readings USING brin (measured_at);
"""),
    (11, "erasure register: an erased subject stays erased", """
-- One row per erased person: the keyed pseudonym only (never the raw id), when, and the
-- token subject of the admin who erased them (the call itself is in audit_log under
-- request_id). Every reading write checks it inside its own transaction
-- (streams/sink/erasure.py); an admin call lifts an entry. Not a person table: export and
-- erasure leave it alone.
CREATE TABLE {s}.erasure_register (
    user_key   text        PRIMARY KEY,
    erased_at  timestamptz NOT NULL DEFAULT now(),
    erased_by  text        NOT NULL,
    request_id text        NOT NULL
);
"""),
    (12, "CGM metrics by the international consensus on time in range", CGM_TABLES),
)

# What the runtime role (the worker, the API, batch jobs) may do; re-applied after every
# migration run, so tables that later migrations add are covered too. It owns nothing, so
# it can never ALTER, DROP, TRUNCATE or disable a trigger; audit_log is INSERT + SELECT only.
RUNTIME_GRANTS = """
GRANT USAGE ON SCHEMA {s} TO {r};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r};
REVOKE UPDATE, DELETE ON {s}.audit_log FROM {r};
REVOKE INSERT, UPDATE, DELETE ON {s}.schema_migrations FROM {r};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {r};
GRANT EXECUTE ON FUNCTION {s}.create_reading_partition(timestamptz),
    {s}.detach_reading_partition(text, text), {s}.analyze_tables() TO {r};
"""


#: Every migration version, the Python step (migration 8, device ids) included.
ALL_VERSIONS: tuple[int, ...] = tuple(sorted({v for v, _, _ in MIGRATIONS} | {device_migration.VERSION}))


async def _up_to_date(conn: asyncpg.Connection, schema: str) -> bool:
    table = f"{quote_ident(schema)}.schema_migrations"
    if await conn.fetchval("SELECT to_regclass($1)", table) is None:
        return False
    done = {r["version"] for r in await conn.fetch(f"SELECT version FROM {table}")}
    return done >= set(ALL_VERSIONS)


async def apply_migrations(conn: asyncpg.Connection, schema: str, *, runtime_role: str | None = None,
                           pseudonym_key: bytes | None = None) -> list[int]:
    """Bring ``schema`` up to date; return the versions applied now (empty if none).

    ``conn`` should be the schema owner's (the migration role). With ``runtime_role``, that
    role then gets exactly :data:`RUNTIME_GRANTS` on the schema. Without it, an up-to-date
    schema is only read, so a runtime role may call this too.
    Safe to call concurrently from several processes: an advisory lock serialises them.
    Migration 8 is a Python step that needs ``pseudonym_key`` once device ids are stored
    (see :mod:`streams.sink.device_migration`).
    """
    if runtime_role is None and await _up_to_date(conn, schema):
        return []
    s = quote_ident(schema)
    applied_now: list[int] = []
    async with conn.transaction():
        await lock_schema_ddl(conn, schema)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {s}.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch(f"SELECT version FROM {s}.schema_migrations")}
        for version, name, sql in sorted(MIGRATIONS):  # by version, whatever the list order
            if version in done:
                continue
            await conn.execute(sql.replace("{s}", s))
            await conn.execute(
                f"INSERT INTO {s}.schema_migrations (version, name) VALUES ($1, $2)", version, name
            )
            applied_now.append(version)
        if device_migration.VERSION not in done and await device_migration.pseudonymise_device_ids(
                conn, s, pseudonym_key) is not None:
            await conn.execute(f"INSERT INTO {s}.schema_migrations (version, name) VALUES ($1, $2)",
                               device_migration.VERSION, device_migration.NAME)
            applied_now.append(device_migration.VERSION)
        if runtime_role is not None:
            await conn.execute(RUNTIME_GRANTS.replace("{s}", s).replace("{r}", quote_ident(runtime_role)))
    return sorted(applied_now)


async def lock_schema_ddl(conn: asyncpg.Connection, schema: str) -> None:
    """Serialise, until the end of ``conn``'s transaction, every change to ``schema``'s
    catalog: migrations and grants, and creating or detaching partitions. Concurrent GRANT
    ON ALL TABLES and CREATE TABLE ... PARTITION OF fail with "tuple concurrently updated"."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"ddl:{schema}")


def quote_ident(name: str) -> str:
    """Quote an identifier that came from configuration (already pattern-checked)."""
    return '"' + name.replace('"', '""') + '"'
