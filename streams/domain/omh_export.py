"""Stored readings as Open mHealth data points, in the current schema version of each metric.
Pure: no I/O (the schema files are package data, read once).

Rows are mappings with ``health_readings`` column names (``ingested_at`` included). One
measurement (:func:`streams.domain.panels.observations`) is one data point: blood pressure
is ONE ``omh:blood-pressure:4.0`` data point with both values.

- ``header``: ``id`` the measurement's id (the same as the FHIR Observation's: a hash of the
  event ids, which are producer text), ``creation_date_time`` when the pipeline ingested it,
  ``schema_id`` ``omh:<name>:<current version>``, ``user_id`` the pseudonym (never a raw id),
  ``acquisition_provenance.source_name`` the stored source;
- ``body``: the value in the schema's unit (:data:`OUT_UNITS`, each equal to our canonical
  unit, so no value is converted), ``effective_time_frame`` a ``date_time`` for an instant or
  a ``time_interval`` (start and end) for an interval, ``descriptive_statistic`` when the
  reading is a summary.

Every data point is judged by its official schema before it is emitted
(:func:`streams.domain.omh_schema.body_judge`). One the schema would refuse is not emitted
but counted by :func:`data_points` with the reason, e.g. an instant step count (step-count
3.0 needs an interval), a blood pressure with one of its two values, or a statistic the
schema version does not list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from streams.domain.omh import QUANTITIES, VERSIONS
from streams.domain.omh_schema import body_judge
from streams.domain.panels import measurement_id, observations
from streams.domain.timestamps import utc_text
from streams.errors import Rejected

#: metric -> the Open mHealth unit of its stored canonical unit (the same quantity, factor 1).
OUT_UNITS: Final = {
    "heart_rate": "beats/min", "steps": "steps", "blood_pressure_systolic": "mmHg",
    "blood_pressure_diastolic": "mmHg", "body_weight": "kg", "body_temperature": "C",
    "oxygen_saturation": "%", "respiratory_rate": "breaths/min", "blood_glucose": "mg/dL",
    "sleep_duration": "min", "active_energy": "kcal", "body_height": "cm", "body_mass_index": "kg/m^2",
    "body_fat_percentage": "%",
}
#: metric -> schema name (from the input mapping, so that in and out cannot disagree).
SCHEMA_OF: Final = {q.metric: name for name, qs in QUANTITIES.items() for q in qs}
#: schema name -> its current (newest published) version.
CURRENT: Final = {name: versions[-1] for name, versions in VERSIONS.items()}

Row = Mapping[str, Any]


def data_point(rows: Sequence[Row]) -> dict[str, Any]:
    """One measurement as a data point; raises ``Rejected`` when its schema refuses it."""
    first = rows[0]
    metric = first["metric"]
    if metric not in SCHEMA_OF:
        raise ValueError(f"no Open mHealth schema for {metric!r}")
    name = SCHEMA_OF[metric]
    version = CURRENT[name]
    by_metric = {r["metric"]: r for r in rows}
    body: dict[str, Any] = {q.prop: {"value": by_metric[q.metric]["value"], "unit": OUT_UNITS[q.metric]}
                            for q in QUANTITIES[name] if q.metric in by_metric}
    until = first.get("measured_until")
    body["effective_time_frame"] = (
        {"date_time": utc_text(first["measured_at"])} if until is None
        else {"time_interval": {"start_date_time": utc_text(first["measured_at"]),
                                "end_date_time": utc_text(until)}})
    if first.get("statistic"):
        body["descriptive_statistic"] = first["statistic"]
    body_judge(name, version)(body)
    header = {"id": measurement_id(rows),
              "creation_date_time": utc_text(max(r["ingested_at"] for r in rows)),
              "schema_id": {"namespace": "omh", "name": name, "version": version},
              "user_id": first["user_key"],
              "acquisition_provenance": {"source_name": first["source"]}}
    return {"header": header, "body": body}


def data_points(rows: Iterable[Row]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every measurement of ``rows`` that its schema accepts, and the count of the others by
    reason (``no_schema`` for a metric without an Open mHealth schema, else the JSON pointer
    of the schema's first objection, e.g. ``/body/effective_time_frame: ...``)."""
    out: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    for group in observations(rows):
        try:
            out.append(data_point(group))
        except ValueError:
            skipped["no_schema"] = skipped.get("no_schema", 0) + 1
        except Rejected as exc:
            skipped[exc.message] = skipped.get(exc.message, 0) + 1
    return out, skipped
