"""Response models: what the API answers, for the OpenAPI document (``web/openapi.py``).

Handlers build plain dicts; these models describe them, and ``tests/web/test_openapi.py``
checks real answers against the schemas generated from them. Each model lists every field
a handler always sends (``required``) and allows nothing else unless it says so.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from batch.config import ETLJobConfig
from batch.registry import RunRecord


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """A document whose nested parts come from elsewhere (lineage, quality reports)."""

    model_config = ConfigDict(extra="allow")


class PartitionState(Closed):
    topic: str
    partition: int
    committed_offset: int | None
    end_offset: int | None
    lag: int | None
    last_commit_at: datetime | None
    last_commit_age_s: float | None
    stalled: bool


class Consumer(Closed):
    group: str
    partitions: list[PartitionState]
    total_lag: int
    stalled: list[str] = Field(description="`topic/partition` of each stalled partition.")


class Throughput(Closed):
    window_s: int
    batches: int
    readings: int
    dead_letters: int
    readings_per_s: float


class Reachable(Closed):
    reachable: bool


class DeadLetterCounts(Closed):
    by_reason: dict[str, int]
    total: int


class MetricQuality(Open):
    window_size_s: int
    quality_level: str = Field(description="The worst judged source's level, or 'collecting' while no "
                                           "source's window holds min_records records.")
    overall_score: float | None = Field(description="Null while collecting.")
    below_threshold: bool
    records: int = Field(description="Records in the latest open windows of every source.")
    min_records: int = Field(
        description="HEALTHMATE_QUALITY_MIN_RECORDS: records a window needs to be judged.")
    sources: list[dict[str, Any]] = Field(description="The latest open window of each source.")


class HistoryPoint(Closed):
    at: datetime = Field(description="Start of the minute.")
    readings: int
    dead_letters: int
    lag: int | None = Field(description="Largest total lag sampled in the minute; null: not sampled.")


class QualityWindowPoint(Closed):
    window_start: datetime
    overall_score: float | None = Field(description="Worst judged source; null while collecting.")
    records: int


class QualityHistory(Closed):
    window_size_s: int
    windows: int = Field(description="How many of the latest windows are shown at most.")
    threshold: float = Field(description="HEALTHMATE_QUALITY_THRESHOLD.")
    metrics: dict[str, list[QualityWindowPoint]] | None = Field(
        description="Per metric, oldest first; null when the warehouse is unreachable.")


class PipelineHistory(Closed):
    at: datetime
    bucket_s: int
    points: list[HistoryPoint] = Field(description="The last hour, oldest first, one per minute.")
    quality: QualityHistory


class PipelineStatus(Closed):
    status: Literal["ok", "degraded"]
    at: datetime
    services: dict[str, Any]
    kafka: Reachable
    warehouse: Reachable
    consumer: Consumer
    throughput: Throughput
    dead_letters: DeadLetterCounts | None
    quality: dict[str, MetricQuality] | None = Field(
        None, description="Per metric; absent or null when in-stream quality is off or unavailable.")


class PartitionReport(Closed):
    created: list[str]
    present: list[str]


class SetupResult(Closed):
    topics_created: list[str]
    migrations: list[int]
    partitions: PartitionReport


class Detached(Closed):
    partition: str
    renamed_to: str


class OptimizePartitions(PartitionReport):
    detached: list[Detached]


class OptimizeResult(Closed):
    dry_run: bool
    partitions: OptimizePartitions
    retention: dict[str, Any]
    analyzed: list[str]
    indexes: list[dict[str, Any]]
    unused_indexes: list[str]


class JobList(Closed):
    jobs: list[ETLJobConfig]


Run = TypeAdapter(RunRecord)


class AcceptedRun(Closed):
    """What ``GET .../runs/{run_id}`` answers between the 202 and the runner's first write."""

    run_id: uuid.UUID
    job_id: str
    status: Literal["accepted"]
    progress: int


