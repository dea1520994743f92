"""The specification's Python examples, run as written (imports added, names made unique per
test) against the real Kafka, PostgreSQL and a real worker process; then their effects."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from batch_support import normalise, reading, store
from pipeline_support import (
    WorkerProcess,
    documented_level,
    drop_pipeline_resources,
    partitions_of,
    read_topic,
    wait_until_caught_up,
)

from batch import BatchDataProcessor, DataPipelineManager, DataWarehouseManager, ETLJobConfig, PipelineType
from streams import DataTransformer, DataValidator, StreamingDataProcessor
from streams.config import Settings
from streams.domain.pseudonym import user_key
from streams.sink.migrations import ALL_VERSIONS, quote_ident

ALL_MIGRATIONS = list(ALL_VERSIONS)


@pytest.fixture
def spec_env(pipeline_env: dict[str, str], unique_name: str) -> dict[str, str]:
    """The worker ingests the spec's streaming topic; naive timestamps are read as UTC, as
    docs/reference/python-api.md says to do for producers that send
    ``datetime.utcnow().isoformat()``."""
    return {**pipeline_env, "HEALTHMATE_RAW_TOPIC": f"{unique_name}.health-data",
            "HEALTHMATE_NAIVE_TIMESTAMPS": "utc"}


async def _eventually(pg: asyncpg.Connection, query: str, *args: object, timeout: float = 60) -> list:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await pg.fetch(query, *args)
        if rows or asyncio.get_running_loop().time() > deadline:
            return rows
        await asyncio.sleep(0.25)


async def test_the_specifications_python_examples(spec_env, monkeypatch, kafka_bootstrap, pg_dsn, pg,  # type: ignore[no-untyped-def]
                                                  unique_name, tmp_path: Path) -> None:
    for key, value in spec_env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    data_topic, health_topic = f"{unique_name}.data", settings.raw_topic
    s = quote_ident(settings.warehouse_schema)
    worker = WorkerProcess(spec_env, tmp_path / "worker.log")
    streaming_processor = None
    try:
        # --- DataPipelineManager: infrastructure ------------------------------------------
        pipeline_manager = DataPipelineManager(
            db_session=None,
            kafka_config={"bootstrap_servers": [kafka_bootstrap], "topics": [data_topic],
                          "consumer_group": f"{unique_name}-processors"},
            warehouse_config={"connection_string": pg_dsn})
        setup = await pipeline_manager.setup_pipeline_infrastructure()
        assert {data_topic, settings.dlq_topic, settings.profiles_topic} <= set(setup["topics_created"])
        assert setup["migrations_applied"] == ALL_MIGRATIONS
        assert len(setup["partitions"]) == 1 + settings.warehouse_partitions_ahead
        assert (await pipeline_manager.setup_pipeline_infrastructure())["topics_created"] == []  # idempotent

        # --- StreamingDataProcessor: topic, publish ----------------------------------------
        streaming_processor = StreamingDataProcessor({"bootstrap_servers": [kafka_bootstrap],
            "topics": [health_topic], "consumer_group": f"{unique_name}-processors"})
        assert streaming_processor.create_kafka_topic(health_topic, partitions=3) is True
        assert await partitions_of(kafka_bootstrap, health_topic) == [0, 1, 2]
        assert streaming_processor.create_kafka_topic(health_topic, partitions=3) is False

        worker.start()
        example = {"user_id": 1, "heart_rate": 75,
                   "timestamp": datetime.utcnow().isoformat(), "source": "fitbit"}  # noqa: DTZ003 - the spec's
        await streaming_processor.stream_data(topic=health_topic, data=example)
        await streaming_processor.stream_data(topic=health_topic, data=example)  # redelivered
        now = datetime.now(UTC)
        for i in range(4):  # more of the day, with devices, for the job below
            await streaming_processor.stream_data(topic=health_topic, data={
                "user_id": 1, "steps": 1000 * (i + 1), "device_id": "watch-1", "source": "fitbit",
                "timestamp": (now - timedelta(minutes=10 * (i + 1))).isoformat()})
        await _publish_profiles(kafka_bootstrap, settings.profiles_topic)
        await wait_until_caught_up(settings, pg, alive=worker.alive)

        one = user_key(settings.pseudonym_key_bytes, "1")
        stored = await pg.fetch(f"SELECT user_key, metric, value, unit, original_unit, device_id FROM"
                                f" {s}.health_readings WHERE metric = 'heart_rate'")
        assert [tuple(r) for r in stored] == [(one, "heart_rate", 75.0, "/min", "/min", None)]  # once
        sentinel = user_key(settings.pseudonym_key_bytes, "4")
        await _eventually(pg, f"SELECT 1 FROM {s}.user_profiles WHERE user_key = $1", sentinel)
        profiles = await pg.fetch(f"SELECT user_key, timezone, birth_year, age_over_89, sex"
                                  f" FROM {s}.user_profiles WHERE user_key <> $1", sentinel)
        # "1" keeps its newer profile, "3" was deleted, "2" was refused; ages over 89: a band.
        assert [tuple(r) for r in profiles] == [(one, "Europe/Paris", None, True, "female")]
        assert "1" not in {r["user_key"] for r in profiles}
        dead = await _eventually(pg, f"SELECT reason FROM {s}.dead_letters WHERE topic = $1",
                                 settings.profiles_topic)
        assert [r["reason"] for r in dead] == ["invalid_type"]
        letters = [r for r in await read_topic(kafka_bootstrap, settings.dlq_topic)
                   if dict(r.headers).get("source.topic") == settings.profiles_topic.encode()]
        assert [r.key for r in letters] == [user_key(settings.pseudonym_key_bytes, "2").encode()]

        # --- process_streaming_data: the real validation, a custom async function ----------
        seen = []

        async def process_health_data(data):  # type: ignore[no-untyped-def]
            seen.append(data)
            return {"processed": True, "data": data}

        out_topic = f"{unique_name}.processed"
        counts = await streaming_processor.process_streaming_data(
            topic=health_topic, processor_func=process_health_data, output_topic=out_topic, max_messages=6,
            timeout=60)
        assert counts == {"messages": 6, "readings": 6, "dead_letters": 0, "published": 6}
        hearts = [(d["value"], d["unit"], d["user_key"]) for d in seen if d["metric"] == "heart_rate"]
        assert hearts == [(75.0, "/min", one)] * 2  # the processor sees both deliveries
        assert all(isinstance(d, dict) and d["measured_at"].tzinfo is not None for d in seen)
        published = [orjson.loads(r.value) for r in await read_topic(kafka_bootstrap, out_topic)]
        assert len(published) == 6 and all(p["processed"] is True for p in published)
        assert sorted(p["data"]["metric"] for p in published) == ["heart_rate"] * 2 + ["steps"] * 4

        # --- the ETL job, registered and run ---------------------------------------------
        job_config = ETLJobConfig(job_id="health_metrics_etl", job_name="Health Metrics ETL",
            pipeline_type=PipelineType.BATCH, source_tables=["health_metrics", "user_profiles"],
            target_tables=["aggregated_health_metrics"], schedule="0 2 * * *", data_quality_threshold=0.8)
        results = await pipeline_manager.run_complete_pipeline(job_config)
        assert results["status"] == "succeeded", results
        assert results["job_id"] == "health_metrics_etl" and results["rows_extracted"] == 5
        # 2 metrics on 1 or 2 local days (Paris may be past midnight already)
        assert results["rows_loaded"] >= 2 and 0.8 <= results["quality_score"] <= 1
        aggregated = await pg.fetch(f"SELECT metric, count, timezone FROM {s}.aggregated_health_metrics"
                                    " WHERE user_key = $1 ORDER BY metric", one)
        assert {(r["metric"], r["timezone"]) for r in aggregated} == {("heart_rate", "Europe/Paris"),
                                                                       ("steps", "Europe/Paris")}
        assert sum(r["count"] for r in aggregated if r["metric"] == "steps") == 4
        again = await pipeline_manager.run_complete_pipeline(job_config)  # an upsert, not a second job
        assert again["status"] == "succeeded" and again["run_id"] != results["run_id"]
        assert await pg.fetchval(f"SELECT count(*) FROM {s}.etl_jobs") == 1
        run_job_id = await pg.fetchval(f"SELECT job_id FROM {s}.etl_job_runs WHERE run_id = $1::uuid",
                                       results["run_id"])
        assert run_job_id == "health_metrics_etl"
    finally:
        worker.stop()
        if streaming_processor is not None:
            await streaming_processor.close()
        await drop_pipeline_resources(settings)

    # --- DataValidator and DataTransformer on raw data (no infrastructure) ---------------
    sample_data = [
        {"user_id": 1, "heart_rate": 75, "steps": 1200, "timestamp": now.isoformat(), "source": "fitbit",
         "device_id": "watch-1"},
        {"user_id": 2, "heart_rate": 999, "timestamp": now.isoformat(), "source": "fitbit"},  # impossible
        {"user_id": 3, "heart_rate": 64, "timestamp": now.isoformat(), "source": "garmin", "device_id": "g"},
    ]
    validator = DataValidator()
    quality_metrics = validator.validate_data_quality(data=sample_data, data_type="health_metrics")
    for score in (quality_metrics.overall_score, quality_metrics.completeness, quality_metrics.accuracy,
                  quality_metrics.consistency, quality_metrics.timeliness, quality_metrics.validity):
        assert 0.0 <= score <= 1.0
    assert quality_metrics.validity < 1.0
    assert quality_metrics.quality_level == documented_level(quality_metrics.overall_score)
    assert any("out_of_range" in text for text in quality_metrics.issues)
    assert quality_metrics.recommendations
    heart = validator.validate_data_quality(data=sample_data, data_type="heart_rate")
    assert heart.sample_size == 2 and quality_metrics.sample_size == 3

    raw_health_data = sample_data + [{"user_id": "u-9", "metric": "body_weight", "value": 165, "unit": "lb",
                                      "timestamp": now.isoformat(), "source": "withings"}]
    transformer = DataTransformer()
    transformed_data = transformer.transform_data(data=raw_health_data, data_type="health_metrics")
    for record in transformed_data:
        record["_processed_at"] = datetime.utcnow().isoformat()  # noqa: DTZ003 - the spec's
    assert [(r["metric"], round(r["value"], 3), r["unit"]) for r in transformed_data] == [
        ("heart_rate", 75.0, "/min"), ("steps", 1200.0, "{steps}"), ("heart_rate", 64.0, "/min"),
        ("body_weight", 74.843, "kg")]
    assert all("_processed_at" in r for r in transformed_data)
    assert [d.code for d in transformer.dead_letters] == ["out_of_range"]
    [weight] = transformer.transform_data(data=raw_health_data, data_type="body_weight")
    assert weight["original_unit"] == "lb"
    with pytest.raises(ValueError):
        transformer.transform_data(data=raw_health_data, data_type="mood")


async def _publish_profiles(bootstrap: str, topic: str) -> None:
    """On one partition, so that the sentinel "4" is stored only after everything before it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in [
            (b"1", {"timezone": "Europe/Paris", "birth_year": 1930, "sex": "Female",
                    "updated_at": "2026-01-01T00:00:00Z"}),
            (b"2", {"timezone": "Mars/Olympus_Mons"}),                                   # bad
            (b"3", {"timezone": "Asia/Tokyo"}),
            (b"1", {"timezone": "America/New_York", "updated_at": "2025-01-01T00:00:00Z"}),  # older
            (b"3", None),                                                                # tombstone
            (b"4", {}),                                                                  # sentinel
        ]:
            await producer.send_and_wait(topic, None if value is None else orjson.dumps(value), key=key,
                                         partition=0)
    finally:
        await producer.stop()


