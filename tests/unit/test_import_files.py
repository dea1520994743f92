"""Format detection, archive refusals, envelope packing and the ``import`` command (dry run)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pytest
from import_files import FIXTURES, SECRETS, apple_export, dexcom_csv, record, zip_bytes

from streams.errors import ImportFileError, ImportRefused
from streams.importers.archive import ArchiveLimits, check_zip, entries
from streams.importers.command import main
from streams.importers.formats import detect
from streams.importers.packing import Packer
from streams.importers.run import singles
from streams.importers.upload import inspect_upload, spool_name

LIMITS = ArchiveLimits(max_total_bytes=8 << 20, max_ratio=50, max_entries=100)


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("run.fit", b"\x0e\x10\xd9\x07\x00\x00\x00\x00.FIT", "fit"),
        ("anything.bin", b"\x0e\x10\xd9\x07\x00\x00\x00\x00.FIT", "fit"),
        ("Takeout/Fitbit/Global Export Data/calories-2024-01-01.json", b"[", "fitbit"),
        ("resting_heart_rate-2023-03-02.json", b"[", "fitbit"),
        ("heart_rate-2024-02-28.json", b"[", "fitbit"),
        ("Takeout/Fitbit/Oxygen Saturation (SpO2)/Minute SpO2 - 2024-01-15.csv", b"timestamp,value\n",
         "fitbit"),
        ("takeout.zip:Takeout/Fitbit/Oxygen Saturation (SpO2)/Daily SpO2 - 2024-01-01-2024-01-31.csv",
         b"\xef\xbb\xbftimestamp,average_value,lower_bound,upper_bound\n", "fitbit"),
        ("Takeout/Fitbit/Your Profile/Profile.csv", b"id,full_name,first_name\n", None),
        ("package.json", b"{", None),
        ("apple_health_export/export.xml", b"<?xml", "apple"),
        ("apple_health_export/export_cda.xml", b"<?xml version='1.0'?><ClinicalDocument>", None),
        ("mine.xml", b"<?xml version='1.0'?>\n<HealthData locale='en'>", "apple"),
        ("clarity.csv", b"\xef\xbb\xbfIndex,Timestamp,Event Type,Glucose Value (mg/dL)\n", "dexcom"),
        ("steps.csv", b"date,steps\n", None),
    ],
)
def test_detect(name: str, head: bytes, expected: str | None) -> None:
    assert detect(name, head) == expected


@pytest.mark.parametrize(
    ("files", "kind"),
    [
        ({"export.xml": b"\0" * (4 << 20)}, "zip_bomb"),  # ratio ~1000 > 50
        ({f"part{i}.csv": bytes(range(256)) * 4096 for i in range(10)}, "zip_bomb"),  # 10 MiB > 8 MiB in all
        ({"inner.zip": zip_bytes({"export.xml": b"<HealthData/>"})}, "nested_archive"),
        ({"data.bin": zip_bytes({"export.xml": b"<HealthData/>"})}, "nested_archive"),  # by content
        ({"../../etc/cron.d/x": b"x"}, "path_escape"),
        ({"/abs/export.xml": b"x"}, "path_escape"),
    ],
)
def test_hostile_zips_are_refused(tmp_path: Path, files: dict[str, bytes], kind: str) -> None:
    path = tmp_path / "upload.zip"
    path.write_bytes(zip_bytes(files))
    with pytest.raises(ImportRefused) as refused:
        list(entries(path, LIMITS))
    assert refused.value.kind == kind
    with pytest.raises(ImportRefused):
        inspect_upload(path, LIMITS)


def test_an_apple_export_zip_is_read_entry_by_entry(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    path.write_bytes(
        zip_bytes(
            {
                "apple_health_export/export.xml": apple_export(""),
                "apple_health_export/export_cda.xml": b"<ClinicalDocument/>",
                "apple_health_export/workout-routes/route_1.gpx": b"<gpx/>",
            }
        )
    )
    names = [(e.name.split(":", 1)[1], detect(e.name, e.head)) for e in entries(path, LIMITS)]
    assert names == [
        ("apple_health_export/export.xml", "apple"),
        ("apple_health_export/export_cda.xml", None),
        ("apple_health_export/workout-routes/route_1.gpx", None),
    ]
    assert inspect_upload(path, LIMITS) == ["apple"]
    check_zip(zipfile.ZipFile(path).infolist(), LIMITS)  # no refusal


def test_uploads_refuse_xml_bombs_and_unknown_files(tmp_path: Path) -> None:
    bomb = tmp_path / "export.xml"
    bomb.write_bytes(apple_export("", doctype='<!DOCTYPE HealthData [<!ENTITY a "a">]>\n'))
    with pytest.raises(ImportRefused, match="entities") as refused:
        inspect_upload(bomb, LIMITS)
    assert refused.value.kind == "xml_bomb"
    other = tmp_path / "notes.txt"
    other.write_bytes(b"hello")
    with pytest.raises(ImportRefused) as refused:
        inspect_upload(other, LIMITS)
    assert refused.value.kind == "unknown_format"
    assert spool_name("../../Henriette’s export.zip") == "upload.zip"
    assert spool_name("heart_rate-2024-01-01.json") == "heart_rate-2024-01-01.json"
    assert spool_name("Minute SpO2 - 2024-01-15.csv") == "upload.csv"  # a space: not plain
    assert spool_name("export.xml") == "export.xml"


def test_an_uploads_spooled_name_never_carries_the_person_named_in_it() -> None:
    """Clarity names its export after the patient; the spooled name is shown in the status."""
    assert spool_name("CLARITY_Export_Vanderbilt-Okafor_Henriette_001_2024-11-05_093810.csv") == "upload.csv"
    assert spool_name("henriette.v@example.org_1234567.fit") == "upload.fit"
    assert spool_name("Henriette-Takeout") == "upload"
    assert spool_name("weight-2024-01-01.json") == "weight-2024-01-01.json"


def test_envelopes_respect_the_reading_and_byte_bounds_and_group_by_device() -> None:
    packer = Packer(max_readings=3, max_bytes=2048)
    sent = []
    readings = [
        {
            "user_id": "u",
            "device_id": d,
            "source": "s",
            "metric": "heart_rate",
            "value": i,
            "unit": "/min",
            "timestamp": f"2024-05-01T08:{i:02d}:00Z",
        }
        for i, d in enumerate(["a"] * 7 + ["b"] * 2)
    ]
    for r in readings:
        if (m := packer.add(r)) is not None:
            sent.append(m)
    sent.append(packer.flush())
    docs = [orjson.loads(m.value) for m in sent]
    assert [(d["device_id"], len(d["readings"])) for d in docs] == [("a", 3), ("a", 3), ("a", 1), ("b", 2)]
    assert [v for d in docs for v in (x["value"] for x in d["readings"])] == list(range(9))
    assert all("user_id" not in x and "event_id" not in x for d in docs for x in d["readings"])
    big = Packer(max_readings=10_000, max_bytes=4096)
    sizes = [m for r in readings * 100 if (m := big.add(r)) is not None]
    assert sizes and all(len(m.value) <= 4096 for m in sizes)


def test_the_command_dry_run_prints_messages_and_summaries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "clarity.csv"
    csv_path.write_bytes(
        dexcom_csv([("2024-05-01T08:00:00", "EGV", "110"), ("2024-05-01T08:05:00", "EGV", "Low")])
    )
    out = tmp_path / "out.jsonl"
    code = main(
        [
            str(FIXTURES / "apple" / "export.xml"),
            str(csv_path),
            "--user-id",
            "u-cli",
            "--zone",
            "Europe/Paris",
            "--dry-run",
            "--output",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    messages = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sum(len(m["readings"]) for m in messages) == 4 and {m["user_id"] for m in messages} == {"u-cli"}
    summaries = [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert [(s["format"], s["readings"], s["error"]) for s in summaries] == [
        ("apple", 2, None),
        ("dexcom", 2, None),
    ]
    assert not [s for s in SECRETS if s in out.read_text()]


def test_the_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "export.xml"
    broken.write_bytes(
        apple_export(record("HeartRate", "70", "count/min", "2024-05-01 08:00:00 +0200"))[:-30]
    )
    good = tmp_path / "clarity.csv"
    good.write_bytes(dexcom_csv([("2024-05-01T08:00:00", "EGV", "110")]))
    out = tmp_path / "out.jsonl"
    assert (
        main([str(broken), str(good), "--user-id", "u", "--zone", "UTC", "--dry-run", "--output", str(out)])
        == 1
    )
    err = capsys.readouterr().err
    assert f"import: {broken}: apple" in err and "ERROR: XML broken at line" in err
    assert f"import: {good}: dexcom, 1 messages, 1 readings" in err  # the other file still went
    for bad in (
        ["--user-id", "u", "--zone", "Mars/Base"],
        ["--zone", "UTC"],
        ["--user-id", "", "--dry-run"],
        ["--user-id", "u", "--output", str(out)],
        ["--user-id", "u", "--format", "pdf"],
    ):
        with pytest.raises(SystemExit) as exited:
            main([str(good), *bad])
        assert exited.value.code == 2


def test_a_damaged_zip_entry_is_a_file_error_and_the_next_path_still_goes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(zip_bytes({"clarity.csv": dexcom_csv([("2024-05-01T08:00:00", "EGV", "110")] * 50)}))
    middle = data.index(b"clarity.csv") + 40  # inside the compressed data of the entry
    data[middle : middle + 8] = b"\xff" * 8
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    good = tmp_path / "clarity.csv"
    good.write_bytes(dexcom_csv([("2024-05-01T08:00:00", "EGV", "110")]))
    out = tmp_path / "out.jsonl"
    code = main(
        [str(damaged), str(good), "--user-id", "u", "--zone", "UTC", "--dry-run", "--output", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 1 and [ln for ln in err.splitlines() if "damaged.zip" in ln and "ERROR: " in ln], err
    assert f"import: {good}: dexcom, 1 messages, 1 readings" in err


def test_a_readers_envelope_is_repacked_within_the_bounds() -> None:
    envelope = {
        "batch_id": "b",
        "user_id": "u",
        "device_id": "d",
        "source": "garmin",
        "readings": [
            {
                "metric": "heart_rate",
                "value": v,
                "unit": "/min",
                "timestamp": f"2024-05-01T08:{v:02d}:00Z",
                "user_id": "someone-else",
            }
            for v in range(5)
        ],
    }
    readings = singles(envelope)
    assert [(r["user_id"], r["device_id"], r["source"], r["value"]) for r in readings] == [
        ("u", "d", "garmin", v) for v in range(5)
    ]
    assert singles(readings[0]) == [readings[0]]


def test_a_zip_that_lies_about_its_sizes_never_expands_beyond_them(tmp_path: Path) -> None:
    data = bytearray(zip_bytes({"clarity.csv": b"Event Type,Glucose Value\n" + b"0" * (20 << 20)}))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size fields
        at = data.index(signature)
        data[at + offset : at + offset + 4] = (1000).to_bytes(4, "little")
    path = tmp_path / "liar.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(ImportFileError, match="cannot be read"):  # the CRC of 1000 bytes fails
        list(entries(path, LIMITS))
    with zipfile.ZipFile(path) as z, z.open("clarity.csv") as member, pytest.raises(zipfile.BadZipFile):
        member.read()  # stops at the declared size and checks its CRC, never the 20 MiB inside


def test_the_command_without_kafka_is_one_line_and_exit_3(tmp_path: Path) -> None:
    good = tmp_path / "clarity.csv"
    good.write_bytes(dexcom_csv([("2024-05-01T08:00:00", "EGV", "110")]))
    env = {**os.environ, "HEALTHMATE_KAFKA_BOOTSTRAP": "127.0.0.1:1", "HEALTHMATE_DEV_MODE": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "streams", "import", str(good), "--user-id", "u", "--zone", "UTC"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr and "Kafka" in done.stderr
    with pytest.raises(SystemExit) as exited:
        main([str(good), "--user-id", "u", "--dry-run", "--output", str(tmp_path / "no" / "such" / "dir")])
    assert exited.value.code == 2
