"""A request body at the door: decompress, split into documents, cheap checks. Pure: no I/O.

Contract of :func:`read_documents`:

- ``Content-Encoding`` is absent, ``identity`` or ``gzip``; a gzip body may decompress to at
  most ``max_decompressed_bytes`` (more is a gzip bomb: 413). Decompression stops one byte
  past the cap, so a bomb never costs more memory than the cap.
- ``Content-Type`` ``application/json`` holds one JSON object (one document) or an array of
  objects (one document each); ``application/x-ndjson`` holds one object per line (blank
  lines are skipped). Anything else is 415.
- Every document is a JSON object of at most ``max_message_bytes`` bytes (as it will be sent
  to Kafka: the line, the body, or an array member re-encoded), nested at most ``max_depth``
  levels, and a request holds at most ``max_documents`` of them.

The first problem refuses the whole request with an :class:`~web.errors.ApiError` whose
message names the document by its position and never quotes the body.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from streams.config import Settings
from web.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})


@dataclass(frozen=True, slots=True)
class BodyLimits:
    max_decompressed_bytes: int
    max_message_bytes: int
    max_documents: int
    max_depth: int

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyLimits:
        return cls(settings.gateway_max_decompressed_bytes, settings.gateway_max_message_bytes,
                   settings.gateway_max_documents, settings.gateway_max_depth)


@dataclass(frozen=True, slots=True)
class Document:
    """One document of the request: its position, its bytes as sent on, and its decoded object."""

    index: int
    raw: bytes
    doc: dict[str, Any]


def read_documents(body: bytes, content_type: str, content_encoding: str, limits: BodyLimits
                   ) -> list[Document]:
    """The documents of a request body (see the module contract); raises ``ApiError``."""
    data = decompress(body, content_encoding, limits.max_decompressed_bytes)
    media = content_type.split(";", 1)[0].strip().lower()
    if media in NDJSON_TYPES:
        docs = _ndjson(data, limits)
    elif media in JSON_TYPES:
        docs = _json(data, limits)
    else:
        raise UnsupportedMediaType("send application/json (one object or an array) or application/x-ndjson",
                                   reason="media_type")
    if not docs:
        raise BadRequest("the body holds no document", reason="empty")
    return docs


def decompress(body: bytes, encoding: str, cap: int) -> bytes:
    """``body`` decoded from ``encoding`` (identity or gzip), at most ``cap`` bytes."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise UnsupportedMediaType("Content-Encoding must be gzip or identity", reason="encoding")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing only
    try:
        data = inflater.decompress(body, cap + 1)
    except zlib.error:
        raise BadRequest("the gzip body is corrupt", reason="bad_gzip") from None
    if len(data) > cap or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"the body decompresses to more than {cap} bytes", reason="gzip_bomb")
    if not inflater.eof or inflater.unused_data:
        raise BadRequest("the gzip body is truncated or followed by other data", reason="bad_gzip")
    return data


def _ndjson(data: bytes, limits: BodyLimits) -> list[Document]:
    docs: list[Document] = []
    for line in data.split(b"\n"):
        line = line.strip(b" \t\r")
        if not line:
            continue
        _check_count(len(docs) + 1, limits)
        docs.append(_document(len(docs), line, _loads(line, len(docs)), limits))
    return docs


def _json(data: bytes, limits: BodyLimits) -> list[Document]:
    value = _loads(data, 0, whole=True)
    if value.__class__ is dict:
        return [_document(0, data.strip(), value, limits)]
    if value.__class__ is not list:
        raise BadRequest("the body must be a JSON object or an array of objects", reason="not_object")
    _check_count(len(value), limits)
    return [_document(i, orjson.dumps(member), member, limits) for i, member in enumerate(value)]


def _loads(raw: bytes, index: int, *, whole: bool = False) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        what = "the body" if whole else f"document {index}"
        raise BadRequest(f"{what} is not valid JSON", reason="malformed_json") from None


def _document(index: int, raw: bytes, doc: Any, limits: BodyLimits) -> Document:
    if doc.__class__ is not dict:
        raise BadRequest(f"document {index} must be a JSON object", reason="not_object")
    if len(raw) > limits.max_message_bytes:
        raise PayloadTooLarge(f"document {index} is larger than {limits.max_message_bytes} bytes",
                              reason="message_too_large")
    # Each level opens a bracket: a document with few of them cannot be too deep (no walk).
    if raw.count(b"{") + raw.count(b"[") > limits.max_depth and too_deep(doc, limits.max_depth):
        raise BadRequest(f"document {index} is nested deeper than {limits.max_depth} levels",
                         reason="too_deep")
    return Document(index, raw, doc)


def _check_count(count: int, limits: BodyLimits) -> None:
    if count > limits.max_documents:
        raise PayloadTooLarge(f"a request holds at most {limits.max_documents} documents",
                              reason="too_many_documents")


def too_deep(node: Any, limit: int) -> bool:
    """Whether ``node`` nests objects/arrays more than ``limit`` levels (the node is level 1)."""
    stack: list[tuple[Any, int]] = [(node, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if item.__class__ is dict:
            stack.extend((v, depth + 1) for v in item.values() if v.__class__ in _CONTAINERS)
        elif item.__class__ is list:
            stack.extend((v, depth + 1) for v in item if v.__class__ in _CONTAINERS)
    return False


_CONTAINERS = (dict, list)
