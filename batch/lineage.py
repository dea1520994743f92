"""OpenLineage run events for batch jobs and replays, built with ``openlineage-python``.

Events are stored in ``lineage_events`` and, when ``HEALTHMATE_OPENLINEAGE_URL`` is set,
POSTed to ``{url}/api/v1/lineage`` with aiohttp through the SSRF guard of
:mod:`batch.outbound` (the client's own HTTP transport is synchronous; a lineage backend
that is down never fails a job). Dataset names follow OpenLineage naming:
``postgres://host:port`` + ``database.schema.table``, and ``kafka://host:port`` + topic.
Transformations are column-lineage facets.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import aiohttp
import asyncpg
import orjson
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset as cl,
)
from openlineage.client.facet_v2 import (
    data_quality_assertions_dataset as dqa,
)
from openlineage.client.facet_v2 import (
    data_quality_metrics_input_dataset as dqm,
)
from openlineage.client.facet_v2 import (
    error_message_run,
    job_type_job,
    nominal_time_run,
    processing_engine_run,
    schema_dataset,
)
from openlineage.client.serde import Serde

from batch.config import REPLAY_TARGET, ETLJobConfig, PipelineType
from batch.outbound import guarded_post
from batch.spark_jars import SPARK_VERSION
from batch.targets import SOURCE_SCHEMAS, tables_of
from streams.config import Settings
from streams.domain.validate import TRANSFORMATION_VERSION
from streams.errors import OutboundRefused
from streams.sink.migrations import quote_ident

log = logging.getLogger(__name__)
STREAM_JOB_NAME = "streaming.ingest"
PRODUCER = "urn:healthmate-pipeline:batch:0.1.0"
#: Wire fields of the raw topic and where the replay puts them (see streams.records).
TOPIC_SCHEMA = (("key", "bytes"), ("event_id", "string"), ("user_id", "string"), ("device_id", "string"),
                ("source", "string"), ("metric", "string"), ("value", "number"), ("unit", "string"),
                ("timestamp", "string|integer"), ("metadata", "object"))
REPLAY_LINEAGE = {
    "event_id": ("event_id", "IDENTITY", "copied"),
    "user_key": ("user_id", "TRANSFORMATION", "HMAC-SHA256 pseudonym of user_id"),
    "metric": ("metric", "TRANSFORMATION", "normalised to the catalogue name"),
    "value": ("value", "TRANSFORMATION", "converted to the canonical UCUM unit, outlier policy applied"),
    "unit": ("unit", "TRANSFORMATION", "canonical UCUM unit"),
    "measured_at": ("timestamp", "TRANSFORMATION", "parsed to UTC"),
    "source": ("source", "IDENTITY", "copied"),
    "device_id": ("device_id", "TRANSFORMATION", "HMAC-SHA256 pseudonym of device_id (own derived key)"),
}

MASKED = frozenset({"user_key", "device_id"})


def pg_namespace(settings: Settings) -> tuple[str, str]:
    """``(namespace, database)`` of the warehouse, without credentials."""
    parts = urlsplit(settings.pg_dsn_value)
    return f"postgres://{parts.hostname or 'localhost'}:{parts.port or 5432}", (parts.path or "/").lstrip("/")


def kafka_namespace(settings: Settings) -> str:
    return f"kafka://{settings.kafka_bootstrap.split(',')[0].strip()}"


def _schema(fields: tuple[tuple[str, str], ...]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in fields])


def topic_to_readings(topic: str, settings: Settings) -> tuple[list[InputDataset], list[OutputDataset]]:
    """A raw topic judged by the domain code into ``health_readings`` (replays and the stream)."""
    pg, db = pg_namespace(settings)
    topic_ns = kafka_namespace(settings)
    inputs = [InputDataset(namespace=topic_ns, name=topic, facets={"schema": _schema(TOPIC_SCHEMA)})]
    fields = {col: cl.Fields(inputFields=[cl.InputField(
        namespace=topic_ns, name=topic, field=src,
        transformations=[cl.Transformation(type="DIRECT", subtype=sub, description=desc,
                                           masking=col in MASKED)])])
        for col, (src, sub, desc) in REPLAY_LINEAGE.items()}
    outputs = [OutputDataset(
        namespace=pg, name=f"{db}.{settings.warehouse_schema}.{REPLAY_TARGET}",
        facets={"schema": _schema(SOURCE_SCHEMAS["health_readings"]),
                "columnLineage": cl.ColumnLineageDatasetFacet(fields=fields)})]
    return inputs, outputs


def stream_event(state: RunState, run_id: UUID, settings: Settings, *, at: datetime) -> RunEvent:
    """The streaming ingest pipeline as an OpenLineage STREAMING job (one run per worker
    lifetime): the raw topic into ``health_readings``, rejects into the dead-letter topic."""
    inputs, outputs = topic_to_readings(settings.raw_topic, settings)
    outputs.append(OutputDataset(namespace=kafka_namespace(settings), name=settings.dlq_topic,
                                 facets={"schema": _schema(TOPIC_SCHEMA)}))
    job_facets: dict[str, Any] = {"jobType": job_type_job.JobTypeJobFacet(
        processingType="STREAMING", integration="HEALTHMATE", jobType="INGEST")}
    return RunEvent(eventType=state, eventTime=at.isoformat(), producer=PRODUCER,
                    run=Run(runId=str(run_id)),
                    job=Job(namespace=settings.openlineage_namespace, name=STREAM_JOB_NAME,
                            facets=job_facets),
                    inputs=inputs, outputs=outputs)


def datasets(job: ETLJobConfig, settings: Settings) -> tuple[list[InputDataset], list[OutputDataset]]:
    """The job's input and output datasets with schema and column-lineage facets."""
    pg, db = pg_namespace(settings)
    table = f"{db}.{settings.warehouse_schema}." + "{}"
    if job.pipeline_type == PipelineType.REPLAY:
        assert job.replay is not None
        return topic_to_readings(job.replay.topic, settings)
    inputs = [InputDataset(namespace=pg, name=table.format(s), facets={"schema": _schema(SOURCE_SCHEMAS[s])})
              for s in job.source_tables or ()]
    outputs = []
    for target in (t for name in job.target_tables or () for t in tables_of(name)):
        fields = {col: cl.Fields(inputFields=[cl.InputField(
            namespace=pg, name=table.format(src), field=f,
            transformations=[cl.Transformation(type=typ, subtype=sub, description=desc)])
            for f in src_fields])
            for col, (src, src_fields, typ, sub, desc) in target.lineage.items()
            if src in (job.source_tables or ())}  # timezone is the constant UTC without user_profiles
        outputs.append(OutputDataset(namespace=pg, name=table.format(target.name), facets={
            "schema": _schema(target.schema), "columnLineage": cl.ColumnLineageDatasetFacet(fields=fields)}))
    return inputs, outputs


