"""The in-stream fast path counts exactly what the general quality rules count."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from streams.domain.catalogue import build_catalogue
from streams.domain.quality import QualityConfig, count_batch
from streams.domain.quality_judge import count_stored_batch
from streams.records import NormalisedReading

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
# (metric, canonical unit, value range): "mood" is not in the catalogue.
METRICS = [("heart_rate", "/min", (20, 320)), ("steps", "{steps}", (0, 60000)),
           ("blood_pressure_systolic", "mm[Hg]", (60, 200)),
           ("blood_pressure_diastolic", "mm[Hg]", (40, 160)), ("mood", "1", (0, 10))]


def _reading(rng: random.Random, i: int) -> NormalisedReading:
    metric, unit, (low, high) = rng.choice(METRICS)
    flags = rng.choice([(), (), ("outlier",), ("clipped",), ("late",), ("outlier", "late")])
    return NormalisedReading(
        event_id=f"e-{rng.randrange(max(1, i // 2 + 1))}" if rng.random() < 0.2 else f"e-{i}",
        user_key=rng.choice(["u1", "u2", "u3"]), device_id=rng.choice(["d1", None, ""]),
        source=rng.choice(["fitbit", "Garmin ", "withings"]), metric=metric, loinc_code="x",
        value=float(rng.randint(low, high)), unit=rng.choice([unit, unit, "bpm", "furlongs"]),
        original_value=1.0, original_unit="u",
        measured_at=NOW - timedelta(minutes=rng.choice([0, 1, 1, 90, 3000])), ingested_at=NOW,
        quality_flags=flags, metadata=None, kafka_topic="raw", kafka_partition=rng.randrange(3),
        kafka_offset=i, transformation_version="1")


@pytest.mark.parametrize("seed", range(40))
def test_fast_path_equals_the_general_rules(seed: int) -> None:
    rng = random.Random(seed)
    readings = [_reading(rng, i) for i in range(rng.randrange(0, 300))]
    rejections = [(rng.choice(["missing_field", "outlier_dropped", "unknown_unit", "sink_rejected"]),
                   rng.choice(["heart_rate", None, "mood"]), rng.choice(["fitbit", None, "Acme "]))
                  for _ in range(rng.randrange(0, 20))]
    expected_fields = rng.choice([("device_id",), (), ("device_id", "metadata"), ("nonexistent",)])
    config = QualityConfig(expected_fields=expected_fields,
                           timeliness_by_source={"withings": timedelta(days=3)},
                           catalogue=build_catalogue({}),
                           known_sources=rng.choice([None, frozenset({"fitbit"}),
                                                     frozenset({"garmin", "acme"})]))
    assert count_stored_batch(readings, rejections, config) == count_batch(readings, rejections, config)
