"""Data quality: on-demand analysis, and the in-stream window levels shown in the status."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from streams.domain.quality_windows import COLLECTING
from streams.quality.analysis import (
    MAX_SAMPLE_SIZE,
    InvalidAnalysisRequest,
    ReportNotFound,
    analyze_quality,
    get_report,
)
from web import responses
from web.api import Api, Call, Route
from web.auth import Permission
from web.errors import InvalidInput, NotFound, register_domain_error
from web.models import NoBody, Strict

register_domain_error(InvalidAnalysisRequest, InvalidInput,
                      message="data_type is not a catalogue metric or health_metrics",
                      loc=("query", "data_type"))
register_domain_error(ReportNotFound, NotFound, message="no quality report with this id")


class AnalyzeQuery(Strict):
    data_type: str = Field(min_length=1, max_length=64,
                           description="A catalogue metric (heart_rate), or health_metrics for every metric.")
    sample_size: int = Field(1000, ge=1, le=MAX_SAMPLE_SIZE, description="Most recent readings analysed.")


async def analyze(api: Api, call: Call) -> dict[str, Any]:
    """The report of ``streams.quality.analysis.analyze_quality`` (also stored in quality_reports)."""
    query: AnalyzeQuery = call.query
    call.target = f"data_type={query.data_type} sample_size={query.sample_size}"
    quality = api.services.quality
    config = quality.config if quality is not None else None
    return await analyze_quality(api.warehouse, api.settings.warehouse_schema, query.data_type,
                                 query.sample_size, config=config, clock=api.clock)


class ReportPath(Strict):
    report_id: uuid.UUID


async def report(api: Api, call: Call) -> dict[str, Any]:
    """A stored report, exactly as the analysis answered it."""
    call.target = f"report_id={call.path.report_id}"
    return await get_report(api.warehouse, api.settings.warehouse_schema, str(call.path.report_id))


async def current_levels(api: Api) -> dict[str, Any] | None:
    """Per metric, the open windows of the smallest size (latest start, one per source) and
    the level of its worst judged source: ``collecting`` (score null) while no source's
    window holds ``HEALTHMATE_QUALITY_MIN_RECORDS`` records. None when in-stream quality is
    disabled."""
    quality = api.services.quality
    if quality is None:
        return None
    windows = quality.open_windows()
    if not windows:
        return {}
    smallest = min(w["window_size_s"] for w in windows)
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for w in windows:
        if w["window_size_s"] != smallest:
            continue
        key = (w["metric"], w["source"])
        if key not in latest or w["window_start"] > latest[key]["window_start"]:
            latest[key] = w
    levels: dict[str, Any] = {}
    for (metric, _), w in sorted(latest.items()):
        entry = levels.setdefault(metric, {"window_size_s": smallest, "sources": []})
        entry["sources"].append(w)
    for entry in levels.values():
        # Judged by its worst judged source; "collecting" while no source holds enough records.
        judged = [w for w in entry["sources"] if not w["collecting"]]
        worst = min(judged, key=lambda w: w["overall_score"], default=None)
        entry["quality_level"] = COLLECTING if worst is None else worst["quality_level"]
        entry["overall_score"] = None if worst is None else worst["overall_score"]
        entry["below_threshold"] = any(w["below_threshold"] for w in entry["sources"])
        entry["records"] = sum(w["records"] for w in entry["sources"])
        entry["min_records"] = quality.min_records
    return levels


ROUTES = [
    Route("POST", "/data-quality/analyze", "quality.analyze",
          "Analyse the quality of the latest readings of one metric; the report is stored.",
          analyze, Permission.ANALYZE_QUALITY, query_model=AnalyzeQuery, body_model=NoBody,
          tag="quality", heavy=True, response=responses.QualityReport),
    Route("GET", "/data-quality/reports/{report_id}", "quality.report", "A stored quality report.",
          report, Permission.ANALYZE_QUALITY, path_model=ReportPath, tag="quality",
          response=responses.QualityReport, errors=(404,)),
]