def run_event(state: RunState, job: ETLJobConfig, run_id: UUID, settings: Settings, *, at: datetime,
              interval: tuple[datetime, datetime] | None = None, quality: dict[str, Any] | None = None,
              error: str | None = None) -> RunEvent:
    """One OpenLineage run event. ``quality`` (on COMPLETE/FAIL) holds ``rows``, ``score``,
    ``level`` and ``threshold``; it becomes input ``dataQualityMetrics`` and
    ``dataQualityAssertions`` facets."""
    inputs, outputs = datasets(job, settings)
    if quality is not None:
        for dataset in inputs:
            facets: dict[str, Any] = {}
            facets["dataQualityMetrics"] = dqm.DataQualityMetricsInputDatasetFacet(
                rowCount=quality["rows"], columnMetrics={})
            if quality.get("score") is not None:
                assertion = dqa.Assertion(
                    assertion="quality_score_at_least", success=quality["score"] >= quality["threshold"],
                    expected=str(quality["threshold"]), actual=f"{quality['score']:.4f}",
                    description=f"overall quality score ({quality['level']})")
                facets["dataQualityAssertions"] = dqa.DataQualityAssertionsDatasetFacet(
                    assertions=[assertion])
            dataset.inputFacets = facets
    run_facets: dict[str, Any] = {}
    if interval is not None:
        run_facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=interval[0].isoformat(), nominalEndTime=interval[1].isoformat())
    if job.replay is not None:  # which engine ran the replay: Spark or the worker path
        spark = job.replay.engine == "spark"
        run_facets["processing_engine"] = processing_engine_run.ProcessingEngineRunFacet(
            version=SPARK_VERSION if spark else TRANSFORMATION_VERSION,
            name="spark" if spark else "healthmate")
    if error is not None:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error, programmingLanguage="PYTHON")
    job_facets: dict[str, Any] = {"jobType": job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration="HEALTHMATE", jobType=str(job.pipeline_type).upper())}
    return RunEvent(eventType=state, eventTime=at.isoformat(), producer=PRODUCER,
                    run=Run(runId=str(run_id), facets=run_facets),
                    job=Job(namespace=settings.openlineage_namespace, name=job.job_name, facets=job_facets),
                    inputs=inputs, outputs=outputs)


async def record(pool: asyncpg.Pool, settings: Settings, event: RunEvent,
                 session: aiohttp.ClientSession | None = None) -> dict[str, Any]:
    """Store ``event`` in ``lineage_events``; POST it when an endpoint is configured."""
    doc = Serde.to_dict(event)
    await pool.execute(
        f"INSERT INTO {quote_ident(settings.warehouse_schema)}.lineage_events"
        " (run_id, job_namespace, job_name, event_type, event_time, event)"
        " VALUES ($1, $2, $3, $4, $5::timestamptz, $6::jsonb)",
        UUID(event.run.runId), event.job.namespace, event.job.name, doc["eventType"],
        datetime.fromisoformat(event.eventTime), orjson.dumps(doc).decode())
    if settings.openlineage_url and session is not None:
        headers = {"Content-Type": "application/json"}
        if settings.openlineage_api_key is not None:
            headers["Authorization"] = f"Bearer {settings.openlineage_api_key.get_secret_value()}"
        try:
            status = await guarded_post(session, settings.openlineage_url.rstrip("/") + "/api/v1/lineage",
                                        orjson.dumps(doc), headers=headers,
                                        timeout_s=settings.etl_http_timeout_s,
                                        allow_hosts=settings.outbound_allow_host_list)
            if status >= 300:
                log.warning("OpenLineage endpoint answered %s (redirects are not followed)", status)
        except OutboundRefused as exc:
            log.warning("OpenLineage endpoint refused: %s", exc)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("OpenLineage endpoint unreachable: %s", type(exc).__name__)
    return doc
