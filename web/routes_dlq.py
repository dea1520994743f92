"""Dead letters: the summary from the warehouse, and redrive through the raw topic."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from web import queries, responses
from web.api import Api, Call, Route
from web.auth import Permission
from web.models import RedriveBody
from web.redrive import redrive


async def summary(api: Api, call: Call) -> dict[str, Any]:
    """Counts by reason and by (reason, metric), from the ``dead_letters`` table."""
    rows = await queries.dead_letter_summary(api.warehouse.pool, api.settings.warehouse_schema)
    by_reason: dict[str, int] = {}
    for row in rows:
        by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + row["n"]
    return {
        "topic": api.settings.dlq_topic,
        "total": sum(by_reason.values()),
        "by_reason": by_reason,
        "by_reason_and_metric": [
            {"reason": r["reason"], "metric": r["metric"], "count": r["n"],
             "first_at": r["first_at"], "last_at": r["last_at"]} for r in rows],
    }


async def redrive_letters(api: Api, call: Call) -> dict[str, Any]:
    body: RedriveBody = call.body
    selector = [f"reason={body.reason}" if body.reason else None,
                f"partition={body.partition}" if body.partition is not None else None,
                f"offsets={body.from_offset}..{body.to_offset}" if body.partition is not None else None,
                "dry_run" if body.dry_run else None]
    call.target = " ".join(s for s in selector if s)
    report = await redrive(api.settings, body, call.request_id)
    result = asdict(report)
    # A dry run publishes nothing: it reports what it would re-feed, and refed stays 0.
    result["would_refeed"] = report.refed_from_source + report.refed_from_dlq
    result["refed"] = sum(len(offsets) for offsets in report.raw_offsets.values())
    result["dry_run"] = body.dry_run
    result["raw_topic"] = api.settings.raw_topic
    return result


ROUTES = [
    Route("GET", "/dlq", "dlq.summary", "Dead letters by reason and by reason and metric.",
          summary, Permission.READ_DLQ, tag="dlq", response=responses.DeadLetterSummary),
    Route("POST", "/dlq/redrive", "dlq.redrive",
          "Re-feed chosen dead letters (by reason and/or source offset range) to the raw topic.",
          redrive_letters, Permission.REDRIVE, body_model=RedriveBody, tag="dlq",
          heavy=True, response=responses.RedriveResult),
]
