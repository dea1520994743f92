"""A job's lineage graph (sources -> transformations -> targets), for the web API. Pure."""

from __future__ import annotations

from typing import Any

from openlineage.client.facet_v2 import column_lineage_dataset as cl
from openlineage.client.serde import Serde

from batch.config import ETLJobConfig
from batch.lineage import datasets
from streams.config import Settings


def lineage_graph(job: ETLJobConfig, settings: Settings, last_event: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """The graph of ``job``, built from the same datasets its run events carry.

    Shape (JSON-safe)::

        {"job": {"namespace", "name", "job_id"},
         "sources": [{"id", "namespace", "name", "fields": [{"name", "type"}]}],
         "transformations": [{"id", "target", "field", "inputs": [{"dataset", "field"}],
                              "type", "subtype", "description"}],
         "targets": [{"id", "namespace", "name", "fields": [...]}],
         "edges": [{"from", "to"}],          # source -> transformation -> target
         "last_run": {"run_id", "event_type", "event_time"} | None}

    Dataset ids are ``namespace/name``; transformation ids ``target id#field``.
    """
    inputs, outputs = datasets(job, settings)

    def node(ds: Any) -> dict[str, Any]:
        facets = Serde.to_dict(ds).get("facets", {})
        schema = facets.get("schema", {}).get("fields", [])
        fields = [{"name": f["name"], "type": f.get("type")} for f in schema]
        return {"id": f"{ds.namespace}/{ds.name}", "namespace": ds.namespace, "name": ds.name,
                "fields": fields}

    sources, targets = [node(d) for d in inputs], [node(d) for d in outputs]
    transformations, edges = [], []
    for ds, target in zip(outputs, targets, strict=True):
        lineage = (ds.facets or {}).get("columnLineage")
        lineage_fields = lineage.fields if isinstance(lineage, cl.ColumnLineageDatasetFacet) else {}
        for field_name, spec in lineage_fields.items():
            tid = f"{target['id']}#{field_name}"
            done = spec.inputFields[0].transformations
            first = done[0] if done else None
            transformations.append({
                "id": tid, "target": target["id"], "field": field_name,
                "inputs": [{"dataset": f"{i.namespace}/{i.name}", "field": i.field}
                           for i in spec.inputFields],
                "type": first.type if first else None, "subtype": first.subtype if first else None,
                "description": first.description if first else None})
            for source_id in dict.fromkeys(f"{i.namespace}/{i.name}" for i in spec.inputFields):
                edges.append({"from": source_id, "to": tid})
            edges.append({"from": tid, "to": target["id"]})
    last = None
    if last_event is not None:
        last = {"run_id": last_event["run"]["runId"], "event_type": last_event["eventType"],
                "event_time": last_event["eventTime"]}
    return {"job": {"namespace": settings.openlineage_namespace, "name": job.job_name,
                    "job_id": str(job.job_id)},
            "sources": sources, "transformations": transformations, "targets": targets, "edges": edges,
            "last_run": last}
