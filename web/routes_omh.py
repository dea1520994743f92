"""Open mHealth out (``GET /omh/data-points``): stored readings as data points of the current
schema version of each metric (:mod:`streams.domain.omh_export`).

The same filters and paging as the FHIR search (``web/routes_fhir.py``): ``subject`` (the
pseudonym), ``date`` (ge/lt on the start), ``_count`` and ``_offset`` counting measurements
(blood pressure is one), plus ``schema`` (``omh:blood-pressure:4.0`` or ``blood-pressure``)
or ``metric`` (a catalogue name). Analyst role, audited like every data read.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from streams.domain.catalogue import build_catalogue
from streams.domain.omh_export import CURRENT, OUT_UNITS, SCHEMA_OF, data_points
from streams.domain.panels import PANEL_LOINC, PANEL_METRICS
from web.api import API_PREFIX, Api, Call, Reply, Route
from web.auth import Permission
from web.routes_fhir import ReadingSearch, search_page

OMH_PATH = API_PREFIX + "/omh/data-points"
_SCHEMA = re.compile(r"^(?:omh:)?([a-z-]{1,40})(?::(\d+\.\d+))?$")


class DataPointSearch(ReadingSearch):
    schema_: str | None = Field(None, alias="schema", description="omh:<name>[:<current version>] or "
                                "<name>, e.g. omh:blood-pressure:4.0.")
    metric: str | None = Field(None, description="A catalogue metric, e.g. heart_rate (blood pressure: "
                               "either component's metric selects the panel).")

    @field_validator("schema_")
    @classmethod
    def _schema(cls, v: str | None) -> str | None:
        match = _SCHEMA.match(v) if v is not None else None
        if v is None:
            return None
        if match is None or match[1] not in CURRENT:
            raise ValueError(f"must name one of the schemas {sorted(CURRENT)}")
        if match[2] is not None and match[2] != CURRENT[match[1]]:
            raise ValueError(f"data points are emitted in the current version {CURRENT[match[1]]} only")
        return match[1]

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str | None) -> str | None:
        if v is not None and v not in OUT_UNITS:
            raise ValueError(f"must be one of {sorted(OUT_UNITS)}")
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> DataPointSearch:
        if self.schema_ and self.metric and SCHEMA_OF[self.metric] != self.schema_:
            raise ValueError("schema and metric name different data")
        return self

    def filters(self) -> list[tuple[str, Any]]:
        own = (("schema", self.schema_), ("metric", self.metric))
        return super().filters() + [(k, v) for k, v in own if v]


class DataPointPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_points: list[dict[str, Any]] = Field(description="Open mHealth data points (header + body), each "
                                              "valid by its official schema.")
    links: dict[str, str] = Field(description="self, next (when there is more), previous.")
    not_expressible: dict[str, int] = Field(
        description="Measurements of this page their current schema cannot hold, by reason (e.g. an "
        "instant step count; step-count 3.0 needs an interval).")


def _loinc(api: Api, q: DataPointSearch) -> str | None:
    name = q.schema_ or (SCHEMA_OF[q.metric] if q.metric else None)
    if name is None:
        return None
    if name == SCHEMA_OF[PANEL_METRICS[0]]:
        return PANEL_LOINC
    metric = q.metric or next(m for m, n in SCHEMA_OF.items() if n == name)
    return build_catalogue(api.settings.catalogue_overrides)[metric].loinc_code


async def search_data_points(api: Api, call: Call) -> Reply:
    """A page of stored measurements as Open mHealth data points."""
    q: DataPointSearch = call.query
    call.target = f"omh:data-points schema={q.schema_} metric={q.metric}"
    rows, links = await search_page(api, q, _loinc(api, q), OMH_PATH)
    points, skipped = data_points(rows)
    return Reply({"data_points": points, "links": links, "not_expressible": skipped})


ROUTES = [
    Route("GET", "/omh/data-points", "omh.data_points.search",
          "Stored readings as Open mHealth data points (current schema versions): subject, schema or "
          "metric, date (ge/lt), _count, _offset.", search_data_points, Permission.READ_FHIR,
          query_model=DataPointSearch, tag="omh", repeatable=frozenset({"date"}), response=DataPointPage),
]
