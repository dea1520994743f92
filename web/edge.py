"""What the API answers before (or instead of) a route: the HTTP edge under /data-pipeline/.

- Unknown paths (404) and methods (405: OPTIONS, PATCH, TRACE…) under ``/data-pipeline/``
  answer the API's JSON error with an ``X-Request-Id``, an audit row and the metrics, like
  any route (the router refuses them before a view runs, so a middleware catches them).
- Requests the HTTP parser refuses (a header line or field over
  ``HEALTHMATE_API_MAX_HEADER_BYTES``: 431; anything else malformed: 400) and an ``Expect``
  other than ``100-continue`` (417) answer JSON too, audited as ``http.bad_request``, and never
  echo the request (aiohttp's own answer quotes the start of the offending line, e.g. a
  bearer token, or the ``Expect`` value).
- Every answer of the server carries the security headers below and no ``Server`` header
  (:class:`web.guarded.GuardedRunner` drops it).

Audit targets of unmatched paths are sanitised by the audit trail; a path segment after
``/subjects/`` is replaced by its pseudonym first (it may be a user id).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote

import orjson
from aiohttp import web

from web.api import API_PREFIX
from web.errors import ApiError, MethodNotAllowed, NotFound, TooManyRequests
from web.guarded import BareResponse, parser_refusal

if TYPE_CHECKING:
    from web.api import Api
    from web.auth import Principal

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNMATCHED_ROUTE = API_PREFIX + "/{unmatched}"  # the metrics label: bounded, whatever the path
_SUBJECT_SEGMENT = re.compile(r"(/subjects/)([^/]+)")


class Edge:
    """Built by :func:`web.views.register_views` with the :class:`web.api.Api`."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def api_edge(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path != API_PREFIX and not request.path.startswith(API_PREFIX + "/"):
                return await handler(request)
            try:
                return await handler(request)
            except web.HTTPNotFound:
                return await self._unmatched(request, NotFound("no such API path"))
            except web.HTTPMethodNotAllowed as exc:
                allowed = ", ".join(sorted(exc.allowed_methods))
                return await self._unmatched(request, MethodNotAllowed(
                    f"{request.method[:16]!r} is not allowed here", headers={"Allow": allowed}))

        return api_edge

    async def _unmatched(self, request: web.Request, error: ApiError) -> web.Response:
        wait = self.api.by_address.acquire(f"address:{request.remote}")
        if wait:
            error = TooManyRequests("too many calls from this address, retry later", retry_after=wait)
        principal = self._caller(request)
        return await self.answer(error, action=f"http.{error.code}", principal=principal,
                                 target=f"{request.method} {self._shown_path(request.path)}")

    def _caller(self, request: web.Request) -> Principal | None:
        try:
            return self.api.verifier.verify(request.headers.get("Authorization"))
        except Exception:  # noqa: BLE001 - the call fails anyway; the caller is just unknown
            return None

    def _shown_path(self, path: str) -> str:
        return _SUBJECT_SEGMENT.sub(lambda m: m[1] + self.api.pseudonymise(unquote(m[2])), path)

    async def bad_request(self, exc: BaseException) -> web.Response:
        """The answer to a request refused before any route (see :mod:`web.guarded`)."""
        log.info("refused a malformed HTTP request: %s", type(exc).__name__)  # never the request itself
        error = parser_refusal(exc)
        response = await self.answer(error, action="http.bad_request", principal=None, target=None,
                                     response_class=BareResponse)
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        response.force_close()
        return response

    def header_timed_out(self) -> None:
        """A connection closed because its request head did not arrive in time (never answered)."""
        log.info("closed a connection whose request head was incomplete after %gs",
                 self.api.settings.api_header_timeout_s)

    async def answer(self, error: ApiError, *, action: str, principal: Principal | None, target: str | None,
                     response_class: type[web.Response] = web.Response) -> web.Response:
        request_id = uuid.uuid4().hex
        headers = {"X-Request-Id": request_id, **error.headers}
        if not await self.api.audit.record(principal=principal, action=action, target=target,
                                           outcome=error.outcome, status=error.status, request_id=request_id):
            headers["X-Audit"] = "failed"
        self.api.metrics.api_requests.labels(UNMATCHED_ROUTE, str(error.status)).inc()
        return response_class(body=orjson.dumps(error.body(request_id)), status=error.status,
                              content_type="application/json", headers=headers)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: on every answer of the worker's web server."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


