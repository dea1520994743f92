"""The input forms of ``health.readings.raw``, described for producers. Pure data.

The pydantic models are the JSON Schema of our own three forms (served by the API for
producers who validate on their side); the hot path does not use them (it checks plain
dicts, see :mod:`streams.domain.validate`), so they describe the contract of
:mod:`streams.records` and a test keeps them in step with it. :data:`FORMS` lists every
form with the reason codes it can produce.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from streams.domain import fhir, omh
from streams.errors import RejectReason as R
from streams.records import DESCRIPTIVE_STATISTICS

Timestamp = Annotated[str | int, Field(description="ISO-8601 with an offset or Z, or integer epoch ms")]
def _statistic(value: str) -> str:
    if value not in DESCRIPTIVE_STATISTICS:
        raise ValueError("not a descriptive statistic")
    return value


Statistic = Annotated[str, AfterValidator(_statistic),
                      Field(json_schema_extra={"enum": sorted(DESCRIPTIVE_STATISTICS)})]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Form(BaseModel):
    model_config = ConfigDict(extra="allow")  # unknown fields are ignored by the pipeline


class ReadingFields(_Form):
    """What every reading carries, alone or in an envelope."""

    event_id: NonEmpty | None = Field(
        None, description="Unique id; a repeated id is stored once; derived when absent")
    metric: NonEmpty = Field(description="A catalogue metric, e.g. heart_rate")
    value: float = Field(description="A finite JSON number (not a boolean)")
    unit: NonEmpty = Field(description="A unit the metric accepts, e.g. bpm")
    timestamp: Timestamp
    timestamp_end: Timestamp | None = Field(None, description="End of an interval (not before timestamp)")
    statistic: Statistic | None = Field(None, description="Descriptive statistic of a summary value")
    metadata: dict[str, Any] | None = None


#: ``user_id`` in every form: a string, or an integer (``1`` is the user ``"1"``).
UserId = Annotated[NonEmpty | int, Field(description="A string, or an integer taken as its decimal string")]


class SingleReading(ReadingFields):
    """One reading per message."""

    user_id: UserId
    device_id: str | None = None
    source: NonEmpty


class BatchEnvelope(_Form):
    """Several readings of one user, device and source; each member is judged on its own."""

    batch_id: NonEmpty
    user_id: UserId
    device_id: str | None = None
    source: NonEmpty
    readings: list[ReadingFields]


class WideMessage(BaseModel):
    """Several metrics of one instant: every other key is a catalogue metric with its value
    (see :mod:`streams.domain.wide`)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, float] = Field(init=False)  # metric -> value

    user_id: UserId
    device_id: str | None = None
    source: NonEmpty
    timestamp: Timestamp
    timestamp_end: Timestamp | None = None
    statistic: Statistic | None = None
    event_id: NonEmpty | None = Field(None, description="Each reading gets <event_id>:<metric>")
    units: dict[str, NonEmpty] | None = Field(None, description="Unit per metric; default: canonical")
    metadata: dict[str, Any] | None = None


def json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a message value in one of our own forms."""
    single = SingleReading.model_json_schema(ref_template="#/$defs/{model}")
    envelope = BatchEnvelope.model_json_schema(ref_template="#/$defs/{model}")
    wide = WideMessage.model_json_schema(ref_template="#/$defs/{model}")
    defs = {**single.pop("$defs", {}), **envelope.pop("$defs", {}), **wide.pop("$defs", {}),
            "SingleReading": single, "BatchEnvelope": envelope, "WideMessage": wide}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "HealthMate reading message",
            "oneOf": [{"$ref": "#/$defs/SingleReading"}, {"$ref": "#/$defs/BatchEnvelope"},
                      {"$ref": "#/$defs/WideMessage"}], "$defs": defs}


_VALUE_CHECKS = (R.MISSING_FIELD, R.INVALID_TYPE, R.TEXT_TOO_LONG, R.CONTROL_CHARACTER, R.UNKNOWN_UNIT,
                 R.OUT_OF_RANGE, R.NAIVE_TIMESTAMP, R.TIMESTAMP_OUT_OF_RANGE, R.FUTURE_TIMESTAMP,
                 R.OUTLIER_DROPPED, R.REVERSED_INTERVAL)
#: Reasons of any form: before the form is known, and the warehouse's own refusals.
MESSAGE_REASONS: Final = (R.MALFORMED_JSON, R.OVERSIZED, R.INVALID_TYPE, R.SINK_REJECTED, R.SUBJECT_ERASED)
#: Every input form: how it is recognised and the reason codes its readings can get.
FORMS: Final[tuple[dict[str, Any], ...]] = (
    {"form": "single", "recognised_by": "no batch_id/readings, header/body or resourceType",
     "reasons": [R.UNKNOWN_METRIC, *_VALUE_CHECKS]},
    {"form": "envelope", "recognised_by": "a batch_id or readings field",
     "reasons": [R.OVERSIZED, R.UNKNOWN_METRIC, *_VALUE_CHECKS]},
    {"form": "wide", "recognised_by": "no metric field, and a catalogue metric as a key",
     "reasons": [R.OVERSIZED, R.UNKNOWN_METRIC, *_VALUE_CHECKS]},
    {"form": "openmhealth", "recognised_by": "header and body fields",
     "reasons": [R.SCHEMA_VIOLATION, R.UNSUPPORTED_SCHEMA, *_VALUE_CHECKS],
     "schemas": list(omh.SUPPORTED_SCHEMA_IDS)},
    {"form": "fhir", "recognised_by": "a resourceType field",
     "reasons": [R.SCHEMA_VIOLATION, R.UNSUPPORTED_SCHEMA, R.UNKNOWN_METRIC, *_VALUE_CHECKS],
     "resources": list(fhir.RESOURCE_TYPES), "fhir_version": "4.0.1 (validated with fhir.resources R4B)",
     "statuses": sorted(fhir.STORED_STATUSES)},
)
