"""What an upload is checked for before it is accepted (``POST /data-pipeline/imports``).

:func:`inspect_upload` reads a spooled upload's directory and heads (never the whole file)
and raises :class:`~streams.errors.ImportRefused` for what the importer would refuse, so
the caller can answer a clear 4xx and delete the upload at once instead of failing later:
a hostile zip (:func:`~streams.importers.archive.check_zip`), an XML file that declares
entities (:func:`~streams.importers.xmlclean.check_prolog`), or nothing of a known format.
"""

from __future__ import annotations

import re
from pathlib import Path

from streams.errors import ImportRefused
from streams.importers.archive import ArchiveLimits, entries
from streams.importers.fitbit import fitbit_kind
from streams.importers.formats import detect
from streams.importers.xmlclean import MAX_PROLOG_BYTES, check_prolog

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")
_VENDOR_NAMES = frozenset({"export.xml", "export.zip"})


def spool_name(filename: str | None) -> str:
    """The name an upload is spooled under, which its import status shows.

    Only what detection needs is kept: a name that says the format (``export.xml``, a Fitbit
    Takeout name such as ``heart_rate-2024-01-01.json``) whole, any other name as ``upload``
    with its suffix. Vendors put the person in their file names (Clarity writes
    ``CLARITY_Export_<last name>_<first name>_….csv``), which must not reach the status."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    plain = _SAFE_NAME.fullmatch(base) is not None and ".." not in base
    if plain and (base.lower() in _VENDOR_NAMES or fitbit_kind(base) is not None):
        return base
    suffix = base[base.rfind("."):] if "." in base else ""
    return "upload" + suffix.lower() if _SAFE_SUFFIX.fullmatch(suffix) else "upload"


def inspect_upload(path: Path, limits: ArchiveLimits, fmt: str = "auto") -> list[str]:
    """The formats found in the upload at ``path`` (each entry's), or a refusal."""
    found: list[str] = []
    for entry in entries(path, limits):
        if entry.name.lower().endswith(".xml") or entry.head.lstrip().startswith(b"<"):
            with entry.open() as stream:
                check_prolog(stream.read(MAX_PROLOG_BYTES))
        kind = detect(entry.name, entry.head)
        if kind is not None and fmt in ("auto", kind):
            found.append(kind)
    if not found and fmt == "auto":
        raise ImportRefused("unknown_format", "no file of a known format (Apple Health, Garmin FIT, "
                                              "Fitbit Takeout, Dexcom Clarity) in the upload")
    return found or [fmt]
