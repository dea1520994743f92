"""Bytes to a JSON document, with orjson on the hot path and a careful slow path for errors.

orjson refuses ``NaN``/``Infinity`` literals and numbers that overflow a double. The
contract classifies those as ``invalid_type`` of the reading that holds them, not as
malformed JSON, so only when orjson fails is the message decoded a second time with the
stdlib, tracking non-finite numbers. Anything *else* orjson refuses (syntax errors,
invalid UTF-8, nesting deeper than 1024, lone surrogates) stays ``malformed_json``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from streams.domain.text import is_utf8
from streams.errors import Rejected, RejectReason

#: orjson's nesting limit: 1024 levels decode, 1025 do not.
MAX_DEPTH = 1024
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # beyond this range orjson yields a float


def decode(value: bytes) -> tuple[Any, bool]:
    """Decode ``value``; return ``(document, has_nonfinite)``.

    ``has_nonfinite`` is True only when the document holds a NaN or infinite float (then
    it came from the slow path, and callers must reject the readings that hold one).
    Raises ``Rejected(MALFORMED_JSON)`` for anything that is not valid JSON for orjson.
    """
    try:
        return orjson.loads(value), False
    except orjson.JSONDecodeError:
        pass
    doc = _decode_tracking_nonfinite(value)
    if doc is None:
        raise Rejected(RejectReason.MALFORMED_JSON, "message value is not valid JSON")
    return doc, True


def _decode_tracking_nonfinite(value: bytes) -> Any | None:
    """The stdlib decoding of ``value`` if orjson refused it *only* for non-finite numbers, else None."""
    seen = False

    def constant(name: str) -> float:
        nonlocal seen
        seen = True
        return float(name)  # "NaN", "Infinity", "-Infinity" all parse

    def number(text: str) -> float:
        nonlocal seen
        f = float(text)
        if not math.isfinite(f):
            seen = True
        return f

    def integer(text: str) -> int | float:
        i = int(text)
        if _INT_MIN <= i <= _INT_MAX:
            return i
        return number(text)  # mirrors orjson, which yields a float out of 64-bit range

    try:
        doc = json.loads(
            value.decode("utf-8"), parse_constant=constant, parse_float=number, parse_int=integer
        )
    except (ValueError, RecursionError):  # includes UnicodeDecodeError and JSONDecodeError
        return None
    if not seen or not _orjson_compatible(doc):
        return None
    return doc


def _orjson_compatible(doc: Any) -> bool:
    """Whether ``doc`` has no nesting deeper than :data:`MAX_DEPTH` and no lone surrogates."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if not is_utf8(node):
                return False
        elif isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                return False
            if isinstance(node, dict):
                if not all(is_utf8(k) for k in node):
                    return False
                stack.extend((child, depth + 1) for child in node.values())
            else:
                stack.extend((child, depth + 1) for child in node)
    return True




def has_nonfinite(node: Any) -> bool:
    """Whether ``node`` holds a NaN or infinite float anywhere (iterative, any depth)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n.__class__ is float:
            if not math.isfinite(n):
                return True
        elif isinstance(n, dict):
            stack.extend(n.values())
        elif isinstance(n, list | tuple):
            stack.extend(n)
    return False


def dumps_member(member: Any, nonfinite: bool = False) -> bytes:
    """``member`` re-encoded as compact JSON for a dead-letter payload; never raises.

    Uses orjson, unless ``nonfinite`` (the document came from the slow path): then the
    stdlib writes ``NaN``/``Infinity`` literals, so the payload shows what was received
    instead of orjson's ``null``. If neither can encode it, returns ``b"null"``.
    """
    encoders = (_dumps_stdlib, orjson.dumps) if nonfinite else (orjson.dumps, _dumps_stdlib)
    for encode in encoders:
        try:
            return encode(member)
        except (TypeError, ValueError, RecursionError):  # orjson.JSONEncodeError is a TypeError
            continue
    return b"null"


def _dumps_stdlib(member: Any) -> bytes:
    return json.dumps(member, separators=(",", ":"), ensure_ascii=False, default=repr).encode()
