"""The sink's own binary COPY encoder stores exactly what asyncpg's encoder stores.

The check itself lives in bench/check_copy.py (synthetic readings plus edge cases: NULLs,
flags, non-ASCII metadata, pre-2000 timestamps, offsets, 64-bit Kafka offsets, interval
ends and statistics), compared
both ways with EXCEPT ALL on the real PostgreSQL; this runs it as part of the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_custom_copy_encoding_matches_asyncpg(pg_dsn):
    env = {**os.environ, "HEALTHMATE_DEV_MODE": "true", "HEALTHMATE_PG_DSN": pg_dsn}
    result = subprocess.run([sys.executable, "bench/check_copy.py"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert " 0 rows differ" in result.stdout
