"""Validation of OpenLineage events against the spec as ``openlineage-python`` encodes it.

The client ships no JSON-schema file (neither does the Java client's jar), and nothing is
vendored from the internet. So :func:`validate` (1) checks a JSON schema of the core
RunEvent rules written here, and (2) rebuilds the event strictly (unknown keys fail, a
facet in the wrong kind of facet map fails) into the client's generated spec classes,
whose validators run (runId is a UUID, eventTime an ISO-8601 time), and requires it to
serialise back to exactly the same JSON.
"""

from __future__ import annotations

import types
import typing
from enum import Enum
from typing import Any

import attr
import jsonschema
from openlineage.client.event_v2 import RunEvent
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    error_message_run,
    job_type_job,
    nominal_time_run,
    processing_engine_run,
    schema_dataset,
)
from openlineage.client.serde import Serde

FACETS = {
    "schema": schema_dataset.SchemaDatasetFacet,
    "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet,
    "dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet,
    "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet,
    "nominalTime": nominal_time_run.NominalTimeRunFacet,
    "errorMessage": error_message_run.ErrorMessageRunFacet,
    "jobType": job_type_job.JobTypeJobFacet,
    "processing_engine": processing_engine_run.ProcessingEngineRunFacet,
}
CORE_SCHEMA = {
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "eventType", "run", "job", "inputs", "outputs"],
    "properties": {
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "pattern": "^[a-z][a-z0-9+.-]*:"},
        "schemaURL": {"type": "string", "pattern": "^https://openlineage.io/spec/.*#/\\$defs/RunEvent$"},
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "run": {"type": "object", "required": ["runId"],
                "properties": {"runId": {"type": "string", "format": "uuid"},
                               "facets": {"$ref": "#/$defs/facets"}}},
        "job": {"type": "object", "required": ["namespace", "name"],
                "properties": {"namespace": {"type": "string"}, "name": {"type": "string"},
                               "facets": {"$ref": "#/$defs/facets"}}},
        "inputs": {"type": "array", "items": {"$ref": "#/$defs/dataset"}},
        "outputs": {"type": "array", "items": {"$ref": "#/$defs/dataset"}},
    },
    "$defs": {
        "dataset": {"type": "object", "required": ["namespace", "name"],
                    "properties": {"namespace": {"type": "string"}, "name": {"type": "string"},
                                   "facets": {"$ref": "#/$defs/facets"},
                                   "inputFacets": {"$ref": "#/$defs/facets"}}},
        "facets": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["_producer", "_schemaURL"],
            "properties": {"_schemaURL": {"type": "string", "pattern": "^https://openlineage.io/spec/facets/"}}}},
    },
}


def build(cls: Any, data: Any, facet_of: dict[str, Any] | None = None) -> Any:
    """Strictly rebuild ``data`` as the attrs spec class ``cls`` (unknown keys raise)."""
    origin = typing.get_origin(cls)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(cls) if a is not type(None)]
        return None if data is None else build(options[0], data, facet_of)
    if origin is list:
        return [build(typing.get_args(cls)[0], d, facet_of) for d in data]
    if origin is dict:
        item = typing.get_args(cls)[1]
        if facet_of is None:
            return {k: build(item, v) for k, v in data.items()}
        wrong = [k for k in data if not issubclass(FACETS[k], item)]
        assert not wrong, f"facets {wrong} do not belong in a {item.__name__} map"
        return {k: build(FACETS[k], v) for k, v in data.items()}
    if isinstance(cls, type) and issubclass(cls, Enum):
        return cls(data)
    if not attr.has(cls):
        assert isinstance(data, cls), (cls, data)
        return data
    hints = typing.get_type_hints(cls)
    fields = {f.alias or f.name: f for f in attr.fields(cls)}
    unknown = {k for k in data if k not in fields and k.lstrip("_") not in fields}
    assert not unknown, f"{cls.__name__}: keys not in the spec: {unknown}"
    kwargs = {}
    for key, value in data.items():
        f = fields.get(key.lstrip("_"), fields.get(key))
        if f is None or not f.init:
            continue
        kwargs[f.alias or f.name] = build(hints[f.name], value, {} if key.endswith("acets") else None)
    return cls(**kwargs)


def validate(doc: dict[str, Any]) -> None:
    jsonschema.validate(doc, CORE_SCHEMA, format_checker=jsonschema.FormatChecker())
    rebuilt = build(RunEvent, doc)
    assert Serde.to_dict(rebuilt) == doc
