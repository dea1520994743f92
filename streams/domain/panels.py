"""Which stored readings are one blood-pressure measurement (a panel). Pure: no I/O.

Blood pressure is stored as two readings, ``blood_pressure_systolic`` and
``blood_pressure_diastolic``. They are one measurement, exported as one FHIR Observation
(LOINC 85354-9 with components 8480-6 and 8462-4) or one Open mHealth blood-pressure data
point, when they share the :func:`panel_key`: the same person (``user_key``), device,
source, instant or interval (``measured_at``, ``measured_until``), statistic, and source
event. The source event is the ``metadata`` key :data:`PANEL_ID`, set at ingest by the
forms that carry a panel in one unit: a FHIR Observation with components (its event id)
and an Open mHealth blood-pressure data point (its header id). The private forms (single
readings, envelopes, the wide form) carry no panel id: their systolic and diastolic
readings pair by the rest of the key. No warehouse column is added.

Where one key holds more than one reading of a metric (a producer sent two systolic values
for one instant), they pair in ``event_id`` order; a reading without a partner is a panel
with one component.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from itertools import zip_longest
from typing import Any, Final

SYSTOLIC: Final = "blood_pressure_systolic"
DIASTOLIC: Final = "blood_pressure_diastolic"
#: Metrics that are components of the blood-pressure panel, in component order.
PANEL_METRICS: Final = (SYSTOLIC, DIASTOLIC)
PANEL_LOINC: Final = "85354-9"
#: The LOINC codes of the components (the catalogue's codes of the two metrics).
COMPONENT_LOINC: Final = {SYSTOLIC: "8480-6", DIASTOLIC: "8462-4"}
#: Every code a search may name to find a panel.
PANEL_CODES: Final = (PANEL_LOINC, *COMPONENT_LOINC.values())
#: The ``metadata`` key linking the readings of one source event (set at ingest).
PANEL_ID: Final = "panel_id"

Row = Mapping[str, Any]


def measurement_id(rows: Sequence[Row]) -> str:
    """A stable id (40 hex digits, a valid FHIR id) of one measurement: a hash of its event id,
    or of ``panel:`` and its readings' sorted event ids for a panel. Event ids are producer text,
    so they are never shown as such."""
    if len(rows) == 1 and rows[0]["metric"] not in PANEL_METRICS:
        text = rows[0]["event_id"]
    else:
        text = "panel:" + "|".join(sorted(r["event_id"] for r in rows))
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def panel_id(row: Row) -> Any:
    """The row's source-event panel id: a ``panel_id`` column (the search selects it), else
    the ``metadata`` key (a dict, or the JSON text asyncpg returns for jsonb)."""
    if "panel_id" in row:
        return row["panel_id"]
    metadata = row.get("metadata")
    return metadata.get(PANEL_ID) if isinstance(metadata, Mapping) else None


def panel_key(row: Row) -> tuple[Any, ...] | None:
    """What makes two blood-pressure readings one measurement; ``None`` for other metrics."""
    if row["metric"] not in PANEL_METRICS:
        return None
    return (row["user_key"], row.get("device_id"), row["source"], row["measured_at"],
            row.get("measured_until"), row.get("statistic"), panel_id(row))


def observations(rows: Iterable[Row]) -> list[list[Row]]:
    """``rows`` as measurements, in order of first appearance: a list with one row for every
    other metric, and ``[systolic, diastolic]`` (either may be missing) for a panel. A panel
    list is ordered by :data:`PANEL_METRICS`; read its members by ``metric``."""
    out: list[list[Row] | dict[str, list[Row]]] = []
    panels: dict[tuple[Any, ...], dict[str, list[Row]]] = {}
    for row in rows:
        key = panel_key(row)
        if key is None:
            out.append([row])
            continue
        if key not in panels:
            panels[key] = {SYSTOLIC: [], DIASTOLIC: []}
            out.append(panels[key])
        panels[key][row["metric"]].append(row)
    result: list[list[Row]] = []
    for item in out:
        if isinstance(item, list):
            result.append(item)
            continue
        by_id = [sorted(item[m], key=lambda r: r["event_id"]) for m in PANEL_METRICS]
        result += [[r for r in pair if r is not None] for pair in zip_longest(*by_id)]
    return result
