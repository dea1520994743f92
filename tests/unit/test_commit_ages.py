"""Ages of the last commit: one monotonic clock at both ends, read when asked, never negative."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from aiokafka import TopicPartition

from streams.ages import CommitAges
from web.status import partitions


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self, at: float = 100.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_age_is_the_time_since_the_mark_on_the_same_clock() -> None:
    clock = Ticks()
    ages = CommitAges(clock)
    assert ages.age_s(("raw", 0)) is None
    ages.mark(("raw", 0))
    clock.at += 2.5
    assert ages.age_s(("raw", 0)) == 2.5
    ages.mark(("raw", 0))  # a newer commit restarts the age
    assert ages.age_s(("raw", 0)) == 0.0
    ages.forget(("raw", 0))
    assert ages.age_s(("raw", 0)) is None


class CommitDuringAwait:
    """A consumer whose end_offsets() await lets a commit land (what made ages negative)."""

    def __init__(self, ingest: SimpleNamespace, clock: Ticks) -> None:
        self.ingest, self.clock = ingest, clock

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("raw", 0)}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.clock.at += 0.3
        # the worker commits while the status is being gathered, 0.3 s after "now"
        self.ingest.commit_ages.mark(("raw", 0))
        self.ingest.last_commit_at[("raw", 0)] += timedelta(seconds=0.3)
        self.clock.at += 0.1
        return {tp: 10 for tp in tps}

    def highwater(self, tp: TopicPartition) -> int:
        return 10


async def test_a_commit_landing_while_the_status_is_gathered_has_a_small_positive_age() -> None:
    clock = Ticks()
    ages = CommitAges(clock)
    ages.mark(("raw", 0))
    wall = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    ingest = SimpleNamespace(consumer=None, committed_offsets={("raw", 0): 10},
                             last_commit_at={("raw", 0): wall}, commit_ages=ages)
    ingest.consumer = CommitDuringAwait(ingest, clock)
    [row] = await partitions(ingest, now=wall, started_at=wall, stall_after_s=60)
    assert row["last_commit_age_s"] == 0.1  # not -0.3: "now" is read after the commit
    assert row["stalled"] is False