class JobDetail(Closed):
    job: ETLJobConfig
    runs: list[RunRecord] = Field(description="The latest runs, newest first.")
    running: list[RunRecord]


class RunStarted(Closed):
    run_id: uuid.UUID
    job_id: str
    job_name: str
    status: Literal["accepted"]
    location: str


class Deleted(Closed):
    deleted: str


class Lineage(Open):
    job: dict[str, Any]
    sources: list[dict[str, Any]]
    transformations: list[dict[str, Any]]
    targets: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    last_run: dict[str, Any] | None


class DeadLetterGroup(Closed):
    reason: str
    metric: str | None
    count: int
    first_at: datetime | None
    last_at: datetime | None


class DeadLetterSummary(Closed):
    topic: str
    total: int
    by_reason: dict[str, int]
    by_reason_and_metric: list[DeadLetterGroup]


class RedriveResult(Closed):
    scanned: int
    selected: int
    duplicates: int
    refed_from_source: int = Field(description="Planned from the original raw message (also in a dry run).")
    refed_from_dlq: int = Field(description="Planned from the dead letter's own payload (also in a dry run).")
    skipped_truncated: int
    limited: bool
    raw_offsets: dict[str, list[int]] = Field(description="Raw-topic offsets published, by partition.")
    would_refeed: int = Field(description="Messages the redrive re-feeds (or, in a dry run, would).")
    refed: int = Field(description="Messages actually published; 0 in a dry run.")
    dry_run: bool
    raw_topic: str


class QualityReport(Open):
    report_id: uuid.UUID | str
    data_type: str
    sample_size: int
    overall_score: float
    quality_level: str
    dimension_scores: dict[str, float]
    issues: list[str]
    recommendations: list[str]
    rejected: int
    rejected_by_reason: dict[str, int]
    dlq_share: float | None
    generated_at: datetime


class BundleLink(Closed):
    relation: Literal["self", "next", "previous"]
    url: str


class SearchBundle(Open):
    """A FHIR R4 ``searchset`` Bundle; each entry's resource is an R4 Observation."""

    resourceType: Literal["Bundle"]  # noqa: N815 - FHIR's own field name
    type: Literal["searchset"]
    link: list[BundleLink]
    entry: list[dict[str, Any]] = Field(default_factory=list, min_length=1,
                                        description="Absent when nothing matched (FHIR has no empty arrays).")


class SchemaList(Closed):
    message_reasons: list[str]
    forms: list[Any]
    json_schema: str = Field(description="Path of the JSON Schema of our own reading forms.")


class JsonSchema(Open):
    """A JSON Schema document (draft 2020-12), generated from the wire models."""


class SubjectExport(Open):
    """A FHIR R4 ``collection`` Bundle of the person's readings; with ``format=json``
    (answered as ``application/json``) the stored rows: ``format``, ``user_key``,
    ``readings``, ``derived``, ``counts``."""


class NotReached(Closed):
    place: str = Field(description="Where copies of the person's data remain (a Kafka topic, backups).")
    holds: str = Field(description="What is kept there.")
    until: str = Field(description="When it goes away, and how to shorten that.")


class ErasureEntry(Closed):
    erased_at: datetime
    erased_by: str = Field(description="Token subject of the admin who erased the person.")
    request_id: str = Field(description="The erasure call's request id (its audit_log row).")


class SubjectErased(Closed):
    user_key: str
    erased: dict[str, int] = Field(description="Rows erased per table.")
    total: int
    erasure: ErasureEntry = Field(
        description="The erasure register entry: from now on no reading of the person is stored.")
    profile_tombstone: Literal["published", "failed"] = Field(
        description="The tombstone on the profiles topic (failed: Kafka unreachable; call again).")
    not_reached: list[NotReached]


class ErasureLifted(Closed):
    user_key: str
    lifted: ErasureEntry = Field(description="The register entry removed.")
