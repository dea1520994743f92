"""streams.heap, in a process of its own (a frozen heap cannot be thawed by a test)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json
import streams.config, streams.domain.validate  # what a worker has imported by then
from streams.heap import YOUNG_THRESHOLD, settle_heap
tracked_before = len(gc.get_objects())
settle_heap()
print(json.dumps({"frozen": gc.get_freeze_count(), "tracked_before": tracked_before,
                  "tracked_after": len(gc.get_objects()), "threshold": gc.get_threshold(),
                  "young": YOUNG_THRESHOLD}))
"""


def test_settle_heap_takes_what_lives_at_start_out_of_the_collectors_sight() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert seen["frozen"] > 10_000  # the imported modules, classes and their dicts
    assert seen["tracked_after"] < seen["tracked_before"] / 10
    assert seen["threshold"] == [seen["young"], 20, 20]
