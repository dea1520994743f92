"""Pipeline operations: status, setup, warehouse optimize."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from streams.setup import coming_months, setup_pipeline
from streams.sink.warehouse import month_start, next_month
from web import queries, responses
from web.api import Api, Call, Route
from web.auth import Permission
from web.history import BUCKET_S, PipelineHistory
from web.models import NoBody, OptimizeBody
from web.status import pipeline_status, total_lag


def months_back(start: datetime, months: int) -> datetime:
    index = start.year * 12 + start.month - 1 - months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


async def ensure_coming_partitions(api: Api, *, dry_run: bool = False) -> dict[str, list[str]]:
    """Create the partitions for this month and the configured months ahead (idempotent)."""
    pool, schema = api.warehouse.pool, api.settings.warehouse_schema
    wanted = coming_months(api.clock(), api.settings.warehouse_partitions_ahead)
    before = {p.name for p in await queries.reading_partitions(pool, schema)}
    names = [f"health_readings_p{m:%Y%m}" for m in wanted]
    if dry_run:
        return {"created": [n for n in names if n not in before], "present": sorted(before & set(names))}
    await api.warehouse.ensure_partitions(wanted)
    after = {p.name for p in await queries.reading_partitions(pool, schema)}
    return {"created": sorted(after - before), "present": sorted(set(names) & before)}


async def status(api: Api, call: Call) -> dict[str, Any]:
    quality = api.extensions.get("quality_levels")
    return await pipeline_status(api, quality=(lambda: quality(api)) if quality else None)


#: How many of each metric's latest closed windows the quality chart shows.
QUALITY_WINDOWS_SHOWN = 30


async def history(api: Api, call: Call) -> dict[str, Any]:
    """The last hour per minute (this worker) and each metric's score over its last windows."""
    now = api.clock()
    hist: PipelineHistory = api.extensions["history"]
    lag = total_lag(api.ingest)
    if lag is not None:
        hist.record_lag(now, lag)
    size = min(api.settings.quality_windows_s)
    try:
        metrics: dict[str, Any] | None = await queries.quality_history(
            api.warehouse.pool, api.settings.warehouse_schema, size,
            now - timedelta(seconds=size * QUALITY_WINDOWS_SHOWN))
    except Exception:  # noqa: BLE001 - reported as unknown, like the status's parts
        metrics = None
    return {"at": now, "bucket_s": BUCKET_S, "points": hist.points(now),
            "quality": {"window_size_s": size, "windows": QUALITY_WINDOWS_SHOWN,
                        "threshold": api.settings.quality_threshold, "metrics": metrics}}


async def setup(api: Api, call: Call) -> dict[str, Any]:
    """Topics, migrations, coming partitions; running it again changes nothing."""
    partitions = await ensure_coming_partitions(api)
    done = await setup_pipeline(api.settings, now=api.clock())
    versions = await queries.migration_versions(api.warehouse.pool, api.settings.warehouse_schema)
    return {"topics_created": done["topics_created"], "migrations": versions, "partitions": partitions}


async def optimize(api: Api, call: Call) -> dict[str, Any]:
    """Coming partitions, retention (detach + rename, never drop), ANALYZE, index usage."""
    body: OptimizeBody = call.body
    pool, schema, settings = api.warehouse.pool, api.settings.warehouse_schema, api.settings
    now = api.clock()
    call.target = "dry_run" if body.dry_run else None
    created = await ensure_coming_partitions(api, dry_run=body.dry_run)
    detached: list[dict[str, str]] = []
    cutoff = None
    if settings.warehouse_retention_months:
        cutoff = months_back(month_start(now), settings.warehouse_retention_months)
        for partition in await queries.reading_partitions(pool, schema):
            if next_month(partition.month) > cutoff:
                continue
            new_name = f"{partition.name}_detached_{now:%Y%m%d%H%M%S}"
            if not body.dry_run:
                await queries.detach_partition(pool, schema, partition, new_name)
                api.warehouse._known_partitions.discard(partition.month)
            detached.append({"partition": partition.name, "renamed_to": new_name})
    analyzed = [] if body.dry_run else await queries.analyze_schema(pool, schema)
    indexes = await queries.index_usage(pool, schema)
    return {
        "dry_run": body.dry_run,
        "partitions": {**created, "detached": detached},
        "retention": {"months": settings.warehouse_retention_months, "cutoff": cutoff},
        "analyzed": analyzed,
        "indexes": indexes,
        "unused_indexes": [i["index"] for i in indexes if not i["scans"]],
    }


ROUTES = [
    Route("GET", "/pipeline/status", "pipeline.status",
          "Services and agents, consumer lag and last commit per partition (stalled ones flagged), "
          "throughput over the last minute, dead letters by reason, warehouse reachability, "
          "quality level per metric.", status, Permission.READ_STATUS, response=responses.PipelineStatus),
    Route("GET", "/pipeline/history", "pipeline.history",
          "The last hour per minute as this worker saw it (readings stored, dead letters, largest "
          "total lag sampled), and each metric's worst judged quality score over its last closed "
          "windows of the smallest size (null: still collecting). For the console's charts.",
          history, Permission.READ_STATUS, response=responses.PipelineHistory),
    Route("POST", "/pipeline/setup", "pipeline.setup",
          "Create topics, apply migrations and create the coming partitions (idempotent).",
          setup, Permission.SETUP, body_model=NoBody, response=responses.SetupResult),
    Route("POST", "/warehouse/optimize", "warehouse.optimize",
          "Create coming partitions, detach partitions past retention, ANALYZE, report index usage.",
          optimize, Permission.OPTIMIZE, body_model=OptimizeBody, tag="warehouse",
          response=responses.OptimizeResult),
]
