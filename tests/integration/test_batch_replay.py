# ruff: noqa: F811 - pytest fixtures imported from batch_support are used as parameters
"""Replays on the real Kafka and PostgreSQL: same domain, same sink, idempotent, optional DLQ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from batch_support import reading
from pipeline_support import ROOT, read_topic

from batch import api
from streams.setup import create_topics
from streams.sink.migrations import quote_ident

pytestmark = [pytest.mark.integration]


@pytest.fixture
async def topics(batch_settings, kafka_bootstrap):  # type: ignore[no-untyped-def]
    await create_topics(batch_settings)
    yield batch_settings
    from conftest import delete_topics

    await delete_topics(kafka_bootstrap, [batch_settings.raw_topic, batch_settings.dlq_topic])


async def produce(settings, messages: list[tuple[int, bytes, bytes, int]]) -> None:  # type: ignore[no-untyped-def]
    """Send ``(partition, key, value, timestamp_ms)`` and wait for every ack."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for partition, key, value, ts in messages:
            await producer.send_and_wait(settings.raw_topic, value, key=key, partition=partition,
                                         timestamp_ms=ts)
    finally:
        await producer.stop()


def traffic(start: datetime, n: int, tag: str) -> list[tuple[int, bytes, bytes, int]]:
    """``n`` good readings, plus one bad reading and one bad envelope member, spread over 3 partitions."""
    out = []
    for i in range(n):
        at = start + timedelta(minutes=i)
        doc = reading(f"user-{i % 3}", "heart_rate", 60 + i, "bpm", at, event_id=f"{tag}-{i}")
        out.append((i % 3, f"user-{i % 3}".encode(), orjson.dumps(doc), int(at.timestamp() * 1000)))
    ts = int(start.timestamp() * 1000)
    bad = reading("user-0", "heart_rate", 60, "furlongs", start, event_id=f"{tag}-bad")
    envelope = {"batch_id": f"{tag}-b", "user_id": "user-1", "source": "garmin", "readings": [
        {"event_id": f"{tag}-m1", "metric": "steps", "value": 10, "unit": "count", "timestamp": ts},
        {"event_id": f"{tag}-m2", "metric": "steps", "value": -5, "unit": "count", "timestamp": ts}]}
    return out + [(0, b"user-0", orjson.dumps(bad), ts), (1, b"user-1", orjson.dumps(envelope), ts)]


async def facts(warehouse) -> list[tuple]:  # type: ignore[no-untyped-def]
    s = quote_ident(warehouse.schema)
    rows = await warehouse.pool.fetch(f"SELECT * FROM {s}.health_readings ORDER BY event_id")
    return [tuple(r) for r in rows]


async def test_replay_by_time_then_offsets_is_idempotent_and_leaves_the_live_group_alone(
        topics, warehouse) -> None:
    settings = topics
    now = datetime.now(UTC).replace(microsecond=0)
    early, late = now - timedelta(hours=3), now - timedelta(hours=1)
    await produce(settings, traffic(early, 9, "early") + traffic(late, 9, "late"))
    s = quote_ident(warehouse.schema)
    seen: list[int] = []

    run = await api.backfill(settings, settings.raw_topic, (late - timedelta(minutes=1)).isoformat(),
                             (late + timedelta(hours=1)).isoformat(), progress=seen.append)
    assert run.status == "succeeded", run.error
    stored = await facts(warehouse)
    assert sorted(r[0] for r in stored) == sorted([f"late-{i}" for i in range(9)] + ["late-m1"])
    assert (run.rows_extracted, run.rows_loaded, run.rows_rejected) == (11, 10, 2)
    assert seen and seen[-1] == 100 and run.progress == 100 and run.job_id is None

    everything = ",".join(f"{p}:0" for p in range(settings.topic_partitions))
    first = await api.backfill(settings, settings.raw_topic, everything)
    after_first = await facts(warehouse)
    dead_first = await warehouse.pool.fetch(f"SELECT * FROM {s}.dead_letters ORDER BY 1, 2, 3, 4")
    second = await api.backfill(settings, settings.raw_topic, everything)
    assert first.status == second.status == "succeeded"
    assert (first.rows_loaded, second.rows_loaded) == (10, 0)  # only the early range was new
    assert len(after_first) == 20 and await facts(warehouse) == after_first
    assert await warehouse.pool.fetch(f"SELECT * FROM {s}.dead_letters ORDER BY 1, 2, 3, 4") == dead_first
    assert sorted(r["reason"] for r in dead_first) == ["out_of_range", "out_of_range", "unknown_unit",
                                                       "unknown_unit"]
    groups = {r["consumer_group"] for r in await warehouse.pool.fetch(f"SELECT * FROM {s}.sink_offsets")}
    assert groups == {f"replay:{r.run_id}" for r in (run, first, second)}
    assert settings.consumer_group not in groups
    # The same domain code as the live path: canonical units and pseudonyms, never raw ids.
    row = await warehouse.pool.fetchrow(f"SELECT * FROM {s}.health_readings WHERE event_id = 'early-0'")
    assert (row["unit"], row["value"], row["metric"]) == ("/min", 60.0, "heart_rate")
    assert row["user_key"] != "user-0" and len(row["user_key"]) == 64
    assert await read_topic(settings.kafka_bootstrap, settings.dlq_topic) == []  # not asked


