# ruff: noqa: F811 - pytest fixtures imported from batch_support are used as parameters
"""The daily targets computed in PostgreSQL equal the old Python row-by-row path
(tests/etl_reference.py) on the real warehouse, for varied data: many users, metrics and
days, profile zones with DST changes (both hemispheres, half-hour shifts) and across the
date line, tied values and instants, summary rows, non-canonical units, NaN and infinities."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from batch_support import table_rows
from etl_data import add_profiles, copy_readings, readings
from etl_reference import reference_daily

from batch.config import ETLJobConfig
from batch.pipeline import BatchPipeline, day_bounds
from batch.quality_gate import QualityTally
from streams.sink.migrations import quote_ident

pytestmark = [pytest.mark.integration]
DAILY = ["aggregated_health_metrics", "user_engagement"]
#: Spans the US (03-08) and European (03-29) spring-forward and Lord Howe's half hour (04-05).
START, DAYS, USERS = datetime(2026, 3, 6, tzinfo=UTC), 32, 24


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def assert_rows_equal(got: list[tuple], want: list[tuple]) -> None:
    # (day, user, metric) is not unique: one metric can be stored in two units. Sort on the
    # unit too, or rows that tie on the first three pair up in input order (a flaky test).
    def key(row: tuple) -> list[str]:
        return [repr(v) for v in row[:4]]

    got, want = sorted(got, key=key), sorted(want, key=key)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert all(same(a, b) for a, b in zip(g, w, strict=True)), (g, w)


@pytest.fixture
async def facts(warehouse) -> None:
    async with warehouse.pool.acquire() as conn:
        await copy_readings(conn, warehouse.schema, readings(6000, START, DAYS, USERS), START, DAYS)
        await add_profiles(conn, warehouse.schema, USERS)


@pytest.mark.parametrize(("local", "statistics", "batch_size"), [
    (False, False, 37), (True, False, 100_000), (True, True, 100_000), (False, True, 100_000)])
async def test_sql_targets_equal_the_python_reference(warehouse, facts, local: bool, statistics: bool,
                                                      batch_size: int) -> None:
    sources = ["health_metrics", "user_profiles"] if local else ["health_metrics"]
    job = ETLJobConfig(job_name="eq", source_tables=sources, target_tables=DAILY,
                       include_statistics=statistics, batch_size=batch_size, parallel_workers=3,
                       data_quality_threshold=0.0)
    # Mid-span, so that streaks reach back before the interval and local days spill over.
    days = day_bounds(START + timedelta(days=3), START + timedelta(days=DAYS - 2))
    tally = QualityTally()
    result = await BatchPipeline(warehouse.pool, warehouse.schema, job, tally).run(days)

    pipeline = BatchPipeline(warehouse.pool, warehouse.schema, job, QualityTally())
    covered = pipeline.local_days(days) if local else days
    old_tally = QualityTally()
    async with warehouse.pool.acquire() as conn:
        want = await reference_daily(conn, warehouse.schema, job, covered, old_tally)
    s = quote_ident(warehouse.schema)
    for name in DAILY:
        got = [tuple(r) for r in await table_rows(warehouse.pool, s, name)]
        assert_rows_equal(got, want[name])
    assert result.loaded == len(want["aggregated_health_metrics"]) + len(want["user_engagement"])
    assert (result.extracted, result.rejected) == (want["extracted"], want["rejected"])
    assert result.rejected > 0 and result.extracted > 4000
    # The same rows in the same chunks: the quality gate judges exactly what it judged before.
    assert tally.counts == old_tally.counts

    agg = want["aggregated_health_metrics"]
    streaks = [r[7] for r in want["user_engagement"]]
    assert max(streaks) >= 4 and min(streaks) == 1  # streaks both run on and break
    assert {r[-1] for r in agg} == ({"Europe/Berlin", "America/New_York", "Pacific/Kiritimati", "UTC",
                                     "Pacific/Pago_Pago", "Asia/Kolkata", "Australia/Lord_Howe"}
                                    if local else {"UTC"})
    assert any(r[4] == 1 and r[8] is None for r in agg)  # a lone reading has no stddev

    # Idempotent: loading the same interval again replaces the rows with the same rows.
    before = {name: [tuple(r) for r in await table_rows(warehouse.pool, s, name)] for name in DAILY}
    again = await BatchPipeline(warehouse.pool, warehouse.schema, job, QualityTally()).run(days)
    assert again.loaded == result.loaded
    for name in DAILY:  # float aggregates may differ in the last bit with the summation order
        assert_rows_equal([tuple(r) for r in await table_rows(warehouse.pool, s, name)], before[name])


async def test_a_zone_postgresql_does_not_know_counts_in_utc(warehouse) -> None:
    async with warehouse.pool.acquire() as conn:
        await copy_readings(conn, warehouse.schema, readings(50, START, 1, 1), START, 1)
        await conn.execute(f"INSERT INTO {quote_ident(warehouse.schema)}.user_profiles"
                           " (user_key, timezone, updated_at) VALUES ('u00000', 'Not/AZone', now())")
    job = ETLJobConfig(job_name="z", source_tables=["health_metrics", "user_profiles"], target_tables=DAILY,
                       data_quality_threshold=0.0)
    await BatchPipeline(warehouse.pool, warehouse.schema, job, QualityTally()).run([START.date()])
    rows = await table_rows(warehouse.pool, quote_ident(warehouse.schema), "user_engagement")
    assert [(r["day"], r["timezone"]) for r in rows] == [(START.date(), "UTC")]
