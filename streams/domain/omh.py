"""Open mHealth (IEEE 1752.1) data points to reading members. Pure: no I/O.

A data point is ``{"header": {...}, "body": {...}}`` (``omh:data-point:1.0``). The header
(``omh:header:1.1``) needs ``id`` (or ``uuid``), ``creation_date_time`` and ``schema_id``
``{"namespace": "omh", "name", "version"}``; ``user_id`` and ``acquisition_provenance``
(``source_name`` required, ``modality`` sensed or self-reported) are optional.

The body is judged by its official JSON Schema (:mod:`streams.domain.omh_schema`): every
published version of the 13 supported schemas (:data:`VERSIONS`). The first violation raises
``schema_violation`` naming its JSON pointer (``/body/heart_rate/unit``); an unknown
namespace, name or version raises ``unsupported_schema``.

Mapping of a valid body: the header id is the ``event_id`` (blood pressure gives two
readings, ``<id>#systolic`` and ``<id>#diastolic``, one panel: see
:mod:`streams.domain.panels`); the user is the header's ``user_id``, else the message key;
the source is ``acquisition_provenance.source_name``, else ``"omh"``. A ``date_time`` is the
reading's instant; an interval gives ``timestamp`` and ``timestamp_end``. Where a schema
lets the time frame out, the reading is placed at
``acquisition_provenance.source_creation_date_time``, else the header's
``creation_date_time``. The body's context (posture, relationship to meal or sleep,
measurement location, ...) goes to ``metadata`` with the schema id.

Bodies the schema accepts that cannot be a true, placed measurement are refused with
their own reason (the list is in docs/reference/standard-forms.md): an interval that ends
before it starts (``reversed_interval``, by the common checks), an interval given as date +
part of day (no time zone: ``naive_timestamp``), a duration in months or years (no fixed
length: ``unknown_unit``), and whatever the common checks refuse for every form (range,
future, units the catalogue does not convert).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from streams.domain.mapped import Mapped, shown, violation
from streams.domain.omh_schema import body_judge, defined_properties
from streams.domain.panels import PANEL_ID
from streams.domain.timestamps import parse_timestamp
from streams.errors import Rejected, RejectReason

SOURCE_DEFAULT: Final = "omh"
_MODALITY = frozenset({"sensed", "self-reported"})
#: duration-unit-value: unit -> seconds; months and years have no fixed length.
_DURATION_S: Final = {"ps": 1e-12, "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "sec": 1, "min": 60, "h": 3600,
                      "d": 86400, "wk": 604800, "Mo": None, "yr": None}
#: Body properties kept in ``metadata`` when the schema defines them (strings only).
CONTEXT: Final = ("body_posture", "position_during_measurement", "measurement_location",
                  "temporal_relationship_to_physical_activity", "temporal_relationship_to_sleep",
                  "temporal_relationship_to_meal", "specimen_source", "blood_specimen_type", "system",
                  "measurement_method", "oxygen_therapy_mode_of_administration")


@dataclass(frozen=True, slots=True)
class Quantity:
    """A measured property of the body: a unit-value, or (``bare_unit`` set) a bare number."""

    prop: str
    metric: str
    bare_unit: str | None = None
    suffix: str = ""


def _one(prop: str, metric: str) -> tuple[Quantity, ...]:
    return (Quantity(prop, metric),)


#: name -> what its body carries (the same in every version).
QUANTITIES: Final[Mapping[str, tuple[Quantity, ...]]] = {
    "heart-rate": _one("heart_rate", "heart_rate"),
    "step-count": (Quantity("step_count", "steps", bare_unit="steps"),),  # 1.0, 2.0: a bare number
    "blood-pressure": (Quantity("systolic_blood_pressure", "blood_pressure_systolic", suffix="#systolic"),
                       Quantity("diastolic_blood_pressure", "blood_pressure_diastolic", suffix="#diastolic")),
    "body-weight": _one("body_weight", "body_weight"),
    "body-temperature": _one("body_temperature", "body_temperature"),
    "oxygen-saturation": _one("oxygen_saturation", "oxygen_saturation"),
    "respiratory-rate": _one("respiratory_rate", "respiratory_rate"),
    "blood-glucose": _one("blood_glucose", "blood_glucose"),
    "sleep-duration": _one("sleep_duration", "sleep_duration"),
    "calories-burned": _one("kcal_burned", "active_energy"),
    "body-height": _one("body_height", "body_height"),
    "body-mass-index": _one("body_mass_index", "body_mass_index"),
    "body-fat-percentage": _one("body_fat_percentage", "body_fat_percentage"),
}
#: name -> every published version (openmhealth/schemas 36078a8), oldest first.
VERSIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "heart-rate": ("1.0", "1.1", "2.0"), "step-count": ("1.0", "2.0", "3.0"),
    "blood-pressure": ("1.0", "2.0", "3.0", "3.1", "4.0"), "body-weight": ("1.0", "2.0", "3.0"),
    "body-temperature": ("1.0", "2.0", "3.0", "4.0"), "oxygen-saturation": ("1.0", "2.0"),
    "respiratory-rate": ("1.0", "2.0"), "blood-glucose": ("1.0", "2.0", "3.0", "4.0"),
    "sleep-duration": ("1.0", "2.0"), "calories-burned": ("1.0", "2.0"), "body-height": ("1.0", "2.0"),
    "body-mass-index": ("1.0", "2.0", "3.0"), "body-fat-percentage": ("1.0", "2.0"),
}
#: ``omh:<name>:<version>`` of every supported body schema, sorted.
SUPPORTED_SCHEMA_IDS: Final = tuple(sorted(f"omh:{n}:{v}" for n, vs in VERSIONS.items() for v in vs))


def is_data_point(doc: Mapping[str, Any]) -> bool:
    """Whether a decoded message is shaped like a data point (and so judged here)."""
    return "header" in doc and "body" in doc


def map_data_point(doc: Mapping[str, Any], key_user: str | None) -> Mapped:
    """The readings of one data point; a broken or unsupported one becomes ``Mapped.error``."""
    try:
        return _map(doc, key_user)
    except Rejected as exc:
        return Mapped.rejected(exc, _source_of(doc))


def _map(doc: Mapping[str, Any], key_user: str | None) -> Mapped:
    header = _object(doc.get("header"), "/header")
    event_id = header.get("id", header.get("uuid"))
    if event_id is None:
        raise violation("/header/id", "required property is missing")
    _string(event_id, "/header/id" if "id" in header else "/header/uuid")
    created = _string(_required(header, "creation_date_time", "/header"), "/header/creation_date_time")
    sid = _object(_required(header, "schema_id", "/header"), "/header/schema_id")
    namespace, name, version = (_string(_required(sid, k, "/header/schema_id"), f"/header/schema_id/{k}")
                                for k in ("namespace", "name", "version"))
    user_id = header.get("user_id")
    if user_id.__class__ is int:  # as in every form: 1 is the user "1"
        user_id = str(user_id)
    elif user_id is not None:
        _string(user_id, "/header/user_id")
    source, source_created = SOURCE_DEFAULT, None
    provenance = header.get("acquisition_provenance")
    if provenance is not None:
        provenance = _object(provenance, "/header/acquisition_provenance")
        source = _string(_required(provenance, "source_name", "/header/acquisition_provenance"),
                         "/header/acquisition_provenance/source_name")
        if "modality" in provenance:
            _enum(provenance, "modality", _MODALITY, "/header/acquisition_provenance")
        if "source_creation_date_time" in provenance:
            source_created = _string(provenance["source_creation_date_time"],
                                     "/header/acquisition_provenance/source_creation_date_time")
    if namespace != "omh" or version not in VERSIONS.get(name, ()):
        raise Rejected(RejectReason.UNSUPPORTED_SCHEMA,
                       f"schema {shown(namespace)}:{shown(name)}:{shown(version)} is not supported")
    body = _object(doc.get("body"), "/body")
    body_judge(name, version)(body)
    members = _members(body, name, version, event_id, source_created or created)
    for m in members:
        m["metadata"] = {"omh_schema": f"omh:{name}:{version}", **m["metadata"]}
    return Mapped(user_id or key_user, None, source, members)


def _members(body: Mapping[str, Any], name: str, version: str, event_id: str,
             fallback_time: str) -> list[dict]:
    """The readings of a body its schema accepts (so every shape below is guaranteed)."""
    defined = defined_properties(name, version)
    context: dict[str, Any] = {k: body[k] for k in CONTEXT if k in defined and body.get(k).__class__ is str}
    statistic = body.get("descriptive_statistic") if "descriptive_statistic" in defined else None
    if len(QUANTITIES[name]) > 1:  # blood pressure: one measurement
        context[PANEL_ID] = event_id
    frame = body.get("effective_time_frame")
    start, end = (fallback_time, None) if frame is None else _time_frame(frame)
    out = []
    for q in QUANTITIES[name]:
        raw = body[q.prop]
        value, unit = (raw["value"], raw["unit"]) if raw.__class__ is dict else (raw, q.bare_unit)
        out.append({"event_id": event_id + q.suffix, "metric": q.metric, "value": value, "unit": unit,
                    "timestamp": start, "timestamp_end": end, "statistic": statistic,
                    "metadata": dict(context)})
    return out


def _time_frame(frame: Mapping[str, Any]) -> tuple[str, str | None]:
    """``(start, end)`` of a schema-valid time frame; refuses the forms that cannot be placed."""
    if "date_time" in frame:  # RFC 3339 allows "t" and "z"; Python's parser wants them upper-case
        return frame["date_time"].upper(), None
    interval = {k: v.upper() if k.endswith("date_time") else v for k, v in frame["time_interval"].items()}
    if "date" in interval:
        raise Rejected(RejectReason.NAIVE_TIMESTAMP, "a time interval given as date and part of day has no "
                                                     "time zone")
    if "duration" not in interval:
        return interval["start_date_time"], interval["end_date_time"]
    value, unit = interval["duration"]["value"], interval["duration"]["unit"]
    seconds = _DURATION_S[unit]
    if seconds is None:
        raise Rejected(RejectReason.UNKNOWN_UNIT, f"duration unit {shown(unit)} has no fixed length")
    try:
        span = timedelta(seconds=value * seconds)
        if "start_date_time" in interval:
            start = interval["start_date_time"]
            return start, (parse_timestamp(start, "start_date_time") + span).isoformat()
        end = interval["end_date_time"]
        return (parse_timestamp(end, "end_date_time") - span).isoformat(), end
    except (OverflowError, ValueError):
        raise Rejected(RejectReason.OUT_OF_RANGE, "the time interval is out of range") from None


# --- header checks; each raises at the first violation --------------------------------
def _object(value: Any, ptr: str) -> Mapping[str, Any]:
    if value.__class__ is not dict:
        raise violation(ptr, "must be an object")
    return value  # type: ignore[no-any-return]


def _required(obj: Mapping[str, Any], prop: str, ptr: str) -> Any:
    if prop not in obj:
        raise violation(f"{ptr}/{prop}", "required property is missing")
    return obj[prop]


def _string(value: Any, ptr: str, *, empty_ok: bool = False) -> str:
    if value.__class__ is not str or (not value and not empty_ok):
        raise violation(ptr, "must be a string" if empty_ok else "must be a non-empty string")
    return value  # type: ignore[no-any-return]


def _enum(obj: Mapping[str, Any], prop: str, allowed: frozenset[str], ptr: str) -> str:
    value = obj[prop] if prop in obj else None
    if value.__class__ is not str or value not in allowed:
        raise violation(f"{ptr}/{prop}", "is not one of the values the schema allows")
    return value  # type: ignore[no-any-return]


def _source_of(doc: Mapping[str, Any]) -> str:
    header = doc.get("header")
    provenance = header.get("acquisition_provenance") if header.__class__ is dict else None
    name = provenance.get("source_name") if provenance.__class__ is dict else None
    return name if name.__class__ is str and name else SOURCE_DEFAULT
