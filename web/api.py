"""The route table's types and the one request pipeline every API route goes through.

For each call, in this order: the client address's rate limit (429), declared body size
(413), bearer token (401), the token subject's rate limit (429), role (403), path/query/body
validation with pydantic (422, unknown fields rejected; 413 for a body that turns out
larger than declared), for heavy routes a free slot under the concurrency cap (429), the
handler, then the audit row and the metrics. Path parameters that name a person
(``Route.pseudonymised``) are replaced by their pseudonym before anything records them.
Whatever is raised becomes an answer through :func:`web.errors.to_api_error`.

A handler gets the :class:`Api` (the worker's services) and a validated :class:`Call`,
and returns a :class:`Reply` (or a JSON-able value, answered with the route's status).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import faust
import orjson
import pydantic
from aiohttp import web
from faust.web import Request, Response, View

from streams.config import Settings
from streams.domain.pseudonym import Pseudonymiser
from web.audit import AuditTrail
from web.auth import Permission, Principal, TokenVerifier
from web.errors import (
    ApiError,
    Forbidden,
    InvalidInput,
    PayloadTooLarge,
    TooManyRequests,
    to_api_error,
    validation_fields,
)
from web.limits import ConcurrencyCap, RateLimiter

if TYPE_CHECKING:
    from healthmate.worker import WorkerServices

log = logging.getLogger(__name__)

API_PREFIX = "/data-pipeline"


@dataclass(slots=True)
class Call:
    """A validated request. ``target`` (what the call acts on, no PHI) goes to the audit row."""

    principal: Principal
    path: Any
    query: Any
    body: Any
    request_id: str
    target: str | None = None
    #: For heavy routes: the slot's release. A handler that keeps working after it answers
    #: (a background run) takes it (sets this to None) and calls it when done.
    release: Callable[[], None] | None = None


@dataclass(slots=True)
class Reply:
    body: Any
    status: int | None = None
    headers: dict[str, str] | None = None
    content_type: str | None = None  # default: the route's


Handler = Callable[["Api", Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    """One operation. The views and the OpenAPI document are both built from these."""

    method: str
    path: str
    name: str
    summary: str
    handler: Handler
    permission: Permission
    path_model: type[pydantic.BaseModel] | None = None
    query_model: type[pydantic.BaseModel] | None = None
    body_model: type[pydantic.BaseModel] | None = None
    status: int = 200
    tag: str = "pipeline"
    content_type: str = "application/json"
    #: Query parameters that may repeat (FHIR ``date=ge…&date=lt…``); the model gets a list.
    repeatable: frozenset[str] = frozenset()
    heavy: bool = False
    pseudonymised: tuple[str, ...] = ()
    response: Any = None  # a pydantic model or TypeAdapter of the success body (OpenAPI)
    errors: tuple[int, ...] = ()  # statuses beyond the common ones (404, 409) this route answers
    headers: tuple[str, ...] = ()  # response headers of the success answer beyond X-Request-Id
    #: An upload: the handler gets the aiohttp request as ``call.body`` and reads (and bounds)
    #: the body itself; ``request_headers`` are (name, description) pairs it reads (OpenAPI).
    stream_body: bool = False
    request_headers: tuple[tuple[str, str], ...] = ()

    @property
    def template(self) -> str:
        """The full path template; also the ``route`` label of the API metrics."""
        return API_PREFIX + self.path


class Api:
    """The worker's services as the handlers see them, and the request pipeline."""

    def __init__(self, app: faust.App, services: WorkerServices) -> None:
        self.app = app
        self.services = services
        self.settings: Settings = services.settings
        self.warehouse = services.warehouse
        self.ingest = services.ingest
        self.metrics = services.metrics
        self.clock: Callable[[], datetime] = services.clock
        self.verifier = TokenVerifier(self.settings)
        self.audit = AuditTrail(self.warehouse, self.settings.warehouse_schema, self.clock)
        self.extensions: dict[str, Any] = {}
        s = self.settings
        self.pseudonymise = Pseudonymiser(s.pseudonym_key_bytes)
        self.by_address = RateLimiter(s.api_rate_per_address, s.api_burst_per_address)
        self.by_subject = RateLimiter(s.api_rate_per_subject, s.api_burst_per_subject)
        self.heavy = ConcurrencyCap(s.api_heavy_concurrency)

    async def handle(self, view: View, request: Request, route: Route,
                     match_info: Mapping[str, str]) -> Response:
        request_id = uuid.uuid4().hex
        started = time.perf_counter()
        principal: Principal | None = None
        call: Call | None = None
        target = ",".join(f"user_key={self.pseudonymise(v)}" if k in route.pseudonymised else f"{k}={v}"
                          for k, v in match_info.items()) or None
        headers = {"X-Request-Id": request_id}
        http = cast(web.Request, request)  # the driver is aiohttp's
        try:
            _throttle(self.by_address, f"address:{http.remote}", "calls from this address")
            if not route.stream_body:
                self._check_declared_size(http)
            principal = self.verifier.verify(request.headers.get("Authorization"))
            _throttle(self.by_subject, principal.subject, "calls for this token subject")
            if not principal.may(route.permission):
                raise Forbidden(f"this call needs the {route.permission} permission")
            call = Call(principal, _validate(route.path_model, dict(match_info), "path"),
                        _validate(route.query_model, _query(http, route.repeatable), "query"),
                        http if route.stream_body else await self._body(http, route.body_model),
                        request_id, target)
            if route.heavy:
                call.release = self.heavy.try_acquire()
                if call.release is None:
                    raise TooManyRequests(f"at most {self.heavy.limit} analyses, redrives and runs at once",
                                          retry_after=1)
            try:
                result = await route.handler(self, call)
            finally:
                if call.release is not None:
                    call.release()
            reply = result if isinstance(result, Reply) else Reply(result)
            status, payload, outcome = reply.status or route.status, reply.body, "ok"
            content_type = reply.content_type or route.content_type
            headers.update(reply.headers or {})
        except Exception as exc:  # noqa: BLE001 - every failure becomes a safe answer
            error = to_api_error(exc)
            if not isinstance(exc, ApiError) and error.status >= 500:
                log.error("%s %s failed (request_id=%s)", route.method, route.template, request_id,
                          exc_info=exc)
            status, payload, outcome = error.status, error.body(request_id), error.outcome
            content_type = "application/json"
            headers.update(error.headers)
        if call is not None:
            target = call.target
        # Every answer is audited, reads of the API's own description included (issue 14).
        if not await self.audit.record(
                principal=principal, action=route.name, target=target, outcome=outcome,
                status=status, request_id=request_id):
            headers["X-Audit"] = "failed"
        self.metrics.api_requests.labels(route.template, str(status)).inc()
        self.metrics.api_latency.labels(route.template).observe(time.perf_counter() - started)
        return view.bytes(orjson.dumps(payload, default=_json_default, option=orjson.OPT_NON_STR_KEYS),
                          content_type=content_type, status=status, headers=headers)

    def _check_declared_size(self, request: web.Request) -> None:
        declared = request.content_length
        if declared is not None and declared > self.settings.api_max_body_bytes:
            raise PayloadTooLarge(f"request body over {self.settings.api_max_body_bytes} bytes")

    async def _body(self, request: web.Request, model: type[pydantic.BaseModel] | None) -> Any:
        limit = self.settings.api_max_body_bytes
        data = bytearray()
        while len(data) <= limit:
            chunk = await request.content.read(limit + 1 - len(data))
            if not chunk:
                break
            data += chunk
        if len(data) > limit:
            raise PayloadTooLarge(f"request body over {limit} bytes")
        if model is None:
            if data.strip():
                raise InvalidInput("this call takes no body", fields=[
                    {"loc": ["body"], "msg": "no body expected", "type": "extra_forbidden"}])
            return None
        try:
            return model.model_validate_json(bytes(data) if data.strip() else b"{}")
        except pydantic.ValidationError as exc:
            raise InvalidInput("request validation failed",
                               fields=validation_fields(exc, "body")) from None


def _throttle(limiter: RateLimiter, key: str, what: str) -> None:
    wait = limiter.acquire(key)
    if wait:
        raise TooManyRequests(f"too many {what}, retry later", retry_after=wait)


def _query(request: web.Request, repeatable: frozenset[str] = frozenset()) -> dict[str, Any]:
    query = request.query
    repeated = sorted({k for k in query if len(query.getall(k)) > 1} - repeatable)
    if repeated:
        raise InvalidInput("query parameters may not repeat", fields=[
            {"loc": ["query", k], "msg": "repeated parameter", "type": "value_error"} for k in repeated])
    return {k: query.getall(k) if k in repeatable else query[k] for k in query}


def _validate(model: type[pydantic.BaseModel] | None, data: dict[str, Any], where: str) -> Any:
    if model is None:
        if data:
            raise InvalidInput(f"this call takes no {where} parameters", fields=[
                {"loc": [where, k], "msg": "unknown parameter", "type": "extra_forbidden"} for k in data])
        return None
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise InvalidInput("request validation failed", fields=validation_fields(exc, where)) from None


def _json_default(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)
