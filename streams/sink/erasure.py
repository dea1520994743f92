"""The erasure register (migration 11): once erased, a subject's readings are never stored again.

The register holds the keyed pseudonym (``user_key``) of every erased person, never the raw
id. Every writer of readings, the live ingest, replays and backfills, a DLQ redrive (it goes
through the live ingest) and any importer built on :class:`~streams.sink.warehouse.Warehouse`,
stores through one transaction, and that transaction checks the register
(:func:`erased_among`) after its first write to ``reading_events`` and before it commits.

Why that order is race-free: the erasure transaction inserts the register entry, then takes
:data:`ERASURE_LOCK` (``SHARE ROW EXCLUSIVE`` on ``reading_events`` and ``user_profiles``),
which conflicts with the ``ROW EXCLUSIVE`` lock any insert into those tables holds until its
commit, and only then deletes the person's readings and profile. So an erasure waits for
every batch already writing, and deletes what they stored (a later statement, it sees their
rows); a batch that starts writing after the lock waits for the erasure to commit, and its
check, a later statement in READ COMMITTED, then sees the new register entry. A profile upsert takes
its lock with a statement of its own for the same reason (:data:`PROFILE_LOCK`).

Derived tables (an ETL load computes them from the readings, in one transaction) are
guarded by the register itself: the load first takes :data:`REGISTER_HOLD`, which conflicts
with the erasure's insert into the register. A load that holds it first commits before the
erasure's deletes start, and they delete what it wrote; a load that comes second waits for
the erasure to commit, then reads readings that no longer hold the person's.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from streams.sink.migrations import quote_ident

REGISTER = "erasure_register"

#: Taken by an erasure before it deletes from the tables writers fill (see the module
#: docstring). Two erasures also exclude each other (the mode conflicts with itself), so they
#: cannot deadlock over it.
ERASURE_LOCK = "LOCK TABLE {s}.reading_events, {s}.user_profiles IN SHARE ROW EXCLUSIVE MODE"
#: The tables an erasure deletes from only under :data:`ERASURE_LOCK`.
GUARDED_TABLES = frozenset({"health_readings", "user_profiles"})
#: First statement of an ETL load's transaction (see the module docstring). ``SHARE`` does not
#: conflict with itself, so loads run side by side; only erasures and lifts wait for them.
REGISTER_HOLD = "LOCK TABLE {s}.erasure_register IN SHARE MODE"
#: First statement of a profile upsert's transaction.
PROFILE_LOCK = "LOCK TABLE {s}.user_profiles IN ROW EXCLUSIVE MODE"


async def erased_among(conn: asyncpg.Connection, s: str, user_keys: Sequence[str]) -> frozenset[str]:
    """The ``user_keys`` (pseudonyms) that are in the register, as seen by this statement.

    ``s`` is the quoted schema. Call it inside the writing transaction, after its first
    insert into ``reading_events``."""
    if not user_keys:
        return frozenset()
    rows = await conn.fetch(f"SELECT user_key FROM {s}.{REGISTER} WHERE user_key = ANY($1::text[])",
                            list(user_keys))
    return frozenset(r[0] for r in rows)


async def register_erasure(conn: asyncpg.Connection, schema: str, user_key: str, *, erased_by: str,
                           request_id: str) -> bool:
    """Enter ``user_key`` in the register, inside the caller's erasure transaction, which then
    deletes the person's rows, those of :data:`GUARDED_TABLES` after :func:`lock_writers`.
    True if the entry is new (a repeated erasure keeps the first entry; the audit log has
    every call)."""
    status = await conn.execute(
        f"INSERT INTO {quote_ident(schema)}.{REGISTER} (user_key, erased_by, request_id) VALUES ($1, $2, $3)"
        " ON CONFLICT (user_key) DO NOTHING", user_key, erased_by, request_id)
    return not status.endswith(" 0")


async def lock_writers(conn: asyncpg.Connection, schema: str) -> None:
    """:data:`ERASURE_LOCK`, in the erasure transaction, before it deletes from
    :data:`GUARDED_TABLES`: writes that started earlier have committed (and are deleted),
    later ones wait for the commit and then see the register entry."""
    await conn.execute(ERASURE_LOCK.replace("{s}", quote_ident(schema)))


async def hold_erasures(conn: asyncpg.Connection, schema: str) -> None:
    """:data:`REGISTER_HOLD`, as the first statement of a transaction that derives rows from
    readings: no erasure commits between what it reads and what it writes."""
    await conn.execute(REGISTER_HOLD.replace("{s}", quote_ident(schema)))


async def lift_erasure(pool: asyncpg.Pool, schema: str, user_key: str) -> dict[str, object] | None:
    """Remove ``user_key``'s register entry; the entry removed (without its key), or None.

    From then on the person's new readings are stored as anyone's; what was erased stays
    erased (their readings still in Kafka would be stored again by a replay of that range)."""
    row = await pool.fetchrow(
        f"DELETE FROM {quote_ident(schema)}.{REGISTER} WHERE user_key = $1"
        " RETURNING erased_at, erased_by, request_id", user_key)
    return None if row is None else dict(row)


async def register_entry(db: asyncpg.Pool | asyncpg.Connection, schema: str, user_key: str
                         ) -> dict[str, object] | None:
    """The register entry of ``user_key`` (``erased_at``, ``erased_by``, ``request_id``), or None."""
    row = await db.fetchrow(
        f"SELECT erased_at, erased_by, request_id FROM {quote_ident(schema)}.{REGISTER} WHERE user_key = $1",
        user_key)
    return None if row is None else dict(row)
