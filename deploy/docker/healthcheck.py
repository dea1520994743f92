#!/usr/bin/env python3
"""Container health probe: exit 0 when the worker's ``GET /health`` answers 200, else 1.

Used by the Dockerfile HEALTHCHECK and by docker-compose.yml (python:3.11-slim has no curl).
Standard library only. Reads the port from ``HEALTHMATE_WEB_PORT`` (default 6066), or from
the variable named by the first argument (the ingest gateway's container passes
``HEALTHMATE_GATEWAY_PORT``, default 6070), and always probes the loopback address, which
works whatever the service binds (0.0.0.0 in the image). Prints one line: the HTTP status
or the connection error.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORTS = {"HEALTHMATE_WEB_PORT": "6066", "HEALTHMATE_GATEWAY_PORT": "6070"}


def main(argv: list[str]) -> int:
    variable = argv[0] if argv else "HEALTHMATE_WEB_PORT"
    port = os.environ.get(variable, DEFAULT_PORTS.get(variable, "6066"))
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 - fixed local URL
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"{url}: {exc}")
        return 1
    print(f"{url}: HTTP {status}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
