"""The metric catalogue: rows, conversions, unit matching and overrides."""

from __future__ import annotations

import pytest

from streams.domain import (
    DEFAULT_CATALOGUE,
    Conversion,
    MetricRule,
    build_catalogue,
    resolve_unit,
    to_canonical,
)
from streams.domain.units import convert
from streams.errors import ConfigurationError, Rejected, RejectReason

ROWS = [
    ("heart_rate", "/min", "8867-4"),
    ("resting_heart_rate", "/min", "40443-4"),
    ("steps", "{steps}", "55423-8"),
    ("oxygen_saturation", "%", "59408-5"),
    ("blood_pressure_systolic", "mm[Hg]", "8480-6"),
    ("blood_pressure_diastolic", "mm[Hg]", "8462-4"),
    ("blood_glucose", "mg/dL", "2339-0"),
    ("body_weight", "kg", "29463-7"),
    ("body_temperature", "Cel", "8310-5"),
    ("respiratory_rate", "/min", "9279-1"),
    ("sleep_duration", "min", "93832-4"),
    ("active_energy", "kcal", "41981-2"),
    ("body_height", "cm", "8302-2"),
    ("body_mass_index", "kg/m2", "39156-5"),
    ("body_fat_percentage", "%", "41982-0"),
]

# (metric, accepted unit, value in that unit, expected canonical value computed by hand)
CONVERSIONS = [
    ("heart_rate", "bpm", 72, 72.0),
    ("heart_rate", "beats_per_minute", 72, 72.0),
    ("heart_rate", "beats/min", 72, 72.0),
    ("heart_rate", "/min", 72, 72.0),
    ("resting_heart_rate", "bpm", 52.27, 52.27),
    ("resting_heart_rate", "beats_per_minute", 52, 52.0),
    ("resting_heart_rate", "beats/min", 52, 52.0),
    ("resting_heart_rate", "/min", 52, 52.0),
    ("steps", "steps", 1234, 1234.0),
    ("steps", "count", 1234, 1234.0),
    ("steps", "{steps}", 1234, 1234.0),
    ("oxygen_saturation", "%", 97, 97.0),
    ("oxygen_saturation", "percent", 97, 97.0),
    ("oxygen_saturation", "1", 0.955, 95.5),
    ("oxygen_saturation", "ratio", 0.97, 97.0),
    ("blood_pressure_systolic", "mmHg", 120, 120.0),
    ("blood_pressure_systolic", "mm[Hg]", 120, 120.0),
    ("blood_pressure_systolic", "kPa", 16, 120.00992),  # 16 * 7.50062
    ("blood_pressure_diastolic", "mmHg", 80, 80.0),
    ("blood_pressure_diastolic", "mm[Hg]", 80, 80.0),
    ("blood_pressure_diastolic", "kPa", 10, 75.0062),  # 10 * 7.50062
    ("blood_glucose", "mg/dL", 100, 100.0),
    ("blood_glucose", "mmol/L", 5.5, 99.088),  # 5.5 * 18.016
    ("body_weight", "kg", 70, 70.0),
    ("body_weight", "g", 70500, 70.5),  # / 1000
    ("body_weight", "lb", 150, 68.0388555),  # 150 * 0.45359237
    ("body_weight", "lbs", 200, 90.718474),  # 200 * 0.45359237
    ("body_weight", "[lb_av]", 1, 0.45359237),
    ("body_weight", "oz", 16, 0.45359237),  # 16 * 0.028349523125
    ("body_weight", "[oz_av]", 32, 0.90718474),
    ("body_temperature", "Cel", 37, 37.0),
    ("body_temperature", "C", 36.6, 36.6),
    ("body_temperature", "°C", 38, 38.0),
    ("body_temperature", "celsius", 39.5, 39.5),
    ("body_temperature", "[degF]", 98.6, 37.0),  # (98.6 - 32) * 5 / 9
    ("body_temperature", "F", 100.4, 38.0),
    ("body_temperature", "°F", 96.8, 36.0),
    ("body_temperature", "fahrenheit", 104, 40.0),
    ("body_temperature", "K", 310.15, 37.0),  # - 273.15
    ("respiratory_rate", "breaths/min", 16, 16.0),
    ("respiratory_rate", "/min", 16, 16.0),
    ("respiratory_rate", "rpm", 16, 16.0),
    ("sleep_duration", "min", 480, 480.0),
    ("sleep_duration", "minutes", 480, 480.0),
    ("sleep_duration", "h", 7.5, 450.0),  # * 60
    ("sleep_duration", "hours", 8, 480.0),
    ("sleep_duration", "s", 5400, 90.0),  # / 60
    ("sleep_duration", "sec", 27000, 450.0),  # / 60 (Open mHealth's spelling)
    ("active_energy", "kcal", 500, 500.0),
    ("active_energy", "Cal", 500, 500.0),
    ("active_energy", "kJ", 418.4, 100.0),  # / 4.184
    ("body_height", "cm", 172.5, 172.5),
    ("body_height", "m", 1.8, 180.0),  # * 100
    ("body_height", "mm", 1655, 165.5),  # / 10
    ("body_height", "in", 70, 177.8),  # * 2.54
    ("body_height", "[in_i]", 60, 152.4),
    ("body_height", "ft", 6, 182.88),  # * 30.48
    ("body_height", "[ft_i]", 5, 152.4),
    ("body_mass_index", "kg/m2", 22.5, 22.5),
    ("body_mass_index", "kg/m^2", 22.5, 22.5),
    ("body_mass_index", "kg/m²", 30.1, 30.1),
    ("body_fat_percentage", "%", 21.5, 21.5),
    ("body_fat_percentage", "percent", 18, 18.0),
    ("body_fat_percentage", "1", 0.215, 21.5),
    ("body_fat_percentage", "ratio", 0.3, 30.0),
]


