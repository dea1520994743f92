"""Command line: ``python -m streams {worker|setup|produce} ...`` (``--help`` lists them).

- ``worker [faust worker options]``: the Faust worker (ingest service, tables, web views).
- ``setup``: create topics, apply warehouse migrations, create the coming monthly
  partitions (idempotent).
- ``produce --rate N --count M --bad-ratio R --batch-size B``: synthetic wearable data.
- ``acls [--worker P] [--producer P] [--redrive P|none] [--replay P|none]``: create the
  secure mode's Kafka ACLs, redrive and replay rights to the worker's principal by default
  (run with a super user's credentials).
- ``import PATH... --user-id ID [...]``: vendor exports (Apple Health, Garmin FIT, Fitbit
  Takeout, Dexcom Clarity) to the raw topic (:mod:`streams.importers.command`).

Start-up failures are one line on stderr, exit 2 (configuration) or 3 (Kafka or
PostgreSQL unreachable); see :mod:`streams.cli`.
"""

from __future__ import annotations

import argparse
import sys

from streams.cli import load_settings, preflight, run

HELP = """usage: python -m streams COMMAND [options]

commands:
  worker [faust options]   run the pipeline worker (python -m streams worker --help: Faust's options)
  setup                    create topics, apply warehouse migrations, create the coming partitions
  produce [options]        publish synthetic wearable readings (python -m streams produce --help)
  acls [options]           create the secure mode's Kafka ACLs (python -m streams acls --help)
  import PATH... [options] import Apple Health, Garmin FIT, Fitbit, Dexcom exports (import --help)

On the local stack (Kafka and PostgreSQL on 127.0.0.1, no HEALTHMATE_PSEUDONYM_KEY) the
development configuration is used, as `make run` does. See also: python -m healthmate.
"""

def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else "worker"
    if command in ("-h", "--help", "help"):
        sys.stdout.write(HELP)
        return
    if command == "import":
        from streams.importers.command import main as import_main

        raise SystemExit(import_main(argv[1:]))
    if command in ("setup", "produce", "acls"):
        _run_tool(command, argv[1:])
        return
    if command != "worker":
        sys.stderr.write(f"healthmate: unknown command {command!r}\n{HELP}")
        raise SystemExit(2)
    from healthmate.worker import create_worker

    settings = load_settings()
    if "--help" not in argv and "-h" not in argv:
        preflight(settings)
    app = create_worker(settings)
    if not any(a.startswith(("-l", "--loglevel")) for a in argv):
        argv += ["-l", settings.log_level]
    sys.argv = [sys.argv[0], *argv]
    from streams.heap import settle_heap

    settle_heap()  # the app is built: what exists now lives as long as the process
    app.main()


def _run_tool(command: str, args: list[str]) -> None:
    if command == "setup":
        argparse.ArgumentParser(prog="python -m streams setup", description="Create topics, apply warehouse "
                                "migrations, create the coming partitions (idempotent).").parse_args(args)
        settings = _tool_settings()
        from streams.progress import Progress
        from streams.setup import setup_pipeline

        steps = Progress("setup")
        print(run(setup_pipeline(settings, step=steps.step)))
        return
    if command == "acls":
        _create_acls(args)
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
    settings = _tool_settings()
    from streams.producer import produce_synthetic
    from streams.progress import Progress

    bar = Progress("produce", total=opts.count, unit="readings")
    try:
        run(produce_synthetic(settings, rate=opts.rate, count=opts.count, bad_ratio=opts.bad_ratio,
                              batch_size=opts.batch_size, seed=opts.seed, progress=bar.update))
    except BaseException:
        bar.close(finished=False)
        raise
    bar.close()


def _tool_settings():  # type: ignore[no-untyped-def]
    from streams.logs import configure_tool_logging

    settings = load_settings()
    configure_tool_logging(settings.log_format, settings.log_level)
    preflight(settings)
    return settings


def _create_acls(args: list[str]) -> None:
    from streams.acls import create_acls, secure_mode_acls

    parser = argparse.ArgumentParser(prog="python -m streams acls",
                                     description="Create the Kafka ACLs of the secure mode.")
    parser.add_argument("--worker", default="User:healthmate-worker", help="the worker's principal")
    parser.add_argument("--producer", default="User:healthmate-producer",
                        help="an ingestion producer's principal")
    parser.add_argument("--redrive", default=None,
                        help="the principal that serves DLQ redrives (default: the worker's, which serves "
                             "the API); 'none' grants no redrive rights (redrive as a super user)")
    parser.add_argument("--replay", default=None,
                        help="the principal of replays and backfills (default: the worker's); "
                             "'none': no grant")
    opts = parser.parse_args(args)
    settings = _tool_settings()
    acls = secure_mode_acls(settings, worker=opts.worker, producer=opts.producer, redrive=opts.redrive,
                            replay=opts.replay)
    run(create_acls(settings, acls))
    for acl in acls:
        print(f"ALLOW {acl.principal} {acl.operation.name} {acl.resource.name}:{acl.pattern.name}:{acl.name}")


if __name__ == "__main__":
    main()
