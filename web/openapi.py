"""The OpenAPI 3.1 document, generated from the same route table the views are built from."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic

from web.api import Route

ERROR_RESPONSES = {
    401: "Missing, expired or invalid bearer token.",
    403: "The token's roles do not grant this call.",
    413: "Request body too large.",
    422: "Invalid path, query or body (field errors in `fields`).",
    500: "Internal error (no details are disclosed; see `request_id`).",
    503: "A dependency (Kafka, PostgreSQL) is unavailable, or authentication is not configured.",
}
ROUTE_ERRORS = {
    404: "No such job or run.",
    409: "Conflict: the job name is taken, or the body names another job_id than the path.",
    415: "The upload is not a file of a known format.",
    429: "Too many at once; retry after `Retry-After` seconds.",
}
HEADERS = {
    "X-Request-Id": "Request id, also in error bodies and the server log.",
    "Location": "Where to follow the result (the run's status URL).",
    "X-Audit": "`failed` when the audit row could not be written.",
}
ERROR_SCHEMA = {
    "type": "object", "required": ["error", "message", "request_id"],
    "properties": {
        "error": {"type": "string"}, "message": {"type": "string"}, "request_id": {"type": "string"},
        "fields": {"type": "array", "items": {"type": "object", "properties": {
            "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
            "msg": {"type": "string"}, "type": {"type": "string"}}}},
    },
}


def _schema(model: Any, components: dict[str, Any], mode: str = "validation") -> dict[str, Any]:
    """The JSON schema of a pydantic model or TypeAdapter; shared definitions go to components."""
    template = "#/components/schemas/{model}"
    if isinstance(model, pydantic.TypeAdapter):
        schema = model.json_schema(ref_template=template, mode=mode)  # type: ignore[arg-type]
    else:
        schema = model.model_json_schema(ref_template=template, mode=mode)
    components.update(schema.pop("$defs", {}))
    return schema


def _headers(names: Iterable[str]) -> dict[str, Any]:
    return {n: {"description": HEADERS[n], "schema": {"type": "string"}} for n in ("X-Request-Id", *names)}


def _parameters(model: type[pydantic.BaseModel] | None, where: str, components: dict[str, Any]
                ) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = _schema(model, components)
    required = set(schema.get("required", ()))
    return [
        {"name": name, "in": where, "required": where == "path" or name in required,
         "description": prop.get("description", ""), "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.name, "summary": route.summary, "tags": [route.tag],
        "security": [{"bearer": []}], "x-permission": str(route.permission),
        "parameters": _parameters(route.path_model, "path", components)
        + _parameters(route.query_model, "query", components),
        "responses": {str(route.status): {
            "description": "Success.", "headers": _headers(route.headers),
            "content": {route.content_type: {"schema": _schema(route.response, components, "serialization")
                                             if route.response is not None else {"type": "object"}}}}},
    }
    path_params = set(re.findall(r"{(\w+)}", route.path))
    declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
    assert path_params == declared, f"{route.name}: path parameters {path_params} vs model {declared}"
    op["parameters"] += [{"name": n, "in": "header", "required": True, "description": d,
                          "schema": {"type": "string"}} for n, d in route.request_headers]
    if route.stream_body:
        op["requestBody"] = {"required": True, "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    if route.body_model is not None:
        op["requestBody"] = {"required": False, "content": {
            "application/json": {"schema": _schema(route.body_model, components)}}}
    errors = {**ERROR_RESPONSES, **{s: ROUTE_ERRORS[s] for s in route.errors}}
    for status, description in sorted(errors.items()):
        op["responses"][str(status)] = {"description": description, "headers": _headers(()), "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return op


def openapi_document(routes: Iterable[Route], public: Mapping[str, str], *, title: str,
                     version: str) -> dict[str, Any]:
    """The document for ``routes`` plus the unauthenticated ``public`` GET paths."""
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.template, {})[route.method.lower()] = _operation(route, components)
    for path, summary in public.items():
        paths[path] = {"get": {"operationId": path.strip("/"), "summary": summary, "security": [],
                               "tags": ["operations"], "responses": {"200": {"description": "OK."}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "HealthMate Pipeline API. Bearer JWT; roles viewer < analyst < "
                 "operator < admin. Every data read and state change is audited."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
