"""Interval readings and descriptive statistics in the private forms (single and envelope)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from streams.domain import normalise_reading, process_message
from streams.errors import Rejected, RejectReason


def test_an_interval_with_a_statistic_is_stored(reading, ctx, rules) -> None:
    r = normalise_reading(
        reading(
            timestamp="2024-05-01T00:00:00+02:00",
            timestamp_end="2024-05-01T10:00:00Z",
            statistic="minimum",
            value=48,
        ),
        ctx,
        rules,
    )
    assert r.measured_at == datetime(2024, 4, 30, 22, tzinfo=UTC)
    assert r.measured_until == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert r.statistic == "minimum" and r.quality_flags == ()


def test_an_instant_is_a_raw_sample(reading, ctx, rules) -> None:
    r = normalise_reading(reading(), ctx, rules)
    assert r.measured_until is None and r.statistic is None


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"timestamp_end": "2024-05-01T11:29:59Z"}, RejectReason.REVERSED_INTERVAL, "timestamp_end"),
        ({"timestamp_end": "2024-05-01T12:05:01Z"}, RejectReason.FUTURE_TIMESTAMP, "timestamp"),
        ({"timestamp_end": "2024-05-01T11:45:00"}, RejectReason.NAIVE_TIMESTAMP, "timestamp_end"),
        ({"timestamp_end": 1.5}, RejectReason.INVALID_TYPE, "timestamp_end"),
        ({"statistic": "mode"}, RejectReason.INVALID_TYPE, "statistic"),
        ({"statistic": 3}, RejectReason.INVALID_TYPE, "statistic"),
    ],
)
def test_bad_intervals_and_statistics(fields, code, field, reading, ctx, rules) -> None:
    with pytest.raises(Rejected) as info:
        normalise_reading(reading(**fields), ctx, rules)
    assert info.value.code is code and field in info.value.message


def test_late_is_judged_by_the_end_of_the_interval(reading, ctx, rules) -> None:
    old_start = "2024-04-29T00:00:00Z"
    assert "late" in normalise_reading(reading(timestamp=old_start), ctx, rules).quality_flags
    recent_end = normalise_reading(
        reading(timestamp=old_start, timestamp_end="2024-05-01T11:00:00Z"), ctx, rules
    )
    assert "late" not in recent_end.quality_flags


def test_envelope_members_may_be_intervals(envelope, ctx, rules) -> None:
    members = [
        {
            "event_id": "s-1",
            "metric": "steps",
            "value": 900,
            "unit": "steps",
            "timestamp": "2024-05-01T10:00:00Z",
            "timestamp_end": "2024-05-01T10:15:00Z",
            "statistic": "sum",
        },
        {
            "event_id": "s-2",
            "metric": "steps",
            "value": 9,
            "unit": "steps",
            "timestamp": "2024-05-01T10:15:00Z",
            "timestamp_end": "2024-05-01T10:00:00Z",
        },
    ]
    out = process_message(orjson.dumps(envelope(members)), ctx, rules)
    [stored] = out.readings
    assert (stored.event_id, stored.statistic, stored.measured_until.minute) == ("s-1", "sum", 15)
    assert [d.code for d in out.dead_letters] == [RejectReason.REVERSED_INTERVAL]
