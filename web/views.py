"""Faust web views. Unauthenticated operational endpoints live outside /data-pipeline/.

Everything under ``/data-pipeline/`` is built from one route table (``api_routes``): the
views below and the OpenAPI document at ``/data-pipeline/openapi.json`` both read it, so
they cannot drift apart. Each view method only hands the request to ``Api.handle``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from web import (
    responses,
    routes_cgm,
    routes_dlq,
    routes_fhir,
    routes_imports,
    routes_jobs,
    routes_omh,
    routes_pipeline,
    routes_quality,
    routes_subjects,
)
from web.api import API_PREFIX, Api, Call, Route
from web.auth import Permission
from web.console import register_console
from web.edge import Edge
from web.errors import ApiError
from web.history import PipelineHistory
from web.openapi import openapi_document
from web.server import HardenedWeb
from web.status import ThroughputMeter, health, total_lag

if TYPE_CHECKING:
    from healthmate.worker import WorkerServices

PUBLIC_PATHS = {
    "/health": "Liveness (consume loop polling, write chain unbroken) and readiness of Kafka and "
               "PostgreSQL: 200, or 503 if either fails. ?probe=live checks liveness only. Without a "
               "token the body is {\"status\"} only; a viewer token adds the details (poll and commit "
               "ages, partitions, checks).",
    "/metrics": "Prometheus exposition.",
    "/data-pipeline/console": "The operator console (HTML; it calls this API with the caller's token).",
}
API_VERSION = "1.0.0"
HISTORY_LAG_SAMPLE_S = 15.0


def api_routes() -> list[Route]:
    """Every route under ``/data-pipeline/``, the OpenAPI document's own included."""
    routes = [*routes_pipeline.ROUTES, *routes_jobs.ROUTES, *routes_dlq.ROUTES, *routes_quality.ROUTES,
              *routes_omh.ROUTES,
              *routes_fhir.ROUTES, *routes_subjects.ROUTES, *routes_imports.ROUTES, *routes_cgm.ROUTES]
    return [*routes, Route("GET", "/openapi.json", "openapi", "This document.", _openapi,
                           Permission.READ_STATUS, tag="operations", response=responses.Open)]


async def _openapi(api: Api, call: Call) -> dict[str, Any]:
    return openapi_document(api_routes(), PUBLIC_PATHS, title="HealthMate Pipeline API",
                            version=API_VERSION)


def register_views(app: faust.App, services: WorkerServices) -> None:
    """Attach every view to ``app`` (called by the composition root, :mod:`healthmate.worker`)."""

    @app.page("/health")
    class Health(View):
        """Liveness of the consume loop and write chain, plus readiness of Kafka and PostgreSQL."""

        async def get(self, request: Request) -> Response:
            body = await health(services.ingest, services.warehouse,
                                services.settings.health_max_poll_age_s,
                                only_liveness=request.query.get("probe") == "live")
            code = 200 if body["status"] == "ok" else 503
            return self.json(body if _may_see_details(api, request) else {"status": body["status"]},
                             status=code)

    @app.page("/metrics")
    class MetricsView(View):
        """Prometheus exposition of the app's registry."""

        async def get(self, request: Request) -> Response:
            payload = generate_latest(services.metrics.registry)
            return self.bytes(payload, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    api = Api(app, services)
    history = PipelineHistory()
    meter = ThroughputMeter(api.clock, history)
    api.extensions["throughput"] = meter
    api.extensions["history"] = history

    @app.timer(HISTORY_LAG_SAMPLE_S, name="pipeline-history-lag")
    async def sample_lag() -> None:  # the console's lag chart, also when nobody is looking
        lag = total_lag(api.ingest)
        if lag is not None:
            history.record_lag(api.clock(), lag)

    api.extensions["quality_levels"] = routes_quality.current_levels
    services.ingest.batch_observers.append(meter.observe)
    api.extensions["etl_runs"] = app.service(routes_jobs.BackgroundRuns(beacon=app.beacon))  # type: ignore[arg-type]
    api.extensions["imports"] = app.service(routes_imports.ImportJobs(api.settings, beacon=app.beacon))  # type: ignore[arg-type]
    web_driver = app.web
    assert isinstance(web_driver, HardenedWeb), "create the app with web='healthmate://'"
    web_driver.harden(Edge(api), api.settings)
    register_api(app, api, api_routes())
    register_console(app, api.settings)


def _may_see_details(api: Api, request: Request) -> bool:
    """Whether ``/health``'s caller holds a token that may read the pipeline's status.

    A stranger (no token, or a bad one) learns the status and the HTTP code only: that is
    what the k8s probes need, and topic names, partitions and ages stay behind the viewer role."""
    try:
        return api.verifier.verify(request.headers.get("Authorization")).may(Permission.READ_STATUS)
    except ApiError:
        return False


def register_api(app: faust.App, api: Api, routes: list[Route]) -> None:
    """One Faust view per path; each HTTP method dispatches to its route."""
    by_path: dict[str, dict[str, Route]] = defaultdict(dict)
    for route in routes:
        assert route.method not in by_path[route.template], f"duplicate route {route.method} {route.template}"
        by_path[route.template][route.method] = route
    for index, (template, methods) in enumerate(sorted(by_path.items())):
        attrs: dict[str, Any] = {"__doc__": "; ".join(r.summary for r in methods.values())}
        for method, route in methods.items():
            attrs[method.lower()] = _method(api, route)
        view = type(f"ApiView{index}", (View,), attrs)
        app.page(template, name=f"api:{template}")(view)


def _method(api: Api, route: Route):  # type: ignore[no-untyped-def]
    async def handle(self: View, request: Request, **match_info: str) -> Response:
        return await api.handle(self, request, route, match_info)

    handle.__name__ = route.name
    return handle


assert all(r.template.startswith(API_PREFIX + "/") for r in api_routes())
