"""What an Apple Health record becomes: metric, unit, value. Pure data and pure functions.

Apple writes the user's preferred unit in each record's ``unit``; the worker converts every
unit of the catalogue, so most pass through. Three need translating here because their
spelling says something else than what they are:

- ``%`` (body fat, oxygen saturation) holds a fraction: 0.97 is 97 %;
- ``count`` for the body mass index is kg/m²; ``count/min`` is per minute;
- blood glucose in ``mmol<180.1558800000541>/L`` carries the molar mass Apple converts with:
  the value is turned into mg/dL with that mass (mmol/L × g/mol ÷ 10), not ours.
"""

from __future__ import annotations

import re
from typing import Final

PREFIX: Final = "HKQuantityTypeIdentifier"
SLEEP_TYPE: Final = "HKCategoryTypeIdentifierSleepAnalysis"
BP_CORRELATION: Final = "HKCorrelationTypeIdentifierBloodPressure"
BP_TYPES: Final = {PREFIX + "BloodPressureSystolic": "blood_pressure_systolic",
                   PREFIX + "BloodPressureDiastolic": "blood_pressure_diastolic"}

#: Apple quantity type -> (catalogue metric, statistic). Resting heart rate is Apple's daily
#: estimate of the average rate at rest, not a sample: it is its own metric
#: (``resting_heart_rate``, statistic ``average``, as the Fitbit reader stores it), so it never
#: mixes into raw heart-rate aggregates.
QUANTITY_TYPES: Final[dict[str, tuple[str, str | None]]] = {
    PREFIX + "HeartRate": ("heart_rate", None),
    PREFIX + "RestingHeartRate": ("resting_heart_rate", "average"),
    PREFIX + "StepCount": ("steps", None),
    PREFIX + "BodyMass": ("body_weight", None),
    PREFIX + "Height": ("body_height", None),
    PREFIX + "BodyMassIndex": ("body_mass_index", None),
    PREFIX + "BodyFatPercentage": ("body_fat_percentage", None),
    PREFIX + "OxygenSaturation": ("oxygen_saturation", None),
    PREFIX + "BodyTemperature": ("body_temperature", None),
    PREFIX + "RespiratoryRate": ("respiratory_rate", None),
    PREFIX + "BloodGlucose": ("blood_glucose", None),
    PREFIX + "ActiveEnergyBurned": ("active_energy", None),
}

#: HKCategoryValueSleepAnalysis values (names, and the raw numbers of old exports) that are
#: sleep, with the stage kept in metadata. InBed (0) overlaps them and Awake (2) is not sleep.
SLEEP_STAGES: Final = {
    "HKCategoryValueSleepAnalysisAsleep": "asleep", "1": "asleep",
    "HKCategoryValueSleepAnalysisAsleepUnspecified": "asleep",
    "HKCategoryValueSleepAnalysisAsleepCore": "core", "3": "core",
    "HKCategoryValueSleepAnalysisAsleepDeep": "deep", "4": "deep",
    "HKCategoryValueSleepAnalysisAsleepREM": "rem", "5": "rem",
}
NOT_SLEEP: Final = {"HKCategoryValueSleepAnalysisInBed": "sleep_in_bed", "0": "sleep_in_bed",
                    "HKCategoryValueSleepAnalysisAwake": "sleep_awake", "2": "sleep_awake"}

#: Metadata keys that describe the measurement and identify nobody. Every other key (vendor
#: user ids, links, sync identifiers, time zones, weather, locations) stays in the file.
KEPT_METADATA: Final = frozenset({
    "HKWasUserEntered", "HKMetadataKeyHeartRateMotionContext", "HKMetadataKeyHeartRateSensorLocation",
    "HKMetadataKeyBloodGlucoseMealTime", "HKBloodGlucoseMealTime",
    "HKMetadataKeyBodyTemperatureSensorLocation", "HKBodyTemperatureSensorLocation",
})

_FRACTION_METRICS: Final = frozenset({"body_fat_percentage", "oxygen_saturation"})
_SAME_UNIT: Final = {"count/min": "/min", "degC": "Cel", "degF": "[degF]", "mmHg": "mm[Hg]"}
_MMOL = re.compile(r"mmol<(\d+(?:\.\d+)?)>/L")


def convert(metric: str, unit: str, value: float) -> tuple[float, str]:
    """The (value, unit) to publish for an Apple ``value`` in ``unit``."""
    if metric in _FRACTION_METRICS and unit == "%":
        return round(value * 100, 9), "%"
    if metric == "body_mass_index" and unit == "count":
        return value, "kg/m2"
    if metric == "steps" and unit == "count":
        return value, "{steps}"
    molar = _MMOL.fullmatch(unit)
    if molar is not None:
        return round(value * float(molar.group(1)) / 10, 9), "mg/dL"
    return value, _SAME_UNIT.get(unit, unit)


def short_type(type_name: str) -> str:
    """``HKQuantityTypeIdentifierVO2Max`` -> ``VO2Max`` (for skip counts; bounded text)."""
    short = re.sub(r"^HK\w*?TypeIdentifier", "", type_name)
    return short if re.fullmatch(r"[A-Za-z0-9]{1,60}", short) else "other"
