"""The import row of ``make bench``: readings/s and peak RSS of ``python -m streams import`` on a
generated Apple Health export of at least ``BENCH_IMPORT_BYTES`` (default 1 GiB).

The export is generated on the fly (``large_apple_export`` of tests/import_files.py, which the
importer's fault tests use too) into a temporary file (removed afterwards; never
committed): the iOS 16 broken DTD, stray ``\\x0b`` characters, a mix of heart rate (with
metadata), steps, active energy, sleep stages, blood-pressure correlations and workouts with
routes, at distinct instants. The importer runs as a subprocess in ``--dry-run`` mode writing
to ``/dev/null``: this measures reading, mapping and packing (the parse rate), not Kafka.
Peak RSS is the child's own ``VmHWM``, sampled until it exits (``ru_maxrss`` would carry
this process's peak across the child's ``exec``). The target is under 250 MB.

Writes ``bench/import_results.json`` and prints one table row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from import_files import large_apple_export  # noqa: E402
from pipeline_support import PeakRss  # noqa: E402

TARGET = int(os.environ.get("BENCH_IMPORT_BYTES", str(1 << 30)))
RSS_LIMIT_MB = 250


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="hm-bench-import-") as folder:
        export = Path(folder) / "export.xml"
        started = time.monotonic()
        size, expected = large_apple_export(export, TARGET)
        generated_s = time.monotonic() - started
        env = {**os.environ, "HEALTHMATE_DEV_MODE": os.environ.get("HEALTHMATE_DEV_MODE", "true")}
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "streams", "import", str(export), "--user-id", "bench",
                                 "--dry-run", "--output", "/dev/null", "--json"],
                                cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        peak = PeakRss(proc.pid)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status = os.waitpid(proc.pid, 0)
        seconds = time.monotonic() - started
    summary = next(json.loads(line) for line in err.splitlines() if line.startswith("{"))
    peak_mb = peak.result()
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
