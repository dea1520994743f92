"""The quality windows agent with Faust's ``agent.test_context()``; time moves only through
the injected clock (carried in each message's ``at``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import faust
import pytest
from prometheus_client import CollectorRegistry

from streams.config import Settings
from streams.domain.quality import DimensionCounts
from streams.metrics import Metrics
from streams.quality.stream import QualityStream
from streams.records import NormalisedReading

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()  # a minute and an hour boundary
KEY = "heart_rate|garmin"


def counts(passed, judged, records):
    return DimensionCounts(tuple(passed), tuple(judged), records).to_dict()


@pytest.fixture
def quality():
    app = faust.App("test-quality", store="memory://", autodiscover=False)
    settings = Settings(dev_mode=True, app_id="test-quality", quality_windows_s=[60, 3600],
                        quality_min_records=1,
                        quality_window_grace_s=5, quality_threshold=0.9)
    closed: list[tuple[str, str, int, int, DimensionCounts]] = []

    async def sink(metric, source, windows):
        closed.extend((metric, source, w.size_s, w.start_s, w.counts) for w in windows)

    stream = QualityStream(app, settings, Metrics(CollectorRegistry()),
                           clock=lambda: datetime.fromtimestamp(T0, UTC), sink=sink)
    app.finalize()
    app.conf.store = "memory://"
    stream.closed = closed  # type: ignore[attr-defined]
    return stream


async def test_windows_roll_over_with_the_injected_clock(quality):
    one = counts([1, 1, 1, 1, 0], [1, 1, 1, 1, 1], 1)
    async with quality.agent.test_context() as agent:
        await agent.put({"at": T0 + 10, "batch": "b1", "counts": one}, key=KEY)
        await agent.put({"at": T0 + 59.9, "batch": "b2", "counts": one}, key=KEY)
        await agent.put({"at": T0 + 64.9}, key=KEY)  # a tick within the grace: nothing closes
        assert quality.closed == []
        await agent.put({"at": T0 + 70, "batch": "b3", "counts": one}, key=KEY)  # next minute; closes
        assert [(c[2], c[3], c[4].records) for c in quality.closed] == [(60, int(T0), 2)]
        assert quality.closed[0][:2] == ("heart_rate", "garmin")
        assert quality.closed[0][4].passed == (2, 2, 2, 2, 0)
        # the hour window is still open and holds all three batches
        (hour,) = [w for w in quality.open_windows("heart_rate") if w["window_size_s"] == 3600]
        assert (hour["records"], hour["timeliness"], hour["completeness"]) == (3, 0.0, 1.0)
        assert hour["overall_score"] == pytest.approx(0.8) and hour["below_threshold"]
        assert hour["quality_level"] == "fair"
        # a redelivered batch is ignored; a late one (its minute closed) is dropped
        await agent.put({"at": T0 + 70, "batch": "b3", "counts": one}, key=KEY)
        await agent.put({"at": T0 + 30, "batch": "b-late", "counts": one}, key=KEY)
        minute = [w for w in quality.open_windows() if w["window_size_s"] == 60]
        assert [w["records"] for w in minute] == [1]
        await agent.put({"at": T0 + 3605}, key=KEY)  # the hour (and the 2nd minute) close
    sizes = [(c[2], c[3], c[4].records) for c in quality.closed]
    assert sizes == [(60, int(T0), 2), (60, int(T0) + 60, 1), (3600, int(T0), 4)]
    assert quality.open_windows() == []
    assert quality.metrics.quality_late_increments._value.get() == 1  # the minute only


async def test_a_failed_snapshot_keeps_the_window_open(quality):
    calls = []

    async def failing(metric, source, windows):
        calls.append(len(windows))
        if len(calls) == 1:
            raise OSError("warehouse down")
        quality.closed.extend((metric, source, w.size_s, w.start_s, w.counts) for w in windows)

    quality.sink = failing
    async with quality.agent.test_context() as agent:
        await agent.put({"at": T0 + 1, "batch": "b1", "counts": counts([1] * 5, [1] * 5, 1)}, key=KEY)
        await agent.put({"at": T0 + 66}, key=KEY)
        assert quality.closed == [] and len(quality.open_windows()) == 2
        await agent.put({"at": T0 + 67}, key=KEY)
    assert calls == [1, 1]
    assert [(c[2], c[4].records) for c in quality.closed] == [(60, 1)]


async def test_tick_sends_only_for_keys_with_due_windows(quality, monkeypatch):
    sent = []

    async def send(key, value):
        sent.append((key, value))

    monkeypatch.setattr(quality.topic, "send", send)
    async with quality.agent.test_context() as agent:
        await agent.put({"at": T0 + 1, "batch": "b1", "counts": counts([1] * 5, [1] * 5, 1)}, key=KEY)
        await agent.put({"at": T0 + 1, "batch": "b1", "counts": counts([1] * 5, [1] * 5, 1)},
                        key="steps|fitbit")
    quality.clock = lambda: datetime.fromtimestamp(T0 + 64, UTC)
    await quality.tick()
    assert sent == []
    quality.clock = lambda: datetime.fromtimestamp(T0, UTC) + timedelta(seconds=65)
    await quality.tick()
    assert sorted(k for k, _ in sent) == ["heart_rate|garmin", "steps|fitbit"]
    assert all(v == {"at": T0 + 65} for _, v in sent)


async def test_a_malformed_message_is_skipped(quality):
    async with quality.agent.test_context() as agent:
        await agent.put({"counts": "nonsense"}, key=KEY)
        await agent.put({"at": T0 + 1, "batch": "b1", "counts": counts([1] * 5, [1] * 5, 1)}, key=KEY)
    assert [w["records"] for w in quality.open_windows()] == [1, 1]


def _readings(n: int, at: float) -> list[NormalisedReading]:
    measured = datetime.fromtimestamp(at, UTC)
    return [NormalisedReading(
        event_id=f"e-{at}-{i}", user_key="u", device_id="d", source="garmin", metric="heart_rate",
        loinc_code="8867-4", value=70.0, unit="/min", original_value=70.0, original_unit="bpm",
        measured_at=measured - timedelta(seconds=i), ingested_at=measured, quality_flags=(),
        metadata=None, kafka_topic="raw", kafka_partition=0, kafka_offset=int(at) * 100 + i,
        transformation_version="1") for i in range(n)]


async def test_batches_are_merged_within_a_second_and_never_across_a_window(quality, monkeypatch):
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(quality.topic, "send_soon", lambda key, value: sent.append((key, value)))
    now = [T0 + 10.0]
    quality.clock = lambda: datetime.fromtimestamp(now[0], UTC)
    for step, n in ((0.0, 2), (0.4, 3), (0.5, 4)):  # three batches within one second
        now[0] += step
        await quality.observe(_readings(n, now[0]), [])
    assert sent == []
    now[0] += 0.2  # 1.1 s after the first: the first three go out as one message
    await quality.observe(_readings(1, now[0]), [])
    [(key, first)] = sent
    assert key == KEY and first["at"] == T0 + 10.0
    assert DimensionCounts.from_dict(first["counts"]).records == 9
    now[0] = T0 + 60.0  # the next minute: what was merged goes out, alone
    await quality.observe(_readings(5, now[0]), [])
    assert [DimensionCounts.from_dict(v["counts"]).records for _, v in sent] == [9, 1]
    assert sent[1][1]["at"] == pytest.approx(T0 + 11.1)
    await quality.tick()  # the tick sends the rest
    assert [DimensionCounts.from_dict(v["counts"]).records for _, v in sent] == [9, 1, 5]
    assert len({v["batch"] for _, v in sent}) == 3


async def test_send_merged_now_sends_what_is_merged(quality, monkeypatch):
    sent: list[tuple[str, dict]] = []

    async def send(key, value):
        sent.append((key, value))

    monkeypatch.setattr(quality.topic, "send", send)
    monkeypatch.setattr(quality.topic, "send_soon", lambda key, value: pytest.fail("sent early"))
    await quality.observe(_readings(3, T0 + 10), [])
    await quality.send_merged_now()
    assert [(k, DimensionCounts.from_dict(v["counts"]).records) for k, v in sent] == [(KEY, 3)]
