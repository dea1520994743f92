"""Subject rights, admin only and audited: export and erase everything stored about a person.

The user id in the path is pseudonymised at once (``Route.pseudonymised``): the audit row,
the logs and the metrics only ever see ``user_key``. What erasure cannot reach (the Kafka
topics until their retention, backups) is listed in the README, "Subject rights".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field

from web import subjects
from web.api import Api, Call, Route
from web.auth import Permission
from web.models import Strict


class SubjectPath(Strict):
    user_id: str = Field(min_length=1, max_length=256, description="The person's user id (as ingested).")


def as_json(user_key: str, rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The export document: the readings (the fact table and any detached partitions, in
    canonical units, by measurement time), the derived rows by table, the count per table."""
    readings = sorted((r for t, rs in rows.items() if subjects.holds_readings(t) for r in rs),
                      key=lambda r: (r["measured_at"], r["event_id"]))
    return {"format": "healthmate.subject-export.v1", "user_key": user_key, "readings": readings,
            "derived": {t: r for t, r in rows.items() if not subjects.holds_readings(t)},
            "counts": {t: len(r) for t, r in rows.items()}}


#: How the export is rendered. The seam for a FHIR R4 Bundle: replace it with a function of
#: the same signature once a FHIR exporter exists.
render_export: Callable[[str, dict[str, list[dict[str, Any]]]], dict[str, Any]] = as_json


async def export(api: Api, call: Call) -> dict[str, Any]:
    user_key = api.pseudonymise(call.path.user_id)
    call.target = f"user_key={user_key}"
    rows = await subjects.export_subject(api.warehouse.pool, api.settings.warehouse_schema, user_key)
    return render_export(user_key, rows)


async def erase(api: Api, call: Call) -> dict[str, Any]:
    user_key = api.pseudonymise(call.path.user_id)
    call.target = f"user_key={user_key}"
    counts = await subjects.erase_subject(api.warehouse.pool, api.settings.warehouse_schema, user_key)
    return {"user_key": user_key, "erased": counts, "total": sum(counts.values()),
            "not_reached": [api.settings.raw_topic, api.settings.dlq_topic]}


ROUTES = [
    Route("GET", "/subjects/{user_id}/export", "subjects.export",
          "Every stored row of one person (readings and derived rows), for the right of access.",
          export, Permission.EXPORT_SUBJECT, path_model=SubjectPath, tag="subjects",
          pseudonymised=("user_id",)),
    Route("DELETE", "/subjects/{user_id}", "subjects.erase",
          "Erase one person's rows from the warehouse; answers the count per table.",
          erase, Permission.ERASE_SUBJECT, path_model=SubjectPath, tag="subjects",
          pseudonymised=("user_id",)),
]
