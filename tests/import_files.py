"""Crafted export files for the importer's tests: every trap of real exports, and the
identifying data (:data:`SECRETS`) that must never leave the importer.

:func:`apple_export` writes an ``export.xml`` the way iOS 16+ does: a malformed internal DTD
(expat refuses it: "syntax error") and stray ``\\x0b`` characters inside attribute values.
:func:`dexcom_csv` writes a Clarity export, old (unquoted) or new (quoted, transmitter columns).
:func:`large_apple_export` writes an Apple export of any size (``make bench`` and the importer's
fault tests): the same traps, heart rate, steps, energy, sleep, blood-pressure correlations
and workouts with routes, one minute of data after another at distinct instants;
:func:`count_apple_readings` counts what an Apple export holds with the standard library's
XML parser, independently of the importer.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "wearables"

#: Identifying values planted in the crafted files. None may appear in any output.
SECRETS = (
    "Henriette",
    "Vanderbilt-Okafor",
    "1961-03-17",
    "3/17/1961",
    "WITHINGS-ACC-5550123",
    "Henriette’s",
    "37.8212",
    "-122.4786",
    "HKDEVICE-LOCAL-ID-77",
)

BROKEN_DTD = """<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 12 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA
>
]>
"""

ME = (
    '<Me HKCharacteristicTypeIdentifierDateOfBirth="1961-03-17" '
    'HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale" '
    'HKCharacteristicTypeIdentifierBloodType="HKBloodTypeONegative"/>'
)
WATCH = (
    "&lt;&lt;HKDevice: 0x283b1c8c0&gt;, name:Henriette’s Apple Watch, manufacturer:Apple Inc., "
    "model:Watch, hardware:Watch6,2, software:9.1, localIdentifier:HKDEVICE-LOCAL-ID-77&gt;"
)


def record(
    kind: str,
    value: str,
    unit: str,
    start: str,
    end: str | None = None,
    *,
    source: str = "Henriette’s Apple\x0b Watch",
    device: str | None = WATCH,
    metadata: str = "",
) -> str:
    """One ``Record`` (``kind`` without its ``HKQuantityTypeIdentifier`` prefix unless it has one)."""
    if not kind.startswith("HK"):
        kind = "HKQuantityTypeIdentifier" + kind
    dev = f' device="{device}"' if device else ""
    return (
        f'<Record type="{kind}" sourceName="{source}" sourceVersion="9.1"{dev} unit="{unit}" '
        f'creationDate="{start}" startDate="{start}" endDate="{end or start}" value="{value}">'
        f"{metadata}</Record>\n"
    )


def apple_export(body: str, *, doctype: str = BROKEN_DTD) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + doctype + '<HealthData locale="en_US">\n'
        ' <ExportDate value="2024-11-05 10:00:00 +0100"/>\n ' + ME + "\n" + body + "</HealthData>\n"
    ).encode()


def dexcom_csv(rows: list[tuple[str, str, str]], *, unit: str = "mg/dL", new: bool = False) -> bytes:
    """``rows``: (timestamp, event type, glucose value); patient rows are added first. New-style
    exports get a transmitter time (seconds, 300 per row) and id."""
    patient = [
        ("", "FirstName", "Henriette"),
        ("", "LastName", "Vanderbilt-Okafor"),
        ("", "DateOfBirth", "3/17/1961"),
    ]
    if new:
        head = (
            '"Index","Timestamp (YYYY-MM-DDThh:mm:ss)","Event Type","Event Subtype","Patient Info",'
            '"Device Info","Source Device ID",'
            f'"Glucose Value ({unit})","Insulin Value (u)",'
            '"Carb Value (grams)","Duration (hh:mm:ss)",'
            f'"Glucose Rate of Change ({unit}/min)",'
            '"Transmitter Time (Long Integer)","Transmitter ID"'
        )
    else:
        head = (
            f"Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event Type,Event Subtype,Patient Info,Device Info,"
            f"Source Device ID,Glucose Value ({unit}),Insulin Value (u),Carb Value (grams),"
            f"Duration (hh:mm:ss),Glucose Rate of Change ({unit}/min)"
        )
    lines = [head]
    for i, (stamp, event, value) in enumerate(patient + rows, start=1):
        info = value if event in ("FirstName", "LastName", "DateOfBirth") else ""
        glucose = "" if info else value
        cells = [str(i), stamp, event, "", info, "", "iPhone G6" if stamp else "", glucose, "", "", "", ""]
        if new:
            cells += [str(1000 + 300 * i) if stamp else "", "8XYZ12" if stamp else ""]
            cells = [f'"{c}"' for c in cells]
        lines.append(",".join(cells))
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A zip (deflated) holding ``files`` by name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


# --------------------------------------------------------------------------- large exports

LARGE_DTD = ("<!DOCTYPE HealthData [\n<!-- HealthKit Export Version: 12 -->\n"
             "<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>\n"
             "<!ATTLIST Record\n  type CDATA #REQUIRED\n  value CDATA\n>\n]>\n")
DEVICE = ("&lt;&lt;HKDevice: 0x283b1c8c0&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, "
          "hardware:Watch6,2, software:9.1&gt;")
Q = "HKQuantityTypeIdentifier"


def _apple_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S +0000")


def _minute_of_data(t: datetime) -> tuple[str, int]:
    """One minute of a day's data: (XML, readings it should give)."""
    s, e = _apple_time(t), _apple_time(t + timedelta(seconds=59))
    common = f'sourceName="Apple\x0b Watch" sourceVersion="9.1" device="{DEVICE}" creationDate="{e}"'
    parts = [f'<Record type="{Q}HeartRate" {common} unit="count/min" startDate="{s}" endDate="{s}" '
             f'value="{60 + t.minute % 40}">\n <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" '
             f'value="0"/>\n</Record>\n',
             f'<Record type="{Q}StepCount" {common} unit="count" startDate="{s}" endDate="{e}" '
             f'value="{t.minute * 3}"/>\n',
             f'<Record type="{Q}ActiveEnergyBurned" {common} unit="kcal" startDate="{s}" endDate="{e}" '
             f'value="1.{t.minute}"/>\n']
    readings = 3
    if t.minute == 0:
        parts.append(f'<Correlation type="HKCorrelationTypeIdentifierBloodPressure" {common} '
                     f'startDate="{s}" endDate="{s}"><Record type="{Q}BloodPressureSystolic" {common} '
                     f'unit="mmHg" startDate="{s}" endDate="{s}" value="121"/>'
                     f'<Record type="{Q}BloodPressureDiastolic" {common} '
                     f'unit="mmHg" startDate="{s}" endDate="{s}" value="79"/></Correlation>\n')
        parts.append(f'<Record type="HKCategoryTypeIdentifierSleepAnalysis" {common} startDate="{s}" '
                     f'endDate="{e}" value="HKCategoryValueSleepAnalysisAsleepCore"/>\n')
        route = "".join(f'<Location date="{s}" latitude="37.{i}" longitude="-122.{i}"/>' for i in range(20))
        parts.append(f'<Workout workoutActivityType="HKWorkoutActivityTypeRunning" {common} '
                     f'startDate="{s}" endDate="{e}"><WorkoutRoute>' + route
                     + "</WorkoutRoute></Workout>\n")
        readings += 3
    return "".join(parts), readings


