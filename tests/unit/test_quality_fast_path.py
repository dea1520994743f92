"""The in-stream fast path counts exactly what the general quality rules count."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from streams.domain.catalogue import build_catalogue
from streams.domain.quality import QualityConfig, conflicting, count_batch
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


def _conflicts_by_definition(readings: list[NormalisedReading]) -> set[int]:
    """``conflicting`` as its docstring defines it, pair by pair (integer values: exact)."""
    bad: set[int] = set()
    for i, a in enumerate(readings):
        for j, b in enumerate(readings):
            if i == j:
                continue
            fields_a = (a.value, a.user_key, a.metric, a.measured_at, a.source, a.unit)
            fields_b = (b.value, b.user_key, b.metric, b.measured_at, b.source, b.unit)
            if a.event_id == b.event_id and fields_a != fields_b:
                bad |= {k for k, r in enumerate(readings) if r.event_id == a.event_id}
            instant = (a.user_key, a.metric, a.measured_at)
            if instant == (b.user_key, b.metric, b.measured_at) and a.value != b.value:
                bad |= {k for k, r in enumerate(readings)
                        if (r.user_key, r.metric, r.measured_at) == instant}
            if ((a.metric, b.metric) == ("blood_pressure_systolic", "blood_pressure_diastolic")
                    and (a.user_key, a.measured_at) == (b.user_key, b.measured_at) and a.value <= b.value):
                bad |= {i, j}
    return bad


@pytest.mark.parametrize("seed", range(40))
def test_conflicting_finds_what_the_definition_finds(seed: int) -> None:
    # Even seeds: unique event ids and instants, the usual batch (only pressure can clash).
    rng = random.Random(seed)
    unique = seed % 2 == 0
    readings = []
    for i in range(rng.randrange(0, 120)):
        r = _reading(rng, i)
        if unique and rng.random() < 0.5:  # a pressure pair per instant
            metric = "blood_pressure_systolic" if i % 2 == 0 else "blood_pressure_diastolic"
            r = replace(r, event_id=f"u-{i}", metric=metric, value=float(rng.randint(60, 120)),
                        measured_at=NOW - timedelta(seconds=i // 2))
        elif unique:
            r = replace(r, event_id=f"u-{i}", measured_at=NOW - timedelta(hours=1, seconds=i))
        readings.append(r)
    assert conflicting(readings) == _conflicts_by_definition(readings)