@pytest.mark.parametrize(("metric", "canonical", "loinc"), ROWS)
def test_catalogue_row(metric: str, canonical: str, loinc: str) -> None:
    rule = DEFAULT_CATALOGUE[metric]
    assert rule.name == metric
    assert rule.canonical_unit == canonical
    assert rule.loinc_code == loinc
    assert rule.conversions[canonical] == Conversion()


def test_catalogue_has_exactly_the_documented_metrics() -> None:
    assert set(DEFAULT_CATALOGUE) == {row[0] for row in ROWS}


@pytest.mark.parametrize(("metric", "unit", "value", "expected"), CONVERSIONS)
def test_conversion_to_canonical(metric: str, unit: str, value: float, expected: float) -> None:
    assert to_canonical(DEFAULT_CATALOGUE[metric], value, unit) == pytest.approx(expected, rel=1e-12)


def test_every_accepted_unit_has_a_conversion_test() -> None:
    tested = {(metric, unit) for metric, unit, _, _ in CONVERSIONS}
    accepted = {(name, unit) for name, rule in DEFAULT_CATALOGUE.items() for unit in rule.conversions}
    assert accepted == tested


def test_conversion_formula_applies_offset_before_factor_and_divisor() -> None:
    assert convert(Conversion(factor=5, divisor=9, offset=-32), 212) == 100.0
    assert convert(Conversion(), 12.5) == 12.5


@pytest.mark.parametrize(
    ("metric", "unit", "value", "expected"),
    [
        ("heart_rate", " bpm ", 60, 60.0),
        ("heart_rate", "BPM", 60, 60.0),
        ("heart_rate", "\tBpm\n", 60, 60.0),
        ("heart_rate", "Beats/Min", 60, 60.0),
        ("blood_glucose", "MMOL/L", 5.5, 99.088),
        ("blood_glucose", "mg/dl", 90, 90.0),
        ("blood_pressure_systolic", "MMHG", 120, 120.0),
        ("blood_pressure_systolic", "kpa", 16, 120.00992),
        ("body_temperature", "cel", 37, 37.0),
        ("body_temperature", "c", 37, 37.0),
        ("body_temperature", "°c", 37, 37.0),
        ("body_temperature", "f", 212, 100.0),
        ("body_temperature", "[DEGF]", 212, 100.0),
        ("body_weight", "KG", 70, 70.0),
        ("body_weight", "LBS", 100, 45.359237),
        ("active_energy", "KCAL", 300, 300.0),
        ("active_energy", "kj", 418.4, 100.0),
        ("active_energy", " Cal ", 300, 300.0),
        ("sleep_duration", "HOURS", 1, 60.0),
        ("oxygen_saturation", "Ratio", 0.5, 50.0),
    ],
)
def test_unit_matching_ignores_case_and_surrounding_whitespace(
    metric: str, unit: str, value: float, expected: float
) -> None:
    assert to_canonical(DEFAULT_CATALOGUE[metric], value, unit) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("unit", ["cal", "CAL", " cal ", "cAL"])
def test_small_calorie_is_not_kilocalorie(unit: str) -> None:
    with pytest.raises(Rejected) as info:
        resolve_unit(DEFAULT_CATALOGUE["active_energy"], unit)
    assert info.value.code is RejectReason.UNKNOWN_UNIT


