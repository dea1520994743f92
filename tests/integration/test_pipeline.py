"""The streaming core on the real Kafka and PostgreSQL: every reading ends up exactly once
in the warehouse (canonical units, pseudonymised) or in the dead-letter topic."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest
from pipeline_support import read_topic, wait_until_caught_up
from prometheus_client import CollectorRegistry

from streams.domain.catalogue import DEFAULT_CATALOGUE
from streams.domain.pseudonym import device_key, user_key
from streams.ingest import IngestService
from streams.metrics import Metrics
from streams.rules import rules_from_settings
from streams.sink.migrations import quote_ident
from streams.sink.warehouse import Warehouse
from streams.synthetic import BAD_KINDS, SyntheticReadings

pytestmark = pytest.mark.integration


async def run_until_caught_up(settings, pg) -> Metrics:
    metrics = Metrics(CollectorRegistry())
    warehouse = Warehouse(settings.pg_dsn_value, settings.warehouse_schema)
    service = IngestService(settings, rules_from_settings(settings), warehouse, metrics)
    await service.start()
    try:
        await wait_until_caught_up(settings, pg, timeout=90)
    finally:
        await service.stop()
    return metrics


async def test_mixed_input_lands_exactly_once_in_warehouse_or_dlq(pipeline_settings, raw_producer, pg):
    settings = pipeline_settings
    generator = SyntheticReadings(datetime.now(UTC), seed=11)
    singles = list(generator.messages(400, bad_ratio=0.35))
    envelopes = list(generator.messages(600, bad_ratio=0.2, batch_size=50))
    messages = singles + envelopes
    expected_kinds = {code for m in singles for code in m.expected if code}
    assert {"invalid_type" if k == "nan_value" else k for k in BAD_KINDS} <= expected_kinds

    for m in messages:
        await raw_producer.send(settings.raw_topic, m.value, key=m.key)
    # Redeliveries of wholly valid messages must not be stored twice.
    redelivered = [m for m in messages if not any(m.expected)][:40]
    for m in redelivered:
        await raw_producer.send(settings.raw_topic, m.value, key=m.key)
    poison = {
        b"this is not json": "malformed_json",
        b"[" * 50_000 + b"]" * 50_000: "malformed_json",
        b'{"pad": "' + b"x" * (settings.max_message_bytes + 10) + b'"}': "oversized",
        b"[1, 2, 3]": "invalid_type",
    }
    for value in poison:
        await raw_producer.send(settings.raw_topic, value, key=b"poison-user")
    await raw_producer.flush()

    metrics = await run_until_caught_up(settings, pg)

    s = quote_ident(settings.warehouse_schema)
    rows = await pg.fetch(f"SELECT * FROM {s}.health_readings")
    stored_ids = [r["event_id"] for r in rows]
    expected_ids = {eid for m in messages for eid, code in zip(m.event_ids, m.expected, strict=True)
                    if code is None}
    assert len(stored_ids) == len(set(stored_ids)), "an event_id was stored twice"
    assert set(stored_ids) == expected_ids

    raw_users = {m.key.decode() for m in messages}
    key = settings.pseudonym_key_bytes
    for r in rows:
        rule = DEFAULT_CATALOGUE[r["metric"]]
        assert r["unit"] == rule.canonical_unit
        assert r["loinc_code"] == rule.loinc_code
        assert r["user_key"] not in raw_users and len(r["user_key"]) == 64
        assert r["kafka_topic"] == settings.raw_topic
    assert {r["user_key"] for r in rows} <= {user_key(key, u) for u in raw_users}

    expected_rejects = Counter(code for m in messages for code in m.expected if code)
    expected_rejects.update(poison.values())
    dlq = await read_topic(settings.kafka_bootstrap, settings.dlq_topic)
    assert Counter(dict(r.headers)["error.code"].decode() for r in dlq) == expected_rejects
    for record in dlq:
        headers = dict(record.headers)
        assert headers["source.topic"].decode() == settings.raw_topic
        assert int(headers["source.offset"]) >= 0 and headers["pipeline.version"]
        assert not any(u.encode() in b"".join(headers.values()) for u in raw_users)
    # A bad member of an envelope is dead-lettered alone, not with its batch.
    envelope_ids = {eid for m in envelopes for eid, code in zip(m.event_ids, m.expected, strict=True)
                    if code}
    member_letters = [r for r in dlq if b'"readings"' not in r.value and b'"user_id"' not in r.value
                      and any(eid.encode() in r.value for eid in envelope_ids)]
    assert len(member_letters) == len(envelope_ids)

    rejected_rows = await pg.fetchval(f"SELECT count(*) FROM {s}.dead_letters")
    assert rejected_rows == sum(expected_rejects.values())
    stored_total = sum(s.value for s in metrics.registry.collect()
                       for s in s.samples if s.name == "healthmate_readings_stored_total")
    assert stored_total == len(expected_ids)


async def test_conversion_and_enrichment_are_stored(pipeline_settings, raw_producer, pg):
    settings = pipeline_settings
    reading = {"event_id": "conv-1", "user_id": "alice-123", "device_id": "cgm-9", "source": "dexcom",
               "metric": "blood_glucose", "value": 5.5, "unit": "mmol/L",
               "timestamp": "2026-01-02T03:04:05+01:00", "metadata": {"fw": "2.1"}}
    await raw_producer.send_and_wait(settings.raw_topic, orjson.dumps(reading), key=b"alice-123")

    await run_until_caught_up(settings, pg)

    row = await pg.fetchrow(
        f"SELECT * FROM {quote_ident(settings.warehouse_schema)}.health_readings WHERE event_id='conv-1'")
    assert row["value"] == pytest.approx(5.5 * 18.016)
    assert (row["unit"], row["original_value"], row["original_unit"]) == ("mg/dL", 5.5, "mmol/L")
    assert row["loinc_code"] == "2339-0"
    assert row["measured_at"] == datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)
    assert "late" in row["quality_flags"]
    assert row["user_key"] == user_key(settings.pseudonym_key_bytes, "alice-123")
    assert row["device_id"] == device_key(settings.pseudonym_key_bytes, "cgm-9")  # never in clear
    assert orjson.loads(row["metadata"]) == {"fw": "2.1"}
    assert row["kafka_partition"] >= 0 and row["kafka_offset"] == 0
    assert row["transformation_version"] and row["produced_at"] is not None
