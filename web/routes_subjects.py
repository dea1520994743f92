"""Subject rights, admin only and audited: export and erase everything stored about a person.

The export is a FHIR R4 ``collection`` Bundle of the person's readings as Observations
(:mod:`streams.domain.fhir_export`, as ``/fhir/Observation`` shows them); ``?format=json``
gives the stored rows themselves, derived tables (daily aggregates, engagement…) included.

The user id in the path is pseudonymised at once (``Route.pseudonymised``): the audit row,
the logs and the metrics only ever see ``user_key``. What erasure cannot reach (the Kafka
topics until their retention, backups) is listed in the README, "Subject rights".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from streams.domain.fhir_export import collection
from web import responses, subjects
from web.api import Api, Call, Reply, Route
from web.auth import Permission
from web.models import Strict
from web.routes_fhir import FHIR_BASE, FHIR_JSON


class SubjectPath(Strict):
    user_id: str = Field(min_length=1, max_length=256, description="The person's user id (as ingested).")


class ExportQuery(Strict):
    format: Literal["fhir", "json"] = Field(
        "fhir", description="fhir: a FHIR R4 collection Bundle of the readings; json: every stored row.")


def as_json(user_key: str, rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The export document: the readings (the fact table and any detached partitions, in
    canonical units, by measurement time), the derived rows by table, the count per table."""
    return {"format": "healthmate.subject-export.v1", "user_key": user_key, "readings": _readings(rows),
            "derived": {t: r for t, r in rows.items() if not subjects.holds_readings(t)},
            "counts": {t: len(r) for t, r in rows.items()}}


def _readings(rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return sorted((r for t, rs in rows.items() if subjects.holds_readings(t) for r in rs),
                  key=lambda r: (r["measured_at"], r["event_id"]))


async def export(api: Api, call: Call) -> Reply:
    user_key = api.pseudonymise(call.path.user_id)
    call.target = f"user_key={user_key} format={call.query.format}"
    rows = await subjects.export_subject(api.warehouse.pool, api.settings.warehouse_schema, user_key)
    if call.query.format == "json":
        return Reply(as_json(user_key, rows), content_type="application/json")
    return Reply(collection(_readings(rows), FHIR_BASE))


async def erase(api: Api, call: Call) -> dict[str, Any]:
    user_key = api.pseudonymise(call.path.user_id)
    call.target = f"user_key={user_key}"
    counts = await subjects.erase_subject(api.warehouse.pool, api.settings.warehouse_schema, user_key)
    return {"user_key": user_key, "erased": counts, "total": sum(counts.values()),
            "not_reached": [api.settings.raw_topic, api.settings.dlq_topic]}


ROUTES = [
    Route("GET", "/subjects/{user_id}/export", "subjects.export",
          "Every stored reading of one person as a FHIR R4 Bundle (format=json: every stored row).",
          export, Permission.EXPORT_SUBJECT, path_model=SubjectPath, query_model=ExportQuery,
          tag="subjects", pseudonymised=("user_id",), content_type=FHIR_JSON,
          response=responses.SubjectExport),
    Route("DELETE", "/subjects/{user_id}", "subjects.erase",
          "Erase one person's rows from the warehouse; answers the count per table.",
          erase, Permission.ERASE_SUBJECT, path_model=SubjectPath, tag="subjects",
          pseudonymised=("user_id",), response=responses.SubjectErased),
]
