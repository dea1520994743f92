"""Both sides of every reject and outlier boundary, for every metric, on canonical values."""

from __future__ import annotations

import pytest

from streams.domain import DEFAULT_CATALOGUE, normalise_reading
from streams.errors import Rejected, RejectReason

# (metric, canonical unit, last accepted value, first rejected value) per side
REJECT_BOUNDARIES = [
    ("heart_rate", "/min", 0, -0.001),
    ("heart_rate", "/min", 300, 300.001),
    ("resting_heart_rate", "/min", 0, -0.001),
    ("resting_heart_rate", "/min", 300, 300.001),
    ("steps", "{steps}", 0, -1),
    ("steps", "{steps}", 100_000, 100_001),
    ("oxygen_saturation", "%", 0, -0.001),
    ("oxygen_saturation", "%", 100, 100.001),
    ("blood_pressure_systolic", "mm[Hg]", 0, -0.001),
    ("blood_pressure_systolic", "mm[Hg]", 350, 350.001),
    ("blood_pressure_diastolic", "mm[Hg]", 0, -0.001),
    ("blood_pressure_diastolic", "mm[Hg]", 250, 250.001),
    ("blood_glucose", "mg/dL", 0, -0.001),
    ("blood_glucose", "mg/dL", 2000, 2000.001),
    ("body_weight", "kg", 0.001, 0),  # "<= 0": zero itself is rejected
    ("body_weight", "kg", 700, 700.001),
    ("body_temperature", "Cel", 20, 19.999),
    ("body_temperature", "Cel", 46, 46.001),
    ("respiratory_rate", "/min", 0, -0.001),
    ("respiratory_rate", "/min", 120, 120.001),
    ("sleep_duration", "min", 0, -0.001),
    ("sleep_duration", "min", 1440, 1440.001),
    ("active_energy", "kcal", 0, -0.001),
    ("active_energy", "kcal", 20_000, 20_000.001),
    ("body_height", "cm", 0.001, 0),
    ("body_height", "cm", 300, 300.001),
    ("body_mass_index", "kg/m2", 0.001, 0),
    ("body_mass_index", "kg/m2", 200, 200.001),
    ("body_fat_percentage", "%", 0, -0.001),
    ("body_fat_percentage", "%", 100, 100.001),
]

# (metric, canonical unit, value, is an outlier)
OUTLIER_BOUNDARIES = [
    ("heart_rate", "/min", 30, False),
    ("heart_rate", "/min", 29.999, True),
    ("heart_rate", "/min", 220, False),
    ("heart_rate", "/min", 220.001, True),
    ("resting_heart_rate", "/min", 25, False),
    ("resting_heart_rate", "/min", 24.999, True),
    ("resting_heart_rate", "/min", 130, False),
    ("resting_heart_rate", "/min", 130.001, True),
    ("steps", "{steps}", 0, False),
    ("steps", "{steps}", 50_000, False),
    ("steps", "{steps}", 50_001, True),
    ("oxygen_saturation", "%", 70, False),
    ("oxygen_saturation", "%", 69.999, True),
    ("oxygen_saturation", "%", 100, False),
    ("blood_pressure_systolic", "mm[Hg]", 70, False),
    ("blood_pressure_systolic", "mm[Hg]", 69.999, True),
    ("blood_pressure_systolic", "mm[Hg]", 250, False),
    ("blood_pressure_systolic", "mm[Hg]", 250.001, True),
    ("blood_pressure_diastolic", "mm[Hg]", 40, False),
    ("blood_pressure_diastolic", "mm[Hg]", 39.999, True),
    ("blood_pressure_diastolic", "mm[Hg]", 150, False),
    ("blood_pressure_diastolic", "mm[Hg]", 150.001, True),
    ("blood_glucose", "mg/dL", 40, False),
    ("blood_glucose", "mg/dL", 39.999, True),
    ("blood_glucose", "mg/dL", 600, False),
    ("blood_glucose", "mg/dL", 600.001, True),
    ("body_weight", "kg", 20, False),
    ("body_weight", "kg", 19.999, True),
    ("body_weight", "kg", 350, False),
    ("body_weight", "kg", 350.001, True),
    ("body_temperature", "Cel", 34, False),
    ("body_temperature", "Cel", 33.999, True),
    ("body_temperature", "Cel", 42, False),
    ("body_temperature", "Cel", 42.001, True),
    ("respiratory_rate", "/min", 6, False),
    ("respiratory_rate", "/min", 5.999, True),
    ("respiratory_rate", "/min", 60, False),
    ("respiratory_rate", "/min", 60.001, True),
    ("sleep_duration", "min", 0, False),
    ("sleep_duration", "min", 960, False),
    ("sleep_duration", "min", 960.001, True),
    ("active_energy", "kcal", 0, False),
    ("active_energy", "kcal", 10_000, False),
    ("active_energy", "kcal", 10_000.001, True),
    ("body_height", "cm", 40, False),
    ("body_height", "cm", 39.999, True),
    ("body_height", "cm", 250.001, True),
    ("body_mass_index", "kg/m2", 10, False),
    ("body_mass_index", "kg/m2", 9.999, True),
    ("body_mass_index", "kg/m2", 80.001, True),
    ("body_fat_percentage", "%", 2, False),
    ("body_fat_percentage", "%", 1.999, True),
    ("body_fat_percentage", "%", 75.001, True),
]


