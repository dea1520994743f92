"""The rules of the FHIR R4 vital-signs profiles (hl7.org/fhir/R4/observation-vitalsigns.html,
the ``vitalsigns`` StructureDefinition and its ``bp``, ``heartrate``, ... children), written here
from the specification, not from the exporter, as a checker of exported Observations.

:func:`vital_sign_problems` returns every broken rule (empty: conformant). Checked: status;
category ``vital-signs`` with its system; the profile's LOINC code; a subject that is a
``Patient`` reference by pseudonym (64 hex digits); ``effective[x]`` (dateTime of at least day
precision, or a Period with a start); ``valueQuantity`` with value, unit, UCUM system and one
of the profile's UCUM codes; blood pressure (85354-9): no value of its own, exactly one
8480-6 and one 8462-4 component, each a UCUM ``mm[Hg]`` quantity or a ``dataAbsentReason``.
"""

from __future__ import annotations

import re
from typing import Any

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
#: profile LOINC code -> UCUM codes the profile's valueQuantity binding allows
VITAL_CODES: dict[str, set[str]] = {
    "8867-4": {"/min"},  # heart rate
    "9279-1": {"/min"},  # respiratory rate
    "2708-6": {"%"},  # oxygen saturation (the oxygensat profile's code; 59408-5 may follow it)
    "8310-5": {"Cel", "[degF]"},  # body temperature
    "8302-2": {"cm", "[in_i]"},  # body height
    "29463-7": {"kg", "g", "[lb_av]"},  # body weight
    "39156-5": {"kg/m2"},  # BMI
    "85354-9": set(),  # blood pressure panel: components only
}
BP_COMPONENTS = ("8480-6", "8462-4")
_PSEUDONYM = re.compile(r"^Patient/[0-9a-f]{64}$")
_DAY_PRECISION = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _loinc(concept: Any) -> list[str]:
    return [c.get("code") for c in (concept or {}).get("coding", []) if c.get("system") == LOINC]


def _quantity_problems(q: Any, allowed: set[str], where: str) -> list[str]:
    if not isinstance(q, dict):
        return [f"{where}: no valueQuantity"]
    out = [f"{where}: valueQuantity.{k} missing" for k in ("value", "unit", "system", "code") if k not in q]
    if q.get("system") != UCUM:
        out.append(f"{where}: valueQuantity.system is not UCUM")
    if q.get("code") not in allowed:
        out.append(f"{where}: UCUM code {q.get('code')!r} not in {sorted(allowed)}")
    return out


def vital_sign_problems(obs: dict[str, Any]) -> list[str]:
    """Every vital-signs profile rule ``obs`` breaks (``[]`` when it conforms)."""
    problems = []
    if obs.get("resourceType") != "Observation" or not obs.get("status"):
        problems.append("not an Observation with a status")
    if not any(c.get("system") == CATEGORY and c.get("code") == "vital-signs"
               for cat in obs.get("category", []) for c in cat.get("coding", [])):
        problems.append("no vital-signs category coding with the observation-category system")
    codes = [c for c in _loinc(obs.get("code")) if c in VITAL_CODES]
    if len(codes) != 1:
        return [*problems, f"no (single) vital-signs LOINC code: {_loinc(obs.get('code'))}"]
    code = codes[0]
    if not _PSEUDONYM.match((obs.get("subject") or {}).get("reference", "")):
        problems.append("subject is not Patient/<pseudonym>")
    if "effectiveDateTime" in obs:
        if not _DAY_PRECISION.match(obs["effectiveDateTime"]):
            problems.append("effectiveDateTime has less than day precision")
    elif not (obs.get("effectivePeriod") or {}).get("start"):
        problems.append("no effective[x]")
    if code != "85354-9":
        return problems + _quantity_problems(obs.get("valueQuantity"), VITAL_CODES[code], code)
    if "valueQuantity" in obs:
        problems.append("the blood-pressure panel carries a value of its own")
    components = obs.get("component", [])
    for wanted in BP_COMPONENTS:
        found = [c for c in components if wanted in _loinc(c.get("code"))]
        if len(found) != 1:
            problems.append(f"component {wanted} appears {len(found)} times")
        elif "dataAbsentReason" not in found[0]:
            problems += _quantity_problems(found[0].get("valueQuantity"), {"mm[Hg]"}, wanted)
    return problems


def is_vital_sign(obs: dict[str, Any]) -> bool:
    codings = [c for cat in obs.get("category", []) for c in cat.get("coding", [])]
    return any(c.get("code") == "vital-signs" for c in codings)
