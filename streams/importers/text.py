"""Text from export files made safe to publish. Pure.

:func:`without_owner` drops a person's name from a device or app name (``Simon’s iPhone`` ->
``iPhone``): people name their devices after themselves, and such a name would identify them.
Control characters (which the worker refuses in ids) are removed and the text is cut.
"""

from __future__ import annotations

import re

_POSSESSIVE = re.compile(r"^.+?[’'`]s\s+(\S.*)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: str, limit: int) -> str:
    """``text`` without control characters, stripped, at most ``limit`` characters."""
    return _CONTROL.sub("", text).strip()[:limit]


def without_owner(name: str, limit: int) -> str:
    """A device or app name without its owner's name (see the module docstring)."""
    text = clean(name, 200)
    match = _POSSESSIVE.match(text)
    return (match.group(1) if match is not None else text)[:limit]
