"""The worker's HTTP server: Faust's aiohttp driver with the API edge wired in.

Faust builds its aiohttp ``Application`` and ``AppRunner`` itself; :class:`HardenedWeb`
(selected with ``web="healthmate://"``) adds :mod:`web.edge`: its middleware and security
headers, parser limits of ``HEALTHMATE_API_MAX_HEADER_BYTES`` per line and field, the
request-head and keep-alive deadlines (``HEALTHMATE_API_HEADER_TIMEOUT_S``,
``HEALTHMATE_API_KEEPALIVE_TIMEOUT_S``), and a request handler whose parse-error answers
come from :meth:`web.edge.Edge.bad_request` instead of aiohttp's plain-text page (which
quotes the start of the refused line): :class:`web.guarded.GuardedRunner`.
"""

from __future__ import annotations

from faust.web.drivers import DRIVERS
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from streams.config import Settings
from web.edge import Edge, security_headers
from web.guarded import GuardedRunner

DRIVER = "healthmate"
DRIVERS.aliases.setdefault(DRIVER, "web.server:HardenedWeb")


class HardenedWeb(AiohttpWeb):
    def harden(self, edge: Edge, settings: Settings) -> None:
        """Wire ``edge`` in; call before the server starts (the app factory does)."""
        self.web_app.middlewares.append(edge.middleware())
        self.web_app.on_response_prepare.append(security_headers)
        self._runner = GuardedRunner(self.web_app, edge.bad_request, access_log=None,
                                     max_line_size=settings.api_max_header_bytes,
                                     max_field_size=settings.api_max_header_bytes,
                                     header_timeout_s=settings.api_header_timeout_s,
                                     on_header_timeout=edge.header_timed_out,
                                     keepalive_timeout=settings.api_keepalive_timeout_s)
