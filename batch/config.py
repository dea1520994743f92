"""``ETLJobConfig``: what an ETL job is, validated field by field. Pure: no I/O.

Table names are checked against allow-lists here and are never used to build SQL: the
runner maps each allowed name to SQL it owns (:mod:`batch.targets`). Invalid configs raise
``pydantic.ValidationError`` whose ``errors()`` carry the offending field in ``loc``.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal
from uuid import uuid4

from croniter import croniter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, ValidationInfo, field_validator

#: Warehouse tables a batch job may read. ``user_profiles`` is optional: with it, the daily
#: targets count days in each user's own time zone (see :mod:`batch.transform`).
SOURCE_TABLES: Final = ("health_readings", "dead_letters", "user_profiles")
#: Other accepted names of source tables (the specification's), replaced on validation.
SOURCE_ALIASES: Final = {"health_metrics": "health_readings"}
#: A caller's ``job_id``: it becomes part of the DAG id and a metric label, so letters,
#: digits, '_', '.' and '-' only, starting with a letter or digit, at most 64 characters.
JOB_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_JOB_NAME: Final = 200
#: C0 and C1 control characters and DEL: refused in display names.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Built-in batch targets and the source tables each one reads.
TARGET_SOURCES: Final = {
    "aggregated_health_metrics": ("health_readings",),
    "user_engagement": ("health_readings",),
    "system_performance": ("health_readings", "dead_letters"),
    # CGM metrics are by the person's local day, always (tables cgm_daily and cgm_14d).
    "cgm": ("health_readings", "user_profiles"),
}
#: The one target of a replay: the fact table, through the streaming sink.
REPLAY_TARGET: Final = "health_readings"
CRON_PRESETS: Final = frozenset({"@hourly", "@daily", "@weekly", "@monthly", "@yearly"})
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class PipelineType(StrEnum):
    BATCH = "batch"
    REPLAY = "replay"


class ReplayRange(BaseModel):
    """A topic range: partition offsets ``[from, to)`` or record times ``[start, end)``.

    Offsets: ``from_offsets`` names the partitions to replay (``{partition: first offset}``);
    ``to_offsets`` gives exclusive end offsets (a partition not listed runs to its end
    offset at the time of the run). Times: both ``start_time`` and ``end_time``, aware,
    resolved per partition with Kafka's ``offsets_for_times``; every partition is replayed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    from_offsets: dict[int, int] | None = None
    to_offsets: dict[int, int] | None = None
    start_time: AwareDatetime | None = None
    end_time: AwareDatetime | None = Field(default=None, validate_default=True)
    publish_dead_letters: bool = Field(default=False, description="Send bad records to the DLQ again.")
    engine: Literal["worker", "spark"] = Field(
        default="worker", description="What runs the replay: 'worker' (one process, the default) or "
        "'spark' (Apache Spark on HEALTHMATE_SPARK_MASTER); both store exactly the same rows.")

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        if not _TOPIC.match(v):
            raise ValueError("must be a Kafka topic name (letters, digits, '.', '_', '-')")
        return v

    @field_validator("from_offsets", "to_offsets")
    @classmethod
    def _offsets(cls, v: dict[int, int] | None, info: ValidationInfo) -> dict[int, int] | None:
        if v is None:
            return v
        if any(p < 0 or o < 0 for p, o in v.items()):
            raise ValueError("partitions and offsets must be >= 0")
        start = info.data.get("from_offsets")
        if info.field_name == "to_offsets":
            if start is None:
                raise ValueError("to_offsets needs from_offsets")
            if any(p in start and o < start[p] for p, o in v.items()):
                raise ValueError("an end offset is before its start offset")
        return v

    @field_validator("end_time")
    @classmethod
    def _times(cls, v: datetime | None, info: ValidationInfo) -> datetime | None:
        start, offsets = info.data.get("start_time"), info.data.get("from_offsets")
        if offsets is not None and (start is not None or v is not None):
            raise ValueError("give offsets or times, not both")
        if offsets is None and (start is None or v is None):
            raise ValueError("give from_offsets, or both start_time and end_time")
        if v is not None and start is not None and v <= start:
            raise ValueError("end_time must be after start_time")
        return v


