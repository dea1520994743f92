"""The pipeline end to end in the secure mode: a real worker process on Kafka SASL_SSL
(SCRAM-SHA-512, ACLs on) and PostgreSQL TLS (verify-full) as the runtime role. The
cluster refuses every TCP connection without TLS (test_refusals.py), so storing at all
means over TLS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pipeline_support import WorkerProcess, read_topic, wait_until_caught_up

from streams.connections import kafka_kwargs, pg_connect
from streams.sink.migrations import quote_ident

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _reading(i: int, metric: str = "heart_rate") -> dict:
    at = (datetime.now(UTC) - timedelta(minutes=i)).isoformat()
    return {"event_id": f"sec-{i}", "user_id": "user-secret-1", "device_id": "d-1", "source": "garmin",
            "metric": metric, "value": 70 + i, "unit": "bpm", "timestamp": at}


async def test_readings_flow_over_sasl_ssl_and_tls(secure_pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    worker_env = secure_pipeline.env("worker")
    worker = WorkerProcess(worker_env, tmp_path / "worker.log")
    # only the worker principal's settings: no admin or plaintext variable leaks in
    worker.env = {k: v for k, v in worker.env.items() if not k.startswith("HEALTHMATE_") or k in worker_env}
    producer_settings = secure_pipeline.settings("producer")
    admin = secure_pipeline.settings("admin")
    worker_settings = secure_pipeline.settings("worker")
    worker.start()
    try:
        producer = AIOKafkaProducer(**kafka_kwargs(producer_settings), acks="all")
        await producer.start()
        try:
            for i in range(5):
                await producer.send_and_wait(producer_settings.raw_topic, orjson.dumps(_reading(i)), key=b"k")
            bad = orjson.dumps(_reading(9, "mood"))
            await producer.send_and_wait(producer_settings.raw_topic, bad, key=b"k")
        finally:
            await producer.stop()

        pg = await pg_connect(admin, dsn=admin.pg_migration_dsn_value)
        try:
            await wait_until_caught_up(worker_settings, pg, alive=worker.alive, timeout=120)
            s = quote_ident(admin.warehouse_schema)
            rows = await pg.fetch(f"SELECT event_id, user_key FROM {s}.health_readings ORDER BY event_id")
        finally:
            await pg.close()
        assert [r["event_id"] for r in rows] == [f"sec-{i}" for i in range(5)]
        assert all(r["user_key"] != "user-secret-1" for r in rows)

        dlq = await read_topic(kafka_kwargs(admin), admin.dlq_topic)
        assert [dict(r.headers)["error.code"] for r in dlq] == [b"unknown_metric"]
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert "Authenticated as healthmate-worker via SCRAM-SHA-512" in log
    for secret in ("HEALTHMATE_KAFKA_SASL_PASSWORD_FILE", "HEALTHMATE_PG_DSN_FILE"):
        assert Path(worker_env[secret]).read_text() not in log
