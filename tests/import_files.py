"""Crafted export files for the importer's tests: every trap of real exports, and the
identifying data (:data:`SECRETS`) that must never leave the importer.

:func:`apple_export` writes an ``export.xml`` the way iOS 16+ does: a malformed internal DTD
(expat refuses it: "syntax error") and stray ``\\x0b`` characters inside attribute values.
:func:`dexcom_csv` writes a Clarity export, old (unquoted) or new (quoted, transmitter columns).
"""

from __future__ import annotations

import io
import zipfile

FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures" / "wearables"

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
