"""Audit fields are sanitised before the insert (web/audit.py): PostgreSQL text refuses NUL."""

from __future__ import annotations

import pytest

from web.audit import sanitise


@pytest.mark.parametrize(("raw", "clean"), [
    ("job_id=abc\x00def", "job_id=abc\\x00def"),
    ("line\nbreak\r\ttab", "line\\x0abreak\\x0d\\x09tab"),
    ("\x1b[2Jclear", "\\x1b[2Jclear"),
    ("del\x7f c1\x85", "del\\x7f c1\\x85"),
    ("back\\slash", "back\\\\slash"),
    ("lone\ud800surrogate", "lone\\ud800surrogate"),
    ("Zoë ok", "Zoë ok"),
])
def test_control_characters_are_escaped(raw: str, clean: str) -> None:
    assert sanitise(raw, 100) == clean
    assert clean.encode("utf-8")  # always encodable, never a NUL


def test_lengths_are_bounded() -> None:
    assert sanitise("x" * 1000, 10) == "x" * 9 + "…"
    assert len(sanitise("\x00" * 1000, 50) or "") == 50
    assert sanitise(None, 10) is None
