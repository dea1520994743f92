"""The app factory: the one place where settings, domain rules, I/O and Faust meet."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import faust
from prometheus_client import REGISTRY, CollectorRegistry

from streams.config import Settings
from streams.connections import faust_broker_kwargs, warehouse_from_settings
from streams.domain.catalogue import build_catalogue
from streams.domain.outliers import OutlierStrategy
from streams.domain.validate import TRANSFORMATION_VERSION, Rules
from streams.ingest import Clock, IngestService, ReadingProcessor, utc_now
from streams.logs import logging_config
from streams.metrics import Metrics
from streams.profiles import ProfileAgent
from streams.quality.stream import QualityStream


def rules_from_settings(settings: Settings) -> Rules:
    """The domain rules the settings describe."""
    return Rules(
        catalogue=build_catalogue(settings.catalogue_overrides),
        pseudonym_key=settings.pseudonym_key_bytes,
        future_skew=timedelta(seconds=settings.future_skew_seconds),
        late_after=timedelta(hours=settings.late_after_hours),
        outlier_strategies={m: OutlierStrategy(s) for m, s in settings.outlier_strategy.items()},
        max_message_bytes=settings.max_message_bytes,
        max_batch_readings=settings.max_batch_readings,
        transformation_version=TRANSFORMATION_VERSION,
        naive_timestamps=settings.naive_timestamps,
    )


def create_app(
    settings: Settings,
    *,
    registry: CollectorRegistry = REGISTRY,
    clock: Clock = utc_now,
    processors: Sequence[ReadingProcessor] = (),
) -> faust.App:
    """Build the worker app. Tests pass their own settings, registry and clock."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    app = faust.App(
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
    app.healthmate_settings = settings  # type: ignore[attr-defined]
    app.metrics = Metrics(registry)  # type: ignore[attr-defined]
    warehouse = warehouse_from_settings(settings)
    app.warehouse = warehouse  # type: ignore[attr-defined]
    # In-stream data quality: increments topic, windows table, agent and tick timer.
    app.quality = (  # type: ignore[attr-defined]
        QualityStream(app, settings, app.metrics, clock)  # type: ignore[attr-defined]
        if settings.quality_enabled else None)
    rules = rules_from_settings(settings)
    app.ingest = IngestService(  # type: ignore[attr-defined]
        settings, rules, warehouse, app.metrics,  # type: ignore[attr-defined]
        clock=clock, processors=processors, beacon=app.beacon,
        batch_observers=[app.quality.observe] if app.quality else [],  # type: ignore[attr-defined]
        stop_hooks=[app.quality.send_merged_now] if app.quality else [],  # type: ignore[attr-defined]
    )
    app.service(app.ingest)  # type: ignore[arg-type, attr-defined]
    # The user_profiles dimension, from the compacted profiles topic.
    app.profiles = ProfileAgent(app, settings, rules, warehouse, clock)  # type: ignore[attr-defined]
    app.service(app.profiles)  # type: ignore[attr-defined]

    # The factory is the composition root: batch/ and web/ build on streams/, so they are
    # imported here, late, rather than by the streaming modules themselves.
    from batch.stream_lineage import StreamLineage
    from web.views import register_views

    app.service(StreamLineage(settings, warehouse, clock, beacon=app.beacon))  # type: ignore[arg-type]

    register_views(app)
    return app
