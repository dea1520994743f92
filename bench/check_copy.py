"""Check that the warehouse's own binary COPY encoding stores exactly what asyncpg's does.

    python bench/check_copy.py      # needs the local PostgreSQL (scripts/stack.sh up)

``streams.sink.warehouse`` encodes readings to PostgreSQL's binary COPY format itself
(``_copy_readings``), so that the CPU work happens before the transaction. This script
stores the same readings, synthetic ones plus edge cases (NULLs, flags, metadata with
non-ASCII text, timestamps before 2000 and with offsets, 64-bit offsets, interval ends
and statistics), once through
that encoder and once through asyncpg's ``copy_records_to_table`` (``_reading_rows``),
into two tables of the ``health_readings`` shape, and compares them both ways with
``EXCEPT ALL``. Exit status 1 on any difference.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pipeline_support import drop_schema  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from bench.breakdown import fetches  # noqa: E402
from bench.data import make_data  # noqa: E402
from streams.config import Settings  # noqa: E402
from streams.ingest import IngestService  # noqa: E402
from streams.metrics import Metrics  # noqa: E402
from streams.rules import rules_from_settings  # noqa: E402
from streams.sink.copy_encoding import READING_COLUMNS, _reading_rows, copy_readings  # noqa: E402
from streams.sink.migrations import quote_ident  # noqa: E402
from streams.sink.warehouse import Warehouse  # noqa: E402


async def main() -> int:
    schema = f"bench_copy_{uuid.uuid4().hex[:8]}"
    settings = Settings(pseudonym_key="bench", warehouse_schema=schema)
    singles, envelopes = make_data(3000, seed=7)
    warehouse = Warehouse(settings.pg_dsn_value, schema, pool_max=1)
    await warehouse.start()
    s = quote_ident(schema)
    try:
        service = IngestService(settings, rules_from_settings(settings), warehouse,
                                Metrics(CollectorRegistry()))
        for fetched in fetches(singles, "bench.single") + fetches(envelopes, "bench.envelope"):
            service._judge(fetched)
        readings = list(service._pending.readings)
        r0 = readings[0]
        readings += [
            replace(r0, event_id="edge-1", device_id=None, produced_at=None,
                    quality_flags=("outlier", "late"),
                    metadata={"fw": "2.1", "n": [1, 2.5, {"x": "é ✓"}], "b": True, "z": None},
                    source="ünïcode ✓", value=-0.0, original_value=1e300),
            replace(r0, event_id="edge-2", quality_flags=("clipped",), metadata={}, kafka_offset=2**62,
                    measured_at=datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                    kafka_partition=2**31 - 1),
            replace(r0, event_id="edge-3", ingested_at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
                    measured_at=datetime(2026, 1, 2, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=5)))),
            replace(r0, event_id="edge-4", statistic="minimum",
                    measured_until=datetime(2026, 1, 3, 0, 0, 0, 5, tzinfo=timezone(timedelta(hours=-3)))),
            replace(r0, event_id="edge-5", statistic="standard deviation", measured_until=r0.measured_at),
        ]
        cols = ", ".join(READING_COLUMNS)
        async with warehouse.pool.acquire() as conn:
            for table in ("by_asyncpg", "by_warehouse"):
                await conn.execute(f"CREATE TABLE {s}.{table} (LIKE {s}.health_readings INCLUDING DEFAULTS)")
            await conn.copy_records_to_table("by_asyncpg", schema_name=schema,
                                             records=_reading_rows(readings), columns=READING_COLUMNS)
            await conn.copy_to_table("by_warehouse", schema_name=schema, format="binary",
                                     source=memoryview(copy_readings(readings)), columns=READING_COLUMNS)
            differ = 0
            for a, b in (("by_asyncpg", "by_warehouse"), ("by_warehouse", "by_asyncpg")):
                differ += await conn.fetchval(
                    f"SELECT count(*) FROM (SELECT {cols} FROM {s}.{a}"
                    f" EXCEPT ALL SELECT {cols} FROM {s}.{b}) d")
            stored = await conn.fetchval(f"SELECT count(*) FROM {s}.by_warehouse")
    finally:
        await warehouse.stop()
        await drop_schema(settings.pg_dsn_value, schema)
    print(f"{stored} of {len(readings)} readings stored; {differ} rows differ")
    return 0 if differ == 0 and stored == len(readings) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
