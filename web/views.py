"""Faust web views. Unauthenticated operational endpoints live outside /data-pipeline/."""

from __future__ import annotations

import asyncio

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


def register_views(app: faust.App) -> None:
    """Attach every view to ``app`` (called by the app factory)."""

    @app.page("/health")
    class Health(View):
        """Liveness (the process answers) plus readiness of Kafka and PostgreSQL."""

        async def get(self, request: Request) -> Response:
            checks = {
                "kafka": await _kafka_ready(app),
                "warehouse": await _warehouse_ready(app),
            }
            ready = all(checks.values())
            body = {"status": "ok" if ready else "degraded", "live": True, "ready": ready, "checks": checks}
            return self.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    class MetricsView(View):
        """Prometheus exposition of the app's registry."""

        async def get(self, request: Request) -> Response:
            payload = generate_latest(app.metrics.registry)  # type: ignore[attr-defined]
            return self.bytes(payload, content_type=CONTENT_TYPE_LATEST.split(";")[0])


async def _kafka_ready(app: faust.App) -> bool:
    consumer = app.ingest.consumer  # type: ignore[attr-defined]
    if consumer is None:
        return False
    try:
        await asyncio.wait_for(consumer.topics(), timeout=2)
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False
    return True


async def _warehouse_ready(app: faust.App) -> bool:
    try:
        pool = app.warehouse.pool  # type: ignore[attr-defined]
        await asyncio.wait_for(pool.fetchval("SELECT 1"), timeout=2)
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False
    return True
