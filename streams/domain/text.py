"""Bounds on every text field that reaches PostgreSQL, and a safe rendering of bad text.

PostgreSQL refuses U+0000 in ``text`` and ``jsonb``, and a btree index refuses keys over
about 2.7 kB; either refusal would fail a whole warehouse batch. So every identifier a
producer sends is bounded here, in characters, and refused if it holds a control
character (C0, DEL or C1: invisible in dashboards and logs, and never part of an id).
These limits are part of the wire contract (README, :mod:`streams.records`).
"""

from __future__ import annotations

import re
from typing import Final

from streams.errors import Rejected, RejectReason

#: Longest accepted value of each text field, in characters.
MAX_LENGTHS: Final = {
    "event_id": 200,
    "user_id": 256,
    "device_id": 128,
    "source": 64,
    "batch_id": 128,
    "metric": 64,
    "unit": 64,
}
#: Longest accepted ``metadata``, in bytes of compact JSON.
MAX_METADATA_BYTES: Final = 16 * 1024

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_has_control = _CONTROL.search


def check_text(name: str, value: str) -> None:
    """Raise ``Rejected`` if ``value`` of field ``name`` is too long or holds a control character."""
    if len(value) > MAX_LENGTHS[name]:
        raise Rejected(RejectReason.TEXT_TOO_LONG,
                       f"field {name!r} is longer than {MAX_LENGTHS[name]} characters")
    # isprintable() is a fast C check that is False for every control character (and for
    # some harmless ones, like a no-break space): only then does the precise regex run.
    if not value.isprintable() and _has_control(value):
        raise Rejected(RejectReason.CONTROL_CHARACTER, f"field {name!r} contains a control character")


def has_control_character(value: str) -> bool:
    """Whether ``value`` holds a C0 or C1 control character or DEL."""
    return not value.isprintable() and _has_control(value) is not None


def check_metadata_json(encoded: bytes) -> None:
    """Raise ``Rejected`` if compact-JSON ``metadata`` is too large or holds a NUL."""
    if len(encoded) > MAX_METADATA_BYTES:
        raise Rejected(RejectReason.TEXT_TOO_LONG,
                       f"field 'metadata' is larger than {MAX_METADATA_BYTES} bytes")
    if b"\\u0000" in encoded:
        raise Rejected(RejectReason.CONTROL_CHARACTER, "field 'metadata' contains a NUL character")


def safe_rendering(text: str | None, limit: int = 200) -> str | None:
    """``text`` fit for a warehouse column or a log line: control characters and unpaired
    surrogates escaped (``\\x00``), cut to ``limit`` characters with a trailing ``…``."""
    if text is None:
        return None
    if _has_control(text) or not is_utf8(text):
        text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (no unpaired surrogates)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
