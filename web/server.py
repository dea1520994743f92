"""The worker's HTTP server: Faust's aiohttp driver with the API edge wired in.

Faust builds its aiohttp ``Application`` and ``AppRunner`` itself; :class:`HardenedWeb`
(selected with ``web="healthmate://"``) adds :mod:`web.edge`: its middleware and security
headers, parser limits of ``HEALTHMATE_API_MAX_HEADER_BYTES`` per line and field, and a
request handler whose parse-error answers come from :meth:`web.edge.Edge.bad_request`
instead of aiohttp's plain-text page (which quotes the start of the refused line).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server
from faust.web.drivers import DRIVERS
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from web.edge import Edge, security_headers

DRIVER = "healthmate"
DRIVERS.aliases.setdefault(DRIVER, "web.server:HardenedWeb")


ErrorHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class GuardedRequestHandler(RequestHandler):
    def _make_error_handler(self, err_info: Any) -> ErrorHandler:
        edge: Edge = self._manager.edge  # type: ignore[union-attr]

        async def handler(request: web.BaseRequest) -> web.StreamResponse:
            return await edge.bad_request(err_info.exc)

        return handler


class GuardedServer(Server):
    edge: Edge

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    def __init__(self, app: web.Application, edge: Edge, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.edge = edge

    async def _make_server(self) -> Server:
        plain = await super()._make_server()
        server = GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                               handler_cancellation=plain.handler_cancellation, loop=asyncio.get_event_loop(),
                               **plain._kwargs)
        server.edge = self.edge
        return server


class HardenedWeb(AiohttpWeb):
    def harden(self, edge: Edge, *, max_header_bytes: int) -> None:
        """Wire ``edge`` in; call before the server starts (the app factory does)."""
        self.web_app.middlewares.append(edge.middleware())
        self.web_app.on_response_prepare.append(security_headers)
        self._runner = GuardedRunner(self.web_app, edge, access_log=None, max_line_size=max_header_bytes,
                                     max_field_size=max_header_bytes)