def large_apple_export(path: Path, target: int) -> tuple[int, int]:
    """Write an export of at least ``target`` bytes; returns (bytes, expected readings)."""
    t = datetime(2020, 1, 1, tzinfo=UTC)
    size = readings = 0
    with path.open("w", encoding="utf-8") as out:
        size += out.write('<?xml version="1.0" encoding="UTF-8"?>\n' + LARGE_DTD
                          + '<HealthData locale="en_US">\n')
        while size < target:
            chunk, n = [], 0
            for _ in range(2000):
                xml, r = _minute_of_data(t)
                chunk.append(xml)
                n += r
                t += timedelta(minutes=1)
            size += out.write("".join(chunk))
            readings += n
        size += out.write("</HealthData>\n")
    return path.stat().st_size, readings


_ASLEEP = {f"HKCategoryValueSleepAnalysis{s}" for s in ("Asleep", "AsleepUnspecified", "AsleepCore",
                                                        "AsleepDeep", "AsleepREM")}
#: Apple type -> metric, as docs/how-to/importing.md's table says (written here, not imported).
_METRICS = {"HKQuantityTypeIdentifierHeartRate": "heart_rate", "HKQuantityTypeIdentifierStepCount": "steps",
            "HKQuantityTypeIdentifierActiveEnergyBurned": "active_energy",
            "HKCategoryTypeIdentifierSleepAnalysis": "sleep_duration"}
#: Blood pressure is read from its correlations only.
_IN_CORRELATIONS = {"HKQuantityTypeIdentifierBloodPressureSystolic": "blood_pressure_systolic",
                    "HKQuantityTypeIdentifierBloodPressureDiastolic": "blood_pressure_diastolic"}


def count_apple_readings(export: Path) -> Counter[str]:
    """The readings by metric the export holds, counted from its ``Record`` elements with
    ElementTree (the DOCTYPE of iOS 16 exports and its stray ``\\x0b`` bytes removed first:
    plain XML 1.0 parsers refuse both)."""
    parser = ET.XMLPullParser(events=("start", "end"))
    counts: Counter[str] = Counter()
    path: list[str] = []
    with export.open("rb") as f:
        head = f.read(1 << 16)
        if b"<!DOCTYPE" in head:
            start = head.index(b"<!DOCTYPE")
            head = head[:start] + head[head.index(b"]>", start) + 2:]
        chunk = head
        while chunk:
            parser.feed(chunk.replace(b"\x0b", b" "))
            for event, element in parser.read_events():
                if event == "start":
                    path.append(element.tag)
                    continue
                path.pop()
                if element.tag == "Record":
                    kind = element.get("type", "")
                    parent = path[-1] if path else ""
                    if parent == "HealthData" and kind in _METRICS and (
                            "Sleep" not in kind or element.get("value") in _ASLEEP):
                        counts[_METRICS[kind]] += 1
                    elif parent == "Correlation" and kind in _IN_CORRELATIONS:
                        counts[_IN_CORRELATIONS[kind]] += 1
                if len(path) <= 1:
                    element.clear()
            chunk = f.read(1 << 20)
    parser.close()
    return counts
