"""Subject rights over HTTP: export and erasure of one person, admin only, audited by pseudonym."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import pytest
from pipeline_support import runtime_dsn

from streams.domain.pseudonym import device_key, user_key
from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration


async def test_export_then_erase_one_person_and_nobody_else(  # type: ignore[no-untyped-def]
        client, api_worker, pg, pg_dsn, produce, make_reading, now, eventually) -> None:
    person, other = f"patient-{uuid.uuid4().hex[:8]}", f"patient-{uuid.uuid4().hex[:8]}"
    key = api_worker.settings.pseudonym_key_bytes
    s = quote_ident(api_worker.settings.warehouse_schema)
    ids = {u: [f"sr-{uuid.uuid4().hex[:10]}" for _ in range(3)] for u in (person, other)}
    for u, events in ids.items():
        for i, event_id in enumerate(events):
            await produce(make_reading(event_id, at=now - timedelta(minutes=i + 1), user=u), key=u)
    every = ids[person] + ids[other]
    await eventually(lambda: pg.fetchval(
        f"SELECT count(*) = 6 FROM {s}.health_readings WHERE event_id = ANY($1)", every))
    pseudonym = user_key(key, person)
    await pg.execute(f"INSERT INTO {s}.aggregated_health_metrics VALUES (current_date, $1, 'heart_rate',"
                     " '/min', 3, 60, 80, 70, 1, 70, 79)", pseudonym)

    # A partition detached for retention still holds readings: it is exported and erased too.
    # Detached by the runtime role, as optimize does (migration 9 keeps it readable for it).
    detached = f"health_readings_p200102_detached_{uuid.uuid4().hex[:8]}"
    await pg.execute(f"SELECT {s}.create_reading_partition('2001-02-01T00:00:00Z')")
    await pg.execute(f"CREATE TEMP TABLE archived AS SELECT * FROM {s}.health_readings WHERE event_id = $1",
                     ids[person][0])
    await pg.execute("UPDATE archived SET event_id = 'sr-archived', measured_at = '2001-02-15T00:00:00Z'")
    await pg.execute(f"INSERT INTO {s}.health_readings SELECT * FROM archived")
    runtime = await asyncpg.connect(runtime_dsn(pg_dsn))
    try:
        await runtime.execute(f"SELECT {s}.detach_reading_partition('health_readings_p200102', $1)", detached)
    finally:
        await runtime.close()

    assert (await client.call("GET", f"/subjects/{person}/export", role="operator")).status == 403
    bundle = await client.call("GET", f"/subjects/{person}/export", role="admin")
    assert bundle.status == 200, bundle.body
    assert bundle.headers["Content-Type"].startswith("application/fhir+json")
    assert (bundle.body["resourceType"], bundle.body["type"]) == ("Bundle", "collection")
    observations = [e["resource"] for e in bundle.body["entry"]]
    assert len(observations) == 4 and "total" not in bundle.body  # three stored, one detached; bdl-1
    assert {o["subject"]["reference"] for o in observations} == {f"Patient/{pseudonym}"}
    assert {o["device"]["display"] for o in observations} == {device_key(key, "d-1")}
    exported = await client.call("GET", f"/subjects/{person}/export", role="admin", params={"format": "json"})
    assert exported.status == 200, exported.body
    doc = exported.body
    assert doc["user_key"] == pseudonym
    assert sorted(r["event_id"] for r in doc["readings"]) == sorted([*ids[person], "sr-archived"])
    assert {r["device_id"] for r in doc["readings"]} == {device_key(key, "d-1")}  # a pseudonym
    # Other tables with a user_key (e.g. partitions detached by the optimize tests) hold nothing of theirs.
    assert {t: n for t, n in doc["counts"].items() if n} == {
        "health_readings": 3, "aggregated_health_metrics": 1, detached: 1}
    assert {"health_readings", "aggregated_health_metrics", "user_engagement"} <= set(doc["counts"])
    assert len(doc["derived"]["aggregated_health_metrics"]) == 1

    erased = await client.call("DELETE", f"/subjects/{person}", role="admin")
    assert erased.status == 200, erased.body
    assert {t: n for t, n in erased.body["erased"].items() if n} == {
        "health_readings": 3, "reading_events": 3, "aggregated_health_metrics": 1, detached: 1}
    assert erased.body["total"] == 8
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.health_readings WHERE user_key = $1", pseudonym) == 0
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.reading_events WHERE event_id = ANY($1)",
                             ids[person]) == 0
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.health_readings WHERE event_id = ANY($1)",
                             ids[other]) == 3  # nobody else is touched
    again = await client.call("GET", f"/subjects/{person}/export", role="admin")
    assert again.body == {"resourceType": "Bundle", "type": "collection"}  # no empty entry array
    # The answers say what was erased, who erased, and what neither can reach.
    assert erased.body["erasure"]["erased_by"] == "tester"
    assert erased.body["erasure"]["request_id"] == erased.headers["X-Request-Id"]
    places = [p["place"] for p in erased.body["not_reached"]]
    assert f"Kafka topic {api_worker.settings.raw_topic}" in places
    assert "database backups and replicas" in places
    listed = await client.call("GET", f"/subjects/{person}/export", role="admin", params={"format": "json"})
    assert listed.body["erasure"] == erased.body["erasure"]
    assert listed.body["not_reached"] == erased.body["not_reached"] and listed.body["readings"] == []

    # The raw id is never stored: the audit rows name the pseudonym only.
    request_ids = [r.headers["X-Request-Id"] for r in (bundle, exported, erased, again, listed)]
    rows = await pg.fetch(f"SELECT action, target FROM {s}.audit_log WHERE request_id = ANY($1)", request_ids)
    assert sorted(r["action"] for r in rows) == ["subjects.erase", *["subjects.export"] * 4]
    assert all(r["target"].startswith(f"user_key={pseudonym}") for r in rows)
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.audit_log WHERE target LIKE '%' || $1 || '%'",
                             person) == 0


async def test_denied_and_mistyped_subject_calls_do_not_record_the_raw_id(client, api_worker, pg
                                                                           ) -> None:  # type: ignore[no-untyped-def]
    person = f"patient-{uuid.uuid4().hex[:8]}"
    s = quote_ident(api_worker.settings.warehouse_schema)
    replies = [await client.call("DELETE", f"/subjects/{person}", role="viewer"),
               await client.call("DELETE", f"/subjects/{person}"),
               await client.call("PUT", f"/subjects/{person}", role="admin"),
               await client.call("GET", f"/subjects/{person}/exports", role="admin")]
    assert [r.status for r in replies] == [403, 401, 405, 404]
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.audit_log WHERE request_id = ANY($1)",
                             [r.headers["X-Request-Id"] for r in replies]) == 4
    assert await pg.fetchval(f"SELECT count(*) FROM {s}.audit_log WHERE target LIKE '%' || $1 || '%'",
                             person) == 0
    assert person not in api_worker.log_tail()
