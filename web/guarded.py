"""An aiohttp runner whose answers to requests the HTTP parser refuses come from the application.

aiohttp answers a request it cannot parse (a header line over the limit, too many headers,
a duplicate ``Content-Length``, a bare LF…) with a plain-text page that quotes the start of
the offending line: a bearer token, a user id. :class:`GuardedRunner` hands such requests
to the coroutine it is given instead (the worker's API edge, the ingest gateway), and
:func:`parser_refusal` is the answer they share: 431 for a line or field over the limit or
too many headers, else 400; its message never quotes the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from web.errors import ApiError, BadRequest, HeadersTooLarge

#: Answers a request the parser refused, given what the parser raised.
RefusalAnswer = Callable[[BaseException], Awaitable[web.StreamResponse]]
ErrorHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def parser_refusal(exc: BaseException) -> ApiError:
    """The error for a request the HTTP parser refused with ``exc`` (never echoes it)."""
    if isinstance(exc, LineTooLong) or "Too many headers" in str(exc):
        return HeadersTooLarge("a request line or header field is too large", reason="headers_too_large")
    return BadRequest("malformed HTTP request", reason="malformed_http")


class BareResponse(web.Response):
    """A response without a ``Server`` header even where no ``on_response_prepare`` runs."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.popall(hdrs.SERVER, None)


class GuardedRequestHandler(RequestHandler):
    def _make_error_handler(self, err_info: Any) -> ErrorHandler:
        answer: RefusalAnswer = self._manager.answer_refusal  # type: ignore[union-attr]

        async def handler(request: web.BaseRequest) -> web.StreamResponse:
            return await answer(err_info.exc)

        return handler


class GuardedServer(Server):
    answer_refusal: RefusalAnswer

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """``web.AppRunner`` whose parse errors are answered by ``answer_refusal``."""

    def __init__(self, app: web.Application, answer_refusal: RefusalAnswer, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.answer_refusal = answer_refusal

    async def _make_server(self) -> Server:
        plain = await super()._make_server()
        server = GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                               handler_cancellation=plain.handler_cancellation, loop=asyncio.get_event_loop(),
                               **plain._kwargs)
        server.answer_refusal = self.answer_refusal
        return server
