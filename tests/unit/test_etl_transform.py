"""Pure parts of the ETL runner: the Python reference of the statistics and streaks (which
the SQL path is checked against), intervals, the quality gate, backoff, offline lineage
events and the progress bar. No event loop, no database."""

from __future__ import annotations

import io
import random
import statistics
from datetime import UTC, date, datetime, timedelta

import pytest
from etl_reference import (
    EngagementAccumulator,
    HourlyPerformance,
    MetricAggregator,
    describe_values,
    percentile,
    streak,
)
from lineage_check import validate
from openlineage.client.event_v2 import RunState
from openlineage.client.serde import Serde

from batch.config import ETLJobConfig
from batch.errors import QualityGateFailed, is_final
from batch.graph import lineage_graph
from batch.lineage import run_event
from batch.pipeline import day_bounds
from batch.quality_gate import QualityTally
from batch.runner import JobRunner
from batch.schedule import resolve_interval
from batch.transform import performance_rows
from streams.config import Settings
from streams.domain.quality import DataValidator
from streams.progress import Progress

T0 = datetime(2026, 3, 10, tzinfo=UTC)


def row(user: str, metric: str, value: float, unit: str, at: datetime, **extra) -> dict:  # type: ignore[no-untyped-def]
    return {"event_id": f"{user}-{metric}-{at.isoformat()}-{value}", "user_key": user, "device_id": "d",
            "source": extra.get("source", "garmin"), "metric": metric, "value": value, "unit": unit,
            "measured_at": at, "ingested_at": at + timedelta(minutes=1),
            "produced_at": extra.get("produced_at"),
            "stored_at": extra.get("stored_at", at + timedelta(minutes=2)), "quality_flags": [],
            "statistic": extra.get("statistic")}


def test_aggregates_use_raw_samples_unless_the_job_includes_statistics() -> None:
    rows = [row("a", "heart_rate", v, "/min", T0) for v in (60, 80)]
    rows += [row("a", "heart_rate", 41, "/min", T0, statistic="minimum")]  # a daily minimum
    raw = MetricAggregator(T0.date())
    [(_, _, _, _, count, low, *_)] = raw.feed(rows) + raw.finish()
    assert (count, low, raw.rejected) == (2, 60, 0)
    every = MetricAggregator(T0.date(), include_statistics=True)
    [(_, _, _, _, count, low, *_)] = every.feed(rows) + every.finish()
    assert (count, low) == (3, 41)


@pytest.mark.parametrize("seed", range(5))
def test_statistics_match_the_reference_implementations(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.uniform(30, 200) for _ in range(rng.randint(2, 60))]
    n, lo, hi, mean, sd, p50, p95 = describe_values(values)
    assert (n, lo, hi) == (len(values), min(values), max(values))
    assert mean == pytest.approx(statistics.fmean(values)) and sd == pytest.approx(statistics.stdev(values))
    quantiles = statistics.quantiles(values, n=20, method="inclusive")  # same as percentile_cont
    assert p50 == pytest.approx(statistics.median(values)) and p95 == pytest.approx(quantiles[18])
    assert describe_values([7.0])[4] is None and percentile([1.0, 2.0], 0.5) == 1.5


def test_metric_aggregator_streams_groups_across_chunks_and_rejects_non_canonical_rows() -> None:
    rows = [row("a", "heart_rate", v, "/min", T0) for v in (60, 70, 80)]
    rows += [row("a", "steps", 10, "{steps}", T0), row("a", "steps", 5, "steps", T0)]  # 2nd: not canonical
    rows += [row("b", "heart_rate", 50, "/min", T0), row("b", "heart_rate", float("nan"), "/min", T0)]
    agg = MetricAggregator(T0.date())
    out = agg.feed(rows[:2]) + agg.feed(rows[2:4]) + agg.feed(rows[4:]) + agg.finish()
    assert [(r[1], r[2], r[3], r[4], r[7]) for r in out] == [
        ("a", "heart_rate", "/min", 3, 70.0), ("a", "steps", "{steps}", 1, 10.0),
        ("b", "heart_rate", "/min", 1, 50.0)]
    assert agg.rejected == 2


def test_engagement_and_streaks() -> None:
    acc = EngagementAccumulator(T0.date())
    acc.feed([row("a", "steps", 1, "{steps}", T0 + timedelta(hours=5), source="fitbit"),
              row("a", "heart_rate", 60, "/min", T0 + timedelta(hours=1)),
              row("a", "heart_rate", 61, "/min", T0 + timedelta(hours=9)),
              row("b", "steps", 1, "{steps}", T0)])
    earlier = {"a": [T0.date() - timedelta(days=d) for d in (1, 2, 4)]}
    (a, b) = acc.rows(earlier)
    h = timedelta(hours=1)
    assert a == (T0.date(), "a", 3, 2, ["fitbit", "garmin"], T0 + h, T0 + 9 * h, 3, "UTC")
    assert b[2:4] == (1, 1) and b[-2:] == (1, "UTC")
    assert streak(date(2026, 1, 1), []) == 1 and streak(date(2026, 1, 1), [date(2025, 12, 31)]) == 2


