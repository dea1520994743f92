"""The operator console: one server-rendered page at ``/data-pipeline/console``.

The page and its two static files carry no data: the script reads the API with the token
the operator pastes (kept in the tab's sessionStorage), or in dev mode with a short-lived
operator token the server renders into the page. No front-end build step: plain HTML, CSS
and JavaScript from ``web/console/``. The page has its own Content-Security-Policy: only
this origin's scripts, styles and API; no inline script, no frames, no forms posted away.
"""

from __future__ import annotations

import html
from importlib import resources

import faust
from faust.web import Request, Response, View

from streams.config import Settings
from web.api import API_PREFIX
from web.auth import mint_token

CONSOLE_PATH = f"{API_PREFIX}/console"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
DEV_TOKEN_TTL_S = 8 * 3600
STATIC = {"console.js": "text/javascript", "charts.js": "text/javascript", "cgm.js": "text/javascript",
          "console.css": "text/css"}


def _asset(name: str) -> str:
    return resources.files("web").joinpath("console", name).read_text(encoding="utf-8")


def render(settings: Settings) -> str:
    """The page for ``settings``; in dev mode with the dev operator token embedded."""
    dev_token = ""
    if settings.dev_mode and settings.api_jwt_algorithm == "HS256" and settings.api_jwt_key:
        dev_token = mint_token(settings, subject="console-dev", roles=["operator"], ttl_s=DEV_TOKEN_TTL_S)
    values = {"prefix": API_PREFIX, "app_id": settings.app_id, "raw_topic": settings.raw_topic,
              "dlq_topic": settings.dlq_topic, "dev_token": dev_token,
              "mode": "dev mode: using the dev operator token" if dev_token else "paste a token to start"}
    return _asset("console.html").format_map({k: html.escape(v) for k, v in values.items()})


def register_console(app: faust.App, settings: Settings) -> None:
    """Attach the page and its static files (called by ``register_views``)."""

    @app.page(CONSOLE_PATH)
    class Console(View):
        """The console page (no data in it; the script calls the API)."""

        async def get(self, request: Request) -> Response:
            return self.bytes(render(settings).encode(), content_type="text/html", headers=HEADERS)

    @app.page(CONSOLE_PATH + "/{asset}")
    class ConsoleAsset(View):
        """The console's script and stylesheet; anything else is 404."""

        async def get(self, request: Request, asset: str) -> Response:
            if asset not in STATIC:
                return self.json({"error": "not_found", "message": "no such console file"}, status=404,
                                 headers=HEADERS)
            return self.bytes(_asset(asset).encode(), content_type=STATIC[asset], headers=HEADERS)
