"""Poison messages against a real worker process: each is handled, the worker stays up,
the good readings around them are stored, and memory stays bounded."""

from __future__ import annotations

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pipeline_support import read_topic, vm_hwm_mb, wait_until_caught_up

from streams.sink.migrations import quote_ident

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIG_BATCH = 100_000
RSS_LIMIT_MB = 800


@pytest.fixture
def pipeline_env(pipeline_env):
    # Room for a 10^5-reading envelope (~9 MB), so it is processed rather than refused.
    return {**pipeline_env, "HEALTHMATE_MAX_MESSAGE_BYTES": str(16 * 1024 * 1024)}


async def test_poison_messages_never_stop_the_worker(pipeline_settings, pg, worker_process):
    settings = pipeline_settings
    good = [{"event_id": f"good-{i}", "user_id": "poison-neighbour", "source": "garmin",
             "metric": "steps", "value": i, "unit": "count", "timestamp": 1_760_000_000_000 + i}
            for i in range(10)]
    big_batch = {"batch_id": "b-big", "user_id": "bulk-user", "source": "fitbit", "readings": [
        {"event_id": f"big-{i}", "metric": "heart_rate", "value": 60 + i % 40, "unit": "bpm",
         "timestamp": 1_760_000_000_000 + i} for i in range(BIG_BATCH)]}
    poison = [
        (b"\x00\xff not json at all", "malformed_json"),
        (b'{"a":' * 20_000 + b"1" + b"}" * 20_000, "malformed_json"),
        (b'{"pad": "' + b"y" * (settings.max_message_bytes + 1) + b'"}', "oversized"),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                compression_type="gzip", max_request_size=64 * 1024 * 1024)
    await producer.start()
    try:
        await producer.send(settings.raw_topic, orjson.dumps(good[0]), key=b"n")
        for value, _ in poison:
            await producer.send(settings.raw_topic, value, key=b"n")
        await producer.send(settings.raw_topic, orjson.dumps(big_batch), key=b"n")
        for reading in good[1:]:
            await producer.send(settings.raw_topic, orjson.dumps(reading), key=b"n")
        await producer.flush()
    finally:
        await producer.stop()

    worker_process.start()
    await wait_until_caught_up(settings, pg, timeout=180, alive=worker_process.alive)

    assert worker_process.alive()
    s = quote_ident(settings.warehouse_schema)
    good_stored = await pg.fetchval(
        f"SELECT count(*) FROM {s}.health_readings WHERE event_id LIKE 'good-%'")
    big_stored = await pg.fetchval(f"SELECT count(*) FROM {s}.health_readings WHERE event_id LIKE 'big-%'")
    assert (good_stored, big_stored) == (len(good), BIG_BATCH)
    dlq = await read_topic(settings.kafka_bootstrap, settings.dlq_topic)
    assert sorted(dict(r.headers)["error.code"].decode() for r in dlq) == sorted(c for _, c in poison)
    (oversized,) = [r for r in dlq if dict(r.headers)["error.code"] == b"oversized"]
    assert dict(oversized.headers)["payload.truncated"] == b"true"
    assert int(dict(oversized.headers)["payload.original_bytes"]) == len(poison[2][0])
    assert len(oversized.value) == settings.dlq_max_payload_bytes
    peak = vm_hwm_mb(worker_process.proc.pid)
    assert peak is not None and peak < RSS_LIMIT_MB
