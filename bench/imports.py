"""The import row of ``make bench``: readings/s and peak RSS of ``python -m streams import`` on a
generated Apple Health export of at least ``BENCH_IMPORT_BYTES`` (default 1 GiB).

The export is generated on the fly into a temporary file (removed afterwards; never
committed): the iOS 16 broken DTD, stray ``\\x0b`` characters, a mix of heart rate (with
metadata), steps, active energy, sleep stages, blood-pressure correlations and workouts with
routes, at distinct instants. The importer runs as a subprocess in ``--dry-run`` mode writing
to ``/dev/null``: this measures reading, mapping and packing (the parse rate), not Kafka.
Peak RSS is the child's ``ru_maxrss`` (``os.wait4``). The target is under 250 MB.

Writes ``bench/import_results.json`` and prints one table row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = int(os.environ.get("BENCH_IMPORT_BYTES", str(1 << 30)))
RSS_LIMIT_MB = 250
DTD = ("<!DOCTYPE HealthData [\n<!-- HealthKit Export Version: 12 -->\n"
       "<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>\n"
       "<!ATTLIST Record\n  type CDATA #REQUIRED\n  value CDATA\n>\n]>\n")
DEVICE = ("&lt;&lt;HKDevice: 0x283b1c8c0&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, "
          "hardware:Watch6,2, software:9.1&gt;")
Q = "HKQuantityTypeIdentifier"


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S +0000")


def _block(t: datetime) -> tuple[str, int]:
    """One minute of a day's data: (XML, readings it should give)."""
    s, e = _stamp(t), _stamp(t + timedelta(seconds=59))
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


def generate(path: Path, target: int) -> tuple[int, int]:
    """Write an export of at least ``target`` bytes; returns (bytes, expected readings)."""
    t = datetime(2020, 1, 1, tzinfo=UTC)
    size = readings = 0
    with path.open("w", encoding="utf-8") as out:
        size += out.write('<?xml version="1.0" encoding="UTF-8"?>\n' + DTD + '<HealthData locale="en_US">\n')
        while size < target:
            chunk, n = [], 0
            for _ in range(2000):
                xml, r = _block(t)
                chunk.append(xml)
                n += r
                t += timedelta(minutes=1)
            size += out.write("".join(chunk))
            readings += n
        size += out.write("</HealthData>\n")
    return path.stat().st_size, readings


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="hm-bench-import-") as folder:
        export = Path(folder) / "export.xml"
        started = time.monotonic()
        size, expected = generate(export, TARGET)
        generated_s = time.monotonic() - started
        env = {**os.environ, "HEALTHMATE_DEV_MODE": os.environ.get("HEALTHMATE_DEV_MODE", "true")}
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "streams", "import", str(export), "--user-id", "bench",
                                 "--dry-run", "--output", "/dev/null", "--json"],
                                cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
    summary = next(json.loads(line) for line in err.splitlines() if line.startswith("{"))
    peak_mb = usage.ru_maxrss / 1024
    result = {"export_bytes": size, "generated_s": round(generated_s, 1), "readings": summary["readings"],
              "expected_readings": expected, "seconds": round(seconds, 1),
              "readings_per_s": round(summary["readings"] / seconds),
              "mb_per_s": round(size / 2**20 / seconds, 1),
              "peak_rss_mb": round(peak_mb, 1), "rss_limit_mb": RSS_LIMIT_MB, "mode": "dry run to /dev/null",
              "exit_status": os.waitstatus_to_exitcode(status), "at": datetime.now(UTC).isoformat()}
    (ROOT / "bench" / "import_results.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| import (Apple export, dry run) | export MB | readings | readings/s | MB/s | peak RSS MB |")
    print(f"| {'ok' if peak_mb < RSS_LIMIT_MB and summary['readings'] == expected else 'FAIL'} "
          f"| {size / 2**20:.0f} | {summary['readings']} | {result['readings_per_s']} | {result['mb_per_s']} "
          f"| {peak_mb:.0f} |")
    ok = result["exit_status"] == 0 and peak_mb < RSS_LIMIT_MB and summary["readings"] == expected
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
