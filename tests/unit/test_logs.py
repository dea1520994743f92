"""JSON log lines, correlated by the bound job run id."""

from __future__ import annotations

import logging

import orjson

from streams.logs import JsonFormatter, bind_run_id, logging_config


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("batch.jobs", logging.WARNING, __file__, 1, message, args, None)


def test_json_line_has_level_logger_and_message():
    line = orjson.loads(JsonFormatter().format(record("loaded %d rows", 12)))
    assert (line["level"], line["logger"], line["message"]) == ("warning", "batch.jobs", "loaded 12 rows")
    assert line["ts"].endswith("+00:00") and "run_id" not in line


def test_run_id_is_attached_only_inside_the_bound_context():
    formatter = JsonFormatter()
    with bind_run_id("run-42"):
        inside = orjson.loads(formatter.format(record("step")))
    outside = orjson.loads(formatter.format(record("step")))
    assert inside["run_id"] == "run-42" and "run_id" not in outside


def test_text_format_keeps_fausts_default_and_json_maps_levels():
    assert logging_config("text", "info") is None
    assert logging_config("json", "warn")["root"]["level"] == "WARNING"
