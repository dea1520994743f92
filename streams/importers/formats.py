"""Which reader reads a file: the registry and ``--format auto`` detection. Pure.

:func:`detect` looks at an entry's name and its first bytes (up to 4 KiB):

- ``fit``: bytes 8-11 are ``.FIT`` (the FIT file header), whatever the name;
- ``fitbit``: a ``.json`` file under a Takeout ``Fitbit/`` folder, or named like
  ``resting_heart_rate-2023-03-02.json`` (``heart_rate-``, ``steps-``, ``weight-``, ``sleep-``…);
- ``apple``: ``export.xml`` (an ``apple_health_export/`` zip holds it), or an XML file whose
  root is ``<HealthData``. ``export_cda.xml`` (clinical documents) is not;
- ``dexcom``: a CSV whose header has ``Event Type`` and ``Glucose Value``.

Anything else is ``None``: not an export this importer reads.
"""

from __future__ import annotations

import re
from typing import Final

from streams.importers.apple import read_apple
from streams.importers.base import Reader
from streams.importers.dexcom import read_dexcom

#: Every format the command line names. A format without a reader in :data:`READERS` is
#: recognised (and reported) but not read.
FORMATS: Final = ("apple", "fit", "fitbit", "dexcom")

READERS: dict[str, Reader] = {
    "apple": read_apple,
    "dexcom": read_dexcom,
}

_FITBIT_NAME = re.compile(
    r"(resting_heart_rate|heart_rate|steps|weight|sleep|estimated_oxygen_variation|spo2|"
    r"oxygen_saturation)-\d{4}-\d{2}-\d{2}\.json")


def detect(name: str, head: bytes) -> str | None:
    """The format of an entry named ``name`` starting with ``head`` (see the module doc)."""
    path = name.replace("\\", "/").lower()
    base = path.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    if len(head) >= 12 and head[8:12] == b".FIT":
        return "fit"
    if base.endswith(".json"):
        return "fitbit" if ("/fitbit/" in f"/{path}" or _FITBIT_NAME.fullmatch(base)) else None
    if base.endswith(".xml"):
        return "apple" if base == "export.xml" or b"<HealthData" in head else None
    if base.endswith(".csv") or not base.rpartition(".")[1]:
        first = head.split(b"\n", 1)[0].decode("utf-8", "replace")
        return "dexcom" if "Event Type" in first and "Glucose Value" in first else None
    return None
