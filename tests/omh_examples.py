"""Open mHealth data points as test data, written from the published schema files of
github.com/openmhealth/schemas (schema/omh/<name>-<version>.json and the IEEE 1752 files in
schema/ieee they reference), not from the implementation's tables.

For every supported schema version: bodies its schema allows (``ALLOWED``, with what some of
them are stored as in ``EXPECTED``) and forbids (``FORBIDDEN``, with the JSON pointer of the
first violation).
"""

from __future__ import annotations

from typing import Any

AT = "2024-05-01T10:00:00Z"
INSTANT = {"date_time": AT}
INTERVAL = {
    "time_interval": {"start_date_time": "2024-05-01T09:00:00Z", "end_date_time": "2024-05-01T10:00:00Z"}
}


def uv(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit}


# name -> the smallest valid body of its current version (older versions adapt it below)
BODY = {
    "heart-rate": {"heart_rate": uv(61, "beats/min"), "effective_time_frame": INSTANT},
    "step-count": {"step_count": uv(1200, "steps"), "effective_time_frame": INTERVAL},
    "blood-pressure": {
        "systolic_blood_pressure": uv(121, "mmHg"),
        "diastolic_blood_pressure": uv(79, "mmHg"),
        "effective_time_frame": INSTANT,
    },
    "body-weight": {"body_weight": uv(70, "kg"), "effective_time_frame": INSTANT},
    "body-temperature": {"body_temperature": uv(36.6, "C"), "effective_time_frame": INSTANT},
    "oxygen-saturation": {"oxygen_saturation": uv(97, "%"), "effective_time_frame": INSTANT},
    "respiratory-rate": {"respiratory_rate": uv(15, "breaths/min"), "effective_time_frame": INSTANT},
    "blood-glucose": {"blood_glucose": uv(5.5, "mmol/L"), "effective_time_frame": INSTANT},
    "sleep-duration": {"sleep_duration": uv(7.5, "h"), "effective_time_frame": INTERVAL},
    "calories-burned": {"kcal_burned": uv(250, "kcal"), "effective_time_frame": INTERVAL},
    "body-height": {"body_height": uv(70, "in"), "effective_time_frame": INSTANT},
    "body-mass-index": {"body_mass_index": uv(22.5, "kg/m^2"), "effective_time_frame": INSTANT},
    "body-fat-percentage": {"body_fat_percentage": uv(21, "%"), "effective_time_frame": INSTANT},
}
# (name, version, body changes) -> (metric, canonical value, canonical unit) of every reading
ALLOWED = [
    (
        "heart-rate",
        "1.0",
        {
            "effective_time_frame": None,
            "descriptive_statistic": "count",
            "temporal_relationship_to_physical_activity": "at rest",
            "user_notes": "ok",
        },
    ),
    ("blood-glucose", "1.0", {"effective_time_frame": None, "blood_specimen_type": "whole blood",
                               "blood_glucose": uv(95, "mg/dL")}),
    ("blood-glucose", "2.0", {"temporal_relationship_to_sleep": "before sleeping"}),
    ("blood-pressure", "1.0", {"effective_time_frame": None, "position_during_measurement": "sitting"}),
    ("blood-pressure", "2.0", {"body_posture": "standing", "user_notes": "dizzy"}),
    ("body-weight", "1.0", {"effective_time_frame": None}),
    ("body-temperature", "1.0", {"body_temperature": uv(97, "F"), "measurement_location": "oral"}),
    ("body-temperature", "2.0", {"temporal_relationship_to_sleep": "on waking"}),
    ("step-count", "1.0", {"step_count": 6000}),
    ("calories-burned", "1.0", {"activity_name": "walking"}),
    ("heart-rate", "1.1", {"temporal_relationship_to_sleep": "on waking"}),
    ("heart-rate", "2.0", {"descriptive_statistic": "minimum"}),
    ("step-count", "2.0", {"step_count": 1200, "descriptive_statistic": "sum"}),
    ("step-count", "3.0", {}),
    ("blood-pressure", "3.0", {"body_posture": "sitting", "descriptive_statistic": "quartile deviation"}),
    ("blood-pressure", "3.1", {"temporal_relationship_to_physical_activity": "at rest"}),
    ("blood-pressure", "4.0", {"descriptive_statistic": "20th percentile", "body_posture": "lying down"}),
    ("body-weight", "2.0", {"body_weight": uv(154, "lb")}),
    ("body-weight", "3.0", {"body_weight": uv(70500, "g")}),
    ("body-temperature", "3.0", {"body_temperature": uv(98.6, "F"), "measurement_location": "oral"}),
    (
        "body-temperature",
        "4.0",
        {"body_temperature": uv(310.15, "K"), "temporal_relationship_to_sleep": "on waking"},
    ),
    (
        "oxygen-saturation",
        "1.0",
        {
            "effective_time_frame": None,
            "system": "peripheral capillary",
            "supplemental_oxygen_flow_rate": uv(0, "L/min"),
            "measurement_method": "pulse oximetry",
            "pulse": 60,  # 1.0 does not close the body: other properties are allowed
        },
    ),
    (
        "oxygen-saturation",
        "2.0",
        {"system": "peripheral capillary", "supplemental_oxygen_flow_rate": uv(2, "L/min")},
    ),
    ("respiratory-rate", "1.0", {"effective_time_frame": None}),
    ("respiratory-rate", "2.0", {"temporal_relationship_to_physical_activity": "during exercise"}),
    (
        "blood-glucose",
        "3.0",
        {"specimen_source": "capillary blood", "temporal_relationship_to_meal": "fasting"},
    ),
    ("blood-glucose", "4.0", {"blood_glucose": uv(99, "mg/dL"), "descriptive_statistic": "average"}),
    ("sleep-duration", "1.0", {"effective_time_frame": INSTANT}),
    ("sleep-duration", "2.0", {"sleep_duration": uv(27000, "sec"), "descriptive_statistic": "median"}),
    ("calories-burned", "2.0", {"activity_name": "walking"}),
    ("body-height", "1.0", {"effective_time_frame": None, "body_height": uv(1.8, "m")}),
    ("body-height", "2.0", {"body_height": uv(172, "cm")}),
    ("body-mass-index", "1.0", {"effective_time_frame": None, "body_mass_index": uv(22.5, "kg/m2")}),
    ("body-mass-index", "2.0", {}),
    ("body-mass-index", "3.0", {}),
    ("body-fat-percentage", "1.0", {"effective_time_frame": None}),
    ("body-fat-percentage", "2.0", {}),
]
EXPECTED = {
    ("heart-rate", "1.0"): [("heart_rate", 61, "/min")],
    ("step-count", "2.0"): [("steps", 1200, "{steps}")],
    ("blood-pressure", "3.0"): [
        ("blood_pressure_systolic", 121, "mm[Hg]"),
        ("blood_pressure_diastolic", 79, "mm[Hg]"),
    ],
    ("body-weight", "2.0"): [("body_weight", 154 * 0.45359237, "kg")],  # lb -> kg
    ("body-weight", "3.0"): [("body_weight", 70.5, "kg")],
    ("body-temperature", "3.0"): [("body_temperature", 37.0, "Cel")],  # °F -> Cel
    ("body-temperature", "4.0"): [("body_temperature", 37.0, "Cel")],
    ("blood-glucose", "3.0"): [("blood_glucose", 5.5 * 18.016, "mg/dL")],
    ("sleep-duration", "1.0"): [("sleep_duration", 450, "min")],  # hours -> min
    ("sleep-duration", "2.0"): [("sleep_duration", 450, "min")],
    ("calories-burned", "2.0"): [("active_energy", 250, "kcal")],
    ("body-height", "1.0"): [("body_height", 180, "cm")],
    ("body-height", "2.0"): [("body_height", 172, "cm")],
    ("body-mass-index", "3.0"): [("body_mass_index", 22.5, "kg/m2")],
    ("body-fat-percentage", "2.0"): [("body_fat_percentage", 21, "%")],
}
# (name, version, body changes, JSON pointer of the first violation)
FORBIDDEN = [
    ("heart-rate", "1.0", {"heart_rate": uv(61, "bpm")}, "/body/heart_rate/unit"),
    (
        "heart-rate",
        "1.1",
        {"temporal_relationship_to_sleep": "asleep"},
        "/body/temporal_relationship_to_sleep",
    ),
    ("heart-rate", "2.0", {"effective_time_frame": None}, "/body/effective_time_frame"),
    ("heart-rate", "2.0", {"heart_rate": {"unit": "beats/min"}}, "/body/heart_rate/value"),
    ("step-count", "2.0", {}, "/body/step_count"),  # 2.0: a bare number, not a unit-value
    (
        "step-count",
        "2.0",
        {"step_count": 10, "descriptive_statistic": "count"},
        "/body/descriptive_statistic",
    ),
    ("step-count", "3.0", {"effective_time_frame": INSTANT}, "/body/effective_time_frame/time_interval"),
    ("step-count", "3.0", {"step_count": 1200}, "/body/step_count"),
    ("blood-pressure", "3.0", {"body_posture": "kneeling"}, "/body/body_posture"),
    ("blood-pressure", "3.0", {"descriptive_statistic": "mode"}, "/body/descriptive_statistic"),
    (
        "blood-pressure",
        "3.1",
        {"temporal_relationship_to_physical_activity": "asleep"},
        "/body/temporal_relationship_to_physical_activity",
    ),
    ("blood-pressure", "4.0", {"diastolic_blood_pressure": None}, "/body/diastolic_blood_pressure"),
    (
        "blood-pressure",
        "4.0",
        {"effective_time_frame": {"time_interval": {"date": "2024-05-01", "part_of_day": "morning"}}},
        "/body/effective_time_frame/time_interval",
    ),
    ("body-weight", "2.0", {"body_weight": uv(11, "stone")}, "/body/body_weight/unit"),
    ("body-weight", "3.0", {"effective_time_frame": None}, "/body/effective_time_frame"),
    ("body-temperature", "3.0", {"measurement_location": "ear"}, "/body/measurement_location"),
    ("body-temperature", "4.0", {"body_temperature": uv(37, "Cel")}, "/body/body_temperature/unit"),
    ("oxygen-saturation", "1.0", {"system": "peripheral"}, "/body/system"),
    (
        "oxygen-saturation",
        "1.0",
        {"supplemental_oxygen_flow_rate": uv(2, "LPM")},
        "/body/supplemental_oxygen_flow_rate/unit",
    ),
    ("oxygen-saturation", "2.0", {"system": "peripheral"}, "/body/system"),
    ("respiratory-rate", "1.0", {"respiratory_rate": uv(15, "/min")}, "/body/respiratory_rate/unit"),
    ("respiratory-rate", "2.0", {"effective_time_frame": None}, "/body/effective_time_frame"),
    ("blood-glucose", "3.0", {"specimen_source": "blood"}, "/body/specimen_source"),
    (
        "blood-glucose",
        "4.0",
        {"temporal_relationship_to_meal": "lunch"},
        "/body/temporal_relationship_to_meal",
    ),
    ("sleep-duration", "1.0", {"sleep_duration": uv(1, "d")}, "/body/sleep_duration/unit"),
    ("sleep-duration", "2.0", {"effective_time_frame": INSTANT}, "/body/effective_time_frame/time_interval"),
    ("calories-burned", "2.0", {"effective_time_frame": INSTANT}, "/body/effective_time_frame/time_interval"),
    ("calories-burned", "2.0", {"kcal_burned": uv(250, "Cal")}, "/body/kcal_burned/unit"),
    ("calories-burned", "1.0", {"kcal_burned": uv(250, "J")}, "/body/kcal_burned/unit"),
    ("blood-glucose", "1.0", {"blood_specimen_type": "urine"}, "/body/blood_specimen_type"),
    ("blood-glucose", "2.0", {"blood_glucose": uv(95, "mg/dl")}, "/body/blood_glucose/unit"),
    ("blood-pressure", "1.0", {"systolic_blood_pressure": uv(120, "kPa")},
     "/body/systolic_blood_pressure/unit"),
    ("blood-pressure", "2.0", {"body_posture": "kneeling"}, "/body/body_posture"),
    ("body-weight", "1.0", {"body_weight": {"value": 70}}, "/body/body_weight/unit"),
    ("body-temperature", "1.0", {"body_temperature": uv(37, "Cel")}, "/body/body_temperature/unit"),
    ("body-temperature", "2.0", {"temporal_relationship_to_sleep": "asleep"},
     "/body/temporal_relationship_to_sleep"),
    ("step-count", "1.0", {"step_count": "6000"}, "/body/step_count"),
    ("body-mass-index", "1.0", {"body_mass_index": uv(22.5, "kg/m^2")}, "/body/body_mass_index/unit"),
    ("body-height", "1.0", {"body_height": uv(70, "inch")}, "/body/body_height/unit"),
    ("body-height", "2.0", {"effective_time_frame": None}, "/body/effective_time_frame"),
    ("body-mass-index", "2.0", {"body_mass_index": uv(22.5, "kg/m2")}, "/body/body_mass_index/unit"),
    ("body-mass-index", "3.0", {"effective_time_frame": None}, "/body/effective_time_frame"),
    (
        "body-fat-percentage",
        "1.0",
        {"body_fat_percentage": uv(21, "percent")},
        "/body/body_fat_percentage/unit",
    ),
    ("body-fat-percentage", "2.0", {"effective_time_frame": None}, "/body/effective_time_frame"),
]


def data_point(name: str, version: str, changes: dict[str, Any] | None = None, **header: Any) -> dict:
    body = {**BODY[name], **(changes or {})}
    body = {k: v for k, v in body.items() if v is not None}
    head = {
        "id": f"dp-{name}-{version}",
        "creation_date_time": "2024-05-01T11:00:00Z",
        "schema_id": {"namespace": "omh", "name": name, "version": version},
        "user_id": "omh-user-1",
        **header,
    }
    return {"header": head, "body": body}
