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
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import orjson

from streams.domain.text import safe_rendering
from streams.errors import BatchRefused, ConfigurationError, SubjectsErased, WarehouseUnavailable
from streams.records import DeadLetter, NormalisedReading
from streams.sink.erasure import erased_among
from streams.sink.migrations import apply_migrations, lock_schema_ddl, quote_ident

READING_COLUMNS = (
    "event_id", "user_key", "device_id", "source", "metric", "loinc_code", "value", "unit",
    "original_value", "original_unit", "measured_at", "ingested_at", "produced_at",
    "quality_flags", "kafka_topic", "kafka_partition", "kafka_offset", "transformation_version",
    "metadata", "measured_until", "statistic",
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
class DeadLetterRow:
    """Where a dead letter came from; ``member_index`` orders the rejects of one message."""

    topic: str
    partition: int
    offset: int
    member_index: int
    letter: DeadLetter


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch ready for :meth:`Warehouse.write_prepared`; built by :func:`prepare_batch`.

    ``first`` holds one reading per ``event_id`` in ``event_id`` order (concurrent writers
    then lock registry keys in one order); the two ``*_copy`` fields are binary COPY data
    of ``first``. ``user_keys``: the distinct pseudonyms of ``first``, sorted (checked
    against the erasure register). Immutable, so a write can be retried with it.
    """

    readings: int
    first: list[NormalisedReading]
    registry_copy: bytes
    readings_copy: bytes
    by_metric: dict[str, int]
    months: frozenset[datetime]
    dead_letters: Sequence[DeadLetterRow]
    next_offsets: Mapping[tuple[str, int], int]
    user_keys: tuple[str, ...] = ()

    def without(self, event_ids: set[str], dead_letters: Sequence[DeadLetterRow]) -> PreparedBatch:
        """This batch less the readings of ``event_ids``, plus ``dead_letters``."""
        first = [r for r in self.first if r.event_id not in event_ids]
        return _prepared(first, first, *_copy_data(first),
                         [*self.dead_letters, *dead_letters], self.next_offsets,
                         count=self.readings - len(self.first) + len(first))


def prepare_batch(readings: Sequence[NormalisedReading], dead_letters: Sequence[DeadLetterRow],
                  next_offsets: Mapping[tuple[str, int], int]) -> PreparedBatch:
    """Everything :meth:`Warehouse.write_prepared` sends, computed up front (pure, CPU only)."""
    first = sorted(_first_per_event(readings), key=_EVENT_ID)
    return _prepared(readings, first, *_copy_data(first), dead_letters, next_offsets)


async def prepare_batch_cooperatively(
    readings: Sequence[NormalisedReading], dead_letters: Sequence[DeadLetterRow],
    next_offsets: Mapping[tuple[str, int], int], *, chunk: int = 250,
) -> PreparedBatch:
    """:func:`prepare_batch`, yielding to the event loop every ``chunk`` readings.

    Same result. For a caller that prepares while other tasks wait on the network: one
    2000-reading batch is ~10 ms of CPU, and every round trip of a concurrent write would
    otherwise wait for it.
    """
    first = sorted(_first_per_event(readings), key=_EVENT_ID)
    registry, rows = [_COPY_HEADER], [_COPY_HEADER]
    for start in range(0, len(first), chunk):
        await asyncio.sleep(0)
        part_registry, part_rows = _rows_binary(first[start:start + chunk])
        registry.append(part_registry)
        rows.append(part_rows)
    registry.append(_COPY_TRAILER)
    rows.append(_COPY_TRAILER)
    return _prepared(readings, first, b"".join(registry), b"".join(rows), dead_letters, next_offsets)


def _prepared(readings: Sequence[NormalisedReading], first: list[NormalisedReading], registry: bytes,
              rows: bytes, dead_letters: Sequence[DeadLetterRow],
              next_offsets: Mapping[tuple[str, int], int], *, count: int | None = None
              ) -> PreparedBatch:
    months = {(r.measured_at.year, r.measured_at.month) for r in first}
    return PreparedBatch(
        readings=len(readings) if count is None else count, first=first, registry_copy=registry,
        readings_copy=rows,
        by_metric=dict(Counter(r.metric for r in first)),
        months=frozenset(datetime(y, m, 1, tzinfo=UTC) for y, m in months),
        dead_letters=dead_letters, next_offsets=next_offsets,
        user_keys=tuple(sorted({r.user_key for r in first})),
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
                await conn.execute(self._dead_letter_sql, *_dead_letter_columns(batch.dead_letters))
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
        data = _copy_readings(fresh)
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


_EVENT_ID = attrgetter("event_id")


def _first_per_event(readings: Sequence[NormalisedReading]) -> list[NormalisedReading]:
    """One reading per ``event_id``: the one from the lowest (partition, offset), else the first."""
    first: dict[str, NormalisedReading] = {}
    for r in readings:
        seen = first.setdefault(r.event_id, r)
        if seen is not r and (r.kafka_partition, r.kafka_offset) < (seen.kafka_partition, seen.kafka_offset):
            first[r.event_id] = r
    return list(first.values())


# ---- binary COPY encoding ----------------------------------------------------------------
# PostgreSQL's binary COPY format: a header, per row an int16 field count and per field an
# int32 length (-1 = NULL) and the value in the type's binary send format, and a trailer.
# Equal to what asyncpg's copy_records_to_table sends for these columns (checked by
# bench/check_copy.py), but built ahead of the transaction and ~3x cheaper per row.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NULL = b"\xff\xff\xff\xff"
_i32 = struct.Struct(">i").pack
_float8 = struct.Struct(">id").pack  # length 8, then the value
_int4 = struct.Struct(">ii").pack  # length 4, then the value
_int8 = struct.Struct(">iq").pack  # length 8, then the value (timestamptz: microseconds since 2000)
_TEXT_OID = 25
_EMPTY_TEXT_ARRAY = _i32(12) + struct.pack(">iii", 0, 0, _TEXT_OID)
_READING_FIELDS = struct.pack(">h", len(READING_COLUMNS))
_REGISTRY_FIELDS = struct.pack(">h", 2)


def _timestamptz(ts: datetime) -> bytes:
    return _int8(8, (ts - _PG_EPOCH) // _MICROSECOND)


def _text(value: str) -> bytes:
    data = value.encode()
    return _i32(len(data)) + data


def _text_array(values: Sequence[str]) -> bytes:
    if not values:
        return _EMPTY_TEXT_ARRAY
    body = struct.pack(">iiiii", 1, 0, _TEXT_OID, len(values), 1) + b"".join(_text(v) for v in values)
    return _i32(len(body)) + body


def _jsonb(value: object) -> bytes:
    data = orjson.dumps(value)
    return _i32(len(data) + 1) + b"\x01" + data  # jsonb binary format version 1


_Key = TypeVar("_Key", str, datetime)


def _memo(encode: Callable[[_Key], bytes]) -> Callable[[_Key], bytes]:
    """``encode`` with a per-batch cache: user keys, sources, units, clocks repeat a lot."""
    cache: dict[_Key, bytes] = {}

    def cached(value: _Key) -> bytes:
        data = cache.get(value)
        if data is None:
            data = encode(value)
            if len(cache) < 4096:
                cache[value] = data
        return data

    return cached


def _copy_readings(readings: Sequence[NormalisedReading]) -> bytes:
    """Binary COPY data of ``readings`` for the columns :data:`READING_COLUMNS`, in that order."""
    return _copy_data(readings)[1]


def _copy_data(readings: Sequence[NormalisedReading]) -> tuple[bytes, bytes]:
    """Binary COPY data of ``(event_id, measured_at)`` of ``readings`` (the registry), and
    that of ``readings`` for the columns :data:`READING_COLUMNS`."""
    registry, rows = _rows_binary(readings)
    return _COPY_HEADER + registry + _COPY_TRAILER, _COPY_HEADER + rows + _COPY_TRAILER


def _rows_binary(readings: Sequence[NormalisedReading]) -> tuple[bytes, bytes]:
    """The registry rows and the reading rows of ``readings``, in one pass: both start with
    the event id, and ``measured_at`` is in both."""
    text = _memo(_text)
    # Runs of fields that repeat from reading to reading (one user, device, fetch, topic
    # partition), each encoded once per batch: per-field calls were most of the cost.
    who: dict[tuple, bytes] = {}
    where: dict[tuple, bytes] = {}
    tail: dict[tuple, bytes] = {}
    registry: list[bytes] = []
    rows: list[bytes] = []
    append = rows.append
    for r in readings:
        event_id = r.event_id.encode()
        identity = b"".join((_i32(len(event_id)), event_id))
        measured = _timestamptz(r.measured_at)
        registry.append(b"".join((_REGISTRY_FIELDS, identity, measured)))
        key = (r.user_key, r.device_id, r.source, r.metric, r.loinc_code)
        head = who.get(key)
        if head is None:
            head = who[key] = b"".join((
                text(r.user_key), _NULL if r.device_id is None else text(r.device_id), text(r.source),
                text(r.metric), text(r.loinc_code)))
        key = (r.ingested_at, r.produced_at, r.quality_flags, r.kafka_topic, r.kafka_partition)
        middle = where.get(key)
        if middle is None:
            middle = where[key] = b"".join((
                _timestamptz(r.ingested_at), _NULL if r.produced_at is None else _timestamptz(r.produced_at),
                _text_array(r.quality_flags), text(r.kafka_topic), _int4(4, r.kafka_partition)))
        if r.metadata is None:
            key = (r.transformation_version, r.measured_until, r.statistic)
            end = tail.get(key)
            if end is None:
                end = tail[key] = _reading_tail(r)
        else:
            end = _reading_tail(r)
        append(b"".join((
            _READING_FIELDS, identity, head, _float8(8, r.value), text(r.unit),
            _float8(8, r.original_value), text(r.original_unit), measured, middle,
            _int8(8, r.kafka_offset), end,
        )))
    return b"".join(registry), b"".join(rows)


def _reading_tail(r: NormalisedReading) -> bytes:
    return b"".join((
        _text(r.transformation_version), _NULL if r.metadata is None else _jsonb(r.metadata),
        _NULL if r.measured_until is None else _timestamptz(r.measured_until),
        _NULL if r.statistic is None else _text(r.statistic)))


def _reading_rows(readings: Sequence[NormalisedReading]) -> list[tuple]:
    """``readings`` as records for asyncpg's ``copy_records_to_table`` (the reference encoding)."""
    dumps = orjson.dumps
    return [
        (
            r.event_id, r.user_key, r.device_id, r.source, r.metric, r.loinc_code, r.value, r.unit,
            r.original_value, r.original_unit, r.measured_at, r.ingested_at,
            r.produced_at,
            list(r.quality_flags), r.kafka_topic, r.kafka_partition, r.kafka_offset,
            r.transformation_version, None if r.metadata is None else dumps(r.metadata).decode(),
            r.measured_until, r.statistic,
        )
        for r in readings
    ]


def _dead_letter_columns(rows: Sequence[DeadLetterRow]) -> tuple[list, ...]:
    # A rejected record's source can be anything the producer sent: store a safe rendering.
    return (
        [d.topic for d in rows], [d.partition for d in rows], [d.offset for d in rows],
        [d.member_index for d in rows], [str(d.letter.code) for d in rows],
        [safe_rendering(d.letter.metric, 64) for d in rows],
        [safe_rendering(d.letter.source, 64) for d in rows],
        [safe_rendering(d.letter.message, 500) for d in rows],
    )