@pytest.mark.parametrize(
    ("metric", "unit"),
    [
        ("heart_rate", "furlongs"),
        ("heart_rate", "kg"),
        ("body_weight", "stone"),
        ("body_temperature", "kelvin"),
        ("blood_glucose", "mg"),
        ("steps", "b pm"),
        ("sleep_duration", "d"),
    ],
)
def test_unknown_unit_is_rejected(metric: str, unit: str) -> None:
    with pytest.raises(Rejected) as info:
        resolve_unit(DEFAULT_CATALOGUE[metric], unit)
    assert info.value.code is RejectReason.UNKNOWN_UNIT
    assert metric in info.value.message


def test_case_folding_skips_spellings_that_collide() -> None:
    rule = MetricRule(
        "thing",
        "u",
        "0-0",
        {"u": Conversion(), "Ab": Conversion(factor=2), "aB": Conversion(factor=3)},
        min_value=0,
        max_value=10,
    )
    assert resolve_unit(rule, "Ab").factor == 2
    assert resolve_unit(rule, " aB ").factor == 3
    assert resolve_unit(rule, "U") == Conversion()
    with pytest.raises(Rejected):
        resolve_unit(rule, "AB")


def test_build_catalogue_without_overrides_is_the_default() -> None:
    assert build_catalogue(None) == dict(DEFAULT_CATALOGUE)
    assert build_catalogue({}) == dict(DEFAULT_CATALOGUE)


def test_overrides_change_bounds_and_loinc_without_touching_defaults() -> None:
    catalogue = build_catalogue(
        {" Heart_Rate ": {"max_value": 250, "outlier_high": 200, "outlier_low": None, "loinc_code": "X-1"}}
    )
    rule = catalogue["heart_rate"]
    assert (rule.max_value, rule.outlier_high, rule.outlier_low, rule.loinc_code) == (250, 200, None, "X-1")
    assert rule.min_value == 0 and rule.canonical_unit == "/min"
    default = DEFAULT_CATALOGUE["heart_rate"]
    assert (default.max_value, default.outlier_high, default.outlier_low, default.loinc_code) == (
        300,
        220,
        30,
        "8867-4",
    )


def test_overrides_add_units_in_every_accepted_form() -> None:
    catalogue = build_catalogue(
        {
            "body_weight": {
                "units": {"st": 6.35029318, "oz": {"factor": 0.028349523125}, "mg": Conversion(divisor=1e6)}
            },
            "body_temperature": {"units": {"°K": {"offset": -273.15}}},
        }
    )
    weight = catalogue["body_weight"]
    assert to_canonical(weight, 10, "st") == pytest.approx(63.5029318)
    assert to_canonical(weight, 16, "oz") == pytest.approx(0.45359237)
    assert to_canonical(weight, 70e6, "mg") == pytest.approx(70.0)
    assert to_canonical(weight, 150, "lb") == pytest.approx(68.0388555)  # existing units kept
    assert to_canonical(catalogue["body_temperature"], 310.15, "k") == pytest.approx(37.0)
    assert "st" not in DEFAULT_CATALOGUE["body_weight"].conversions


def test_override_can_add_a_new_metric() -> None:
    catalogue = build_catalogue(
        {"hrv_rmssd": {"canonical_unit": "ms", "loinc_code": "80404-7", "min_value": 0, "max_value": 500}}
    )
    rule = catalogue["hrv_rmssd"]
    assert rule.canonical_unit == "ms" and to_canonical(rule, 42, "ms") == 42.0
    assert rule.outlier_low is None and rule.outlier_high is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"heart_rate": {"max_vaule": 250}},
        {"heart_rate": {"canonical_unit": "bpm"}},
        {"heart_rate": {"min_value": 400}},
        {"heart_rate": {"outlier_high": float("nan")}},
        {"heart_rate": {"units": {"bpx": "fast"}}},
        {"heart_rate": {"units": {"bpx": 0}}},
        {"heart_rate": {"units": {"bpx": {"scale": 2}}}},
        {"new_metric": {"canonical_unit": "x", "loinc_code": "1-1"}},
    ],
)
def test_bad_overrides_are_configuration_errors(overrides: dict) -> None:
    with pytest.raises(ConfigurationError):
        build_catalogue(overrides)


def test_rule_bound_predicates() -> None:
    weight = DEFAULT_CATALOGUE["body_weight"]
    assert not weight.is_possible(0) and weight.is_possible(0.001) and weight.is_possible(700)
    assert not weight.is_possible(float("inf"))
    rate = DEFAULT_CATALOGUE["heart_rate"]
    assert rate.is_possible(0) and not rate.is_possible(-0.001)
    assert (
        rate.outlier_bound(29.9) == 30 and rate.outlier_bound(220.1) == 220 and rate.outlier_bound(30) is None
    )
