"""An aiohttp runner that answers, from the application, what aiohttp would answer itself.

aiohttp answers a request it cannot parse (a header line over the limit, too many headers,
a duplicate ``Content-Length``, a bare LF…) with a plain-text page that quotes the start of
the offending line: a bearer token, a user id; and an ``Expect`` other than ``100-continue``
with a plain-text 417 that echoes the header. :class:`GuardedRunner` hands such requests to
the coroutine it is given instead (the worker's API edge, the ingest gateway), and
:func:`parser_refusal` is the answer they share: 431 for a line or field over the limit or
too many headers, 417 for the ``Expect``, else 400; its message never quotes the request.

The runner also:

- drops the ``Server`` header (``Python/aiohttp …``) of every answer;
- closes a connection whose request head (request line and headers) is still incomplete
  ``header_timeout_s`` after its first byte arrived (a slowloris holds connections open with
  heads that never end), and calls ``on_header_timeout`` (the refusal is counted; nobody can
  be answered, since nothing of the request is known). A connection that sends nothing at all
  is closed by aiohttp's own ``keepalive_timeout``, measured from its opening or from its last
  answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from web.errors import ApiError, BadRequest, ExpectationFailed, HeadersTooLarge

#: Answers a request refused before any route, given what the parser or router raised.
RefusalAnswer = Callable[[BaseException], Awaitable[web.StreamResponse]]
ErrorHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def parser_refusal(exc: BaseException) -> ApiError:
    """The error for a request refused with ``exc`` before any route (never echoes it)."""
    if isinstance(exc, web.HTTPExpectationFailed):
        return ExpectationFailed("only Expect: 100-continue is supported", reason="expectation_failed")
    if isinstance(exc, LineTooLong) or "Too many headers" in str(exc):
        return HeadersTooLarge("a request line or header field is too large", reason="headers_too_large")
    return BadRequest("malformed HTTP request", reason="malformed_http")


def drop_server_header(headers: Any) -> None:
    headers.popall(hdrs.SERVER, None)


async def no_server_header(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: no answer names the server's software and version."""
    drop_server_header(response.headers)


class BareResponse(web.Response):
    """A response without a ``Server`` header even where no ``on_response_prepare`` runs."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        drop_server_header(self.headers)


class GuardedRequestHandler(RequestHandler):
    """One connection. Besides the refusal answers, the request-head deadline: a timer armed
    when the first byte of a head arrives while the connection waits for a request, cancelled
    when the head is complete (aiohttp queues the request)."""

    _head_timer: asyncio.TimerHandle | None = None

    def _make_error_handler(self, err_info: Any) -> ErrorHandler:
        answer: RefusalAnswer = self._guard.answer_refusal

        async def handler(request: web.BaseRequest) -> web.StreamResponse:
            return await answer(err_info.exc)

        return handler

    @property
    def _guard(self) -> GuardedServer:
        return self._manager  # type: ignore[return-value]

    def _awaiting_request(self) -> bool:
        return self._waiter is not None and not self._waiter.done()

    def data_received(self, data: bytes) -> None:
        head_starts = data and self._head_timer is None and self._awaiting_request()
        super().data_received(data)
        if self._messages:  # the head is complete: its request is queued
            self._stop_head_timer()
        elif head_starts and self._manager is not None and self._guard.header_timeout_s:
            self._head_timer = self._loop.call_later(self._guard.header_timeout_s, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._manager is not None and self._awaiting_request() and not self._messages:
            if self._guard.on_header_timeout is not None:
                self._guard.on_header_timeout()
            self.force_close()

    def _process_keepalive(self) -> None:
        if self._head_timer is not None:  # a head is arriving: its own deadline decides
            self._keepalive_handle = None
            return
        super()._process_keepalive()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)


class GuardedServer(Server):
    answer_refusal: RefusalAnswer
    header_timeout_s: float | None = None
    on_header_timeout: Callable[[], None] | None = None

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """``web.AppRunner`` whose refusals before any route are answered by ``answer_refusal``,
    whose answers carry no ``Server`` header, and which closes connections whose request head
    takes longer than ``header_timeout_s`` (see the module docstring)."""

    def __init__(self, app: web.Application, answer_refusal: RefusalAnswer, *,
                 header_timeout_s: float | None = None, on_header_timeout: Callable[[], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        app.on_response_prepare.append(no_server_header)
        self.answer_refusal = answer_refusal
        self.header_timeout_s = header_timeout_s
        self.on_header_timeout = on_header_timeout

    async def _make_server(self) -> Server:
        plain = await super()._make_server()
        server = GuardedServer(self._answering_expect(plain.request_handler),
                               request_factory=plain.request_factory,
                               handler_cancellation=plain.handler_cancellation, loop=asyncio.get_event_loop(),
                               **plain._kwargs)
        server.answer_refusal = self.answer_refusal
        server.header_timeout_s = self.header_timeout_s
        server.on_header_timeout = self.on_header_timeout
        return server

    def _answering_expect(self, handle: ErrorHandler) -> ErrorHandler:
        """The application's handler, with an unsupported ``Expect`` answered by ``answer_refusal``
        (aiohttp checks it before any middleware runs)."""

        async def handler(request: web.BaseRequest) -> web.StreamResponse:
            try:
                return await handle(request)
            except web.HTTPExpectationFailed as exc:
                return await self.answer_refusal(exc)

        return handler
