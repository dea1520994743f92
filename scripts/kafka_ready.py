"""Wait until a Kafka broker answers a real metadata request.

Used by scripts/stack.sh. Exit 0 when ready, 1 on timeout, 2 when the watched broker
process (``--pid``) exited before becoming ready.

    python scripts/kafka_ready.py --bootstrap 127.0.0.1:29092 --timeout 90 [--pid 1234] [--settings]

``--settings`` connects with the TLS/SASL options of the ``HEALTHMATE_*`` settings
(scripts/secure_stack.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _probe(bootstrap: str, attempt_timeout: float, security: dict[str, Any]) -> int:
    """One metadata round trip; returns the number of brokers in the cluster."""
    admin = AIOKafkaAdminClient(
        **security,
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(attempt_timeout * 1000),
        client_id="healthmate-kafka-ready",
    )
    try:
        await asyncio.wait_for(admin.start(), attempt_timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), attempt_timeout)
        await asyncio.wait_for(admin.list_topics(), attempt_timeout)
        return len(cluster.get("brokers", []))
    finally:
        try:
            await asyncio.wait_for(admin.close(), 5)
        except Exception:  # noqa: BLE001 - best effort on a broker that is not up yet
            pass


async def wait_ready(bootstrap: str, timeout: float, pid: int | None, quiet: bool,
                     security: dict[str, Any] | None = None) -> int:
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if not _alive(pid):
            print(f"kafka_ready: broker process {pid} exited before becoming ready", file=sys.stderr)
            return 2
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            brokers = await _probe(bootstrap, min(10.0, max(remaining, 1.0)), security or {})
            if brokers >= 1:
                if not quiet:
                    print(f"kafka_ready: {bootstrap} answered metadata ({brokers} broker(s))")
                return 0
            last_error = RuntimeError("metadata response listed no brokers")
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
        await asyncio.sleep(min(1.0, max(deadline - time.monotonic(), 0)))
    print(
        f"kafka_ready: {bootstrap} not ready after {timeout:.0f}s; last error: {last_error!r}",
        file=sys.stderr,
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--bootstrap", default=os.environ.get("HEALTHMATE_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
    )
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to keep retrying")
    parser.add_argument("--pid", type=int, default=None, help="give up early if this process exits")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--settings", action="store_true", help="TLS/SASL from the HEALTHMATE_* settings")
    args = parser.parse_args(argv)
    security: dict[str, Any] = {}
    if args.settings:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from streams.config import Settings
        from streams.connections import kafka_kwargs

        security = kafka_kwargs(Settings(dev_mode=True))
        security.pop("bootstrap_servers")
    # aiokafka logs every refused connection at ERROR while the broker boots; that is expected.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    return asyncio.run(wait_ready(args.bootstrap, args.timeout, args.pid, args.quiet, security))


if __name__ == "__main__":
    sys.exit(main())
