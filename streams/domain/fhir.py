"""FHIR R4 Observations (alone or in a Bundle) to reading members. Pure: no I/O.

Resources are validated with ``fhir.resources`` (its R4B models: FHIR 4.3, whose
Observation and Bundle are the R4 ones with R4-compatible JSON; the library's 8.x line has
no 4.0.1 package). A Bundle's entries are judged one by one, like the members of an
envelope: a bad entry is dead-lettered alone, with that entry's resource as the payload.

Mapping of one Observation:

- ``status`` must be ``final``, ``amended`` or ``corrected`` (else ``unsupported_schema``);
- the metric comes from the first ``code.coding`` with system ``http://loinc.org`` whose
  code is a catalogue metric's LOINC code (else ``unknown_metric``); a ``component`` with
  such a code and a ``valueQuantity`` is a reading of its own (blood pressure 85354-9
  carries 8480-6 and 8462-4), its event id ``<id>#<code>``, its ``metadata`` ``panel_id`` the
  Observation's event id (so that the panel is exported as one: :mod:`streams.domain.panels`);
- the value is ``valueQuantity.value`` in its UCUM ``code`` (``unit`` when there is no code);
- ``effectiveDateTime`` / ``effectiveInstant`` is the instant, ``effectivePeriod`` the interval;
  a dateTime of date precision (``1999-07-02``) is that UTC day as an interval;
- the user is the id of ``subject.reference`` (``Patient/<id>``), else the message key;
  the device is ``device.display`` or ``device.reference``; the source is ``"fhir"``;
- the event id is the resource ``id``, else its first ``identifier.value``, else the
  entry's ``fullUrl``;
- our own export's statistic extension (:data:`STATISTIC_EXTENSION`) is read back.

A resource that fails FHIR validation is ``schema_violation`` with the JSON pointer of the
first error (``/status``); a resourceType other than Observation or Bundle is
``unsupported_schema``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Final

import pydantic
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from streams.domain.catalogue import MetricRule
from streams.domain.decode import dumps_member
from streams.domain.mapped import Mapped, shown, violation
from streams.domain.panels import PANEL_ID
from streams.errors import Rejected, RejectReason

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
SOURCE: Final = "fhir"
STORED_STATUSES: Final = frozenset({"final", "amended", "corrected"})
#: R4 ObservationStatus (a required binding, which fhir.resources does not check).
OBSERVATION_STATUSES: Final = STORED_STATUSES | {"registered", "preliminary", "cancelled", "entered-in-error",
                                                 "unknown"}
STATISTIC_EXTENSION: Final = "https://healthmate.example/fhir/StructureDefinition/descriptive-statistic"
SOURCE_EXTENSION: Final = "https://healthmate.example/fhir/StructureDefinition/source"
RESOURCE_TYPES: Final = ("Observation", "Bundle")
_DATE_PRECISION = re.compile(r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$")


def is_resource(doc: Mapping[str, Any]) -> bool:
    """Whether a decoded message is a FHIR resource (and so judged here)."""
    return "resourceType" in doc


def map_resource(doc: Mapping[str, Any], key_user: str | None,
                 catalogue: Mapping[str, MetricRule]) -> list[Mapped]:
    """One :class:`Mapped` for an Observation, one per entry for a Bundle; never raises."""
    by_loinc = {rule.loinc_code: name for name, rule in catalogue.items()}
    kind = doc.get("resourceType")
    if kind == "Bundle":
        return _bundle(doc, key_user, by_loinc)
    if kind == "Observation":
        return [_judged(doc, key_user, by_loinc, None, "", None)]
    what = shown(kind) if kind.__class__ is str else "of this type"
    return [Mapped.rejected(Rejected(RejectReason.UNSUPPORTED_SCHEMA,
                                     f"FHIR resourceType {what} is not supported (Observation or Bundle)"),
                            SOURCE)]


def _bundle(doc: Mapping[str, Any], key_user: str | None, by_loinc: Mapping[str, str]) -> list[Mapped]:
    entries = doc.get("entry", [])
    try:
        _validate(Bundle, {k: v for k, v in doc.items() if k != "entry"}, "")
        if entries.__class__ is not list:
            raise violation("/entry", "must be an array")
    except Rejected as exc:
        return [Mapped.rejected(exc, SOURCE)]
    out = []
    for i, entry in enumerate(entries):
        ptr = f"/entry/{i}"
        resource = entry.get("resource") if entry.__class__ is dict else None
        payload = dumps_member(resource if resource is not None else entry)
        if resource.__class__ is not dict:
            out.append(Mapped.rejected(violation(ptr + "/resource", "must be an object"), SOURCE, payload))
            continue
        full_url = entry.get("fullUrl")
        out.append(_judged(resource, key_user, by_loinc, payload, ptr + "/resource",
                           full_url if full_url.__class__ is str else None))
    return out


def _judged(res: Mapping[str, Any], key_user: str | None, by_loinc: Mapping[str, str],
            payload: bytes | None, ptr: str, fallback_id: str | None) -> Mapped:
    try:
        return _observation(res, key_user, by_loinc, payload, ptr, fallback_id)
    except Rejected as exc:
        return Mapped.rejected(exc, SOURCE, payload)


def _observation(res: Mapping[str, Any], key_user: str | None, by_loinc: Mapping[str, str],
                 payload: bytes | None, ptr: str, fallback_id: str | None) -> Mapped:
    if res.get("resourceType") != "Observation":
        raise Rejected(RejectReason.UNSUPPORTED_SCHEMA, "only Observation entries are supported")
    obs = _validate(Observation, res, ptr)
    if obs.status not in OBSERVATION_STATUSES:
        raise violation(ptr + "/status", "is not an R4 observation status")
    if obs.status not in STORED_STATUSES:
        raise Rejected(RejectReason.UNSUPPORTED_SCHEMA,
                       f"Observation status {shown(str(obs.status))} is not stored "
                       "(only final, amended, corrected)")
    event_id = obs.id or next((i.value for i in obs.identifier or () if i.value), None) or fallback_id
    start, end = _effective(res)
    statistic = next((e.valueCode for e in obs.extension or () if e.url == STATISTIC_EXTENSION), None)
    base = {"timestamp": start, "timestamp_end": end, "statistic": statistic,
            "metadata": {"fhir_status": obs.status}}
    members = []
    metric, _ = _metric(res.get("code"), by_loinc)
    if metric is not None and "valueQuantity" in res:
        members.append({**base, "event_id": event_id, "metric": metric, **_quantity(res["valueQuantity"])})
    for comp in res.get("component") or ():
        comp_metric, code = _metric(comp.get("code"), by_loinc)
        if comp_metric is not None and "valueQuantity" in comp:
            members.append({**base, "event_id": None if event_id is None else f"{event_id}#{code}",
                            "metric": comp_metric, **_quantity(comp["valueQuantity"]),
                            "metadata": {**base["metadata"], **_panel(event_id)}})
    if not members:
        if metric is not None:
            raise Rejected(RejectReason.MISSING_FIELD, "the Observation has no valueQuantity")
        raise Rejected(RejectReason.UNKNOWN_METRIC, "no LOINC code of the Observation is in the catalogue")
    subject = obs.subject.reference if obs.subject is not None else None
    user_id = subject.rsplit("/", 1)[-1] if subject and subject.startswith("Patient/") else subject
    device = obs.device.display or obs.device.reference if obs.device is not None else None
    return Mapped(user_id or key_user, device, SOURCE, members, payload)


def _panel(event_id: str | None) -> dict[str, str]:
    """The components of one Observation are one measurement (:mod:`streams.domain.panels`)."""
    return {} if event_id is None else {PANEL_ID: event_id}


def _validate(model: type[pydantic.BaseModel], res: Mapping[str, Any], ptr: str) -> Any:
    try:
        return model.model_validate(res)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = "".join(f"/{p}" for p in first["loc"] if p != "__root__")
        raise violation(ptr + where, f"fails FHIR R4 validation ({first['type']})") from None
    except (ValueError, TypeError):
        raise violation(ptr, "fails FHIR R4 validation") from None


def _metric(code: Any, by_loinc: Mapping[str, str]) -> tuple[str | None, str | None]:
    """``(metric, LOINC code)`` of the first LOINC coding in the catalogue, else ``(None, None)``."""
    for coding in code.get("coding") or () if code.__class__ is dict else ():
        if coding.get("system") == LOINC and coding.get("code") in by_loinc:
            return by_loinc[coding["code"]], coding["code"]
    return None, None


def _quantity(q: Mapping[str, Any]) -> dict[str, Any]:
    return {"value": q.get("value"), "unit": q.get("code") or q.get("unit")}


def _effective(res: Mapping[str, Any]) -> tuple[Any, Any]:
    """The effective[x] strings as given, so that the common timestamp rules judge them.

    A FHIR dateTime of date precision (``1999-07-02``, ``1999-07``, ``1999``) has neither a
    time nor a zone; it becomes the interval of that UTC day, month or year.
    """
    if "effectiveDateTime" in res:
        return _partial(res["effectiveDateTime"])
    if "effectiveInstant" in res:
        return res["effectiveInstant"], None
    period = res.get("effectivePeriod")
    if period.__class__ is dict:
        start = _partial(period.get("start"))[0]
        last = _partial(period.get("end"))
        end = last[0] if last[1] is None else last[1]
        return (start, end) if start is not None else (end, None)
    return None, None


def _partial(value: Any) -> tuple[Any, Any]:
    """``(start, end)`` of a date-precision value; ``(value, None)`` for anything else."""
    if value.__class__ is not str or not _DATE_PRECISION.match(value):
        return value, None
    year, month, day = (int(p) for p in (value.split("-") + ["1", "1"])[:3])
    start = date(year, month, day)
    if value.count("-") == 2:
        end = start + timedelta(days=1)
    elif value.count("-") == 1:
        end = date(year + month // 12, month % 12 + 1, 1)
    else:
        end = date(year + 1, 1, 1)
    return f"{start.isoformat()}T00:00:00Z", f"{end.isoformat()}T00:00:00Z"
