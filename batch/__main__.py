"""Command line: ``python -m batch run-job JOB_ID`` and
``python -m batch replay [--engine spark [--master URL]] TOPIC START [END]``.

``replay --topic T --from X [--to Y]`` is the same as ``replay T X [Y]``. ``--engine spark`` runs
the replay on Apache Spark (``--master`` or ``HEALTHMATE_SPARK_MASTER``, default ``local[*]``)
and stores exactly what the worker path (the default engine) stores.

Positions are ``P:O[,P:O...]`` partition offsets or ISO-8601 times with an offset or ``Z``.
``--to`` is exclusive (the offset after the last one replayed), like Kafka end offsets; the
API's redrive ``to_offset`` is inclusive. Progress goes to stderr (a bar on a terminal, a
line every few seconds otherwise); the final run record is printed as JSON on stdout. Logs
follow ``HEALTHMATE_LOG_FORMAT``. Exit status: 0 when the run succeeded, 1 when it failed
or timed out, 2 for bad usage or configuration, 3 when Kafka or PostgreSQL is unreachable.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

import orjson
from pydantic import ValidationError

from batch.errors import BatchError
from batch.replay import replay_range_of


def _interval(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        raise SystemExit(f"healthmate: {text!r} is not an ISO-8601 time") from None


def _positions(parser: argparse.ArgumentParser, opts: argparse.Namespace) -> None:
    """TOPIC START [END] or --topic/--from/--to, not both."""
    if opts.range:
        if opts.topic or opts.start or opts.end:
            parser.error("give TOPIC START [END] or --topic/--from/--to, not both")
        if len(opts.range) not in (2, 3):
            parser.error("give TOPIC START [END]")
        opts.topic, opts.start = opts.range[:2]
        opts.end = opts.range[2] if len(opts.range) == 3 else None
    elif not (opts.topic and opts.start):
        parser.error("give TOPIC START [END] (or --topic and --from)")
    if opts.master and opts.engine != "spark":
        parser.error("--master goes with --engine spark")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batch", description="HealthMate batch jobs and replays.")
    sub = parser.add_subparsers(dest="command", required=True)
    job = sub.add_parser("run-job", help="run a registered ETL job now")
    job.add_argument("job_id")
    job.add_argument("--start", help="interval start (ISO-8601); default: from the schedule")
    job.add_argument("--end", help="interval end (ISO-8601)")
    rep = sub.add_parser("replay", help="replay a topic range through the pipeline, idempotently")
    rep.add_argument("range", nargs="*", metavar="TOPIC START END",
                     help="the topic and the range (or give --topic, --from, --to)")
    rep.add_argument("--topic")
    rep.add_argument("--from", dest="start", help="P:O[,P:O] or an ISO-8601 time")
    rep.add_argument("--to", dest="end", help="P:O[,P:O] (exclusive: the next offset after the last one) or "
                     "an ISO-8601 time (exclusive); default: the current end")
    rep.add_argument("--publish-dlq", action="store_true", help="send bad records to the DLQ again")
    rep.add_argument("--engine", choices=("worker", "spark"), default="worker",
                     help="worker (one process, default) or spark (Apache Spark, see --master)")
    rep.add_argument("--master", help="Spark master for --engine spark: local[N], spark://HOST:PORT, "
                     "k8s://https://HOST:PORT (default HEALTHMATE_SPARK_MASTER)")
    opts = parser.parse_args(argv)
    if opts.command == "replay":
        _positions(rep, opts)

    import batch.api as api
    from streams.cli import fail, load_settings, one_line, preflight, run
    from streams.logs import configure_tool_logging
    from streams.progress import Progress

    settings = load_settings()
    if opts.command == "replay" and opts.master:
        settings = settings.model_copy(update={"spark_master": opts.master})
    # Progress is the news on a terminal: info lines only when asked for with debug.
    level = "warn" if settings.log_level == "info" else settings.log_level
    configure_tool_logging(settings.log_format, level)
    if opts.command == "run-job":
        start, end = _interval(opts.start), _interval(opts.end)
        if (start is None) != (end is None):
            parser.error("give both --start and --end, or neither")
    else:
        try:
            replay_range_of(opts.topic, opts.start, opts.end, engine=opts.engine)
        except (BatchError, ValidationError, ValueError) as exc:
            fail(f"bad replay range: {one_line(exc)}")
    preflight(settings)
    label = opts.command if opts.command == "replay" else f"run-job {opts.job_id}"
    bar = Progress(label, total=100, unit="%")
    try:
        if opts.command == "run-job":
            record = run(api.run_job(settings, opts.job_id, trigger="cli", progress=bar.update,
                                     interval=(start, end) if start and end else None))
        else:
            record = run(api.backfill(settings, opts.topic, opts.start, opts.end, engine=opts.engine,
                                      publish_dead_letters=opts.publish_dlq, progress=bar.update))
    except (BatchError, ValidationError, ValueError) as exc:
        bar.close()
        fail(one_line(exc))
    bar.close()
    sys.stdout.write(orjson.dumps(record.to_json_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0 if record.status == "succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main())
