"""The PostgreSQL warehouse: pool lifecycle, partitions, and the exactly-once batch write.

Exactly once, without Kafka transactions: each batch is one PostgreSQL transaction that
stores the readings (deduplicated by ``event_id``), the dead-letter bookkeeping, and the
next offset of every partition the batch came from. A consumer that resumes from
``sink_offsets`` therefore never skips a message and never stores one twice, whatever
instant the process died at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import orjson

from streams.errors import WarehouseUnavailable
from streams.records import DeadLetter, NormalisedReading
from streams.sink.migrations import apply_migrations, quote_ident

READING_COLUMNS = (
    "event_id", "user_key", "device_id", "source", "metric", "loinc_code", "value", "unit",
    "original_value", "original_unit", "measured_at", "ingested_at", "produced_at",
    "quality_flags", "kafka_topic", "kafka_partition", "kafka_offset", "transformation_version",
    "metadata",
)
STAGING_TABLE = "readings_staging"

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """Where a dead letter came from; ``member_index`` orders the rejects of one message."""

    topic: str
    partition: int
    offset: int
    member_index: int
    letter: DeadLetter


@dataclass(frozen=True, slots=True)
class BatchResult:
    stored_by_metric: dict[str, int]
    duplicates: int

    @property
    def stored(self) -> int:
        return sum(self.stored_by_metric.values())


def month_start(ts: datetime) -> datetime:
    return datetime(ts.year, ts.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


class Warehouse:
    """Owns the asyncpg pool. ``start()`` before use, ``stop()`` at shutdown."""

    def __init__(self, dsn: str, schema: str, *, pool_max: int = 4) -> None:
        self.dsn = dsn
        self.schema = schema
        self.s = quote_ident(schema)
        self.pool_max = pool_max
        self._pool: asyncpg.Pool | None = None
        self._known_partitions: set[datetime] = set()
        self.applied_migrations: list[int] = []

    # ---- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Open the pool and apply migrations. Raises WarehouseUnavailable if unreachable."""
        if self._pool is not None:
            return
        try:
            conn = await asyncpg.connect(self.dsn, timeout=10)
            try:
                self.applied_migrations = await apply_migrations(conn, self.schema)
            finally:
                await conn.close()
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=self.pool_max, init=self._init_connection,
                command_timeout=60,
            )
        except TRANSIENT_ERRORS as exc:
            await self.stop()
            raise WarehouseUnavailable(f"warehouse unreachable: {type(exc).__name__}") from exc

    async def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise WarehouseUnavailable("warehouse pool is not started")
        return self._pool

    async def _init_connection(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} "
            f"(LIKE {self.s}.health_readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )

    # ---- reads -----------------------------------------------------------------------
    async def load_offsets(self, group: str, topic_partitions: Iterable[tuple[str, int]]
                           ) -> dict[tuple[str, int], int]:
        """The next offset to consume for each partition that has one stored."""
        tps = list(topic_partitions)
        if not tps:
            return {}
        try:
            rows = await self.pool.fetch(
                f"SELECT topic, partition, next_offset FROM {self.s}.sink_offsets "
                "WHERE consumer_group = $1 AND (topic, partition) IN "
                "(SELECT * FROM unnest($2::text[], $3::int[]))",
                group, [t for t, _ in tps], [p for _, p in tps],
            )
        except TRANSIENT_ERRORS as exc:
            raise WarehouseUnavailable(f"loading offsets failed: {type(exc).__name__}") from exc
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    # ---- the batch write -------------------------------------------------------------
    async def write_batch(
        self,
        group: str,
        readings: Sequence[NormalisedReading],
        dead_letters: Sequence[DeadLetterRow],
        next_offsets: Mapping[tuple[str, int], int],
    ) -> BatchResult:
        """Store one batch atomically; raise WarehouseUnavailable on transient failure.

        ``next_offsets`` maps (topic, partition) to the offset after the last message of
        the batch. Re-running the same batch stores nothing new and moves no offset back.
        """
        try:
            await self._ensure_partitions(r.measured_at for r in readings)
            async with self.pool.acquire() as conn, conn.transaction():
                stored: dict[str, int] = {}
                if readings:
                    await conn.copy_records_to_table(
                        STAGING_TABLE, records=_reading_rows(readings), columns=READING_COLUMNS,
                    )
                    stored = {r["metric"]: r["n"] for r in await conn.fetch(self._insert_sql)}
                if dead_letters:
                    await conn.execute(self._dead_letter_sql, *_dead_letter_columns(dead_letters))
                await conn.execute(
                    self._offsets_sql, group,
                    [t for t, _ in next_offsets], [p for _, p in next_offsets],
                    list(next_offsets.values()),
                )
        except TRANSIENT_ERRORS as exc:
            raise WarehouseUnavailable(f"batch write failed: {type(exc).__name__}") from exc
        return BatchResult(stored_by_metric=stored, duplicates=len(readings) - sum(stored.values()))

    async def _ensure_partitions(self, measured: Iterable[datetime]) -> None:
        missing = {month_start(ts) for ts in measured} - self._known_partitions
        if not missing:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"partitions:{self.schema}")
            for start in sorted(missing):
                await conn.execute(self.partition_ddl(start))
        self._known_partitions |= missing

    def partition_ddl(self, start: datetime) -> str:
        end = next_month(start)
        name = quote_ident(f"health_readings_p{start:%Y%m}")
        return (
            f"CREATE TABLE IF NOT EXISTS {self.s}.{name} PARTITION OF {self.s}.health_readings "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )

    @property
    def _insert_sql(self) -> str:
        cols = ", ".join(READING_COLUMNS)
        staged = ", ".join(f"st.{c}" for c in READING_COLUMNS)
        return (
            f"WITH fresh AS ("
            f" INSERT INTO {self.s}.reading_events (event_id, measured_at)"
            f" SELECT DISTINCT ON (event_id) event_id, measured_at FROM {STAGING_TABLE}"
            f" ORDER BY event_id, kafka_partition, kafka_offset"
            f" ON CONFLICT DO NOTHING RETURNING event_id, measured_at)"
            f", inserted AS (INSERT INTO {self.s}.health_readings ({cols})"
            f" SELECT DISTINCT ON (st.event_id) {staged} FROM {STAGING_TABLE} st"
            f" JOIN fresh USING (event_id, measured_at)"
            f" ORDER BY st.event_id, st.kafka_partition, st.kafka_offset"
            f" ON CONFLICT DO NOTHING RETURNING metric)"
            f" SELECT metric, count(*) AS n FROM inserted GROUP BY metric"
        )

    @property
    def _dead_letter_sql(self) -> str:
        return (
            f'INSERT INTO {self.s}.dead_letters (topic, partition, "offset", member_index,'
            " reason, metric, source, message)"
            " SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::int[],"
            " $5::text[], $6::text[], $7::text[], $8::text[]) ON CONFLICT DO NOTHING"
        )

    @property
    def _offsets_sql(self) -> str:
        return (
            f"INSERT INTO {self.s}.sink_offsets (consumer_group, topic, partition, next_offset)"
            " SELECT $1, t, p, o FROM unnest($2::text[], $3::int[], $4::bigint[]) AS x(t, p, o)"
            " ON CONFLICT (consumer_group, topic, partition) DO UPDATE"
            f" SET next_offset = GREATEST({self.s}.sink_offsets.next_offset, EXCLUDED.next_offset),"
            " updated_at = now()"
        )


def _reading_rows(readings: Sequence[NormalisedReading]) -> list[tuple]:
    dumps = orjson.dumps
    return [
        (
            r.event_id, r.user_key, r.device_id, r.source, r.metric, r.loinc_code, r.value, r.unit,
            r.original_value, r.original_unit, r.measured_at, r.ingested_at,
            r.produced_at,
            list(r.quality_flags), r.kafka_topic, r.kafka_partition, r.kafka_offset,
            r.transformation_version, None if r.metadata is None else dumps(r.metadata).decode(),
        )
        for r in readings
    ]


def _dead_letter_columns(rows: Sequence[DeadLetterRow]) -> tuple[list, ...]:
    return (
        [d.topic for d in rows], [d.partition for d in rows], [d.offset for d in rows],
        [d.member_index for d in rows], [str(d.letter.code) for d in rows],
        [d.letter.metric for d in rows], [d.letter.source for d in rows],
        [d.letter.message for d in rows],
    )

