"""The console's last hour per minute: buckets of the wall clock, oldest first, one hour kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from web.history import BUCKETS, PipelineHistory

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)  # a minute boundary


def test_batches_and_lag_land_in_their_minute() -> None:
    h = PipelineHistory()
    h.record_batch(T0 + timedelta(seconds=5), readings=10, dead_letters=1)
    h.record_batch(T0 + timedelta(seconds=59), readings=5, dead_letters=0)
    h.record_batch(T0 + timedelta(seconds=60), readings=7, dead_letters=2)
    h.record_lag(T0 + timedelta(seconds=10), 40)
    h.record_lag(T0 + timedelta(seconds=20), 25)  # the minute keeps its largest sample
    points = h.points(T0 + timedelta(seconds=61))
    assert len(points) == BUCKETS
    assert points[-1] == {"at": T0 + timedelta(minutes=1), "readings": 7, "dead_letters": 2, "lag": None}
    assert points[-2] == {"at": T0, "readings": 15, "dead_letters": 1, "lag": 40}
    assert points[0]["at"] == T0 - timedelta(minutes=58)
    assert all(p["readings"] == 0 and p["lag"] is None for p in points[:-2])


def test_only_the_last_hour_is_kept() -> None:
    h = PipelineHistory()
    h.record_batch(T0, readings=3, dead_letters=0)
    later = T0 + timedelta(minutes=BUCKETS)
    h.record_batch(later, readings=1, dead_letters=0)
    points = h.points(later)
    assert points[0]["at"] == T0 + timedelta(minutes=1) and sum(p["readings"] for p in points) == 1
    assert len(h._buckets) == 1, "the minute an hour back is dropped, not just hidden"
