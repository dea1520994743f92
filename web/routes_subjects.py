"""Subject rights, admin only and audited: export and erase everything stored about a person.

The export is a FHIR R4 ``collection`` Bundle of the person's readings as Observations
(:mod:`streams.domain.fhir_export`, as ``/fhir/Observation`` shows them); ``?format=json``
gives the stored rows themselves, derived tables (daily aggregates, engagement…) included.

The user id in the path is pseudonymised at once (``Route.pseudonymised``): the audit row,
the logs and the metrics only ever see ``user_key``. Erasure enters the person in the
erasure register (:mod:`streams.sink.erasure`), deletes their rows in the same transaction,
then publishes a tombstone for their profile; both answers list what they cannot reach (the
Kafka topics until their retention, backups). An admin call lifts a register entry.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from aiokafka.errors import KafkaError
from pydantic import Field

from streams.config import Settings
from streams.domain.fhir_export import collection
from streams.profiles import publish_tombstone
from streams.sink.erasure import lift_erasure, register_entry
from web import responses, subjects
from web.api import Api, Call, Reply, Route
from web.auth import Permission
from web.errors import NotFound
from web.models import Strict
from web.routes_fhir import FHIR_JSON, fhir_base

log = logging.getLogger(__name__)


class SubjectPath(Strict):
    user_id: str = Field(min_length=1, max_length=256, description="The person's user id (as ingested).")


class ExportQuery(Strict):
    format: Literal["fhir", "json"] = Field(
        "fhir", description="fhir: a FHIR R4 collection Bundle of the readings; json: every stored row.")


def not_reached(settings: Settings) -> list[dict[str, str]]:
    """Where copies of a person's data stay out of the warehouse's reach, and until when."""
    return [
        {"place": f"Kafka topic {settings.raw_topic}",
         "holds": "the person's readings as sent, raw user id included",
         "until": "the topic's retention.ms expires; shorten it with kafka-configs (docs: erasure)"},
        {"place": f"Kafka topic {settings.dlq_topic}",
         "holds": "the original payloads of the person's dead letters",
         "until": f"the topic's retention.ms expires (created with {settings.dlq_retention_hours} h)"},
        {"place": f"Kafka topic {settings.profiles_topic}",
         "holds": "older profile records of the person",
         "until": "compaction removes them after the tombstone (min.compaction.lag.ms, segment.ms)"},
        {"place": "database backups and replicas",
         "holds": "the warehouse rows as of the backup",
         "until": "the backups' own retention"},
    ]


def as_json(user_key: str, rows: dict[str, list[dict[str, Any]]], settings: Settings,
            erasure: dict[str, Any] | None) -> dict[str, Any]:
    """The export document: the readings (the fact table and any detached partitions, in
    canonical units, by measurement time), the derived rows by table, the count per table,
    the person's erasure register entry (or null), and what the export cannot reach."""
    return {"format": "healthmate.subject-export.v1", "user_key": user_key, "readings": _readings(rows),
            "derived": {t: r for t, r in rows.items() if not subjects.holds_readings(t)},
            "counts": {t: len(r) for t, r in rows.items()}, "erasure": erasure,
            "not_reached": not_reached(settings)}


def _readings(rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return sorted((r for t, rs in rows.items() if subjects.holds_readings(t) for r in rs),
                  key=lambda r: (r["measured_at"], r["event_id"]))


async def export(api: Api, call: Call) -> Reply:
    user_key = api.pseudonymise(call.path.user_id)
    call.target = f"user_key={user_key} format={call.query.format}"
    rows = await subjects.export_subject(api.warehouse.pool, api.settings.warehouse_schema, user_key)
    if call.query.format == "json":
        erasure = await register_entry(api.warehouse.pool, api.settings.warehouse_schema, user_key)
        return Reply(as_json(user_key, rows, api.settings, erasure), content_type="application/json")
    return Reply(collection(_readings(rows), fhir_base(api.settings)))


async def erase(api: Api, call: Call) -> dict[str, Any]:
    user_key = api.pseudonymise(call.path.user_id)
    call.target = f"user_key={user_key}"
    schema = api.settings.warehouse_schema
    counts = await subjects.erase_subject(api.warehouse.pool, schema, user_key,
                                          erased_by=call.principal.subject, request_id=call.request_id)
    entry = await register_entry(api.warehouse.pool, schema, user_key)
    try:
        await publish_tombstone(api.settings, call.path.user_id)
        tombstone = "published"
    except (KafkaError, TimeoutError) as exc:
        log.warning("profile tombstone not published (%s); the erasure call can be repeated",
                    type(exc).__name__)
        tombstone = "failed"
    return {"user_key": user_key, "erased": counts, "total": sum(counts.values()), "erasure": entry,
            "profile_tombstone": tombstone, "not_reached": not_reached(api.settings)}


async def lift(api: Api, call: Call) -> dict[str, Any]:
    user_key = api.pseudonymise(call.path.user_id)
    call.target = f"user_key={user_key}"
    entry = await lift_erasure(api.warehouse.pool, api.settings.warehouse_schema, user_key)
    if entry is None:
        raise NotFound("the subject is not in the erasure register")
    return {"user_key": user_key, "lifted": entry}


ROUTES = [
    Route("GET", "/subjects/{user_id}/export", "subjects.export",
          "Every stored reading of one person as a FHIR R4 Bundle (format=json: every stored row).",
          export, Permission.EXPORT_SUBJECT, path_model=SubjectPath, query_model=ExportQuery,
          tag="subjects", pseudonymised=("user_id",), content_type=FHIR_JSON,
          response=responses.SubjectExport),
    Route("DELETE", "/subjects/{user_id}", "subjects.erase",
          "Erase one person: register entry, warehouse rows, profile tombstone; answers what was erased "
          "and what cannot be reached.",
          erase, Permission.ERASE_SUBJECT, path_model=SubjectPath, tag="subjects",
          pseudonymised=("user_id",), response=responses.SubjectErased),
    Route("DELETE", "/subjects/{user_id}/erasure", "subjects.lift_erasure",
          "Lift one person's erasure register entry: from now on their new readings are stored.",
          lift, Permission.ERASE_SUBJECT, path_model=SubjectPath, tag="subjects",
          pseudonymised=("user_id",), response=responses.ErasureLifted, errors=(404,)),
]
