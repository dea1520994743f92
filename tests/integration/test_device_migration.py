# ruff: noqa: F811 - pytest fixtures imported from batch_support are used as parameters
"""Migration 8 rewrites device ids stored in clear (before device pseudonyms) in place."""

from __future__ import annotations

import dataclasses

import pytest
from batch_support import DAY, normalise, reading, store

from streams.domain.pseudonym import device_key
from streams.sink import device_migration
from streams.sink.migrations import quote_ident
from streams.sink.warehouse import Warehouse

pytestmark = [pytest.mark.integration]


async def test_clear_device_ids_are_pseudonymised_once_with_the_key(batch_settings, caplog) -> None:
    settings, key = batch_settings, batch_settings.pseudonym_key_bytes
    s = quote_ident(settings.warehouse_schema)
    old = Warehouse(settings.pg_dsn_value, settings.warehouse_schema)
    await old.start()  # a fresh schema: nothing stored, so migration 8 is marked done at once
    assert device_migration.VERSION in old.applied_migrations
    # Rows as the code before this migration stored them: device ids in clear.
    docs = [reading("alice", "heart_rate", 60 + i, "bpm", DAY, device=f"SN-{i % 3}") for i in range(7)]
    docs.append(reading("alice", "steps", 10, "count", DAY, device=None))
    clear = [dataclasses.replace(r, device_id=d["device_id"]) for r, d in zip(normalise(settings, docs), docs,
                                                                              strict=True)]
    await store(old, clear)
    await old.pool.execute(f"DELETE FROM {s}.schema_migrations WHERE version = $1", device_migration.VERSION)
    await old.stop()

    keyless = Warehouse(settings.pg_dsn_value, settings.warehouse_schema)
    await keyless.start()
    assert keyless.applied_migrations == [] and "waits" in caplog.text
    clear_left = f"SELECT count(*) FROM {s}.health_readings WHERE device_id LIKE 'SN-%'"
    assert await keyless.pool.fetchval(clear_left) == 7
    await keyless.stop()

    keyed = Warehouse(settings.pg_dsn_value, settings.warehouse_schema, pseudonym_key=key)
    await keyed.start()
    assert keyed.applied_migrations == [device_migration.VERSION]
    rows = await keyed.pool.fetch(f"SELECT event_id, device_id FROM {s}.health_readings")
    by_event = {r["event_id"]: r["device_id"] for r in rows}
    assert by_event == {d["event_id"]: device_key(key, d["device_id"]) if d["device_id"] else None
                        for d in docs}
    await keyed.stop()

    again = Warehouse(settings.pg_dsn_value, settings.warehouse_schema, pseudonym_key=key)
    await again.start()  # idempotent: recorded in schema_migrations, nothing rewritten twice
    assert again.applied_migrations == []
    assert {r["event_id"]: r["device_id"] for r in await again.pool.fetch(
        f"SELECT event_id, device_id FROM {s}.health_readings")} == by_event
    await again.stop()
