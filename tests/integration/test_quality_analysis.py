"""On-demand quality analysis against the real PostgreSQL: hand-built rows, hand-computed report."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from streams.domain.validate import TRANSFORMATION_VERSION
from streams.errors import RejectReason
from streams.quality.analysis import InvalidAnalysisRequest, analyze_quality
from streams.records import DeadLetter, NormalisedReading
from streams.sink.copy_encoding import DeadLetterRow
from streams.sink.migrations import quote_ident

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
REPORT_ID = uuid.UUID("00000000-0000-4000-8000-000000000005")


def reading(i: int, **fields) -> NormalisedReading:
    doc = dict(event_id=f"q-{i}", user_key="k" * 64, device_id="dev-1", source="garmin", metric="heart_rate",
               loinc_code="8867-4", value=60.0 + i, unit="/min", original_value=60.0 + i,
               original_unit="bpm", measured_at=NOW - timedelta(minutes=i), ingested_at=NOW,
               quality_flags=(), metadata=None, kafka_topic="raw", kafka_partition=0, kafka_offset=i,
               transformation_version=TRANSFORMATION_VERSION)
    doc.update(fields)
    return NormalisedReading(**doc)


def letter(offset: int, code: str, metric: str, source: str) -> DeadLetterRow:
    return DeadLetterRow("raw", 0, offset, 0, DeadLetter(b"{}", RejectReason(code), "m", metric, source))


async def test_report_is_computed_and_persisted(pg_warehouse, pg, pg_schema):
    readings = [
        reading(1), reading(2), reading(3), reading(4),
        reading(5, device_id=None),                                        # completeness
        reading(6, value=250.0, quality_flags=("outlier",)),               # accuracy
        reading(7, measured_at=NOW - timedelta(hours=2)),                  # timeliness
        reading(8, value=70.0), reading(9, value=71.0, measured_at=NOW - timedelta(minutes=8)),  # conflict
        reading(10, value=350.0),                                          # impossible
        reading(11, metric="steps", unit="{steps}", value=10.0, original_unit="steps"),  # other metric
    ]
    letters = [letter(100, "unknown_unit", "heart_rate", "garmin"),
               letter(101, "unknown_unit", "heart_rate", "garmin"),
               letter(102, "missing_field", "heart_rate", "garmin"),
               letter(103, "outlier_dropped", "heart_rate", "garmin"),
               letter(104, "out_of_range", "steps", "fitbit")]
    await pg_warehouse.write_batch("g", readings, letters, {})

    report = await analyze_quality(pg_warehouse, pg_schema, "Heart_Rate", 100, new_id=lambda: REPORT_ID,
                                   clock=lambda: NOW)

    expected_scores = {"completeness": 9 / 11, "validity": 9 / 12, "accuracy": 8 / 10,
                       "consistency": 8 / 10, "timeliness": 9 / 10}
    assert report["dimension_scores"] == expected_scores
    assert report["overall_score"] == pytest.approx(sum(expected_scores.values()) / 5)
    assert report["quality_level"] == "fair"
    assert report["report_id"] == str(REPORT_ID)
    assert (report["data_type"], report["sample_size"]) == ("heart_rate", 10)
    assert (report["rejected"], report["dlq_share"]) == (4, 4 / 5)
    assert report["rejected_by_reason"] == {"missing_field": 1, "outlier_dropped": 1, "unknown_unit": 2}
    assert report["generated_at"] == NOW.isoformat()
    assert all("heart_rate" in t and "garmin" in t for t in report["issues"] + report["recommendations"])

    row = await pg.fetchrow(f"SELECT * FROM {quote_ident(pg_schema)}.quality_reports")
    assert row["report_id"] == REPORT_ID and row["data_type"] == "heart_rate"
    assert (row["sample_size"], row["quality_level"], row["validity"]) == (10, "fair", 0.75)
    assert row["overall_score"] == pytest.approx(report["overall_score"])
    assert orjson.loads(row["report"]) == report

    small = await analyze_quality(pg_warehouse.pool, pg_schema, "heart_rate", 3)
    assert small["sample_size"] == 3 and small["dimension_scores"]["completeness"] < 1  # r1..r3 + reject
    assert small["report_id"] != report["report_id"]
    assert await pg.fetchval(f"SELECT count(*) FROM {quote_ident(pg_schema)}.quality_reports") == 2


@pytest.mark.parametrize(("data_type", "size"), [("mood_score", 10), ("heart_rate", 0), ("steps", 10**9)])
async def test_bad_requests_are_refused(pg_warehouse, pg_schema, data_type, size):
    with pytest.raises(InvalidAnalysisRequest):
        await analyze_quality(pg_warehouse, pg_schema, data_type, size)
