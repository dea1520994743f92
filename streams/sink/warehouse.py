"""The PostgreSQL warehouse: pool lifecycle, partitions, and the exactly-once batch write.

Exactly once, without Kafka transactions: each batch is one PostgreSQL transaction that
stores the readings (deduplicated by ``event_id``), the dead-letter bookkeeping, and the
next offset of every partition the batch came from. A consumer that resumes from
``sink_offsets`` therefore never skips a message and never stores one twice, whatever
instant the process died at.

How readings are stored (the hot path; ``make bench`` has the figures). Only the first
occurrence of each ``event_id`` in the batch counts (lowest partition, then offset).
:func:`prepare_batch` turns a batch into binary COPY data, without I/O, so that a caller
can do that CPU work while the previous batch is still being written. The transaction
then COPYs the event ids into ``reading_events`` and the readings into
``health_readings``: no conflict handling, the fewest round trips, and the usual case. If
a key already exists (a redelivery), that transaction is rolled back and the batch is
written again the careful way: ``INSERT … ON CONFLICT DO NOTHING RETURNING`` into the
registry, then a COPY of only the readings whose id was new. Every writer goes through this class, so a
registered id always has its row; should a row exist without its registry entry anyway,
that COPY fails too and the readings go through a staging table and
``INSERT … ON CONFLICT DO NOTHING``. Each path stores exactly the same rows.

Every path also checks the erasure register (:mod:`streams.sink.erasure`) in the same
transaction, after its first write: a batch that holds a reading of an erased subject is
rolled back with :class:`~streams.errors.SubjectsErased`, and the writer
(:func:`streams.sink.refusals.write_setting_aside_refused`) dead-letters those readings and
writes the rest.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from streams.errors import BatchRefused, ConfigurationError, SubjectsErased, WarehouseUnavailable
from streams.records import NormalisedReading
from streams.sink.copy_encoding import (
    READING_COLUMNS,
    DeadLetterRow,
    PreparedBatch,
    copy_readings,
    dead_letter_columns,
    prepare_batch,
)
from streams.sink.erasure import erased_among
from streams.sink.migrations import apply_migrations, lock_schema_ddl, quote_ident

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
    # asyncpg's own state error when the server goes away mid-operation (a fast shutdown
    # while a connection goes back to the pool): the connection is gone, not our data.
    asyncpg.InternalClientError,
)
# What PostgreSQL says about data it cannot store: retrying never helps, isolating does.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)


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

    def __init__(self, dsn: str, schema: str, *, pool_max: int = 4, migration_dsn: str | None = None,
                 connect_kwargs: Mapping[str, Any] | None = None, pseudonym_key: bytes | None = None) -> None:
        self.dsn = dsn
        self.pseudonym_key = pseudonym_key  # for migration 8 (streams.sink.device_migration)
        # Migrations run as the schema owner; a different runtime user gets only its grants.
        self.migration_dsn = migration_dsn or dsn
        runtime_user = urlsplit(dsn).username
        self.runtime_role = runtime_user if runtime_user != urlsplit(self.migration_dsn).username else None
        self.connect_kwargs = dict(connect_kwargs or {})
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
            conn = await asyncpg.connect(self.migration_dsn, timeout=10, **self.connect_kwargs)
            try:
                self.applied_migrations = await apply_migrations(
                    conn, self.schema, runtime_role=self.runtime_role,
                    pseudonym_key=self.pseudonym_key)
            finally:
                await conn.close()
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=self.pool_max, init=self._init_connection,
                command_timeout=60, **self.connect_kwargs,
            )
        except ssl.SSLCertVerificationError as exc:
            await self.stop()
            raise ConfigurationError(f"warehouse TLS certificate refused: {exc.verify_message}") from exc
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

    async def erased_subjects(self, user_keys: Sequence[str]) -> frozenset[str]:
        """The ``user_keys`` in the erasure register now (outside any write: for dead letters
        about to be published, :func:`streams.sink.refusals.scrub_erased_payloads`)."""
        if not user_keys:
            return frozenset()
        try:
            async with self.pool.acquire() as conn:
                return await erased_among(conn, self.s, user_keys)
        except TRANSIENT_ERRORS as exc:
            raise WarehouseUnavailable(f"reading the erasure register failed: {type(exc).__name__}") from exc

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
        return await self.write_prepared(group, prepare_batch(readings, dead_letters, next_offsets))

    async def write_prepared(self, group: str, batch: PreparedBatch) -> BatchResult:
        """:meth:`write_batch` for a batch already passed through :func:`prepare_batch`."""
        try:
            await self.ensure_partitions(batch.months)
            async with self.pool.acquire() as conn:
                try:
                    stored = await self._transaction(conn, group, batch, careful=False)
                except asyncpg.UniqueViolationError:  # a redelivery: rolled back, write it carefully
                    stored = await self._transaction(conn, group, batch, careful=True)
        except TRANSIENT_ERRORS as exc:
            raise WarehouseUnavailable(f"batch write failed: {type(exc).__name__}") from exc
        except DATA_ERRORS as exc:
            raise BatchRefused(type(exc).__name__, getattr(exc, "sqlstate", None)) from exc
        return BatchResult(stored_by_metric=stored, duplicates=batch.readings - sum(stored.values()))

    async def find_refused(self, batch: PreparedBatch) -> list[tuple[NormalisedReading, str, str | None]]:
        """The readings of ``batch`` that PostgreSQL refuses on their own, with the error
        class and SQLSTATE; stores nothing (one transaction, rolled back).

        Bisection: a half that stores cleanly (in a savepoint) is cleared at once, a half
        that fails is split again, so k bad readings of n cost about 2·k·log2(n) COPYs."""
        refused: list[tuple[NormalisedReading, str, str | None]] = []
        try:
            async with self.pool.acquire() as conn:
                probe = conn.transaction()
                await probe.start()
                try:
                    await self._bisect(conn, batch.first, refused)
                finally:
                    await probe.rollback()
        except TRANSIENT_ERRORS as exc:
            raise WarehouseUnavailable(f"isolating refused readings failed: {type(exc).__name__}") from exc
        return refused

    async def _bisect(self, conn: asyncpg.Connection, readings: list[NormalisedReading],
                      refused: list[tuple[NormalisedReading, str, str | None]]) -> None:
        try:
            async with conn.transaction():  # a savepoint
                await self._store_new_readings(conn, readings)
        except DATA_ERRORS as exc:
            if len(readings) == 1:
                refused.append((readings[0], type(exc).__name__, getattr(exc, "sqlstate", None)))
                return
            middle = len(readings) // 2
            await self._bisect(conn, readings[:middle], refused)
            await self._bisect(conn, readings[middle:], refused)

    async def _transaction(self, conn: asyncpg.Connection, group: str, batch: PreparedBatch, *,
                           careful: bool) -> dict[str, int]:
        """The batch's one transaction; returns what it stored, by metric.

        Not careful: COPY registry keys and readings as they are (raises UniqueViolationError,
        having rolled back, if a key exists). Careful: store only readings with a new id.
        Either way, raises :class:`SubjectsErased` (rolled back) if a subject of the batch
        is in the erasure register: checked after the first write to ``reading_events``,
        whose lock orders this transaction against an erasure (:mod:`streams.sink.erasure`).
        """
        async with conn.transaction():
            stored: dict[str, int] = {}
            if batch.first and not careful:
                await self._copy(conn, "reading_events", batch.registry_copy, ("event_id", "measured_at"))
                await self._copy(conn, "health_readings", batch.readings_copy, READING_COLUMNS)
                stored = batch.by_metric
            elif batch.first:
                stored = await self._store_new_readings(conn, batch.first)
            if batch.first:
                erased = await erased_among(conn, self.s, batch.user_keys)
                if erased:
                    raise SubjectsErased(erased)
            if batch.dead_letters:
                await conn.execute(self._dead_letter_sql, *dead_letter_columns(batch.dead_letters))
            await conn.execute(
                self._offsets_sql, group,
                [t for t, _ in batch.next_offsets], [p for _, p in batch.next_offsets],
                list(batch.next_offsets.values()),
            )
        return stored

    async def _store_new_readings(self, conn: asyncpg.Connection, readings: Sequence[NormalisedReading]
                                  ) -> dict[str, int]:
        """Register the event ids and store the readings whose id was new (careful path)."""
        registered = await conn.fetch(self._register_sql, [r.event_id for r in readings],
                                      [r.measured_at for r in readings])
        fresh_ids = {r[0] for r in registered}
        fresh = [r for r in readings if r.event_id in fresh_ids]
        if not fresh:
            return {}
        data = copy_readings(fresh)
        try:
            async with conn.transaction():  # a savepoint, for the fallback below
                await self._copy(conn, "health_readings", data, READING_COLUMNS)
            return dict(Counter(r.metric for r in fresh))
        except asyncpg.UniqueViolationError:
            await conn.copy_to_table(STAGING_TABLE, source=memoryview(data), format="binary",
                                     columns=READING_COLUMNS)
            return {r["metric"]: r["n"] for r in await conn.fetch(self._insert_staged_sql)}

    async def _copy(self, conn: asyncpg.Connection, table: str, data: bytes, columns: Sequence[str]) -> None:
        # A memoryview: asyncpg would take bytes for a file name.
        await conn.copy_to_table(table, schema_name=self.schema, source=memoryview(data), format="binary",
                                 columns=columns)

    async def ensure_partitions(self, measured: Iterable[datetime]) -> None:
        """Create the monthly partitions of ``measured`` that this process has not seen yet."""
        months = {(ts.year, ts.month) for ts in measured}
        missing = {datetime(y, m, 1, tzinfo=UTC) for y, m in months} - self._known_partitions
        if not missing:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await lock_schema_ddl(conn, self.schema)
            for start in sorted(missing):
                await conn.execute(self.partition_ddl(start))
        self._known_partitions |= missing

    def partition_ddl(self, start: datetime) -> str:
        # The schema owner's function (migration 7): the runtime role may not run DDL itself.
        return f"SELECT {self.s}.create_reading_partition('{start.isoformat()}')"

    @property
    def _register_sql(self) -> str:
        return (
            f"INSERT INTO {self.s}.reading_events (event_id, measured_at)"
            " SELECT * FROM unnest($1::text[], $2::timestamptz[])"
            " ON CONFLICT DO NOTHING RETURNING event_id"
        )

    @property
    def _insert_staged_sql(self) -> str:
        cols = ", ".join(READING_COLUMNS)
        return (
            f"WITH inserted AS (INSERT INTO {self.s}.health_readings ({cols})"
            f" SELECT {cols} FROM {STAGING_TABLE} ON CONFLICT DO NOTHING RETURNING metric)"
            " SELECT metric, count(*) AS n FROM inserted GROUP BY metric"
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
