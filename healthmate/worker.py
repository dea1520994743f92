"""The composition root: the one place where settings, domain rules, I/O, Faust, the batch
side and the web views meet.

:func:`create_worker` builds every service in this order: settings (given), metrics,
warehouse, quality stream, ingest service, profile agent, lineage emitter, then the web
views; it hands them down as one frozen :class:`WorkerServices` object. Nothing is hung on
the Faust app as an attribute, and the layers below (``streams``, ``batch``, ``web``) never
import this module except for types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faust
from prometheus_client import REGISTRY, CollectorRegistry

from batch.stream_lineage import StreamLineage
from streams.batching import ReadingProcessor
from streams.clock import Clock, utc_now
from streams.config import Settings
from streams.connections import faust_broker_kwargs, warehouse_from_settings
from streams.domain.validate import Rules
from streams.ingest import IngestService
from streams.logs import logging_config
from streams.metrics import Metrics
from streams.profiles import ProfileAgent
from streams.quality.stream import QualityStream
from streams.rules import rules_from_settings
from streams.sink.warehouse import Warehouse
from web.views import register_views


@dataclass(frozen=True, slots=True)
class WorkerServices:
    """Every service of one worker process; the views and agents take what they use from it."""

    settings: Settings
    metrics: Metrics
    clock: Clock
    rules: Rules
    warehouse: Warehouse
    #: None when ``HEALTHMATE_QUALITY_ENABLED`` is false.
    quality: QualityStream | None
    ingest: IngestService
    profiles: ProfileAgent
    lineage: StreamLineage


def create_worker(
    settings: Settings,
    *,
    registry: CollectorRegistry = REGISTRY,
    clock: Clock = utc_now,
    processors: Sequence[ReadingProcessor] = (),
) -> faust.App:
    """Build the worker app. Tests pass their own settings, registry and clock."""
    app, _ = build_worker(settings, registry=registry, clock=clock, processors=processors)
    return app


def build_worker(
    settings: Settings,
    *,
    registry: CollectorRegistry = REGISTRY,
    clock: Clock = utc_now,
    processors: Sequence[ReadingProcessor] = (),
) -> tuple[faust.App, WorkerServices]:
    """:func:`create_worker`, also returning the services it built (for tests and tools)."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    app = _faust_app(settings)
    metrics = Metrics(registry)
    warehouse = warehouse_from_settings(settings)
    rules = rules_from_settings(settings)
    # In-stream data quality: increments topic, windows table, agent and tick timer.
    quality = (QualityStream(app, settings, metrics, clock, warehouse=warehouse)
               if settings.quality_enabled else None)
    ingest = IngestService(
        settings, rules, warehouse, metrics, clock=clock, processors=processors, beacon=app.beacon,
        batch_observers=[quality.observe] if quality else [],
        stop_hooks=[quality.send_merged_now] if quality else [],
    )
    services = WorkerServices(
        settings=settings, metrics=metrics, clock=clock, rules=rules, warehouse=warehouse,
        quality=quality, ingest=ingest,
        # The user_profiles dimension, from the compacted profiles topic.
        profiles=ProfileAgent(app, settings, rules, warehouse, clock),
        lineage=StreamLineage(settings, warehouse, clock, beacon=app.beacon),
    )
    app.service(ingest)  # type: ignore[arg-type]
    app.service(services.profiles)  # type: ignore[arg-type]
    app.service(services.lineage)  # type: ignore[arg-type]
    register_views(app, services)
    return app, services


def _faust_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.app_id,
        **faust_broker_kwargs(settings),
        store="memory://",
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        producer_max_request_size=4 * 1024 * 1024,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 3.5,
        logging_config=logging_config(settings.log_format, settings.log_level),
        datadir=str(Path(settings.data_dir) / settings.app_id),
        # Faust's built-in /router and /table views are unauthenticated: the API serves status.
        web_router_enabled=False,
        web="healthmate://",  # web.server.HardenedWeb: the API edge (registered by web.views)
        web_tables_enabled=False,
    )
