"""The OpenAPI 3.1 document, generated from the same route table the views are built from."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic
from pydantic.json_schema import JsonSchemaMode

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
    408: "The upload stopped arriving (no data for `HEALTHMATE_IMPORT_IDLE_TIMEOUT_S`) or arrived slower "
         "than `HEALTHMATE_IMPORT_MIN_BYTES_PER_S` on average; nothing is kept.",
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


class _Schemas:
    """Every model of every route, generated in one pass by pydantic
    (``TypeAdapter.json_schemas``), so that each name in ``components`` is one schema: a
    model that differs between request and response gets two names (``…-Input``,
    ``…-Output``). A named model is referred to with ``$ref``, so that generators
    (openapi-python-client) build one class per name and never inline a duplicate."""

    def __init__(self, routes: Iterable[Route]) -> None:
        inputs: list[tuple[int, JsonSchemaMode, pydantic.TypeAdapter]] = []
        for route in routes:
            pairs: tuple[tuple[Any, JsonSchemaMode], ...] = (
                (route.path_model, "validation"), (route.query_model, "validation"),
                (route.body_model, "validation"), (route.response, "serialization"))
            for model, mode in pairs:
                if model is None or (id(model), mode) in {(k, m) for k, m, _ in inputs}:
                    continue
                adapter = model if isinstance(model, pydantic.TypeAdapter) else pydantic.TypeAdapter(model)
                inputs.append((id(model), mode, adapter))
        self._by_key, defs = pydantic.TypeAdapter.json_schemas(  # keyed by (id(model), mode)
            inputs, ref_template="#/components/schemas/{model}")
        self.components: dict[str, Any] = dict(defs.get("$defs", {}))

    def of(self, model: Any, mode: JsonSchemaMode = "validation") -> dict[str, Any]:
        """The schema of ``model`` (a ``$ref`` when it is a named model)."""
        return dict(self._by_key[(id(model), mode)])

    def properties(self, model: Any) -> tuple[dict[str, Any], set[str]]:
        """The properties of a parameters model (path or query), and the required ones."""
        schema = self.of(model)
        if "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema.get("properties", {}), set(schema.get("required", ()))


def _headers(names: Iterable[str]) -> dict[str, Any]:
    return {n: {"description": HEADERS[n], "schema": {"type": "string"}} for n in ("X-Request-Id", *names)}


def _parameters(model: type[pydantic.BaseModel] | None, where: str, schemas: _Schemas
                ) -> list[dict[str, Any]]:
    if model is None:
        return []
    properties, required = schemas.properties(model)
    return [
        {"name": name, "in": where, "required": where == "path" or name in required,
         "description": prop.get("description", ""), "schema": prop}
        for name, prop in properties.items()
    ]


def _operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.name, "summary": route.summary, "tags": [route.tag],
        "security": [{"bearer": []}], "x-permission": str(route.permission),
        "parameters": _parameters(route.path_model, "path", schemas)
        + _parameters(route.query_model, "query", schemas),
        "responses": {str(route.status): {
            "description": "Success.", "headers": _headers(route.headers),
            "content": {route.content_type: {"schema": schemas.of(route.response, "serialization")
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
            "application/json": {"schema": schemas.of(route.body_model)}}}
    errors = {**ERROR_RESPONSES, **{s: ROUTE_ERRORS[s] for s in route.errors}}
    for status, description in sorted(errors.items()):
        op["responses"][str(status)] = {"description": description, "headers": _headers(()), "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return op


#: The answers other than 200 of the unauthenticated paths.
PUBLIC_FAILURES: Mapping[str, Mapping[str, str]] = {
    "/health": {"503": "Not live (the consume loop stopped polling or the write chain broke) or not "
                       "ready (Kafka or PostgreSQL unreachable)."},
}


def openapi_document(routes: Iterable[Route], public: Mapping[str, str], *, title: str,
                     version: str) -> dict[str, Any]:
    """The document for ``routes`` plus the unauthenticated ``public`` GET paths."""
    routes = list(routes)
    schemas = _Schemas(routes)
    components: dict[str, Any] = {"Error": ERROR_SCHEMA, **schemas.components}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.template, {})[route.method.lower()] = _operation(route, schemas)
    for path, summary in public.items():
        answers = {"200": {"description": "OK."}, **{code: {"description": text}
                                                     for code, text in PUBLIC_FAILURES.get(path, {}).items()}}
        paths[path] = {"get": {"operationId": path.strip("/"), "summary": summary, "security": [],
                               "tags": ["operations"], "responses": answers}}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "HealthMate Pipeline API. Bearer JWT; roles viewer < analyst < "
                 "operator < admin. Every data read and state change is audited."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
