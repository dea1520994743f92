"""Command line: ``python -m batch {run-job JOB_ID | replay --topic T --from X [--to Y]}``.

Positions are ``P:O[,P:O...]`` partition offsets or ISO-8601 times with an offset or ``Z``.
A progress bar is drawn on stderr; the final run record is printed as JSON on stdout. The
exit status is 0 when the run succeeded, 1 when it failed or timed out, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import datetime

import orjson
from pydantic import ValidationError

from batch.errors import BatchError


class ProgressBar:
    """``[#####-----]  50% label`` redrawn in place on a stream (stderr)."""

    def __init__(self, label: str, stream=sys.stderr, width: int = 30) -> None:  # type: ignore[no-untyped-def]
        self.label, self.stream, self.width, self.last = label, stream, width, -1

    def __call__(self, percent: int) -> None:
        if percent == self.last:
            return
        self.last = percent
        filled = self.width * percent // 100
        self.stream.write(f"\r[{'#' * filled}{'-' * (self.width - filled)}] {percent:3d}% {self.label}")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _interval(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batch", description="HealthMate batch jobs and replays.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run-job", help="run a registered ETL job now")
    run.add_argument("job_id")
    run.add_argument("--start", help="interval start (ISO-8601); default: from the schedule")
    run.add_argument("--end", help="interval end (ISO-8601)")
    rep = sub.add_parser("replay", help="replay a topic range through the pipeline, idempotently")
    rep.add_argument("--topic", required=True)
    rep.add_argument("--from", dest="start", required=True, help="P:O[,P:O] or an ISO-8601 time")
    rep.add_argument("--to", dest="end", help="P:O[,P:O] or an ISO-8601 time; default: the current end")
    rep.add_argument("--publish-dlq", action="store_true", help="send bad records to the DLQ again")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from batch import api
    from streams.__main__ import load_settings

    settings = load_settings()
    bar = ProgressBar(opts.command if opts.command == "replay" else f"run-job {opts.job_id}")
    try:
        if opts.command == "run-job":
            start, end = _interval(opts.start), _interval(opts.end)
            if (start is None) != (end is None):
                parser.error("give both --start and --end, or neither")
            record = asyncio.run(api.run_job(settings, opts.job_id, trigger="cli", progress=bar,
                                             interval=(start, end) if start and end else None))
        else:
            record = asyncio.run(api.backfill(settings, opts.topic, opts.start, opts.end,
                                              publish_dead_letters=opts.publish_dlq, progress=bar))
    except (BatchError, ValidationError, ValueError) as exc:
        bar.close()
        sys.stderr.write(f"healthmate batch: {exc}\n")
        return 2
    bar.close()
    sys.stdout.write(orjson.dumps(record.to_json_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0 if record.status == "succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main())
