"""The status's quality levels per metric: judged by the worst judged source, ``collecting``
(no score) while no source's window holds ``HEALTHMATE_QUALITY_MIN_RECORDS`` records."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from streams.domain.quality import DimensionCounts
from streams.domain.quality_windows import window_summary
from web.routes_quality import current_levels

GOOD = DimensionCounts((1, 1, 1, 1, 1), (1, 1, 1, 1, 1), 1)
BAD = DimensionCounts((0, 0, 0, 0, 0), (1, 1, 1, 1, 1), 1)
WEIGHTS = {"completeness": 1, "validity": 1, "accuracy": 1, "consistency": 1, "timeliness": 1}


def window(source: str, counts: DimensionCounts, min_records: int) -> dict[str, Any]:
    return {"metric": "heart_rate", "source": source, "window_size_s": 60,
            "window_start": "2026-12-06T08:00:00+00:00", **window_summary(counts, WEIGHTS, 0.85, min_records)}


def api_with(windows: list[dict[str, Any]], min_records: int) -> Any:
    quality = SimpleNamespace(open_windows=lambda: windows, min_records=min_records)
    return SimpleNamespace(services=SimpleNamespace(quality=quality))


def times(counts: DimensionCounts, n: int) -> DimensionCounts:
    total = counts
    for _ in range(n - 1):
        total = total + counts
    return total


async def test_a_metric_is_collecting_until_a_source_holds_enough_records() -> None:
    levels = await current_levels(api_with([window("garmin", BAD, 5)], 5))
    assert levels is not None
    entry = levels["heart_rate"]
    assert (entry["quality_level"], entry["overall_score"]) == ("collecting", None)
    assert entry["below_threshold"] is False
    assert (entry["records"], entry["min_records"]) == (1, 5)


async def test_the_worst_judged_source_decides_and_collecting_ones_do_not() -> None:
    # polar: 1 record, collecting
    windows = [window("garmin", times(GOOD, 5), 5), window("polar", BAD, 5)]
    levels = await current_levels(api_with(windows, 5))
    assert levels is not None
    entry = levels["heart_rate"]
    assert (entry["quality_level"], entry["overall_score"]) == ("excellent", 1.0)
    assert entry["below_threshold"] is False
    windows = [window("garmin", times(GOOD, 5), 5), window("polar", times(BAD, 5), 5)]
    levels = await current_levels(api_with(windows, 5))
    assert levels is not None
    entry = levels["heart_rate"]
    assert (entry["quality_level"], entry["overall_score"]) == ("unusable", 0.0)
    assert entry["below_threshold"] is True
