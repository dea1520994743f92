"""Happy paths of the pipeline, warehouse and DLQ endpoints on the real worker."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def stored(pg, schema: str, event_ids: list[str]) -> int:  # type: ignore[no-untyped-def]
    return await pg.fetchval(
        f"SELECT count(*) FROM {quote_ident(schema)}.health_readings WHERE event_id = ANY($1)", event_ids)


async def dead_count(pg, schema: str, reason: str) -> int:  # type: ignore[no-untyped-def]
    return await pg.fetchval(f"SELECT count(*) FROM {quote_ident(schema)}.dead_letters WHERE reason=$1",
                             reason)


async def test_status_reports_partitions_throughput_dead_letters_and_services(
        client, api_worker, pg, produce, make_reading, now, eventually):  # type: ignore[no-untyped-def]
    schema = api_worker.settings.warehouse_schema
    ids = [uid("st") for _ in range(3)]
    for event_id in ids:
        await produce(make_reading(event_id, at=now - timedelta(minutes=5)))
    before = await dead_count(pg, schema, "unknown_unit")
    await produce(make_reading(uid("bad"), at=now - timedelta(minutes=5), unit="furlongs"))
    await eventually(lambda: _all(stored(pg, schema, ids), 3))
    await eventually(lambda: _all(dead_count(pg, schema, "unknown_unit"), before + 1))

    async def settled():  # type: ignore[no-untyped-def]
        reply = await client.call("GET", "/pipeline/status", role="viewer")
        assert reply.status == 200, reply.body
        consumer = reply.body["consumer"]
        return reply.body if len(consumer["partitions"]) == 2 and consumer["total_lag"] == 0 else None

    body = await eventually(settled)
    assert body["status"] == "ok"
    assert body["kafka"] == {"reachable": True} and body["warehouse"] == {"reachable": True}
    assert body["services"]["ingest"] == "running" and body["services"]["worker"] == "running"
    assert all(state == "running" for state in body["services"]["agents"].values())
    partitions = body["consumer"]["partitions"]
    assert {p["topic"] for p in partitions} == {api_worker.settings.raw_topic}
    assert all(not p["stalled"] and p["lag"] == 0 for p in partitions)
    assert any(p["last_commit_age_s"] is not None and p["committed_offset"] > 0 for p in partitions)
    assert body["throughput"]["readings"] >= 3 and body["throughput"]["window_s"] == 60
    assert body["dead_letters"]["by_reason"]["unknown_unit"] >= before + 1


async def _all(awaitable, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return await awaitable >= expected


async def test_setup_is_idempotent_and_creates_coming_partitions(client, api_worker, pg, now):  # type: ignore[no-untyped-def]
    first = await client.call("POST", "/pipeline/setup", role="admin")
    assert first.status == 200, first.body
    second = await client.call("POST", "/pipeline/setup", role="admin", json={})
    assert second.status == 200, second.body
    assert second.body["topics_created"] == [] and second.body["partitions"]["created"] == []
    assert 4 in second.body["migrations"]
    ahead = api_worker.settings.warehouse_partitions_ahead
    assert len(second.body["partitions"]["present"]) == ahead + 1
    assert f"health_readings_p{now:%Y%m}" in second.body["partitions"]["present"]
    names = {r["relname"] for r in await pg.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1",
        api_worker.settings.warehouse_schema)}
    assert set(second.body["partitions"]["present"]) <= names


async def test_optimize_detaches_partitions_past_retention_and_reports(
        client, api_worker, pg, produce, make_reading, now, eventually):  # type: ignore[no-untyped-def]
    schema = api_worker.settings.warehouse_schema
    old_at = now.replace(day=1) - timedelta(days=800)  # well past the 12-month retention
    old_partition = f"health_readings_p{old_at:%Y%m}"
    first = uid("old")
    await produce(make_reading(first, at=old_at))
    await eventually(lambda: _all(stored(pg, schema, [first]), 1))

    dry = await client.call("POST", "/warehouse/optimize", role="admin", json={"dry_run": True})
    assert dry.status == 200, dry.body
    assert [d["partition"] for d in dry.body["partitions"]["detached"]] == [old_partition]
    assert dry.body["analyzed"] == []
    assert await stored(pg, schema, [first]) == 1, "a dry run changed nothing"

    done = await client.call("POST", "/warehouse/optimize", role="admin")
    assert done.status == 200, done.body
    [detached] = done.body["partitions"]["detached"]
    assert detached["partition"] == old_partition
    assert done.body["retention"]["months"] == 12
    assert "health_readings" in done.body["analyzed"] and "audit_log" in done.body["analyzed"]
    assert any(i["table"].startswith("health_readings_p") for i in done.body["indexes"])
    assert await stored(pg, schema, [first]) == 0, "detached rows are out of the fact table"
    renamed = f"{quote_ident(schema)}.{quote_ident(detached['renamed_to'])}"
    kept = await pg.fetchval(f"SELECT count(*) FROM {renamed}")
    assert kept == 1, "detached, never dropped"

    # A late reading for the detached month gets a fresh partition instead of wedging the sink.
    late = uid("late")
    await produce(make_reading(late, at=old_at + timedelta(hours=1)))
    await eventually(lambda: _all(stored(pg, schema, [late]), 1))
    again = await client.call("POST", "/warehouse/optimize", role="admin", json={"dry_run": True})
    assert [d["partition"] for d in again.body["partitions"]["detached"]] == [old_partition]


async def test_dlq_summary_by_reason_and_metric(client, api_worker, produce, make_reading, now,
                                                eventually):  # type: ignore[no-untyped-def]
    await produce(make_reading(uid("oor"), at=now - timedelta(minutes=1), metric="steps", value=-5,
                               unit="count"))

    async def summary():  # type: ignore[no-untyped-def]
        reply = await client.call("GET", "/dlq", role="viewer")
        assert reply.status == 200, reply.body
        rows = [r for r in reply.body["by_reason_and_metric"]
                if r["reason"] == "out_of_range" and r["metric"] == "steps"]
        return reply.body if rows and rows[0]["count"] >= 1 else None

    body = await eventually(summary)
    assert body["topic"] == api_worker.settings.dlq_topic
    assert body["total"] == sum(body["by_reason"].values()) >= 1
    assert body["by_reason"]["out_of_range"] >= 1


async def test_redrive_refeeds_the_original_message_after_the_cause_is_gone(
        client, api_worker, pg, produce, make_reading, now, eventually):  # type: ignore[no-untyped-def]
    """future_timestamp letters become valid once their time has come: redrive stores them."""
    schema = api_worker.settings.warehouse_schema
    soon = now + timedelta(seconds=3)
    ids = [uid("fut") for _ in range(3)]
    before = await dead_count(pg, schema, "future_timestamp")
    for event_id in ids:
        await produce(make_reading(event_id, at=soon))
    await eventually(lambda: _all(dead_count(pg, schema, "future_timestamp"), before + 3))
    assert await stored(pg, schema, ids) == 0

    dry = await client.call("POST", "/dlq/redrive", role="operator",
                            json={"reason": "future_timestamp", "dry_run": True})
    assert dry.status == 200, dry.body
    assert dry.body["selected"] == before + 3 and dry.body["would_refeed"] == before + 3, dry.body
    assert dry.body["refed"] == 0, "a dry run publishes nothing"
    assert dry.body["raw_offsets"] == {}

    await eventually(lambda: _after(soon))
    done = await client.call("POST", "/dlq/redrive", role="operator", json={"reason": "future_timestamp"})
    assert done.status == 200, done.body
    assert done.body["refed_from_source"] == before + 3 and done.body["skipped_truncated"] == 0
    assert sum(len(v) for v in done.body["raw_offsets"].values()) == before + 3
    await eventually(lambda: _all(stored(pg, schema, ids), 3))


async def _after(moment) -> bool:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC) > moment + timedelta(seconds=0.5)


async def test_redrive_by_source_offset_range(client, api_worker, pg, produce, make_reading, now,
                                              eventually):  # type: ignore[no-untyped-def]
    schema = api_worker.settings.warehouse_schema
    metas = [await produce(make_reading(uid("nan"), at=now - timedelta(minutes=1), unit="parsecs"),
                           partition=1) for _ in range(3)]
    before = await dead_count(pg, schema, "unknown_unit")
    await eventually(lambda: _all(dead_count(pg, schema, "unknown_unit"), before + 3), timeout=20)
    middle = metas[1].offset
    reply = await client.call("POST", "/dlq/redrive", role="admin", json={
        "partition": 1, "from_offset": middle, "to_offset": middle})
    assert reply.status == 200, reply.body
    assert reply.body["selected"] == 1 and reply.body["refed"] == 1
    # Still unknown: rejected again, from its new raw offset.
    new_offset = reply.body["raw_offsets"][next(iter(reply.body["raw_offsets"]))][0]
    rows = await eventually(lambda: pg.fetch(
        f"SELECT reason FROM {quote_ident(schema)}.dead_letters WHERE partition=$1 AND \"offset\"=$2",
        int(next(iter(reply.body["raw_offsets"]))), new_offset))
    assert [r["reason"] for r in rows] == ["unknown_unit"]


async def test_redrive_needs_a_selection(client):  # type: ignore[no-untyped-def]
    reply = await client.call("POST", "/dlq/redrive", role="operator", json={})
    assert reply.status == 422
    reply = await client.call("POST", "/dlq/redrive", role="operator", json={"from_offset": 3})
    assert reply.status == 422
