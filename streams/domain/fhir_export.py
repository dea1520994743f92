"""Stored readings as FHIR R4 Observations and a searchset Bundle. Pure: no I/O.

Rows are mappings with ``health_readings`` column names. A vital sign (heart rate,
respiratory rate, SpO2, temperature, height, weight, BMI, blood pressure) follows the R4
vital-signs profile: category ``vital-signs`` (with its system), its LOINC code, a UCUM
``valueQuantity`` (``system`` and ``code``), ``effective[x]`` and a pseudonymous subject.
Other metrics keep the same shape with category ``activity`` (steps, sleep, energy) or
``laboratory`` / ``exam``.

Blood pressure is ONE Observation (the ``bp`` profile): code 85354-9, no value of its own,
components 8480-6 (systolic) and 8462-4 (diastolic), each a UCUM ``mm[Hg]`` quantity, built
from the readings of one measurement (:mod:`streams.domain.panels`). A component whose
reading is missing carries ``dataAbsentReason`` ``unknown``, as the profile allows. Its id
is derived from the event ids of both readings.

- ``subject`` is ``Patient/<user_key>``: the pseudonym, never a raw id;
- ``effectiveDateTime`` for an instant, ``effectivePeriod`` for an interval;
- a summary value carries the statistic in :data:`~streams.domain.fhir.STATISTIC_EXTENSION`;
  the source is in :data:`~streams.domain.fhir.SOURCE_EXTENSION`, the device (its stored
  pseudonym) in ``device.display``;
- the Observation id is derived from the event id (a hash: event ids are producer text).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from streams.domain.fhir import LOINC, SOURCE_EXTENSION, STATISTIC_EXTENSION, UCUM
from streams.domain.panels import (
    COMPONENT_LOINC,
    DIASTOLIC,
    PANEL_LOINC,
    PANEL_METRICS,
    SYSTOLIC,
    measurement_id,
    observations,
)
from streams.domain.timestamps import utc_text

CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
_PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/"
#: Vital-sign metrics -> their specific R4 profile (None: only the base vitalsigns profile).
VITAL_SIGNS: Final[Mapping[str, str | None]] = {
    "heart_rate": "heartrate", "respiratory_rate": "resprate", "oxygen_saturation": "oxygensat",
    "body_temperature": "bodytemp", "body_height": "bodyheight", "body_weight": "bodyweight",
    "body_mass_index": "bmi", "blood_pressure": "bp",
}
#: Where a profile fixes another LOINC code than the catalogue's: it comes first, ours second.
PROFILE_CODES: Final = {"oxygen_saturation": "2708-6"}
#: Blood-pressure components: metric -> (LOINC code, display).
COMPONENTS: Final = {SYSTOLIC: (COMPONENT_LOINC[SYSTOLIC], "Systolic blood pressure"),
                     DIASTOLIC: (COMPONENT_LOINC[DIASTOLIC], "Diastolic blood pressure")}
DATA_ABSENT: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
_OTHER_CATEGORY: Final = {"steps": "activity", "sleep_duration": "activity", "active_energy": "activity",
                          "blood_glucose": "laboratory", "body_fat_percentage": "exam"}
_DISPLAY: Final = {"vital-signs": "Vital Signs", "activity": "Activity", "laboratory": "Laboratory",
                   "exam": "Exam"}


def observation_id(event_id: str) -> str:
    """A FHIR id (``[A-Za-z0-9-.]{1,64}``) for a stored reading, stable across exports."""
    return measurement_id([{"event_id": event_id, "metric": ""}])


def observation(row: Mapping[str, Any]) -> dict[str, Any]:
    """One stored reading (not a blood-pressure component) as an R4 Observation (JSON-ready)."""
    metric = row["metric"]
    obs = _common(row, observation_id(row["event_id"]), metric)
    codes = [PROFILE_CODES.get(metric, row["loinc_code"]), row["loinc_code"]]
    obs["code"] = {"coding": [{"system": LOINC, "code": c} for c in dict.fromkeys(codes)], "text": metric}
    _place(obs, row)
    obs["valueQuantity"] = _quantity(row)
    return _with_device(obs, row)


def panel(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The systolic and/or diastolic readings of one measurement as one 85354-9 Observation."""
    by_metric = {r["metric"]: r for r in rows}
    first = rows[0]
    obs = _common(first, measurement_id(rows), "blood_pressure")
    obs["code"] = {"coding": [{"system": LOINC, "code": PANEL_LOINC,
                               "display": "Blood pressure panel with all children optional"}],
                   "text": "blood_pressure"}
    _place(obs, first)
    components = []
    for metric in PANEL_METRICS:
        code, display = COMPONENTS[metric]
        coding = [{"system": LOINC, "code": code, "display": display}]
        component: dict[str, Any] = {"code": {"coding": coding}}
        if metric in by_metric:
            component["valueQuantity"] = _quantity(by_metric[metric])
        else:
            component["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT, "code": "unknown"}]}
        components.append(component)
    obs["component"] = components
    return _with_device(obs, first)


def resources(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every measurement of ``rows`` as an Observation, blood pressure as one panel each."""
    return [panel(group) if group[0]["metric"] in PANEL_METRICS else observation(group[0])
            for group in observations(rows)]


def _common(row: Mapping[str, Any], obs_id: str, metric: str) -> dict[str, Any]:
    category = "vital-signs" if metric in VITAL_SIGNS else _OTHER_CATEGORY.get(metric, "exam")
    obs: dict[str, Any] = {"resourceType": "Observation", "id": obs_id}
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
    })
    return obs


def _place(obs: dict[str, Any], row: Mapping[str, Any]) -> None:
    """Subject and ``effective[x]``, after ``code`` (FHIR's element order)."""
    obs["subject"] = {"reference": f"Patient/{row['user_key']}"}
    until = row.get("measured_until")
    if until is None:
        obs["effectiveDateTime"] = utc_text(row["measured_at"])
    else:
        obs["effectivePeriod"] = {"start": utc_text(row["measured_at"]), "end": utc_text(until)}


def _quantity(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"value": row["value"], "unit": row["unit"], "system": UCUM, "code": row["unit"]}


def _with_device(obs: dict[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    if row.get("device_id"):
        obs["device"] = {"display": row["device_id"]}
    return obs


def searchset(rows: Iterable[Mapping[str, Any]], links: Mapping[str, str], base_url: str) -> dict[str, Any]:
    """A ``searchset`` Bundle of ``rows``; ``links`` maps relation (self, next, previous) -> URL."""
    entries = [{"fullUrl": f"{base_url}/Observation/{obs['id']}", "resource": obs,
                "search": {"mode": "match"}} for obs in resources(rows)]
    return _bundle("searchset", entries, link=[{"relation": rel, "url": url} for rel, url in links.items()])


def collection(rows: Iterable[Mapping[str, Any]], base_url: str) -> dict[str, Any]:
    """A ``collection`` Bundle of ``rows`` as Observations (a subject's export), blood pressure
    as panels like the search. No ``total``: R4 allows it only on a searchset or history (bdl-1)."""
    entries = [{"fullUrl": f"{base_url}/Observation/{obs['id']}", "resource": obs} for obs in resources(rows)]
    return _bundle("collection", entries)


def _bundle(kind: str, entries: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A Bundle; ``entry`` only when there is one (FHIR JSON has no empty arrays)."""
    return {"resourceType": "Bundle", "type": kind, **fields, **({"entry": entries} if entries else {})}
