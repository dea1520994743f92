"""Migration 8: device ids in clear become keyed pseudonyms. A Python step, not SQL.

SQL cannot compute the pseudonyms (it does not have the HMAC key), so this step runs in
:func:`streams.sink.migrations.apply_migrations` when the caller passes the key
(``Warehouse(..., pseudonym_key=...)``: the worker, ``python -m streams setup`` and the
batch CLI do). Inside the migration transaction it copies the distinct clear device ids to
a temporary table, computes their pseudonyms in Python ``BATCH`` at a time, rewrites
``health_readings`` with one UPDATE, and records version 8 in ``schema_migrations``; a crash
leaves nothing half done. It is idempotent through that row.

A schema with no device id stored yet (a fresh one) is marked done without a key. A schema
that holds device ids and is opened without the key is left unmarked (and a warning
logged) until a process with the key starts: never mark it done with clear ids inside.
"""

from __future__ import annotations

import logging

import asyncpg

from streams.domain.pseudonym import Pseudonymiser, device_pseudonym_key

log = logging.getLogger(__name__)

VERSION = 8
NAME = "device_id stored as a keyed pseudonym (Python step, needs the pseudonym key)"
BATCH = 1000


async def pseudonymise_device_ids(conn: asyncpg.Connection, s: str, key: bytes | None) -> int | None:
    """Rewrite clear device ids in schema ``s`` (quoted); return how many distinct ids were
    rewritten, or None when the step has to wait for the key. Call inside a transaction."""
    stored = await conn.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM {s}.health_readings WHERE device_id IS NOT NULL AND device_id <> '')")
    if not stored:
        return 0
    if key is None:
        log.warning("migration %s waits: device ids are stored in clear and this process has no "
                    "pseudonym key; start the worker or `python -m streams setup` to apply it", VERSION)
        return None
    pseudonymise = Pseudonymiser(device_pseudonym_key(key))
    await conn.execute("CREATE TEMP TABLE device_pseudonyms (old text PRIMARY KEY, new text) ON COMMIT DROP")
    await conn.execute(
        "INSERT INTO device_pseudonyms (old) SELECT DISTINCT device_id"
        f" FROM {s}.health_readings WHERE device_id IS NOT NULL AND device_id <> ''")
    total = 0
    while True:
        old = [r["old"] for r in await conn.fetch(
            "SELECT old FROM device_pseudonyms WHERE new IS NULL ORDER BY old LIMIT $1", BATCH)]
        if not old:
            break
        await conn.execute(
            "UPDATE device_pseudonyms d SET new = m.new FROM unnest($1::text[], $2::text[]) AS m(old, new)"
            " WHERE d.old = m.old", old, [pseudonymise(o) for o in old])
        total += len(old)
    await conn.execute(
        f"UPDATE {s}.health_readings h SET device_id = d.new FROM device_pseudonyms d"
        " WHERE h.device_id = d.old")
    log.info("migration %s: %d device ids pseudonymised", VERSION, total)
    return total