def test_every_metric_has_boundary_cases() -> None:
    assert {row[0] for row in REJECT_BOUNDARIES} == set(DEFAULT_CATALOGUE)
    assert {row[0] for row in OUTLIER_BOUNDARIES} == set(DEFAULT_CATALOGUE)


@pytest.mark.parametrize(("metric", "unit", "accepted", "rejected"), REJECT_BOUNDARIES)
def test_reject_boundary(metric, unit, accepted, rejected, reading, ctx, rules) -> None:
    stored = normalise_reading(reading(metric=metric, unit=unit, value=accepted), ctx, rules)
    assert stored.value == accepted
    with pytest.raises(Rejected) as info:
        normalise_reading(reading(metric=metric, unit=unit, value=rejected), ctx, rules)
    assert info.value.code is RejectReason.OUT_OF_RANGE


@pytest.mark.parametrize(("metric", "unit", "value", "is_outlier"), OUTLIER_BOUNDARIES)
def test_outlier_boundary_flags(metric, unit, value, is_outlier, reading, ctx, rules) -> None:
    stored = normalise_reading(reading(metric=metric, unit=unit, value=value), ctx, rules)
    assert stored.value == value  # default strategy keeps the value
    assert stored.quality_flags == (("outlier",) if is_outlier else ())


@pytest.mark.parametrize(
    ("metric", "unit", "value", "accepted"),
    [
        ("body_temperature", "[degF]", 68, True),  # exactly 20 Cel
        ("body_temperature", "[degF]", 67.9, False),
        ("body_temperature", "[degF]", 114.7, True),  # 45.94 Cel
        ("body_temperature", "[degF]", 115, False),  # 46.11 Cel
        ("oxygen_saturation", "ratio", 1, True),  # 100 %
        ("oxygen_saturation", "ratio", 1.01, False),  # 101 %
        ("blood_pressure_systolic", "kPa", 46, True),  # 345.03 mm[Hg]
        ("blood_pressure_systolic", "kPa", 47, False),  # 352.53 mm[Hg]
        ("body_weight", "g", 1, True),  # 0.001 kg
        ("body_weight", "g", 0, False),
        ("sleep_duration", "h", 24, True),  # 1440 min
        ("sleep_duration", "h", 24.01, False),
        ("active_energy", "kJ", 83_680, True),  # 20000 kcal
        ("active_energy", "kJ", 83_681, False),
        ("blood_glucose", "mmol/L", 111, True),  # 1999.78 mg/dL
        ("blood_glucose", "mmol/L", 111.1, False),  # 2001.58 mg/dL
    ],
)
def test_range_applies_to_the_converted_value(metric, unit, value, accepted, reading, ctx, rules) -> None:
    fields = reading(metric=metric, unit=unit, value=value)
    if accepted:
        assert normalise_reading(fields, ctx, rules).metric == metric
    else:
        with pytest.raises(Rejected) as info:
            normalise_reading(fields, ctx, rules)
        assert info.value.code is RejectReason.OUT_OF_RANGE


def test_outlier_judged_after_conversion(reading, ctx, rules) -> None:
    # 95 F is 35 Cel: fine; 93 F is 33.89 Cel: below the 34 Cel outlier bound.
    assert (
        normalise_reading(reading(metric="body_temperature", unit="F", value=95), ctx, rules).quality_flags
        == ()
    )
    assert normalise_reading(
        reading(metric="body_temperature", unit="F", value=93), ctx, rules
    ).quality_flags == ("outlier",)