@pytest.mark.parametrize("session", ["pool", "connection"])
async def test_the_batch_facades_with_a_callers_session(session, pipeline_env, monkeypatch, pg_dsn,  # type: ignore[no-untyped-def]
                                                        unique_name) -> None:
    for key, value in pipeline_env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    db = await (asyncpg.create_pool(pg_dsn, min_size=1, max_size=2) if session == "pool"
                else asyncpg.connect(pg_dsn))
    try:
        manager = DataPipelineManager(db_session=db, kafka_config={"topics": [settings.raw_topic]},
                                      warehouse_config={"connection_string": pg_dsn})
        setup = await manager.setup_pipeline_infrastructure()
        assert setup["migrations_applied"] == ALL_MIGRATIONS  # through the caller's session
        # On the hour, so that the three minutes never straddle midnight (one day's row).
        at = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        docs = [reading("ann", "steps", 100 * i, "steps", at + timedelta(minutes=i)) for i in range(1, 4)]
        async with DataWarehouseManager(settings) as wh:
            await store(wh.warehouse, normalise(settings, docs))
            job = {"job_id": "steps.daily", "job_name": "Steps daily", "source_tables": ["health_metrics"],
                   "target_tables": ["aggregated_health_metrics", "user_engagement"]}
            registered = await manager.register_job(job)
            renamed = await manager.register_job({**job, "job_name": "Steps, daily"})
            assert renamed.job_id == registered.job_id
            s = quote_ident(settings.warehouse_schema)
            assert [tuple(r) for r in await db.fetch(f"SELECT job_id, job_name FROM {s}.etl_jobs")] == [
                ("steps.daily", "Steps, daily")]  # upserted by id

            ad_hoc = await BatchDataProcessor(settings).process({**job, "job_id": "ad-hoc"})
            assert ad_hoc["status"] == "succeeded" and ad_hoc["rows_extracted"] == 3, ad_hoc
            assert ad_hoc["job_id"] is None  # not registered
            today = at.date()
            [row] = await wh.read_target("aggregated_health_metrics", today, today)
            assert (row["metric"], row["count"], row["max"], row["timezone"]) == ("steps", 3, 300.0, "UTC")
            with pytest.raises(ValueError):
                await wh.read_target("health_readings", today, today)
    finally:
        await db.close()
        await drop_pipeline_resources(settings)