def test_hourly_performance() -> None:
    perf = HourlyPerformance()
    stored = T0 + timedelta(hours=3, minutes=10)
    perf.feed([row("a", "steps", 1, "{steps}", stored - timedelta(minutes=5), stored_at=stored,
                   produced_at=stored - timedelta(seconds=s)) for s in (1, 2, 3, 4)])
    perf.add_rejections(T0 + timedelta(hours=3), "unknown_unit", 2)
    perf.add_rejections(T0 + timedelta(hours=5), "out_of_range", 1)
    perf.quality = {T0 + timedelta(hours=3): 0.9}
    (h3, h5) = perf.rows()
    assert h3 == (T0 + timedelta(hours=3), 6, 4, 2, {"unknown_unit": 2}, 2.5, pytest.approx(3.85), 0.9)
    assert h5[:6] == (T0 + timedelta(hours=5), 1, 0, 1, {"out_of_range": 1}, None)
    # The production assembly, fed what SQL computes per hour, gives the same rows.
    commits = {T0 + timedelta(hours=3): {"stored": 4, "mean_lag": 2.5, "p95_lag": h3[6]}}
    assert performance_rows(commits, perf.rejected, perf.quality) == [h3, h5]


def test_intervals_are_whole_utc_days() -> None:
    job = ETLJobConfig(job_name="j", target_tables=["user_engagement"], schedule="0 2 * * *")
    yesterday_and_today = (T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert resolve_interval(job, None, T0 + timedelta(hours=3)) == yesterday_and_today
    manual = ETLJobConfig(job_name="j", target_tables=["user_engagement"])
    assert resolve_interval(manual, None, T0 + timedelta(hours=3)) == yesterday_and_today
    given = (T0 + timedelta(hours=5), T0 + timedelta(days=2))
    assert resolve_interval(manual, given, T0) == (T0, T0 + timedelta(days=2))
    with pytest.raises(ValueError):
        resolve_interval(manual, (T0, T0), T0)
    assert day_bounds(T0, T0 + timedelta(days=2)) == [T0.date(), T0.date() + timedelta(days=1)]
    assert day_bounds(T0, T0) == []


def test_quality_tally_adds_up_chunks_like_one_validation_and_gates() -> None:
    rows = [row("a", "heart_rate", 60 + i, "/min", T0 + timedelta(minutes=i)) for i in range(10)]
    rows += [row("a", "heart_rate", 400, "furlongs", T0 + timedelta(hours=2))]
    tally = QualityTally()
    tally.readings(rows[:4])
    tally.readings(rows[4:])
    whole = DataValidator().validate_data_quality(rows, "heart_rate")
    assert tally.counts == whole.counts and tally.score_of(tally.counts) == pytest.approx(whole.overall_score)
    assert tally.enforce(0.5).passed and tally.verdict(0.99).passed is False
    with pytest.raises(QualityGateFailed) as info:
        tally.enforce(0.99)
    assert is_final(str(info.value)) and "below the threshold 0.990" in str(info.value)
    assert QualityTally().verdict(1.0).passed  # nothing extracted: nothing to judge


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    settings = Settings(dev_mode=True, etl_retry_initial_s=1, etl_retry_max_s=5)
    low = JobRunner(settings, None, rng=lambda: 0.0)  # type: ignore[arg-type]
    high = JobRunner(settings, None, rng=lambda: 0.999999)  # type: ignore[arg-type]
    assert [low.backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.5]
    assert [round(high.backoff(n), 3) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


@pytest.mark.parametrize("job", [
    ETLJobConfig(job_name="all", target_tables=["aggregated_health_metrics", "user_engagement",
                                                 "system_performance"]),
    ETLJobConfig(job_name="r", pipeline_type="replay", replay={"topic": "raw", "from_offsets": {0: 0}}),
])
def test_offline_events_are_valid_openlineage(job: ETLJobConfig) -> None:
    settings = Settings(dev_mode=True, pg_dsn="postgresql://u:secret@db.internal:6543/wh")
    run_id = "3f1c5a9e-1111-4222-8333-444455556666"
    quality = {"rows": 5, "score": 0.9, "level": "good", "threshold": 0.8}
    for state, extra in ((RunState.START, {}), (RunState.COMPLETE, {"quality": quality}),
                         (RunState.FAIL, {"error": "boom"})):
        doc = Serde.to_dict(run_event(state, job, run_id, settings, at=T0, interval=(T0, T0 + timedelta(1)),
                                      **extra))
        validate(doc)
        assert "secret" not in str(doc) and doc["outputs"][0]["namespace"] == "postgres://db.internal:6543"
    graph = lineage_graph(job, settings)
    assert graph["sources"] and graph["targets"] and graph["transformations"] and graph["last_run"] is None


def test_progress_off_a_terminal_is_a_line_every_few_seconds() -> None:
    out = io.StringIO()  # not a TTY: plain lines, throttled
    bar = Progress("replay", total=100, unit="%", every_s=3600, stream=out)
    for p in (0, 10, 50, 100):
        bar.update(p)
    bar.close()
    assert out.getvalue().splitlines() == ["replay: 0/100%", "replay: 100/100%"]
