"""Stored readings as FHIR R4 Observations and a searchset Bundle. Pure: no I/O.

Rows are mappings with ``health_readings`` column names. A vital sign (heart rate,
respiratory rate, SpO2, temperature, height, weight, BMI, systolic and diastolic pressure)
follows the R4 vital-signs profile: category ``vital-signs``, its LOINC code, a UCUM
``valueQuantity``, ``effective[x]`` and a subject. Other metrics keep the same shape with
category ``activity`` (steps, sleep, energy) or ``laboratory`` / ``exam``.

- ``subject`` is ``Patient/<user_key>``: the pseudonym, never a raw id;
- ``effectiveDateTime`` for an instant, ``effectivePeriod`` for an interval;
- a summary value carries the statistic in :data:`~streams.domain.fhir.STATISTIC_EXTENSION`;
  the source is in :data:`~streams.domain.fhir.SOURCE_EXTENSION`, the device (its stored
  pseudonym) in ``device.display``;
- the Observation id is derived from the event id (a hash: event ids are producer text).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from streams.domain.fhir import LOINC, SOURCE_EXTENSION, STATISTIC_EXTENSION, UCUM

CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
_PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/"
#: Vital-sign metrics -> their specific R4 profile (None: only the base vitalsigns profile).
VITAL_SIGNS: Final[Mapping[str, str | None]] = {
    "heart_rate": "heartrate", "respiratory_rate": "resprate", "oxygen_saturation": "oxygensat",
    "body_temperature": "bodytemp", "body_height": "bodyheight", "body_weight": "bodyweight",
    "body_mass_index": "bmi", "blood_pressure_systolic": None, "blood_pressure_diastolic": None,
}
_OTHER_CATEGORY: Final = {"steps": "activity", "sleep_duration": "activity", "active_energy": "activity",
                          "blood_glucose": "laboratory", "body_fat_percentage": "exam"}
_DISPLAY: Final = {"vital-signs": "Vital Signs", "activity": "Activity", "laboratory": "Laboratory",
                   "exam": "Exam"}


def observation_id(event_id: str) -> str:
    """A FHIR id (``[A-Za-z0-9-.]{1,64}``) for a stored reading, stable across exports."""
    return hashlib.sha256(event_id.encode()).hexdigest()[:40]


def observation(row: Mapping[str, Any]) -> dict[str, Any]:
    """One stored reading as an R4 Observation (JSON-ready dict)."""
    metric = row["metric"]
    category = "vital-signs" if metric in VITAL_SIGNS else _OTHER_CATEGORY.get(metric, "exam")
    obs: dict[str, Any] = {"resourceType": "Observation", "id": observation_id(row["event_id"])}
    if metric in VITAL_SIGNS:
        specific = VITAL_SIGNS[metric]
        obs["meta"] = {"profile": [_PROFILE + "vitalsigns", *([_PROFILE + specific] if specific else [])]}
    extensions = [{"url": SOURCE_EXTENSION, "valueString": row["source"]}]
    if row.get("statistic"):
        extensions.append({"url": STATISTIC_EXTENSION, "valueCode": row["statistic"]})
    obs.update({
        "extension": extensions,
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": category,
                                  "display": _DISPLAY[category]}]}],
        "code": {"coding": [{"system": LOINC, "code": row["loinc_code"]}], "text": metric},
        "subject": {"reference": f"Patient/{row['user_key']}"},
    })
    until = row.get("measured_until")
    if until is None:
        obs["effectiveDateTime"] = _instant(row["measured_at"])
    else:
        obs["effectivePeriod"] = {"start": _instant(row["measured_at"]), "end": _instant(until)}
    obs["valueQuantity"] = {"value": row["value"], "unit": row["unit"], "system": UCUM, "code": row["unit"]}
    if row.get("device_id"):
        obs["device"] = {"display": row["device_id"]}
    return obs


def searchset(rows: Iterable[Mapping[str, Any]], links: Mapping[str, str], base_url: str) -> dict[str, Any]:
    """A ``searchset`` Bundle of ``rows``; ``links`` maps relation (self, next, previous) -> URL."""
    entries = []
    for row in rows:
        obs = observation(row)
        entries.append({"fullUrl": f"{base_url}/Observation/{obs['id']}", "resource": obs,
                        "search": {"mode": "match"}})
    return {"resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": rel, "url": url} for rel, url in links.items()], "entry": entries}


def collection(rows: Iterable[Mapping[str, Any]], base_url: str) -> dict[str, Any]:
    """A ``collection`` Bundle of ``rows`` as Observations (a subject's export)."""
    entries = []
    for row in rows:
        obs = observation(row)
        entries.append({"fullUrl": f"{base_url}/Observation/{obs['id']}", "resource": obs})
    return {"resourceType": "Bundle", "type": "collection", "total": len(entries), "entry": entries}


def _instant(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
