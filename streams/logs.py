"""Log output: plain text by default, one JSON object per line with HEALTHMATE_LOG_FORMAT=json.

Batch code binds the current job run with ``bind_run_id(run_id)``; every record logged in
that context (same task or its children) carries ``run_id``, so one run's lines can be
followed across the runner, the sink and the notifications.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson

current_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("run_id", default=None)


@contextmanager
def bind_run_id(run_id: str) -> Iterator[None]:
    token = current_run_id.set(run_id)
    try:
        yield
    finally:
        current_run_id.reset(token)


@contextmanager
def quiet(logger: str) -> Iterator[None]:
    """Only CRITICAL records of ``logger`` inside the block: for a client that logs every retry
    of a failure the caller reports once itself (aiokafka's refused connects, missing topics)."""
    target = logging.getLogger(logger)
    level = target.level
    target.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        target.setLevel(level)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "run_id"?, "error"?}``, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        run_id = current_run_id.get()
        if run_id is not None:
            entry["run_id"] = run_id
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def logging_config(log_format: str, level: str) -> dict[str, Any] | None:
    """A ``logging.config.dictConfig`` for Faust's worker, or None for its default text."""
    if log_format != "json":
        return None
    levels = {"crit": "CRITICAL", "error": "ERROR", "warn": "WARNING", "info": "INFO", "debug": "DEBUG"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stdout"}},
        "root": {"handlers": ["stdout"], "level": levels[level]},
    }


def configure_tool_logging(log_format: str, level: str) -> None:
    """Logging for the command-line tools: on stderr (stdout carries their results), one
    JSON object per line with ``HEALTHMATE_LOG_FORMAT=json``, else plain text."""
    levels = {"crit": "CRITICAL", "error": "ERROR", "warn": "WARNING", "info": "INFO", "debug": "DEBUG"}
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(levels[level])