async def test_replay_publishes_dead_letters_only_when_asked(topics, warehouse) -> None:
    settings = topics
    await produce(settings, traffic(datetime.now(UTC) - timedelta(hours=1), 3, "x"))
    run = await api.backfill(settings, settings.raw_topic, "0:0,1:0,2:0", publish_dead_letters=True)
    assert run.status == "succeeded"
    records = await read_topic(settings.kafka_bootstrap, settings.dlq_topic)
    headers = [dict(r.headers) for r in records]
    assert sorted(h["error.code"] for h in headers) == [b"out_of_range", b"unknown_unit"]
    assert all(h["dlq.id"].startswith(settings.raw_topic.encode()) for h in headers)
    assert all(r.key not in (b"user-0", b"user-1") for r in records)  # pseudonyms, not user ids


async def test_replay_of_an_unknown_topic_fails_without_retrying(batch_settings, warehouse) -> None:
    run = await api.backfill(batch_settings, "no.such.topic.anywhere", "0:0")
    assert run.status == "failed" and run.attempt == 1 and "InvalidRange" in run.error


async def test_cli_replay_draws_progress_and_prints_the_run(topics, warehouse) -> None:
    settings = topics
    start = datetime.now(UTC) - timedelta(hours=1)
    await produce(settings, traffic(start, 6, "cli"))
    env = {**os.environ, **_env(settings)}
    window = [(start - timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
              (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")]
    proc = subprocess.run(
        [sys.executable, "-m", "batch", "replay", "--topic", settings.raw_topic, "--from", window[0],
         "--to", window[1]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "replay: 100/100%" in proc.stderr  # not a terminal: progress lines, not a bar
    record = json.loads(proc.stdout)
    assert record["status"] == "succeeded" and record["rows_loaded"] == 7
    again = subprocess.run(
        [sys.executable, "-m", "batch", "replay", "--topic", settings.raw_topic, "--from", "0:0,1:0,2:0",
         "--to", "0:1000,1:1000,2:1000", "--publish-dlq"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["rows_loaded"] == 0  # idempotent
    assert len(await read_topic(settings.kafka_bootstrap, settings.dlq_topic)) == 2
    bad = subprocess.run([sys.executable, "-m", "batch", "replay", "--topic", "t", "--from", "yesterday"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "neither" in bad.stderr


async def test_cli_run_job(batch_settings, warehouse) -> None:
    job = await api.create_job(warehouse, {"job_name": "cli_job", "target_tables": ["user_engagement"]})
    env = {**os.environ, **_env(batch_settings)}
    proc = subprocess.run([sys.executable, "-m", "batch", "run-job", str(job.job_id)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["trigger"] == "cli" and f"run-job {job.job_id}: 100/100%" in proc.stderr
    missing = subprocess.run([sys.executable, "-m", "batch", "run-job", "0" * 32], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no ETL job" in missing.stderr


def _env(settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"HEALTHMATE_PSEUDONYM_KEY": settings.pseudonym_key.get_secret_value(),
            "HEALTHMATE_DEV_MODE": "false", "HEALTHMATE_PG_DSN": settings.pg_dsn_value,
            "HEALTHMATE_WAREHOUSE_SCHEMA": settings.warehouse_schema,
            "HEALTHMATE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "HEALTHMATE_RAW_TOPIC": settings.raw_topic, "HEALTHMATE_DLQ_TOPIC": settings.dlq_topic}
