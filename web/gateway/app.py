"""The ingest gateway's aiohttp application: ``POST /ingest/v1/readings``, ``/health``, ``/metrics``.

An ingest request is handled in this order, and the first problem answers:

1. the bearer token (:class:`web.auth.TokenVerifier`, the API's verification and settings):
   401; a token without an ingest role (``producer``, ``ingest-service``): 403;
2. the token's rate limit (a token bucket per ``jti``, else per subject and roles): 429 with
   ``Retry-After``;
3. the body: arriving too slowly (:mod:`web.body_pace`) 408; (:mod:`web.gateway.body`) size
   413, encoding and media type 415, JSON 400;
4. each document's form and user (:mod:`web.gateway.documents`): 400 or 403;
5. Kafka (:mod:`web.gateway.publisher`): 202 once every message is acknowledged, else 503
   with ``Retry-After``.

A refused request sent nothing to Kafka. Answers are JSON, those to requests the HTTP parser
refuses (:meth:`Gateway.refused_request`: 431 for a header line or field over
``HEALTHMATE_API_MAX_HEADER_BYTES``, 417 for an ``Expect`` other than ``100-continue``, else
400) and to unknown paths and methods (404, 405) included; a request head still incomplete
after ``HEALTHMATE_GATEWAY_HEADER_TIMEOUT_S`` gets no answer, its connection is closed
(:meth:`Gateway.header_timed_out`). An error names the first problem and never quotes the
request, a user id or a token. Logs carry the user's pseudonym only.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streams.config import Settings
from streams.rules import rules_from_settings
from web.auth import Permission, Principal, TokenVerifier
from web.body_pace import BodyPace
from web.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    TooManyRequests,
    to_api_error,
)
from web.gateway.body import BodyLimits, read_documents
from web.gateway.documents import EventIds, bind
from web.gateway.metrics import GatewayMetrics
from web.gateway.publisher import Publisher
from web.gateway.tokens import CachedVerifier
from web.guarded import BareResponse, parser_refusal
from web.limits import RateLimiter

log = logging.getLogger("healthmate.gateway")

INGEST_PATH = "/ingest/v1/readings"
SUBJECT = "healthmate.subject"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Gateway:
    """The handlers and the services they share; built once per process by :func:`create_gateway`."""

    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        rules = rules_from_settings(settings)
        self.settings = settings
        self.registry = registry
        self.metrics = GatewayMetrics(registry)
        self.verifier = CachedVerifier(TokenVerifier(settings))
        self.limiter = RateLimiter(settings.gateway_rate_per_token, settings.gateway_burst_per_token)
        self.limits = BodyLimits.from_settings(settings)
        self.pace = BodyPace(settings.gateway_body_idle_timeout_s, settings.gateway_body_min_bytes_per_s)
        self.catalogue = rules.catalogue
        self.pseudonymise = rules.pseudonymise
        self.event_ids = EventIds(rules)
        self.publisher = Publisher(settings, self.metrics)
        self.draining = False
        #: Ingest requests whose handler is running (the drain on SIGTERM waits for 0).
        self.active = 0

    async def ingest(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        self.metrics.in_flight.inc()
        self.active += 1
        try:
            response = await self._ingest(request, request_id)
        except Exception as exc:  # noqa: BLE001 - every answer is JSON, counted and logged
            if not isinstance(exc, ApiError):
                log.exception("ingest failed, request %s", request_id)
            exc = to_api_error(exc)
            self.metrics.refusals.labels(exc.reason).inc()
            subject = request.get(SUBJECT)
            log.info("ingest refused: %s (%s) for %s, request %s", exc.reason, exc.status,
                     self.pseudonymise(subject) if subject else "an unauthenticated caller", request_id)
            response = _json(exc.status, {**exc.body(request_id), "reason": exc.reason}, exc.headers)
            if isinstance(exc, RequestTimeout):
                response.force_close()  # the rest of the body is not awaited
        finally:
            self.metrics.in_flight.dec()
            self.active -= 1
        if self.draining:
            response.force_close()  # a keep-alive client reconnects, to another replica
        response.headers["X-Request-Id"] = request_id
        self.metrics.requests.labels(str(response.status)).inc()
        self.metrics.request_duration.observe(time.perf_counter() - started)
        return response

    async def _ingest(self, request: web.Request, request_id: str) -> web.Response:
        principal = self.verifier.verify(request.headers.get("Authorization"))
        request[SUBJECT] = principal.subject  # logged as its pseudonym only
        if not principal.may(Permission.INGEST_OWN):
            raise Forbidden("this token may not write readings (roles: producer, ingest-service)",
                            reason="no_role")
        wait = self.limiter.acquire(_bucket(principal))
        if wait:
            raise TooManyRequests("this token's request rate is exhausted", retry_after=wait,
                                  reason="rate_limited")
        body = await self._body(request)
        documents = read_documents(body, request.headers.get("Content-Type", ""),
                                   request.headers.get("Content-Encoding", ""), self.limits)
        any_user = principal.may(Permission.INGEST_ANY_USER)
        messages = [bind(d, principal.subject, any_user=any_user, catalogue=self.catalogue)
                    for d in documents]
        event_ids, readings = self.event_ids.of(messages)
        await self.publisher.publish(messages)
        self.metrics.messages_produced.inc(len(messages))
        self.metrics.readings_accepted.inc(readings)
        if log.isEnabledFor(logging.DEBUG):
            users = {m.user_id for m in messages}
            who = self.pseudonymise(next(iter(users))) if len(users) == 1 else f"{len(users)} users"
            log.debug("ingest accepted %d messages, %d readings for %s, request %s",
                      len(messages), readings, who, request_id)
        return _json(202, {"accepted": len(messages), "readings": readings, "event_ids": event_ids,
                           "request_id": request_id})

    async def _body(self, request: web.Request) -> bytes:
        """The whole body, read at the pace of :attr:`pace` and at most the size limit."""
        limit = self.settings.gateway_max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise _too_large(limit)
        chunks, size = [], 0
        try:
            async for chunk in self.pace.chunks(request.content):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
        except ConnectionResetError:  # the client went away mid-body: a refusal, not a fault
            raise BadRequest("the connection closed before the body ended",
                             reason="body_incomplete") from None
        return b"".join(chunks)

    def header_timed_out(self) -> None:
        """A connection closed because its request head did not arrive in time (never answered)."""
        self.metrics.refusals.labels("header_timeout").inc()
        log.info("connection closed: its request head was incomplete after %gs",
                 self.settings.gateway_header_timeout_s)

    async def refused_request(self, exc: BaseException) -> web.StreamResponse:
        """The answer to a request the HTTP parser refused (see the module docstring)."""
        error = parser_refusal(exc)
        request_id = uuid.uuid4().hex
        self.metrics.refusals.labels(error.reason).inc()
        log.info("request refused: %s (%s), request %s", error.reason, error.status, request_id)
        response = BareResponse(status=error.status, body=orjson.dumps({**error.body(request_id),
                                                                        "reason": error.reason}),
                                content_type="application/json", headers={"X-Request-Id": request_id})
        response.force_close()
        return response

    async def health(self, request: web.Request) -> web.Response:
        """``status`` ok when serving and Kafka took the last request (or nothing failed since);
        ``?probe=liveness`` answers 200 while the process serves at all."""
        if request.query.get("probe") == "liveness":
            return _json(200, {"status": "ok", "live": True})
        checks = {"kafka": await self.publisher.healthy(), "accepting": not self.draining}
        ok = all(checks.values())
        return _json(200 if ok else 503, {"status": "ok" if ok else "degraded", "checks": checks})

    async def metrics_view(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def on_startup(self, app: web.Application) -> None:
        await self.publisher.start()
        log.info("gateway serving %s for topic %s", INGEST_PATH, self.settings.raw_topic)

    async def on_cleanup(self, app: web.Application) -> None:
        await self.publisher.stop()
        log.info("gateway stopped; every accepted request was acknowledged")


GATEWAY = web.AppKey("gateway", Gateway)


def create_gateway(settings: Settings, *, registry: CollectorRegistry | None = None) -> web.Application:
    """The gateway's application; the producer starts with the app and stops after the last
    request (:func:`web.gateway.serve.serve` runs it)."""
    gateway = Gateway(settings, registry or CollectorRegistry())
    app = web.Application(client_max_size=settings.gateway_max_body_bytes, middlewares=[_json_routing_errors])
    app.router.add_post(INGEST_PATH, gateway.ingest)
    app.router.add_get("/health", gateway.health)
    app.router.add_get("/metrics", gateway.metrics_view)
    app.on_startup.append(gateway.on_startup)
    app.on_cleanup.append(gateway.on_cleanup)
    app[GATEWAY] = gateway
    return app


@web.middleware
async def _json_routing_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown paths (404) and methods (405) answer JSON too, without quoting the request."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        error: ApiError = NotFound("no such path; readings go to " + INGEST_PATH, reason="no_route")
    except web.HTTPMethodNotAllowed as exc:
        error = MethodNotAllowed("method not allowed here", reason="method",
                                 headers={"Allow": ", ".join(sorted(exc.allowed_methods))})
    request_id = uuid.uuid4().hex
    return _json(error.status, {**error.body(request_id), "reason": error.reason},
                 {**error.headers, "X-Request-Id": request_id})


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is larger than {limit} bytes", reason="body_too_large")


def _bucket(principal: Principal) -> str:
    return principal.token_id or f"{principal.subject}\x00{','.join(principal.roles)}"


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json",
                        headers=headers)
