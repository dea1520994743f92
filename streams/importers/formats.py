"""Which reader reads a file: the registry and ``--format auto`` detection. Pure.

:func:`detect` looks at an entry's name and its first bytes (up to 4 KiB):

- ``fit``: bytes 8-11 are ``.FIT`` (the FIT file header), whatever the name;
- ``fitbit``: a ``.json`` file under a Takeout ``Fitbit/`` folder, or what
  :func:`~streams.importers.fitbit.is_fitbit` recognises (``<kind>-YYYY-MM-DD.json`` arrays, the
  SpO2 CSVs);
- ``apple``: ``export.xml`` (an ``apple_health_export/`` zip holds it), or an XML file whose
  root is ``<HealthData``. ``export_cda.xml`` (clinical documents) is not;
- ``dexcom``: a CSV whose header has ``Event Type`` and ``Glucose Value``.

Anything else is ``None``: not an export this importer reads.
"""

from __future__ import annotations

from typing import Final

from streams.importers.apple import read_apple
from streams.importers.base import Reader
from streams.importers.dexcom import read_dexcom
from streams.importers.fit import is_fit, read_fit
from streams.importers.fitbit import is_fitbit, read_fitbit

#: Every format the command line names, each with its reader.
FORMATS: Final = ("apple", "fit", "fitbit", "dexcom")

READERS: dict[str, Reader] = {
    "apple": read_apple,
    "fit": read_fit,
    "fitbit": read_fitbit,
    "dexcom": read_dexcom,
}


def detect(name: str, head: bytes) -> str | None:
    """The format of an entry named ``name`` starting with ``head`` (see the module doc)."""
    path = name.replace("\\", "/")
    file_name = path.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    base = file_name.lower()
    if is_fit(name, head):
        return "fit"
    # Fitbit names keep their case: "Minute SpO2 - ….csv" is told from other CSVs by it.
    if is_fitbit(file_name, head) or (base.endswith(".json") and "/fitbit/" in f"/{path.lower()}"):
        return "fitbit"
    if base.endswith(".json"):
        return None
    if base.endswith(".xml"):
        return "apple" if base == "export.xml" or b"<HealthData" in head else None
    if base.endswith(".csv") or not base.rpartition(".")[1]:
        first = head.split(b"\n", 1)[0].decode("utf-8", "replace")
        return "dexcom" if "Event Type" in first and "Glucose Value" in first else None
    return None
