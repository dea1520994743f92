"""Command line: ``python -m streams {worker|setup|produce} ...``.

- ``worker [faust worker options]``: the Faust worker (ingest service, tables, web views).
- ``setup``: create topics and apply warehouse migrations (idempotent).
- ``produce --rate N --count M --bad-ratio R --batch-size B``: synthetic wearable data.
- ``acls [--worker User:NAME] [--producer User:NAME]``: create the secure mode's Kafka ACLs
  (run with a super user's credentials).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pydantic import ValidationError

from streams.errors import ConfigurationError


def load_settings():  # type: ignore[no-untyped-def]
    from streams.config import Settings

    try:
        return Settings()
    except (ConfigurationError, ValidationError) as exc:
        sys.stderr.write(f"healthmate: configuration error: {exc}\n")
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else "worker"
    if command in ("setup", "produce", "acls"):
        _run_tool(command, argv[1:])
        return
    from streams.app import create_app

    settings = load_settings()
    app = create_app(settings)
    if command == "worker" and not any(a.startswith(("-l", "--loglevel")) for a in argv):
        argv += ["-l", settings.log_level]
    sys.argv = [sys.argv[0], *argv]
    app.main()


def _run_tool(command: str, args: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    if command == "setup":
        from streams.setup import setup_pipeline

        print(asyncio.run(setup_pipeline(settings)))
        return
    if command == "acls":
        _create_acls(settings, args)
        return
    parser = argparse.ArgumentParser(prog="python -m streams produce",
                                     description="Publish synthetic wearable readings.")
    parser.add_argument("--rate", type=float, default=50.0, help="readings per second (0 = unthrottled)")
    parser.add_argument("--count", type=int, default=1000, help="readings to publish")
    parser.add_argument("--bad-ratio", type=float, default=0.05, help="share of bad readings, 0..1")
    parser.add_argument("--batch-size", type=int, default=1, help="readings per envelope (1 = singles)")
    parser.add_argument("--seed", type=int, default=None, help="repeatable data (default: fresh each run)")
    opts = parser.parse_args(args)
    if not 0 <= opts.bad_ratio <= 1 or opts.count < 0 or opts.batch_size < 1 or opts.rate < 0:
        parser.error("need 0 <= bad-ratio <= 1, count >= 0, batch-size >= 1, rate >= 0")
    from streams.producer import produce_synthetic

    asyncio.run(produce_synthetic(settings, rate=opts.rate, count=opts.count,
                                  bad_ratio=opts.bad_ratio, batch_size=opts.batch_size, seed=opts.seed))


def _create_acls(settings, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    from streams.acls import create_acls, producer_acls, worker_acls

    parser = argparse.ArgumentParser(prog="python -m streams acls",
                                     description="Create the Kafka ACLs of the secure mode.")
    parser.add_argument("--worker", default="User:healthmate-worker", help="the worker's principal")
    parser.add_argument("--producer", default="User:healthmate-producer",
                        help="an ingestion producer's principal")
    opts = parser.parse_args(args)
    acls = worker_acls(settings, opts.worker) + producer_acls(settings, opts.producer)
    asyncio.run(create_acls(settings, acls))
    for acl in acls:
        print(f"ALLOW {acl.principal} {acl.operation.name} {acl.resource.name}:{acl.pattern.name}:{acl.name}")


if __name__ == "__main__":
    main()
