"""Open mHealth (IEEE 1752.1) data points to reading members. Pure: no I/O.

A data point is ``{"header": {...}, "body": {...}}`` (``omh:data-point:1.0``). The header
(``omh:header:1.1``) needs ``id`` (or ``uuid``), ``creation_date_time`` and ``schema_id``
``{"namespace": "omh", "name", "version"}``; ``user_id`` and ``acquisition_provenance``
(``source_name`` required, ``modality`` sensed or self-reported) are optional.

Each supported body schema is checked against the rules of its published JSON schema
(github.com/openmhealth/schemas, ``schema/omh`` and ``schema/ieee``): required properties,
types, enumerations (units, ``descriptive_statistic``, temporal relationships, body
posture, measurement location, specimen source, ...) and the time frame: ``date_time`` or
``time_interval`` (exactly one), the interval as start + end, start + duration or end +
duration (and, before IEEE 1752, date + part of day). The first violation raises
``schema_violation`` naming its JSON pointer (``/body/heart_rate/unit``); an unknown
namespace, name or version raises ``unsupported_schema``.

Mapping: the header id is the ``event_id`` (blood pressure gives two readings,
``<id>#systolic`` and ``<id>#diastolic``); the user is the header's ``user_id``, else the
message key; the source is ``acquisition_provenance.source_name``, else ``"omh"``. A
``date_time`` is the reading's instant; an interval gives ``timestamp`` and
``timestamp_end``. Where a schema lets the time frame out, the reading is placed at
``acquisition_provenance.source_creation_date_time``, else the header's
``creation_date_time``. A time interval given as date + part of day has no time zone and is
rejected ``naive_timestamp``, like any timestamp without an offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from streams.domain.mapped import Mapped, shown, violation
from streams.domain.timestamps import parse_timestamp
from streams.errors import Rejected, RejectReason

SOURCE_DEFAULT: Final = "omh"

# --- value sets, as published --------------------------------------------------------
_DS_1_0 = frozenset({"average", "maximum", "minimum", "standard deviation", "variance", "sum", "median"})
_DS_1_1 = _DS_1_0 | {"count", "quartile deviation", "80th percentile", "lower quartile", "upper quartile",
                     "1st quintile", "2nd quintile", "3rd quintile", "4th quintile"}
_DS_IEEE = _DS_1_1 | {"20th percentile"}
_ACTIVITY = frozenset({"at rest", "active", "before exercise", "after exercise", "during exercise"})
_SLEEP = frozenset({"before sleeping", "during sleep", "on waking"})
_MEAL = frozenset({"fasting", "not fasting", "before meal", "after meal", "before breakfast",
                   "after breakfast", "before lunch", "after lunch", "before dinner", "after dinner",
                   "2 hours postprandial"})
_POSTURE = frozenset({"sitting", "lying down", "standing", "semi-recumbent"})
_TEMP_LOCATION = frozenset({"axillary", "finger", "forehead", "oral", "rectal", "temporal artery", "toe",
                            "tympanic", "wrist", "vagina"})
_SPECIMEN = frozenset({"breath", "capillary blood", "interstitial fluid", "lacrimal fluid", "saliva",
                       "sweat", "tears", "urine"})
_MASS = frozenset({"fg", "pg", "ng", "ug", "mg", "g", "kg", "Metric Ton", "gr", "oz", "lb", "Ton"})
_LENGTH = frozenset({"fm", "pm", "nm", "um", "mm", "cm", "m", "km", "in", "ft", "yd", "mi"})
_TEMPERATURE = frozenset({"K", "F", "C"})
_PART_OF_DAY = frozenset({"morning", "afternoon", "evening", "night"})
_MODALITY = frozenset({"sensed", "self-reported"})
#: duration-unit-value: unit -> seconds; months and years have no fixed length.
_DURATION_S: Final = {"ps": 1e-12, "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "sec": 1, "min": 60, "h": 3600,
                      "d": 86400, "wk": 604800, "Mo": None, "yr": None}
_INTERVAL_FORMS = (("start_date_time", "end_date_time"), ("start_date_time", "duration"),
                   ("end_date_time", "duration"))
_DATE_PART_OF_DAY = ("date", "part_of_day")


@dataclass(frozen=True, slots=True)
class Quantity:
    """A measured property of the body: a unit-value (``units`` allowed) or, when
    ``bare_unit`` is set, a bare number in that unit."""

    prop: str
    metric: str
    units: frozenset[str] = frozenset()
    bare_unit: str | None = None
    suffix: str = ""


@dataclass(frozen=True, slots=True)
class BodySchema:
    """The rules of one published body schema version that the mapping relies on."""

    quantities: tuple[Quantity, ...]
    statistics: frozenset[str] | None  # None: the schema has no descriptive_statistic (ignored)
    frame_required: bool = True
    interval_only: bool = False
    ieee_frame: bool = False  # IEEE 1752 time interval: no date + part-of-day form
    enums: Mapping[str, frozenset[str]] = field(default_factory=dict)
    unit_values: Mapping[str, frozenset[str]] = field(default_factory=dict)  # other unit-values
    strings: frozenset[str] = frozenset()
    closed: bool = False  # "additionalProperties": false

    def known(self) -> frozenset[str]:
        return frozenset({q.prop for q in self.quantities} | set(self.enums) | set(self.unit_values)
                         | self.strings | {"effective_time_frame", "descriptive_statistic"})


def _one(prop: str, metric: str, units: frozenset[str] | set[str]) -> tuple[Quantity, ...]:
    return (Quantity(prop, metric, frozenset(units)),)


_HR = _one("heart_rate", "heart_rate", {"beats/min"})
_MMHG = frozenset({"mmHg"})
_BP = (Quantity("systolic_blood_pressure", "blood_pressure_systolic", _MMHG, suffix="#systolic"),
       Quantity("diastolic_blood_pressure", "blood_pressure_diastolic", _MMHG, suffix="#diastolic"))
_WEIGHT = _one("body_weight", "body_weight", _MASS)
_TEMP = _one("body_temperature", "body_temperature", _TEMPERATURE)
_TEMP_ENUMS = {"measurement_location": _TEMP_LOCATION, "temporal_relationship_to_sleep": _SLEEP}
_SPO2 = _one("oxygen_saturation", "oxygen_saturation", {"%"})
_RR = _one("respiratory_rate", "respiratory_rate", {"breaths/min"})
_GLUCOSE = _one("blood_glucose", "blood_glucose", {"mg/dL", "mmol/L"})
_GLUCOSE_ENUMS = {"specimen_source": _SPECIMEN, "temporal_relationship_to_meal": _MEAL,
                  "temporal_relationship_to_sleep": _SLEEP}
_SLEEP_DURATION = _one("sleep_duration", "sleep_duration", {"sec", "min", "h"})
_KCAL = _one("kcal_burned", "active_energy", {"kcal"})
_HEIGHT = _one("body_height", "body_height", _LENGTH)
_BMI = _one("body_mass_index", "body_mass_index", {"kg/m^2"})
_FAT = _one("body_fat_percentage", "body_fat_percentage", {"%"})

#: name -> version -> rules. Every published version of the current and previous major.
SCHEMAS: Final[Mapping[str, Mapping[str, BodySchema]]] = {
    "heart-rate": {
        "1.0": BodySchema(_HR, _DS_1_1, frame_required=False, strings=frozenset({"user_notes"}),
                          enums={"temporal_relationship_to_physical_activity": _ACTIVITY}),
        "1.1": BodySchema(_HR, _DS_1_1, frame_required=False, strings=frozenset({"user_notes"}),
                          enums={"temporal_relationship_to_physical_activity": _ACTIVITY,
                                 "temporal_relationship_to_sleep": _SLEEP}),
        "2.0": BodySchema(_HR, _DS_1_1, enums={"temporal_relationship_to_physical_activity": _ACTIVITY,
                                               "temporal_relationship_to_sleep": _SLEEP}),
    },
    "step-count": {
        "2.0": BodySchema((Quantity("step_count", "steps", bare_unit="steps"),), _DS_1_0, interval_only=True),
        "3.0": BodySchema(_one("step_count", "steps", {"steps"}), _DS_1_0, interval_only=True),
    },
    "blood-pressure": {
        "3.0": BodySchema(_BP, _DS_1_1, enums={"body_posture": _POSTURE}),
        "3.1": BodySchema(_BP, _DS_1_1, enums={"body_posture": _POSTURE,
                                               "temporal_relationship_to_physical_activity": _ACTIVITY}),
        "4.0": BodySchema(_BP, _DS_IEEE, ieee_frame=True,
                          enums={"body_posture": _POSTURE,
                                 "temporal_relationship_to_physical_activity": _ACTIVITY}),
    },
    "body-weight": {
        "2.0": BodySchema(_WEIGHT, _DS_1_1),
        "3.0": BodySchema(_WEIGHT, _DS_IEEE, ieee_frame=True),
    },
    "body-temperature": {
        "3.0": BodySchema(_TEMP, _DS_1_1, enums=_TEMP_ENUMS),
        "4.0": BodySchema(_TEMP, _DS_IEEE, ieee_frame=True, enums=_TEMP_ENUMS),
    },
    "oxygen-saturation": {
        "1.0": BodySchema(
            _SPO2, _DS_1_1, frame_required=False, closed=True, unit_values={"supplemental_oxygen_flow_rate":
                                                                            frozenset({"LPM"})},
            enums={"system": frozenset({"arterial", "capillary", "intracardiac", "jugular bulb", "peripheral",
                                        "conjunctival", "venous", "mixed venous", "superior vena cava"}),
                   "oxygen_therapy_mode_of_administration": frozenset({"face mask", "nasal cannula",
                                                                       "Venturi mask"}),
                   "measurement_method": frozenset({"pulse oximetry", "arterial blood gas analyzer",
                                                    "near-infrared spectroscopy (NIRS)"})}),
        "2.0": BodySchema(
            _SPO2, _DS_1_1, unit_values={"supplemental_oxygen_flow_rate": frozenset({"L/min"})},
            enums={"system": frozenset({"peripheral capillary"}),
                   "oxygen_therapy_mode_of_administration": frozenset({"nasal cannula"}),
                   "measurement_method": frozenset({"pulse oximetry"})}),
    },
    "respiratory-rate": {
        "1.0": BodySchema(_RR, _DS_1_1, frame_required=False,
                          enums={"temporal_relationship_to_physical_activity": _ACTIVITY}),
        "2.0": BodySchema(_RR, _DS_1_1, enums={"temporal_relationship_to_physical_activity": _ACTIVITY}),
    },
    "blood-glucose": {
        "3.0": BodySchema(_GLUCOSE, _DS_1_1, enums=_GLUCOSE_ENUMS),
        "4.0": BodySchema(_GLUCOSE, _DS_IEEE, ieee_frame=True, enums=_GLUCOSE_ENUMS),
    },
    "sleep-duration": {
        "1.0": BodySchema(_SLEEP_DURATION, None, frame_required=False, strings=frozenset({"user_notes"})),
        "2.0": BodySchema(_SLEEP_DURATION, _DS_1_0, frame_required=False, interval_only=True,
                          strings=frozenset({"user_notes"})),
    },
    "calories-burned": {
        "2.0": BodySchema(_KCAL, _DS_1_1, interval_only=True, strings=frozenset({"activity_name"})),
        "3.0": BodySchema(_KCAL, _DS_IEEE, interval_only=True, ieee_frame=True,
                          strings=frozenset({"activity_name"})),
    },
    "body-height": {
        "1.0": BodySchema(_HEIGHT, _DS_1_1, frame_required=False),
        "2.0": BodySchema(_HEIGHT, _DS_IEEE, ieee_frame=True),
    },
    "body-mass-index": {
        "2.0": BodySchema(_BMI, _DS_1_1, frame_required=False),
        "3.0": BodySchema(_BMI, _DS_IEEE, ieee_frame=True),
    },
    "body-fat-percentage": {
        "1.0": BodySchema(_FAT, _DS_1_1, frame_required=False),
        "2.0": BodySchema(_FAT, _DS_IEEE, ieee_frame=True),
    },
}

#: ``omh:<name>:<version>`` of every supported body schema, sorted.
SUPPORTED_SCHEMA_IDS: Final = tuple(sorted(f"omh:{n}:{v}" for n, vs in SCHEMAS.items() for v in vs))


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
    schema = SCHEMAS.get(name, {}).get(version) if namespace == "omh" else None
    if schema is None:
        raise Rejected(RejectReason.UNSUPPORTED_SCHEMA,
                       f"schema {shown(namespace)}:{shown(name)}:{shown(version)} is not supported")
    body = _object(doc.get("body"), "/body")
    members = _members(body, schema, event_id, source_created or created)
    for m in members:
        m["metadata"] = {"omh_schema": f"omh:{name}:{version}", **m["metadata"]}
    return Mapped(user_id or key_user, None, source, members)


def _members(body: Mapping[str, Any], schema: BodySchema, event_id: str, fallback_time: str) -> list[dict]:
    if schema.closed:
        extra = sorted(set(body) - schema.known())
        if extra:
            raise violation(f"/body/{extra[0]}", "property is not allowed by the schema")
    values = []
    for q in schema.quantities:
        raw = _required(body, q.prop, "/body")
        if q.bare_unit is not None:
            values.append((q, _number(raw, f"/body/{q.prop}"), q.bare_unit))
        else:
            values.append((q, *_unit_value(raw, f"/body/{q.prop}", q.units)))
    for prop, units in schema.unit_values.items():
        if prop in body:
            _unit_value(body[prop], f"/body/{prop}", units)
    context = {prop: _enum(body, prop, allowed, "/body") for prop, allowed in schema.enums.items()
               if prop in body}
    for prop in schema.strings:
        if prop in body:
            _string(body[prop], f"/body/{prop}", empty_ok=True)
    statistic = None
    if "descriptive_statistic" in body and schema.statistics is not None:
        statistic = _enum(body, "descriptive_statistic", schema.statistics, "/body")
    if "effective_time_frame" in body:
        start, end = _time_frame(body["effective_time_frame"], schema)
    elif schema.frame_required:
        raise violation("/body/effective_time_frame", "required property is missing")
    else:
        start, end = fallback_time, None
    return [{"event_id": event_id + q.suffix, "metric": q.metric, "value": value, "unit": unit,
             "timestamp": start, "timestamp_end": end, "statistic": statistic, "metadata": dict(context)}
            for q, value, unit in values]


def _time_frame(frame: Any, schema: BodySchema) -> tuple[str, str | None]:
    ptr = "/body/effective_time_frame"
    frame = _object(frame, ptr)
    if ("date_time" in frame) == ("time_interval" in frame):
        raise violation(ptr, "must hold exactly one of date_time and time_interval")
    if "date_time" in frame:
        if schema.interval_only:
            raise violation(ptr + "/time_interval", "required property is missing")
        return _string(frame["date_time"], ptr + "/date_time"), None
    ptr += "/time_interval"
    interval = _object(frame["time_interval"], ptr)
    forms = _INTERVAL_FORMS if schema.ieee_frame else (*_INTERVAL_FORMS, _DATE_PART_OF_DAY)
    matched = [f for f in forms if all(k in interval for k in f)]
    if len(matched) != 1:
        raise violation(ptr, "must match exactly one interval form (start+end, start+duration, end+duration)")
    form = matched[0]
    if form == _DATE_PART_OF_DAY:
        date = _string(interval["date"], ptr + "/date")
        if len(date) != 10 or not (date[:4] + date[5:7] + date[8:]).isdigit() or date[4] + date[7] != "--":
            raise violation(ptr + "/date", "must be a full date YYYY-MM-DD")
        _enum(interval, "part_of_day", _PART_OF_DAY, ptr)
        raise Rejected(RejectReason.NAIVE_TIMESTAMP, "a time interval given as date and part of day has no "
                                                     "time zone")
    texts = {k: _string(interval[k], f"{ptr}/{k}") for k in form if k != "duration"}
    if "duration" not in form:
        return texts["start_date_time"], texts["end_date_time"]
    value, unit = _unit_value(interval["duration"], ptr + "/duration", frozenset(_DURATION_S))
    seconds = _DURATION_S[unit]
    if seconds is None:
        raise Rejected(RejectReason.UNKNOWN_UNIT, f"duration unit {shown(unit)} has no fixed length")
    try:
        span = timedelta(seconds=value * seconds)
        if "start_date_time" in texts:
            start = texts["start_date_time"]
            return start, (parse_timestamp(start, "start_date_time") + span).isoformat()
        end = texts["end_date_time"]
        return (parse_timestamp(end, "end_date_time") - span).isoformat(), end
    except (OverflowError, ValueError):
        raise Rejected(RejectReason.OUT_OF_RANGE, "the time interval is out of range") from None


# --- JSON-schema checks; each raises at the first violation --------------------------------
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


def _number(value: Any, ptr: str) -> float | int:
    if value.__class__ not in (int, float):
        raise violation(ptr, "must be a number")
    return value  # type: ignore[no-any-return]


def _unit_value(obj: Any, ptr: str, units: frozenset[str]) -> tuple[float | int, str]:
    obj = _object(obj, ptr)
    value = _number(_required(obj, "value", ptr), ptr + "/value")
    unit = _string(_required(obj, "unit", ptr), ptr + "/unit")
    if units and unit not in units:
        raise violation(ptr + "/unit", "is not a unit the schema allows")
    return value, unit


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
