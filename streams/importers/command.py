"""``python -m streams import PATH... --user-id ID [options]``: vendor exports to the raw topic.

Exit status: 0 when every file was read; 1 when a file could not be read (the others still
go; a one-line error names it) or a dry run's output closed (the import stops); 2 for a bad
argument or configuration (a raw topic that does not exist too); 3 when Kafka cannot be
reached or stops taking the messages (the import stops). Per file, one summary line on
stderr (``--json``: one JSON object a line); a progress bar of bytes read on a terminal,
else a progress line every 2 s.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from tqdm import tqdm

from streams.errors import ImportStopped, PublishFailed
from streams.importers.base import ImportContext
from streams.importers.formats import FORMATS
from streams.importers.packing import FileSummary

EXIT_FILE_ERROR = 1
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m streams import",
        description="Import vendor exports (Apple Health, Garmin FIT, Fitbit Takeout, Dexcom Clarity) "
                    "for one user: files, folders or .zip archives. See docs/how-to/importing.md.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="export files, folders or .zip archives")
    p.add_argument("--user-id", required=True, help="whose data this is (the message key)")
    p.add_argument("--zone", help="IANA zone of naive local times (Fitbit, Dexcom), e.g. Europe/Paris")
    p.add_argument("--format", default="auto", choices=("auto", *FORMATS),
                   help="the files' format (default: detected per file)")
    p.add_argument("--source", help="the source to publish (default: the file's own, e.g. sourceName)")
    p.add_argument("--dry-run", action="store_true", help="publish nothing; write the messages to --output")
    p.add_argument("--output", default="-", help="dry run: FILE or - for standard output (default)")
    p.add_argument("--json", action="store_true", help="one JSON summary object per file on stderr")
    p.add_argument("--salvage", action="store_true",
                   help="publish what was decoded before a FIT file's damage instead of nothing")
    return p


def context_from(opts: argparse.Namespace, p: argparse.ArgumentParser) -> ImportContext:
    """The reader context, or exit 2 with the reason."""
    if not opts.user_id.strip() or len(opts.user_id) > 256 or _CONTROL.search(opts.user_id):
        p.error("--user-id must be 1-256 characters without control characters")
    if opts.source is not None and (not opts.source.strip() or len(opts.source) > 64
                                    or _CONTROL.search(opts.source)):
        p.error("--source must be 1-64 characters without control characters")
    zone = None
    if opts.zone is not None:
        try:
            zone = ZoneInfo(opts.zone)
        except (ZoneInfoNotFoundError, ValueError):
            p.error(f"--zone {opts.zone!r} is not an IANA time zone (e.g. Europe/Paris)")
    if opts.output != "-" and not opts.dry_run:
        p.error("--output is for --dry-run (without it the messages go to the raw topic)")
    return ImportContext(user_id=opts.user_id, zone=zone, source=opts.source, salvage=opts.salvage)


def main(args: list[str]) -> int:
    p = parser()
    opts = p.parse_args(args)
    ctx = context_from(opts, p)
    from streams.cli import EXIT_UNREACHABLE, fail, load_settings, preflight, run
    from streams.importers.run import ByteCounter, KafkaSink, LinesSink, import_paths, total_bytes
    from streams.logs import configure_tool_logging
    from streams.progress import Progress

    settings = load_settings()
    configure_tool_logging(settings.log_format, settings.log_level)
    paths = [Path(p) for p in opts.paths]
    out: IO[bytes] | None = None
    if opts.dry_run:
        try:
            out = sys.stdout.buffer if opts.output == "-" else open(opts.output, "wb")  # noqa: SIM115
        except OSError as exc:
            p.error(f"--output {opts.output!r} cannot be written: {type(exc).__name__}")
    else:
        preflight(settings, warehouse=False)
    total = total_bytes(paths)

    def report(summary: FileSummary) -> None:
        text = orjson.dumps(summary.as_json()).decode() if opts.json else f"import: {summary.line()}"
        tqdm.write(text, file=sys.stderr)

    async def go() -> list[FileSummary]:
        sink: KafkaSink | LinesSink
        if out is not None:
            sink = LinesSink(out)
        else:
            sink = KafkaSink(settings)
            await sink.start()
        # once the sink is ready: a refused start is the only line, no progress around it
        bar = Progress("import", total=total, unit="B")
        counter = ByteCounter(lambda done: bar.update(min(done, total)))  # heads are read twice
        try:
            return await import_paths(paths, ctx, settings, sink, fmt=opts.format, counter=counter,
                                      report=report)
        finally:
            try:
                await sink.close()
            finally:
                bar.close()  # before the line of what stopped the import, if anything did

    stopped: ImportStopped | None = None
    try:
        summaries = run(go())
    except ImportStopped as exc:
        stopped = exc
    finally:
        if out is not None and out is not sys.stdout.buffer:
            try:
                out.close()
            except OSError:
                if stopped is None:  # else: already reported as what stopped the import
                    raise
    if stopped is not None:
        if out is sys.stdout.buffer:
            _discard_stdout()
        fail(str(stopped), EXIT_UNREACHABLE if isinstance(stopped, PublishFailed) else EXIT_FILE_ERROR)
    return EXIT_FILE_ERROR if any(s.error for s in summaries) else 0


def _discard_stdout() -> None:
    """Point standard output at /dev/null once it is broken, so the interpreter's last flush
    at exit does not print a second error."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