class ETLJobConfig(BaseModel):
    """One ETL job, identified by ``job_id``; ``job_name`` is for people.

    - ``job_id``: any identifier matching :data:`JOB_ID_PATTERN` (``health_metrics_etl``),
      or a generated UUID string when absent. The DAG id (``HEALTHMATE_AIRFLOW_DAG_PREFIX``
      + ``job_id``) and the ``etl_job`` metric label are derived from it, never from the name.
    - ``job_name``: a free display name ("Health Metrics Daily ETL"), 1 to
      :data:`MAX_JOB_NAME` characters, surrounding whitespace stripped, no control
      characters; unique among registered jobs.
    - ``source_tables`` accept the aliases of :data:`SOURCE_ALIASES` (``health_metrics``),
      stored under the table's real name.

    - ``batch`` jobs read ``source_tables`` and rebuild ``target_tables`` for an interval;
      ``source_tables`` defaults to what the targets need, and must cover it.
    - ``replay`` jobs re-run ``replay`` (a topic range) through the streaming domain and
      sink; their target is ``health_readings``.
    - ``schedule``: a 5-field cron expression or ``@hourly|@daily|@weekly|@monthly|@yearly``;
      ``None`` means manual only. ``timeout_minutes`` bounds a whole run (all attempts).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str = Field(default_factory=lambda: str(uuid4()), pattern=JOB_ID_PATTERN,
                        description="letters, digits, '_', '.', '-' (in the DAG id); generated if absent")
    job_name: str = Field(min_length=1, max_length=MAX_JOB_NAME, description="a display name")
    pipeline_type: PipelineType = PipelineType.BATCH
    source_tables: list[str] | None = Field(default=None, validate_default=True)
    target_tables: list[str] | None = Field(default=None, validate_default=True)
    schedule: str | None = None
    enabled: bool = True
    retry_count: int = Field(default=3, ge=0, le=10)
    timeout_minutes: float = Field(default=60.0, gt=0, le=24 * 60)
    batch_size: int = Field(default=10_000, ge=1, le=1_000_000)
    parallel_workers: int = Field(default=2, ge=1, le=16)
    data_quality_threshold: float = Field(default=0.8, ge=0, le=1)
    include_statistics: bool = Field(default=False, description=(
        "aggregate summary readings (statistic set: daily minimums, averages...) together with raw "
        "samples; by default only raw samples (statistic IS NULL) are aggregated"))
    notification_on_failure: bool = True
    notification_on_success: bool = False
    notification_webhook_url: HttpUrl | None = None
    replay: ReplayRange | None = Field(default=None, validate_default=True)

    @field_validator("job_name")
    @classmethod
    def _display_name(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be blank")
        if _CONTROL.search(v):
            raise ValueError("must not contain control characters")
        return v

    @field_validator("source_tables")
    @classmethod
    def _sources(cls, v: list[str] | None, info: ValidationInfo) -> list[str]:
        if info.data.get("pipeline_type") == PipelineType.REPLAY:
            if v:
                raise ValueError("a replay job reads its topic; give no source tables")
            return []
        if v is None:
            return []  # filled from the targets below
        v = [SOURCE_ALIASES.get(name, name) for name in v]
        _no_duplicates(v)
        unknown = sorted(set(v) - set(SOURCE_TABLES))
        if unknown:
            allowed = [*SOURCE_TABLES, *SOURCE_ALIASES]
            raise ValueError(f"unknown source tables {unknown}; allowed: {allowed}")
        return v

    @field_validator("target_tables")
    @classmethod
    def _targets(cls, v: list[str] | None, info: ValidationInfo) -> list[str]:
        if info.data.get("pipeline_type") == PipelineType.REPLAY:
            if v not in (None, [REPLAY_TARGET]):
                raise ValueError(f"a replay job's only target is {REPLAY_TARGET!r}")
            return [REPLAY_TARGET]
        if not v:
            raise ValueError(f"give at least one target table of {list(TARGET_SOURCES)}")
        _no_duplicates(v)
        unknown = sorted(set(v) - set(TARGET_SOURCES))
        if unknown:
            raise ValueError(f"unknown target tables {unknown}; allowed: {list(TARGET_SOURCES)}")
        sources = info.data.get("source_tables")
        if sources:
            for target in v:
                missing = [s for s in TARGET_SOURCES[target] if s not in sources]
                if missing:
                    raise ValueError(f"{target} needs source tables {missing}")
        elif sources is not None:
            sources.extend(dict.fromkeys(s for t in v for s in TARGET_SOURCES[t]))
        return v

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = " ".join(v.split())
        if v in CRON_PRESETS:
            return v
        if len(v.split(" ")) != 5 or not croniter.is_valid(v):
            raise ValueError("must be a 5-field cron expression or one of " + ", ".join(sorted(CRON_PRESETS)))
        return v

    @field_validator("replay")
    @classmethod
    def _replay(cls, v: ReplayRange | None, info: ValidationInfo) -> ReplayRange | None:
        is_replay = info.data.get("pipeline_type") == PipelineType.REPLAY
        if is_replay and v is None:
            raise ValueError("a replay job needs a topic range")
        if not is_replay and v is not None:
            raise ValueError("only replay jobs take a topic range")
        return v

    @property
    def local_days(self) -> bool:
        """Whether the daily targets count days in each user's time zone (UTC otherwise)."""
        return "user_profiles" in (self.source_tables or ())

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``etl_jobs.config`` and returned by the API."""
        return self.model_dump(mode="json")


def _no_duplicates(names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise ValueError("lists a table twice")
