"""The demo's normal 5% bad data must not look like a quality drop (alerts.yml threshold 0.7).

HealthmateQualityBelowThreshold fires when any dimension (or the overall score) of a metric
and source stays under 0.7: a dead letter fails one dimension only, so the overall score
alone barely moves even when most readings are rejected.

The figures asserted here are the ones deploy/prometheus/alerts_test.yml feeds promtool in
its "demo traffic" case, so the alert test and the real scoring stay tied together.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from streams.domain import Rules, process_message
from streams.domain.quality import QualityConfig, count_batch
from streams.domain.quality_rules import DimensionCounts
from streams.records import MessageContext
from streams.synthetic import SOURCES, SyntheticReadings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ALERT_THRESHOLD = 0.7  # HealthmateQualityBelowThreshold
DEMO_FLOOR = 0.85  # alerts_test.yml "demo traffic" case feeds promtool scores down to this


def _window_counts(bad_ratio: float) -> dict[tuple[str, str], DimensionCounts]:
    rules, config = Rules.default(b"k" * 32), QualityConfig(known_sources=frozenset(SOURCES))
    totals: dict[tuple[str, str], DimensionCounts] = defaultdict(DimensionCounts)
    messages = list(SyntheticReadings(NOW, seed=11).messages(20_000, bad_ratio=bad_ratio))
    for start in range(0, len(messages), 500):  # one committed batch per 500 messages
        readings, rejections = [], []
        for offset, m in enumerate(messages[start:start + 500], start):
            out = process_message(m.value, MessageContext("raw", 0, offset, NOW), rules)
            readings += out.readings
            rejections += [(str(d.code), d.metric, d.source) for d in out.dead_letters]
        for key, counts in count_batch(readings, rejections, config).items():
            totals[key] = totals[key] + counts
    return totals


def test_demo_bad_ratio_keeps_every_metric_above_the_alert():
    totals = _window_counts(0.05)
    assert len(totals) == 11 * len(SOURCES), "one series per catalogue metric and demo source"
    lowest = {key: _lowest(counts) for key, counts in totals.items()}
    worst = sorted(lowest.items(), key=lambda kv: kv[1])[:3]
    assert min(lowest.values()) >= DEMO_FLOOR > ALERT_THRESHOLD, worst


def test_a_real_drop_is_below_the_alert():
    assert max(_lowest(c) for c in _window_counts(0.6).values()) < ALERT_THRESHOLD


def _lowest(counts: DimensionCounts) -> float:
    """What the alert compares: the lowest of the dimensions and the overall score."""
    return min(*counts.scores().values(), counts.overall(QualityConfig().weights))
