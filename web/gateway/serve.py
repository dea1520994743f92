"""Run the gateway until SIGTERM/SIGINT, then drain: every request in flight is finished.

On the signal: ``/health`` turns 503 (``accepting: false``) and the listener closes (no new
connection), then the process waits, up to ``HEALTHMATE_GATEWAY_SHUTDOWN_GRACE_S``, until
no ingest request is running, answers still arriving on kept-alive connections with
``Connection: close``, and only then closes the connections and stops the producer (which
flushes). A request whose body is still arriving is read to its end: aiohttp's own shutdown
would stop reading connections at once and cut such a request.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import time

from aiohttp import web

from streams.config import Settings
from streams.heap import settle_heap
from web.gateway.app import GATEWAY, create_gateway
from web.guarded import GuardedRunner

log = logging.getLogger("healthmate.gateway")


def serve(settings: Settings) -> None:
    asyncio.run(_serve(settings))


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """HTTPS (TLS 1.2 or later) when a certificate and key are configured, else None (HTTP)."""
    if settings.gateway_tls_cert_file is None or settings.gateway_tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.gateway_tls_cert_file, settings.gateway_tls_key_file)
    return context


async def _serve(settings: Settings) -> None:
    app = create_gateway(settings)
    gateway = app[GATEWAY]
    # auto_decompress off: the body's gzip is decoded under a cap (web.gateway.body.decompress);
    # a request the parser refuses is answered by the gateway (JSON, never quoting the request);
    # a connection is closed when it sends no request (keep-alive) or too slow a head (slowloris).
    runner = GuardedRunner(app, gateway.refused_request, access_log=None, auto_decompress=False,
                           header_timeout_s=settings.gateway_header_timeout_s,
                           on_header_timeout=gateway.header_timed_out,
                           keepalive_timeout=settings.gateway_keepalive_timeout_s,
                           shutdown_timeout=settings.gateway_shutdown_grace_s,
                           max_line_size=settings.api_max_header_bytes,
                           max_field_size=settings.api_max_header_bytes)
    await runner.setup()
    # gc.freeze() and rarer young collections: p99 at half load 38-55 ms -> 17-23 ms in make bench.
    settle_heap()
    site = web.TCPSite(runner, settings.gateway_host, settings.gateway_port,
                       ssl_context=tls_context(settings))
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        gateway.draining = True
        await site.stop()
        deadline = time.monotonic() + settings.gateway_shutdown_grace_s
        while gateway.active and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if gateway.active:
            log.warning("%d requests still running after the shutdown grace; cut", gateway.active)
    finally:
        await runner.cleanup()
