"""The pure tumbling-window state machine; the caller's clock is the only clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.domain.quality import DimensionCounts
from streams.domain.quality_windows import (
    apply_increment,
    close_windows,
    due_windows,
    window_start,
    window_summary,
)

T0 = 1_764_158_400  # 2025-11-26T12:00:00Z, a minute and an hour boundary
ONE = DimensionCounts((1, 1, 1, 1, 1), (1, 1, 1, 1, 1), 1)
BAD = DimensionCounts((0, 0, 0, 0, 0), (0, 1, 0, 0, 0), 1)


@pytest.mark.parametrize(("at", "size", "start"), [
    (T0, 60, T0), (T0 + 59.999, 60, T0), (T0 + 60, 60, T0 + 60), (T0 - 0.001, 60, T0 - 60),
    (T0 + 3599, 3600, T0), (T0 + 7, 5, T0 + 5),
])
def test_windows_are_aligned_to_the_epoch(at, size, start):
    assert window_start(at, size) == start


def test_a_window_closes_exactly_at_end_plus_grace():
    state, late = apply_increment(None, T0 + 1, ONE, [60, 3600], "b1")
    assert late == 0 and due_windows(state, T0 + 69.999, 10) == []
    (due,) = due_windows(state, T0 + 70, 10)
    assert (due.size_s, due.start, due.end, due.counts) == (
        60, datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 60, UTC), ONE)
    closed = close_windows(state, [due])
    assert closed["closed"] == {"60": T0 + 60} and list(closed["open"]) == ["3600"]
    assert state["open"]["60"], "the input state is not modified"


def test_counts_accumulate_late_ones_are_dropped_and_redeliveries_ignored():
    state, _ = apply_increment(None, T0 + 1, ONE, [60], "b1")
    state, _ = apply_increment(state, T0 + 2, BAD, [60], "b2")
    state, late = apply_increment(state, T0 + 2, BAD, [60], "b2")
    assert late == 0 and DimensionCounts.from_dict(state["open"]["60"][str(T0)]) == ONE + BAD
    state = close_windows(state, due_windows(state, T0 + 60, 0))
    state, late = apply_increment(state, T0 + 59, ONE, [60], "b3")
    assert late == 1 and state["open"] == {}


def test_summary_marks_windows_below_threshold():
    summary = window_summary(ONE + BAD, {"completeness": 1, "validity": 1}, threshold=0.8)
    assert summary["validity"] == 0.5 and summary["overall_score"] == 0.75
    assert (summary["quality_level"], summary["below_threshold"], summary["records"]) == ("fair", True, 2)
    assert window_summary(ONE, {"validity": 1}, threshold=1.0)["below_threshold"] is False


def test_a_window_with_too_few_records_is_collecting_not_judged():
    """A few seconds into a window one bad record is not "unusable, below threshold": until
    the window holds ``min_records`` records its level is ``collecting``."""
    weights = {"completeness": 1, "validity": 1}
    early = window_summary(BAD, weights, threshold=0.85, min_records=3)
    assert early["overall_score"] == 0.0, "the score is still given"
    assert (early["quality_level"], early["below_threshold"]) == ("collecting", False)
    assert early["collecting"] is True
    two = window_summary(BAD + ONE, weights, threshold=0.85, min_records=3)
    assert two["collecting"] is True and two["quality_level"] == "collecting"
    judged = window_summary(BAD + ONE + ONE, weights, threshold=0.85, min_records=3)
    assert (judged["quality_level"], judged["below_threshold"], judged["collecting"]) == ("fair", True, False)
    assert judged["records"] == 3


def test_the_default_minimum_is_a_documented_setting():
    from streams.config import Settings

    field = Settings.model_fields["quality_min_records"]
    assert field.default == 20 and "collecting" in (field.description or "")
