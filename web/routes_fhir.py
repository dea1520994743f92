"""FHIR R4 out (``GET /fhir/Observation``) and the input forms' documentation (``/schemas``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from pydantic import Field, field_validator

from streams.config import Settings
from streams.domain.catalogue import build_catalogue
from streams.domain.fhir_export import PROFILE_CODES, searchset
from streams.forms import FORMS, MESSAGE_REASONS, json_schema
from web import queries, responses
from web.api import API_PREFIX, Api, Call, Reply, Route
from web.auth import Permission
from web.models import Strict

FHIR_JSON = "application/fhir+json"
FHIR_BASE = API_PREFIX + "/fhir"
_SUBJECT = re.compile(r"^(?:Patient/)?([0-9a-f]{64})$")
_LOINC = re.compile(r"^(?:http://loinc\.org\|)?([0-9]{1,7}-[0-9])$")


class ReadingSearch(Strict):
    """The filters and paging every reading search shares (FHIR Observations, Open mHealth)."""

    subject: str | None = Field(None, description="Patient/<user key> (the pseudonym) or the key alone.")
    date: list[str] = Field(default_factory=list, description="ge<instant> and/or lt<instant> on the "
                            "reading's start (repeatable; a date alone means 00:00 UTC).")
    count: int = Field(50, ge=1, le=1000, alias="_count", description="Page size (measurements).")
    offset: int = Field(0, ge=0, le=10_000_000, alias="_offset", description="Measurements to skip (paging).")

    @field_validator("subject")
    @classmethod
    def _subject(cls, v: str | None) -> str | None:
        if v is not None and not _SUBJECT.match(v):
            raise ValueError("must be Patient/<64 hex user key> or the key")
        return v if v is None else _SUBJECT.match(v)[1]  # type: ignore[index]

    @field_validator("date")
    @classmethod
    def _dates(cls, v: list[str]) -> list[str]:
        if len(v) > 2 or any(d[:2] not in ("ge", "lt") for d in v) or len({d[:2] for d in v}) != len(v):
            raise ValueError("give at most one ge<instant> and one lt<instant>")
        for d in v:
            _instant(d[2:])
        return v

    def bound(self, prefix: str) -> datetime | None:
        return next((_instant(d[2:]) for d in self.date if d.startswith(prefix)), None)

    def filters(self) -> list[tuple[str, Any]]:
        """The search's own filters as query parameters (paging links keep them)."""
        return [("subject", f"Patient/{self.subject}")] if self.subject else []


class ObservationSearch(ReadingSearch):
    code: str | None = Field(None, description="A LOINC code, optionally as http://loinc.org|<code>.")

    @field_validator("code")
    @classmethod
    def _code(cls, v: str | None) -> str | None:
        if v is not None and not _LOINC.match(v):
            raise ValueError("must be a LOINC code such as 8867-4")
        return v if v is None else _LOINC.match(v)[1]  # type: ignore[index]

    def filters(self) -> list[tuple[str, Any]]:
        return super().filters() + ([("code", self.code)] if self.code else [])


async def search_page(api: Api, q: ReadingSearch, loinc_code: str | None, path: str
                      ) -> tuple[list[Any], dict[str, str]]:
    """One page of measurements (rows) of a reading search, and its self/next/previous links."""
    rows = await queries.search_readings(api.warehouse.pool, api.settings.warehouse_schema,
                                         user_key=q.subject, loinc_code=loinc_code, since=q.bound("ge"),
                                         before=q.bound("lt"), limit=q.count + 1, offset=q.offset)
    rows, more = queries.first_measurements(rows, q.count)
    links = {"self": _page(path, q, q.offset)}
    if more:
        links["next"] = _page(path, q, q.offset + q.count)
    if q.offset:
        links["previous"] = _page(path, q, max(0, q.offset - q.count))
    return rows, links


def _instant(text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("a date must be ISO-8601 (YYYY-MM-DD or an instant with an offset)") from None
    if len(text) == 10:
        return ts.replace(tzinfo=UTC)
    if ts.tzinfo is None:
        raise ValueError("an instant needs a time zone offset")
    return ts


def fhir_base(s: Settings) -> str:
    """The absolute FHIR base URL: R4 wants each Bundle entry's ``fullUrl`` absolute."""
    host = f"[{s.web_host}]" if ":" in s.web_host else s.web_host
    return (s.api_public_url or f"http://{host}:{s.web_port}") + FHIR_BASE


async def search_observations(api: Api, call: Call) -> Reply:
    """A searchset Bundle of stored readings as R4 Observations (vital-signs profile where one applies;
    blood pressure as one 85354-9 panel, found by 85354-9, 8480-6 or 8462-4). ``_count`` counts
    Observations."""
    q: ObservationSearch = call.query
    call.target = f"fhir:Observation code={q.code}"
    rows, links = await search_page(api, q, _stored_code(api, q.code), f"{FHIR_BASE}/Observation")
    return Reply(searchset(rows, links, fhir_base(api.settings)))


def _stored_code(api: Api, code: str | None) -> str | None:
    """A profile's own LOINC code (oxygensat's 2708-6) finds the readings it is exported for."""
    metric = next((m for m, c in PROFILE_CODES.items() if c == code), None)
    return code if metric is None else build_catalogue(api.settings.catalogue_overrides)[metric].loinc_code


def _page(path: str, q: ReadingSearch, offset: int) -> str:
    params = q.filters() + [("date", d) for d in q.date] + [("_count", q.count), ("_offset", offset)]
    return f"{path}?{urlencode(params)}"


async def list_schemas(api: Api, call: Call) -> dict[str, Any]:
    """Every input form, the reason codes it can produce, and the Open mHealth schema ids."""
    return {"message_reasons": list(MESSAGE_REASONS), "forms": list(FORMS),
            "json_schema": API_PREFIX + "/schemas/healthmate-reading.json"}


async def reading_json_schema(api: Api, call: Call) -> dict[str, Any]:
    """JSON Schema of our own two forms (single reading, batch envelope), from the pydantic models."""
    return json_schema()


ROUTES = [
    Route("GET", "/fhir/Observation", "fhir.observation.search",
          "FHIR R4 search of stored readings: subject, code, date (ge/lt), _count, _offset.",
          search_observations, Permission.READ_FHIR, query_model=ObservationSearch, tag="fhir",
          content_type=FHIR_JSON, repeatable=frozenset({"date"}), response=responses.SearchBundle),
    Route("GET", "/schemas", "schemas.list", "The input forms, their reason codes, Open mHealth schema ids.",
          list_schemas, Permission.READ_STATUS, tag="schemas", response=responses.SchemaList),
    Route("GET", "/schemas/healthmate-reading.json", "schemas.reading",
          "JSON Schema of the single-reading and batch-envelope forms.", reading_json_schema,
          Permission.READ_STATUS, tag="schemas", response=responses.JsonSchema),
]
