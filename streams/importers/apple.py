"""Apple Health ``export.xml`` -> single readings of our wire form. Pure and streaming.

What is read (everything else is counted as skipped, by kind):

- top-level ``Record`` elements of the quantity types in
  :data:`~streams.importers.apple_types.QUANTITY_TYPES` and sleep analysis. Records inside a
  ``Correlation`` also appear at the top level (Apple's DTD says so) and are not read twice;
- blood pressure from its ``Correlation`` only: systolic and diastolic of one correlation are
  published together, at the correlation's start. Top-level pressure records are the
  correlation's copies (skipped as ``blood_pressure_record``);
- times keep their offset (``2016-04-18 08:25:32 -0700`` -> ``2016-04-18T08:25:32-07:00``):
  the instant is exactly Apple's. A record whose end is after its start is an interval.

Never published: ``Me`` (date of birth, sex, blood type), workouts and their routes and
locations, activity summaries, clinical records, metadata outside
:data:`~streams.importers.apple_types.KEPT_METADATA`, the ``device``'s name and local
identifiers (the device id is manufacturer, model and hardware), and a person's name in the
source (``Simon’s iPhone`` is published as ``iPhone``).

Parsing: :class:`~streams.importers.xmlclean.CleanXml` strips the DOCTYPE and illegal bytes;
defusedxml's iterparse refuses any DTD or entity left. Each top-level element is dropped
from the tree once read, so memory does not grow with the file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any, BinaryIO

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from streams.importers.apple_types import (
    BP_CORRELATION,
    BP_TYPES,
    KEPT_METADATA,
    NOT_SLEEP,
    QUANTITY_TYPES,
    SLEEP_STAGES,
    SLEEP_TYPE,
    convert,
    short_type,
)
from streams.importers.base import ImportContext, ImportFileError, Item, Skipped
from streams.importers.text import clean, without_owner
from streams.importers.xmlclean import CleanXml, xml_bomb

__all__ = ["read_apple"]

_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}")
_DEVICE_FIELD = re.compile(r"(\w+):(.*?)(?=, \w+:|>\s*$)")
_SKIPPED_ELEMENTS = {"Me": "me", "Workout": "workout", "ActivitySummary": "activity_summary",
                     "ClinicalRecord": "clinical_record", "Audiogram": "audiogram"}


def read_apple(stream: BinaryIO, name: str, ctx: ImportContext) -> Iterator[Item]:
    """Readings of an Apple Health ``export.xml`` (see the module docstring)."""
    depth, root = 0, None
    stack: list[ET.Element] = []
    try:
        for event, elem in iterparse(CleanXml(stream), events=("start", "end"), forbid_dtd=True):
            if event == "start":
                depth += 1
                stack.append(elem)
                if depth == 1:
                    root = elem
                continue
            depth -= 1
            stack.pop()
            if depth == 1:
                yield from _top_level(elem, ctx)
                assert root is not None
                root.clear()
            elif depth > 1 and elem.tag == "Location":  # routes can be long: drop as we go
                yield Skipped("workout_route_location")
                stack[-1].remove(elem)
    except ET.ParseError as exc:
        line, column = exc.position
        raise ImportFileError(f"XML broken at line {line}, column {column}") from None
    except DefusedXmlException:
        raise xml_bomb("the XML declares a DTD or entities (refused)") from None
    if depth != 0 or root is None:
        raise ImportFileError("not an XML document")


def _top_level(elem: ET.Element, ctx: ImportContext) -> Iterator[Item]:
    tag = elem.tag
    if tag == "Record":
        yield from _record(elem, ctx)
    elif tag == "Correlation":
        yield from _correlation(elem, ctx)
    elif tag == "ExportDate":
        return
    else:
        yield Skipped(_SKIPPED_ELEMENTS.get(tag, "other_element"))
        if tag == "Workout":
            routes = sum(1 for child in elem if child.tag == "WorkoutRoute")
            if routes:
                yield Skipped("workout_route", routes)


def _record(elem: ET.Element, ctx: ImportContext) -> Iterator[Item]:
    a = elem.attrib
    kind = a.get("type", "")
    if kind in BP_TYPES:
        yield Skipped("blood_pressure_record")
    elif kind == SLEEP_TYPE:
        yield from _sleep(elem, ctx)
    elif kind in QUANTITY_TYPES:
        metric, statistic = QUANTITY_TYPES[kind]
        reading = _reading(elem, ctx, metric)
        if isinstance(reading, Skipped):
            yield reading
            return
        if statistic is not None:
            reading["statistic"] = statistic
            reading["metadata"] = {**reading.get("metadata", {}), "apple_type": short_type(kind)}
        yield reading
    else:
        yield Skipped(f"unsupported:{short_type(kind)}")
    yield from _dropped_metadata(elem)


def _correlation(elem: ET.Element, ctx: ImportContext) -> Iterator[Item]:
    if elem.attrib.get("type") != BP_CORRELATION:
        yield Skipped(f"unsupported:{short_type(elem.attrib.get('type', ''))}")
        return
    start = _time(elem.attrib.get("startDate"))
    found = 0
    for child in elem:
        metric = BP_TYPES.get(child.attrib.get("type", "")) if child.tag == "Record" else None
        if metric is None:
            continue
        reading = _reading(child, ctx, metric, device_of=elem)
        if not isinstance(reading, Skipped) and start is not None:
            reading["timestamp"] = start
            reading.pop("timestamp_end", None)
        found += 1
        yield reading
    if found == 0:
        yield Skipped("empty_correlation")
    yield from _dropped_metadata(elem)


def _sleep(elem: ET.Element, ctx: ImportContext) -> Iterator[Item]:
    value = elem.attrib.get("value", "")
    stage = SLEEP_STAGES.get(value)
    if stage is None:
        yield Skipped(NOT_SLEEP.get(value, "sleep_other"))
        return
    start, end = _time(elem.attrib.get("startDate")), _time(elem.attrib.get("endDate"))
    if start is None or end is None:
        yield Skipped("unreadable_time")
        return
    minutes = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 60
    reading = _base(elem, ctx, "sleep_duration", round(minutes, 6), "min", start)
    reading["timestamp_end"] = end
    reading["metadata"] = {**reading.get("metadata", {}), "sleep_stage": stage}
    yield reading


def _reading(elem: ET.Element, ctx: ImportContext, metric: str,
             device_of: ET.Element | None = None) -> dict[str, Any] | Skipped:
    a = elem.attrib
    try:
        raw = float(a["value"])
    except (KeyError, ValueError):
        return Skipped("unreadable_value")
    start, end = _time(a.get("startDate")), _time(a.get("endDate"))
    if start is None:
        return Skipped("unreadable_time")
    value, unit = convert(metric, a.get("unit", ""), raw)
    reading = _base(elem, ctx, metric, value, unit, start, device_of)
    if end is not None and end != start and _after(end, start):
        reading["timestamp_end"] = end
    return reading


def _base(elem: ET.Element, ctx: ImportContext, metric: str, value: float, unit: str, start: str,
          device_of: ET.Element | None = None) -> dict[str, Any]:
    a = elem.attrib
    device = a.get("device") or (device_of.attrib.get("device") if device_of is not None else None)
    reading: dict[str, Any] = {
        "user_id": ctx.user_id, "device_id": device_id(device),
        "source": ctx.source or source_name(a.get("sourceName")), "metric": metric,
        "value": value, "unit": unit, "timestamp": start,
    }
    metadata = {m.attrib["key"]: clean(m.attrib.get("value", ""), 200) for m in elem
                if m.tag == "MetadataEntry" and m.attrib.get("key") in KEPT_METADATA}
    if metadata:
        reading["metadata"] = metadata
    return reading


def _dropped_metadata(elem: ET.Element) -> Iterator[Skipped]:
    dropped = sum(1 for m in elem if m.tag == "MetadataEntry" and m.attrib.get("key") not in KEPT_METADATA)
    if dropped:
        yield Skipped("metadata_entry", dropped)


def _time(text: str | None) -> str | None:
    """``2016-04-18 08:25:32 -0700`` -> ``2016-04-18T08:25:32-07:00`` (None if not that shape)."""
    if text is None or _TIME.fullmatch(text) is None:
        return None
    return f"{text[:10]}T{text[11:19]}{text[20:23]}:{text[23:25]}"


def _after(end: str, start: str) -> bool:
    """``end`` is a later instant than ``start`` (both as :func:`_time` writes them)."""
    if end[19:] == start[19:]:  # same offset: the text orders like the instant
        return end > start
    return datetime.fromisoformat(end) > datetime.fromisoformat(start)


@lru_cache(maxsize=1024)
def device_id(description: str | None) -> str | None:
    """Manufacturer, model and hardware of a stringified HKDevice; never its name or local
    identifiers (a name is often a person's: "Simon’s Apple Watch")."""
    if not description:
        return None
    fields = dict(_DEVICE_FIELD.findall(description))
    parts = [fields.get(k, "").strip() for k in ("manufacturer", "model", "hardware")]
    text = " ".join(p for p in parts if p)
    return clean(text, 128) or None


@lru_cache(maxsize=1024)
def source_name(name: str | None) -> str:
    """``sourceName`` without a person's name: ``Simon’s iPhone`` -> ``iPhone``."""
    return without_owner(name or "", 64) or "apple_health"
