"""ETLJobConfig: defaults, allow-lists, cron, replay ranges; every error names its field."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest
from pydantic import ValidationError

from batch.config import ETLJobConfig, PipelineType
from batch.errors import InvalidRange
from batch.replay import parse_position, replay_range_of


def errors(**fields) -> dict[tuple, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        ETLJobConfig.model_validate(fields)
    return {tuple(e["loc"]): e["msg"] for e in info.value.errors()}


def test_defaults_and_generated_id() -> None:
    job = ETLJobConfig(job_name="daily_metrics", target_tables=["system_performance", "user_engagement"])
    other = ETLJobConfig(job_name="x", target_tables=["user_engagement"])
    assert isinstance(job.job_id, str) and UUID(job.job_id) and job.job_id != other.job_id
    assert job.pipeline_type == PipelineType.BATCH and job.enabled and job.schedule is None
    assert job.source_tables == ["health_readings", "dead_letters"]  # what the targets need
    assert (job.retry_count, job.timeout_minutes, job.batch_size, job.parallel_workers) == (3, 60, 10_000, 2)
    assert (job.notification_on_failure, job.notification_on_success) == (True, False)
    again = ETLJobConfig.model_validate(job.to_json_dict())
    assert ETLJobConfig.model_validate_json(again.model_dump_json()) == job


@pytest.mark.parametrize(("fields", "loc", "fragment"), [
    ({"target_tables": ["users"]}, ("target_tables",), "unknown target tables ['users']"),
    ({"target_tables": ["health_readings"]}, ("target_tables",), "unknown target tables"),
    ({"target_tables": []}, ("target_tables",), "at least one"),
    ({"target_tables": ["user_engagement", "user_engagement"]}, ("target_tables",), "twice"),
    ({"source_tables": ["pg_shadow"]}, ("source_tables",), "unknown source tables ['pg_shadow']"),
    ({"source_tables": ["health_readings"], "target_tables": ["system_performance"]}, ("target_tables",),
     "system_performance needs source tables ['dead_letters']"),
    ({"schedule": "61 * * * *"}, ("schedule",), "cron"),
    ({"schedule": "0 0 * * * *"}, ("schedule",), "5-field"),
    ({"schedule": "@fortnightly"}, ("schedule",), "cron"),
    ({"job_name": "Daily\nMetrics"}, ("job_name",), "control characters"),
    ({"job_name": "Daily\x85Metrics"}, ("job_name",), "control characters"),
    ({"job_name": "   "}, ("job_name",), "blank"),
    ({"job_name": "x" * 201}, ("job_name",), "at most 200"),
    ({"job_id": "has space"}, ("job_id",), "pattern"),
    ({"job_id": "../etc"}, ("job_id",), "pattern"),
    ({"job_id": "_leading"}, ("job_id",), "pattern"),
    ({"job_id": "a" * 65}, ("job_id",), "pattern"),
    ({"job_id": ""}, ("job_id",), "pattern"),
    ({"job_id": 5}, ("job_id",), "string"),
    ({"source_tables": ["user_profiles"], "target_tables": ["user_engagement"]}, ("target_tables",),
     "user_engagement needs source tables ['health_readings']"),
    ({"retry_count": 11}, ("retry_count",), "less than or equal"),
    ({"timeout_minutes": 0}, ("timeout_minutes",), "greater than 0"),
    ({"batch_size": 0}, ("batch_size",), "greater than or equal to 1"),
    ({"parallel_workers": 17}, ("parallel_workers",), "less than or equal"),
    ({"data_quality_threshold": 1.5}, ("data_quality_threshold",), "less than or equal to 1"),
    ({"notification_webhook_url": "ftp://x"}, ("notification_webhook_url",), "URL scheme"),
    ({"pipeline_type": "stream"}, ("pipeline_type",), "'batch' or 'replay'"),
    ({"surprise": 1}, ("surprise",), "Extra inputs"),
    ({"replay": {"topic": "t", "from_offsets": {0: 0}}}, ("replay",), "only replay jobs"),
])
def test_invalid_fields_are_reported_by_name(fields, loc, fragment) -> None:  # type: ignore[no-untyped-def]
    found = errors(**{"job_name": "j", "target_tables": ["user_engagement"], **fields})
    assert loc in found and fragment in found[loc], found


def test_the_spec_job_is_valid_as_written() -> None:
    job = ETLJobConfig(job_id="health_metrics_etl", job_name="  Health Metrics Daily ETL ",
                       pipeline_type=PipelineType.BATCH, source_tables=["health_metrics", "user_profiles"],
                       target_tables=["aggregated_health_metrics"], schedule="0 2 * * *")
    assert (job.job_id, job.job_name) == ("health_metrics_etl", "Health Metrics Daily ETL")
    assert job.source_tables == ["health_readings", "user_profiles"]  # the alias, by its real name
    assert job.local_days
    assert not ETLJobConfig(job_name="j", target_tables=["user_engagement"]).local_days


@pytest.mark.parametrize("job_id", ["a", "health_metrics_etl", "Job-1.v2", "0" * 64,
                                    "123e4567-e89b-12d3-a456-426614174000"])
def test_safe_job_ids_are_kept(job_id: str) -> None:
    assert ETLJobConfig(job_id=job_id, job_name="j", target_tables=["user_engagement"]).job_id == job_id


def test_alias_and_real_name_together_are_a_duplicate() -> None:
    found = errors(job_name="j", source_tables=["health_metrics", "health_readings"],
                   target_tables=["user_engagement"])
    assert "twice" in found[("source_tables",)]


def test_all_field_errors_are_reported_at_once() -> None:
    found = errors(job_name="", target_tables=["x"], schedule="nope", retry_count=-1)
    assert set(found) == {("job_name",), ("target_tables",), ("schedule",), ("retry_count",)}


@pytest.mark.parametrize("schedule", ["0 2 * * *", "*/15 * * * 1-5", "@daily", "  0  3 * * 0 "])
def test_valid_schedules(schedule: str) -> None:
    job = ETLJobConfig(job_name="j", target_tables=["user_engagement"], schedule=schedule)
    assert job.schedule == " ".join(schedule.split())


def replay(**spec) -> dict:  # type: ignore[no-untyped-def]
    return {"job_name": "r", "pipeline_type": "replay", "replay": {"topic": "health.readings.raw", **spec}}


def test_replay_jobs() -> None:
    job = ETLJobConfig.model_validate(replay(from_offsets={"0": 5, "2": 0}, to_offsets={"0": 9}))
    assert job.target_tables == ["health_readings"] and job.source_tables == []
    assert job.replay.from_offsets == {0: 5, 2: 0} and not job.replay.publish_dead_letters
    timed = ETLJobConfig.model_validate(replay(start_time="2026-01-01T00:00:00Z",
                                               end_time="2026-01-02T00:00:00Z"))
    assert timed.replay.start_time == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("spec", "loc", "fragment"), [
    ({}, ("replay", "end_time"), "give from_offsets, or both"),
    ({"from_offsets": {0: 5}, "to_offsets": {0: 4}}, ("replay", "to_offsets"), "before its start"),
    ({"to_offsets": {0: 4}}, ("replay", "to_offsets"), "needs from_offsets"),
    ({"from_offsets": {-1: 0}}, ("replay", "from_offsets"), ">= 0"),
    ({"from_offsets": {0: 0}, "end_time": "2026-01-01T00:00:00Z"}, ("replay", "end_time"), "not both"),
    ({"start_time": "2026-01-01T00:00:00"}, ("replay", "start_time"), "timezone"),
    ({"start_time": "2026-01-02T00:00:00Z", "end_time": "2026-01-01T00:00:00Z"}, ("replay", "end_time"),
     "after start_time"),
])
def test_invalid_replay_ranges(spec, loc, fragment) -> None:  # type: ignore[no-untyped-def]
    found = errors(**replay(**spec))
    assert loc in found and fragment in found[loc], found


def test_replay_needs_a_range_and_a_valid_topic() -> None:
    assert "needs a topic range" in errors(job_name="r", pipeline_type="replay")[("replay",)]
    assert "topic name" in errors(**replay(topic="bad topic!", from_offsets={0: 0}))[("replay", "topic")]
    found = errors(**replay(from_offsets={0: 0}), target_tables=["user_engagement"])
    assert "only target" in found[("target_tables",)]


def test_positions() -> None:
    assert parse_position("0:10, 2:3") == {0: 10, 2: 3}
    assert parse_position("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    for bad in ("yesterday", "0:1:2", "2026-03-01T10:00:00"):
        with pytest.raises(InvalidRange):
            parse_position(bad)
    assert replay_range_of("t", "0:0", None).to_offsets is None
    assert replay_range_of("t", "0:0", "0:5", publish_dead_letters=True).publish_dead_letters
    with pytest.raises(InvalidRange):
        replay_range_of("t", "0:0", "2026-03-01T10:00:00Z")
    with pytest.raises(InvalidRange):
        replay_range_of("t", "2026-03-01T10:00:00Z", None)
