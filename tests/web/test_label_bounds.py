"""Metric labels stay bounded: 1,000 distinct producer sources, and 1,000 ETL jobs with
distinct names (25 of them run, then all deleted), leave a bounded number of series on the
worker's /metrics, and none once the jobs are gone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from streams.config_sections import KNOWN_SOURCES

pytestmark = pytest.mark.integration

SOURCES = 1000
JOB_NAMES = 1000  # registered, each with its own name
JOBS_RUN = 25  # of them, run (a run is what creates series)


def _samples(text: str, family: str) -> list:
    return [s for f in text_string_to_metric_families(text) if f.name == family for s in f.samples]


async def _metrics(client) -> str:  # type: ignore[no-untyped-def]
    reply = await client.call("GET", "/metrics")
    assert reply.status == 200
    return reply.body if isinstance(reply.body, str) else str(reply.body)


async def test_a_thousand_sources_share_the_known_labels_and_other(
        roomy_client, roomy_worker, now, eventually):  # type: ignore[no-untyped-def]
    client, api_worker = roomy_client, roomy_worker
    producer = AIOKafkaProducer(bootstrap_servers=api_worker.settings.kafka_bootstrap, acks="all")
    await producer.start()
    tag = uuid.uuid4().hex[:8]
    at = (now - timedelta(minutes=5)).isoformat()
    for i in range(SOURCES):
        source = "garmin" if i % 100 == 0 else f"vendor-{tag}-{i}"
        doc = {"event_id": f"lbl-{tag}-{i}", "user_id": f"u-{i}", "device_id": "d", "source": source,
               "metric": "heart_rate", "value": 70, "unit": "bpm", "timestamp": at}
        await producer.send(api_worker.settings.raw_topic, orjson.dumps(doc), key=f"u-{i}".encode())
    await producer.flush()
    await producer.stop()

    async def other_scored():  # type: ignore[no-untyped-def]
        text = await _metrics(client)
        samples = _samples(text, "healthmate_quality_score")
        return (text, samples) if any(s.labels["source"] == "other" for s in samples) else None

    text, samples = await eventually(other_scored, timeout=60)
    sources = {s.labels["source"] for s in samples}
    assert sources <= {*KNOWN_SOURCES, "other"}, sources - {*KNOWN_SOURCES, "other"}
    assert "garmin" in sources
    metrics = {s.labels["metric"] for s in samples}
    assert "unknown" not in metrics
    assert len(samples) <= len(metrics) * (len(KNOWN_SOURCES) + 1) * 6
    assert not any(tag in line for line in text.splitlines()), "a raw source reached a label"


async def test_job_series_are_labelled_by_id_and_removed_on_delete(
        roomy_client, roomy_worker, eventually, now):  # type: ignore[no-untyped-def]
    client = roomy_client
    tag = uuid.uuid4().hex[:8]

    async def create(i: int) -> str:
        created = await client.call("POST", "/etl-jobs", role="operator", json={
            "job_name": f"lbl_{tag}_{i}", "target_tables": ["aggregated_health_metrics"],
            "notification_on_failure": False})
        assert created.status == 201, created.body
        return created.body["job_id"]

    ids: list[str] = []
    for start in range(0, JOB_NAMES, 50):
        ids += await asyncio.gather(*(create(i) for i in range(start, min(start + 50, JOB_NAMES))))
    ran = ids[:JOBS_RUN]
    for job_id in ran:
        started = await client.call("POST", f"/etl-jobs/{job_id}/run", role="operator", json={
            "interval_start": (now - timedelta(days=1)).isoformat(), "interval_end": now.isoformat()})
        assert started.status == 202, started.body

    async def all_counted():  # type: ignore[no-untyped-def]
        text = await _metrics(client)
        labelled = {s.labels["etl_job"] for s in _samples(text, "healthmate_etl_runs")}
        return (text, labelled) if set(ran) <= labelled else None

    text, labelled = await eventually(all_counted, timeout=120)
    assert not any(label.startswith("lbl_") for label in labelled), "job names are not labels"
    assert not any(tag in line for line in text.splitlines()), "a job name reached /metrics"
    ours = {s.labels["etl_job"] for f in ("healthmate_etl_runs", "healthmate_etl_run_duration_seconds")
            for s in _samples(text, f) if s.labels.get("etl_job") in set(ids)}
    assert ours == set(ran), "series exist for jobs that ran, not for every registered name"

    for start in range(0, len(ids), 50):
        replies = await asyncio.gather(*(client.call("DELETE", f"/etl-jobs/{job_id}", role="admin")
                                         for job_id in ids[start:start + 50]))
        assert all(r.status == 200 for r in replies)
    text = await _metrics(client)
    left = {s.labels.get("etl_job") for f in ("healthmate_etl_runs", "healthmate_etl_run_duration_seconds")
            for s in _samples(text, f)}
    assert not left & set(ids), "a deleted job's series stayed"
