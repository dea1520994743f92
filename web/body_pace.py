"""How slowly a request body may arrive: the gateway's ingest requests and the worker's uploads.

Two rules, after those of Apache's ``mod_reqtimeout`` (``body=20,MinRate=500``) and
ASP.NET Kestrel's ``MinRequestBodyDataRate`` (240 bytes/s after a 5 s grace):

- **idle**: no byte for ``idle_s`` seconds (a client that stalled);
- **rate**: the body as a whole must arrive at ``min_bytes_per_s`` on average, after an
  allowance of ``idle_s`` seconds: the deadline is ``start + idle_s + received / min_bytes_per_s``,
  so each byte received buys time, but one byte every few seconds (a trickle, which the idle
  rule never catches) runs out of it at about ``idle_s``.

The time a body may take grows with its size and is bounded by the size limit; no total
deadline refuses a large body on a slow but honest link. Either rule refuses the request with
:class:`~web.errors.RequestTimeout` (408; ``reason`` ``body_idle`` or ``body_too_slow``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import StreamReader

from web.errors import RequestTimeout


@dataclass(frozen=True, slots=True)
class BodyPace:
    idle_s: float
    min_bytes_per_s: float

    async def chunks(self, content: StreamReader, size: int = 1 << 20) -> AsyncIterator[bytes]:
        """The body's chunks (at most ``size`` bytes each) as they arrive; raises ``RequestTimeout``."""
        started = time.monotonic()
        received = 0
        while True:
            chunk = content.read_nowait(size)  # what already arrived needs no timer (most bodies)
            if not chunk and not content.at_eof():
                budget = started + self.idle_s + received / self.min_bytes_per_s - time.monotonic()
                try:
                    async with asyncio.timeout(min(self.idle_s, max(budget, 0.0))):
                        chunk = await content.read(size)
                except TimeoutError:
                    raise self._timeout(stalled=received == 0 or budget >= self.idle_s) from None
            if not chunk:
                return
            received += len(chunk)
            yield chunk

    def _timeout(self, *, stalled: bool) -> RequestTimeout:
        if stalled:
            return RequestTimeout(f"no body data for {self.idle_s:g} seconds; send the request again",
                                  reason="body_idle")
        return RequestTimeout(f"the body arrived slower than {self.min_bytes_per_s:g} bytes per second; "
                              "send the request again", reason="body_too_slow")
