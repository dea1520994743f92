"""The vital-signs examples of the FHIR R4 specification (hl7.org/fhir/R4), as test data.

Copied from observation-example-heart-rate, -bloodpressure, -body-weight,
-body-temperature, -satO2, -respiratory-rate, -body-height and -bmi (narrative ``text`` left
out; the values of the last two checked against HL7/fhir ``source/observation/*.xml``), with
what each must be stored as: (event id, metric, canonical value, canonical unit).
"""

from __future__ import annotations

from typing import Any

_VS = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs",
                "display": "Vital Signs",
            }
        ],
        "text": "Vital Signs",
    }
]
_PROFILE = {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]}


def _loinc(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display}


HEART_RATE = {
    "resourceType": "Observation",
    "id": "heart-rate",
    "meta": _PROFILE,
    "status": "final",
    "category": _VS,
    "code": _loinc("8867-4", "Heart rate"),
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "1999-07-02",
    "valueQuantity": {
        "value": 44,
        "unit": "beats/minute",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    },
}
BLOOD_PRESSURE = {
    "resourceType": "Observation",
    "id": "blood-pressure",
    "meta": _PROFILE,
    "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:187e0c12-8dd2-67e2-99b2-bf273c878281"}],
    "basedOn": [{"identifier": {"system": "https://acme.org/identifiers", "value": "1234"}}],
    "status": "final",
    "category": _VS,
    "code": {
        "coding": [
            {
                "system": "http://loinc.org",
                "code": "85354-9",
                "display": "Blood pressure panel with all children optional",
            }
        ],
        "text": "Blood pressure systolic & diastolic",
    },
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "2012-09-17",
    "performer": [{"reference": "Practitioner/example"}],
    "interpretation": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    "code": "L",
                    "display": "low",
                }
            ],
            "text": "Below low normal",
        }
    ],
    "bodySite": {
        "coding": [{"system": "http://snomed.info/sct", "code": "368209003", "display": "Right arm"}]
    },
    "component": [
        {
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"},
                    {
                        "system": "http://snomed.info/sct",
                        "code": "271649006",
                        "display": "Systolic blood pressure",
                    },
                    {
                        "system": "http://acme.org/devices/clinical-codes",
                        "code": "bp-s",
                        "display": "Systolic Blood pressure",
                    },
                ]
            },
            "valueQuantity": {
                "value": 107,
                "unit": "mmHg",
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
            "interpretation": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                            "code": "N",
                            "display": "normal",
                        }
                    ],
                    "text": "Normal",
                }
            ],
        },
        {
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}
                ]
            },
            "valueQuantity": {
                "value": 60,
                "unit": "mmHg",
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
            "interpretation": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                            "code": "L",
                            "display": "low",
                        }
                    ],
                    "text": "Below low normal",
                }
            ],
        },
    ],
}
BODY_WEIGHT = {
    "resourceType": "Observation",
    "id": "body-weight",
    "meta": _PROFILE,
    "status": "final",
    "category": _VS,
    "code": {
        "coding": [
            {"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"},
            {"system": "http://loinc.org", "code": "3141-9", "display": "Body weight Measured"},
            {"system": "http://snomed.info/sct", "code": "27113001", "display": "Body weight"},
            {
                "system": "http://acme.org/devices/clinical-codes",
                "code": "body-weight",
                "display": "Body Weight",
            },
        ]
    },
    "subject": {"reference": "Patient/example"},
    "encounter": {"reference": "Encounter/example"},
    "effectiveDateTime": "2016-03-28",
    "valueQuantity": {"value": 185, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"},
}
BODY_TEMPERATURE = {
    "resourceType": "Observation",
    "id": "body-temperature",
    "meta": _PROFILE,
    "status": "final",
    "category": _VS,
    "code": _loinc("8310-5", "Body temperature"),
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "1999-07-02",
    "valueQuantity": {"value": 36.5, "unit": "C", "system": "http://unitsofmeasure.org", "code": "Cel"},
}
OXYGEN_SATURATION = {
    "resourceType": "Observation",
    "id": "satO2",
    "meta": _PROFILE,
    "identifier": [{"system": "http://goodcare.org/observation/id", "value": "o1223435-10"}],
    "partOf": [{"reference": "Procedure/ob"}],
    "status": "final",
    "category": _VS,
    "code": {
        "coding": [
            {
                "system": "http://loinc.org",
                "code": "2708-6",
                "display": "Oxygen saturation in Arterial blood",
            },
            {
                "system": "http://loinc.org",
                "code": "59408-5",
                "display": "Oxygen saturation in Arterial blood by Pulse oximetry",
            },
            {"system": "urn:iso:std:iso:11073:10101", "code": "150456", "display": "MDC_PULS_OXIM_SAT_O2"},
        ]
    },
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "2014-12-05T09:30:10+01:00",
    "valueQuantity": {"value": 95, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    "interpretation": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    "code": "N",
                    "display": "Normal",
                }
            ],
            "text": "Normal (applies to non-numeric results)",
        }
    ],
    "device": {"reference": "DeviceMetric/example"},
    "referenceRange": [
        {
            "low": {"value": 90, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
            "high": {"value": 99, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
        }
    ],
}
RESPIRATORY_RATE = {
    "resourceType": "Observation",
    "id": "respiratory-rate",
    "meta": _PROFILE,
    "status": "final",
    "category": _VS,
    "code": _loinc("9279-1", "Respiratory rate"),
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "1999-07-02",
    "valueQuantity": {
        "value": 26,
        "unit": "breaths/minute",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    },
}

#: example -> the readings it is stored as: (event id, metric, canonical value, unit)
BODY_HEIGHT = {
    "resourceType": "Observation",
    "id": "body-height",
    "meta": _PROFILE,
    "status": "final",
    "category": _VS,
    "code": _loinc("8302-2", "Body height"),
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "1999-07-02",
    "valueQuantity": {"value": 66.899999999999991, "unit": "in", "system": "http://unitsofmeasure.org",
                      "code": "[in_i]"},
}
BMI = {
    "resourceType": "Observation",
    "id": "bmi",
    "meta": _PROFILE,
    "status": "final",
    "category": _VS,
    "code": {"coding": [{"system": "http://loinc.org", "code": "39156-5",
                         "display": "Body mass index (BMI) [Ratio]"}], "text": "BMI"},
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "1999-07-02",
    "valueQuantity": {"value": 16.2, "unit": "kg/m2", "system": "http://unitsofmeasure.org", "code": "kg/m2"},
}
EXPECTED = [
    (HEART_RATE, [("heart-rate", "heart_rate", 44.0, "/min")]),
    (
        BLOOD_PRESSURE,
        [
            ("blood-pressure#8480-6", "blood_pressure_systolic", 107.0, "mm[Hg]"),
            ("blood-pressure#8462-4", "blood_pressure_diastolic", 60.0, "mm[Hg]"),
        ],
    ),
    (BODY_WEIGHT, [("body-weight", "body_weight", 185 * 0.45359237, "kg")]),
    (BODY_TEMPERATURE, [("body-temperature", "body_temperature", 36.5, "Cel")]),
    (OXYGEN_SATURATION, [("satO2", "oxygen_saturation", 95.0, "%")]),
    (RESPIRATORY_RATE, [("respiratory-rate", "respiratory_rate", 26.0, "/min")]),
    (BODY_HEIGHT, [("body-height", "body_height", 66.899999999999991 * 2.54, "cm")]),
    (BMI, [("bmi", "body_mass_index", 16.2, "kg/m2")]),
]
