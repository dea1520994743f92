"""Open mHealth bodies judged by the official JSON Schema files, offline. No network, ever.

The published schemas of the 13 supported body schemas (every version), and everything they
``$ref``, are package data under ``omh_schemas/`` (``omh/`` from openmhealth/schemas, tree
36078a8; ``ieee/`` the IEEE 1752.1 files they reference: see ``omh_schemas/README.md``, which
names the four stand-ins). A ``*-1.x.json`` file there is a pointer (git symlink) whose text
is the name of the file it stands for.

:func:`body_judge` builds, once per ``(name, version)`` and cached:

1. the schema with every ``$ref`` resolved through a local :class:`referencing.Registry`
   (``https://w3id.org/openmhealth/schemas/omh/…`` and ``https://w3id.org/ieee/…`` map to the
   copied files; an unknown URI raises instead of being fetched), inlined into one document;
2. a ``fastjsonschema`` function compiled from that document: the per-message check
   (about 4-35 µs a body, instead of jsonschema's 30-170 µs; without detailed exceptions, which
   would build the schema's dicts at every failed ``oneOf`` branch);
3. a ``jsonschema`` validator of the same document (its draft, format assertion on), the
   reference: a body the compiled check refuses is judged again by it, and only a body it
   refuses too is a ``schema_violation``, reported at jsonschema's best-matching error as a
   JSON pointer (``/body/heart_rate/unit``) and a PHI-free sentence (never the value).

``tests/unit/test_omh_conformance.py`` holds both validators to the standard's own
conformance files, every one of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

import fastjsonschema
from jsonschema import Draft4Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT4
from rfc3339_validator import validate_rfc3339

from streams.domain.mapped import violation

SCHEMA_DIR: Final = Path(__file__).with_name("omh_schemas")
OMH_BASE: Final = "https://w3id.org/openmhealth/schemas/omh/"
IEEE_BASE: Final = "https://w3id.org/ieee/ieee-1752-schema/"
_DRAFT4_URI: Final = "http://json-schema.org/draft-04/schema#"
#: jsonschema keyword -> what the error message says (the pointer says where).
_SAYS: Final = {
    "required": "required property is missing", "enum": "is not one of the values the schema allows",
    "format": "is not an RFC 3339 date-time",
    "oneOf": "must match exactly one of the forms the schema allows",
    "anyOf": "matches none of the forms the schema allows",
    "additionalProperties": "property is not allowed by the schema",
    "pattern": "does not match the pattern the schema gives",
}

BodyJudge = Callable[[Any], None]


def schema_file(name: str, version: str) -> Path:
    """The copied official file of ``omh:<name>:<version>`` (it may not exist)."""
    return SCHEMA_DIR / "omh" / f"{name}-{version}.json"


def _contents(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if not text.lstrip().startswith("{"):  # a *-1.x.json pointer: the name of its target
        return _contents(path.with_name(text.strip()))
    return json.loads(text)


def _retrieve(uri: str) -> Resource[Any]:
    raise NoSuchResource(uri)  # never fetched: every schema is registered up front


@cache
def registry() -> Registry[Any]:
    """Every copied schema under its published URI; IEEE files also under their ``$id``."""
    resources: list[tuple[str, Resource[Any]]] = []
    for path in sorted((SCHEMA_DIR / "omh").glob("*.json")):
        resources.append((OMH_BASE + path.name,
                          Resource.from_contents(_contents(path), default_specification=DRAFT4)))
    for path in sorted((SCHEMA_DIR / "ieee").glob("*.json")):
        resource = Resource.from_contents(_contents(path))
        resources += [(IEEE_BASE + path.name, resource), (IEEE_BASE + path.name.replace("-1.0.json", ".json"),
                                                          resource)]
    return Registry(retrieve=_retrieve).with_resources(resources)  # type: ignore[call-arg]


def inlined(name: str, version: str) -> dict[str, Any]:
    """The body schema with every ``$ref`` replaced by what it points to (draft-04/07 ignore a
    ``$ref``'s siblings, so the replacement keeps its meaning). None of these schemas recurses."""
    uri = OMH_BASE + schema_file(name, version).name
    root = _contents(schema_file(name, version))
    document = _inline(root, registry().resolver(base_uri=uri))
    document["$schema"] = root.get("$schema", _DRAFT4_URI)
    return document  # type: ignore[no-any-return]


def _inline(node: Any, resolver: Any) -> Any:
    if node.__class__ is list:
        return [_inline(n, resolver) for n in node]
    if node.__class__ is not dict:
        return node
    if "$ref" in node:
        resolved = resolver.lookup(node["$ref"])
        return _inline(resolved.contents, resolved.resolver)
    return {k: _inline(v, resolver) for k, v in node.items()
            if k not in ("$schema", "$id", "id", "definitions")}


def is_date_time(text: str) -> bool:
    """The ``date-time`` format as jsonschema asserts it (RFC 3339, ``t``/``z`` in either case);
    fastjsonschema's own pattern is laxer (it takes ``+0200``)."""
    return bool(validate_rfc3339(text.upper()))


@cache
def defined_properties(name: str, version: str) -> frozenset[str]:
    """The body properties the schema defines (what the mapping may read)."""
    return frozenset(inlined(name, version).get("properties", {}))


@cache
def body_judge(name: str, version: str) -> BodyJudge:
    """A function that returns for a body its official schema accepts and raises
    ``Rejected(schema_violation)`` for one it refuses. Compiled once per version."""
    document = inlined(name, version)
    fast = fastjsonschema.compile(document, formats={"date-time": is_date_time},
                                  detailed_exceptions=False)  # no per-raise definition dicts
    cls = validators.validator_for(document, default=Draft4Validator)
    reference = cls(document, format_checker=FormatChecker())

    def judge(body: Any) -> None:
        try:
            fast(body)
            return
        except fastjsonschema.JsonSchemaException:
            pass
        error = best_match(reference.iter_errors(body))
        if error is not None:
            pointer, says = explain(error)
            raise violation("/body" + pointer, says)

    return judge


def reference_errors(name: str, version: str, body: Any) -> Iterator[ValidationError]:
    """Every error jsonschema finds in ``body`` (tests compare the two validators with it)."""
    document = inlined(name, version)
    cls = validators.validator_for(document, default=Draft4Validator)
    return cls(document, format_checker=FormatChecker()).iter_errors(body)  # type: ignore[no-any-return]


def explain(error: ValidationError) -> tuple[str, str]:
    """``(JSON pointer, sentence)`` of one error, without the offending value."""
    pointer = "".join(f"/{p}" for p in error.absolute_path)
    keyword = str(error.validator)
    if keyword == "required" and isinstance(error.instance, Mapping):
        missing = [p for p in error.validator_value if p not in error.instance]
        pointer += f"/{missing[0]}" if missing else ""
    elif keyword == "additionalProperties" and isinstance(error.instance, Mapping):
        known = error.schema.get("properties", {})
        extra = sorted(p for p in error.instance if p not in known)
        pointer += f"/{extra[0]}" if extra else ""
    if keyword == "type":
        return pointer, f"must be of type {error.validator_value}"
    return pointer, _SAYS.get(keyword, f"fails the schema's {keyword!r} rule")