async def test_process_streaming_data_contract(create_topics, kafka_bootstrap, unique_name) -> None:  # type: ignore[no-untyped-def]
    topic = f"{unique_name}.custom"
    processor = StreamingDataProcessor({"bootstrap_servers": kafka_bootstrap, "topics": [topic],
                                        "consumer_group": f"{unique_name}-custom"},
                                       settings=Settings.model_validate({"dev_mode": True}))
    create_topics.delete_later([topic])
    assert processor.create_kafka_topic(topic, partitions=2) is True  # from sync code too
    at = datetime.now(UTC).isoformat()
    async with processor:
        await processor.stream_data(data={"user_id": "u-1", "metric": "steps", "value": 5, "unit": "steps",
                                          "timestamp": at, "source": "garmin"})
        await processor.stream_data(data={"user_id": "u-1", "metric": "steps", "value": -5, "unit": "steps",
                                          "timestamp": at, "source": "garmin"})  # impossible: not passed on
        with pytest.raises(ValueError):
            await processor.stream_data(data={"metric": "steps"})  # no user id, no partition key

    def boom(data):  # type: ignore[no-untyped-def]
        raise RuntimeError("processor bug")

    with pytest.raises(RuntimeError):
        await processor.process_streaming_data(processor_func=boom, timeout=20)
    seen: list[dict] = []
    started = asyncio.get_running_loop().time()
    counts = await processor.process_streaming_data(processor_func=seen.append, timeout=3)  # sync function
    assert asyncio.get_running_loop().time() - started < 10  # the timeout ends it
    assert counts == {"messages": 2, "readings": 1, "dead_letters": 1, "published": 0}  # seen again
    assert [(d["metric"], d["value"], d["unit"]) for d in seen] == [("steps", 5.0, "{steps}")]
    assert await processor.process_streaming_data(processor_func=seen.append, timeout=2) == {
        "messages": 0, "readings": 0, "dead_letters": 0, "published": 0}  # committed
