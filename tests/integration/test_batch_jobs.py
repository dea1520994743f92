# ruff: noqa: F811 - pytest fixtures imported from batch_support are used as parameters
"""ETL jobs on the real PostgreSQL: targets equal independently computed values, loads are
idempotent, the quality gate stops bad data, retries back off, timeouts cancel."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta

import asyncpg
import pytest
from batch_support import normalise, reading, sample_day, store, table_rows

from batch import api
from batch.errors import JobNameTaken, JobNotFound, RunNotFound
from batch.runner import JobRunner, RunOptions
from streams.domain.quality import DataValidator, DimensionCounts
from streams.sink.migrations import quote_ident

pytestmark = [pytest.mark.integration]
ALL = ["aggregated_health_metrics", "user_engagement", "system_performance"]


def one_day(day0):  # type: ignore[no-untyped-def]
    return day0, day0 + timedelta(days=1)


def close(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]
    return a == b


async def test_registry_round_trip(warehouse) -> None:
    job = await api.create_job(warehouse, {"job_name": "daily", "target_tables": ["user_engagement"],
                                           "schedule": "0 2 * * *"})
    assert await api.get_job(warehouse, str(job.job_id)) == job
    assert [j.job_name for j in await api.list_jobs(warehouse, enabled=True)] == ["daily"]
    with pytest.raises(JobNameTaken):
        await api.create_job(warehouse, {"job_name": "daily", "target_tables": ["user_engagement"]})
    await api.delete_job(warehouse, job.job_id)
    with pytest.raises(JobNotFound):
        await api.get_job(warehouse, job.job_id)
    with pytest.raises(JobNotFound):
        await api.delete_job(warehouse, "not-a-uuid")
    with pytest.raises(RunNotFound):
        await api.get_run(warehouse, job.job_id)


async def test_targets_equal_values_computed_from_the_fact_rows(batch_settings, warehouse, seeded,
                                                                day0) -> None:
    job = await api.create_job(warehouse, {"job_name": "all", "target_tables": ALL, "parallel_workers": 3,
                                           "batch_size": 2})
    run = await api.run_job(batch_settings, job.job_id, warehouse=warehouse,
                            interval=(day0 - timedelta(days=2), seeded))
    assert run.status == "succeeded", run.error
    assert run.progress == 100 and run.rows_loaded > 0 and run.rows_rejected == 0
    assert run.quality_level in ("excellent", "good") and run.quality_score is not None
    s = quote_ident(warehouse.schema)
    pool = warehouse.pool

    expected = await pool.fetch(
        "SELECT (measured_at AT TIME ZONE 'UTC')::date, user_key, metric, min(unit), count(*), min(value),"
        " max(value), avg(value), stddev_samp(value), percentile_cont(0.5) WITHIN GROUP (ORDER BY value),"
        f" percentile_cont(0.95) WITHIN GROUP (ORDER BY value), 'UTC' FROM {s}.health_readings"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    got = await table_rows(pool, s, "aggregated_health_metrics")
    assert len(got) == len(expected) == 9
    for g, e in zip(got, expected, strict=True):
        assert all(close(a, b) for a, b in zip(tuple(g), tuple(e), strict=True)), (g, e)

    expected = await pool.fetch(
        f"WITH r AS (SELECT *, (measured_at AT TIME ZONE 'UTC')::date AS day FROM {s}.health_readings),"
        " d AS (SELECT DISTINCT user_key, day FROM r),"
        " g AS (SELECT user_key, day, day - (row_number() OVER w)::int AS grp FROM d"
        "       WINDOW w AS (PARTITION BY user_key ORDER BY day)),"
        " k AS (SELECT user_key, day,"
        "       row_number() OVER (PARTITION BY user_key, grp ORDER BY day) AS streak FROM g)"
        " SELECT r.day, r.user_key, count(*), count(DISTINCT metric),"
        " array_agg(DISTINCT source ORDER BY source),"
        " min(measured_at), max(measured_at), min(k.streak), 'UTC' FROM r JOIN k USING (user_key, day)"
        " GROUP BY 1, 2 ORDER BY 1, 2")
    got = await table_rows(pool, s, "user_engagement")
    assert [tuple(r) for r in got] == [tuple(r) for r in expected]
    assert max(r["active_days_streak"] for r in got) == 3

    lag = "greatest(0, extract(epoch FROM stored_at - coalesce(produced_at, ingested_at)))::float8"
    expected = await pool.fetch(
        f"SELECT date_trunc('hour', stored_at, 'UTC') AS hour, count(*) AS n, avg({lag}) AS mean,"
        f" percentile_cont(0.95) WITHIN GROUP (ORDER BY {lag}) AS p95"
        f" FROM {s}.health_readings GROUP BY 1 ORDER BY 1")
    dead = await pool.fetch("SELECT date_trunc('hour', created_at, 'UTC') AS hour, reason, metric,"
                            f" count(*) AS n FROM {s}.dead_letters GROUP BY 1, 2, 3")
    got = await table_rows(pool, s, "system_performance")
    assert [r["hour"] for r in got] == sorted({r["hour"] for r in expected} | {r["hour"] for r in dead})
    validator = DataValidator()
    for row in got:
        e = next(x for x in expected if x["hour"] == row["hour"])
        by_reason: dict[str, int] = {}
        for d in (d for d in dead if d["hour"] == row["hour"]):
            by_reason[d["reason"]] = by_reason.get(d["reason"], 0) + d["n"]
        assert (row["stored"], row["rejected"], row["processed"]) == (e["n"], sum(by_reason.values()),
                                                                      e["n"] + sum(by_reason.values()))
        assert __import__("json").loads(row["rejected_by_reason"]) == by_reason
        assert close(row["mean_ingest_lag_s"], e["mean"]) and close(row["p95_ingest_lag_s"], e["p95"])
        facts = await pool.fetch(
            f"SELECT * FROM {s}.health_readings WHERE date_trunc('hour', stored_at, 'UTC') = $1", row["hour"])
        counts = DimensionCounts()
        for metric in {f["metric"] for f in facts}:
            counts += validator.validate_data_quality(facts, metric).counts
        for d in (d for d in dead if d["hour"] == row["hour"]):
            rejected = {d["reason"]: d["n"]}
            counts += validator.validate_data_quality([], d["metric"] or "unknown", rejected=rejected).counts
        assert close(row["quality_score"], counts.overall(validator.config.weights))
        assert row["quality_score"] < 1.0  # the dead letters count against validity


async def test_running_a_job_twice_leaves_identical_targets(batch_settings, warehouse, seeded, day0) -> None:
    job = await api.create_job(warehouse, {"job_name": "twice", "target_tables": ALL})
    interval = (day0 - timedelta(days=2), seeded)
    s = quote_ident(warehouse.schema)
    first = await api.run_job(batch_settings, job.job_id, warehouse=warehouse, interval=interval)
    before = {t: await table_rows(warehouse.pool, s, t) for t in ALL}
    second = await api.run_job(batch_settings, job.job_id, warehouse=warehouse, interval=interval)
    after = {t: await table_rows(warehouse.pool, s, t) for t in ALL}
    assert first.status == second.status == "succeeded" and first.run_id != second.run_id
    assert all(before[t] for t in ALL)
    assert after == before
    assert [r.run_id for r in await api.list_runs(warehouse, job.job_id)] == [second.run_id, first.run_id]


async def test_quality_gate_stops_a_load_of_bad_data(batch_settings, warehouse, seeded, day0) -> None:
    job = await api.create_job(warehouse, {"job_name": "gated", "data_quality_threshold": 0.9,
                                           "retry_count": 3, "target_tables": ["aggregated_health_metrics"]})
    interval = (day0, day0 + timedelta(days=1))
    s = quote_ident(warehouse.schema)
    ok = await api.run_job(batch_settings, job.job_id, warehouse=warehouse, interval=interval)
    assert ok.status == "succeeded"
    loaded = await table_rows(warehouse.pool, s, "aggregated_health_metrics")
    # Bad rows written behind the domain's back: impossible values in non-canonical units.
    await warehouse.pool.executemany(
        f"INSERT INTO {s}.health_readings (event_id, user_key, source, metric, loinc_code, value, unit,"
        " original_value, original_unit, measured_at, ingested_at, kafka_topic, kafka_partition,"
        " kafka_offset, transformation_version) VALUES ($1, 'k', 'garmin', 'heart_rate', '8867-4', $2,"
        " 'furlongs', $2, 'furlongs', $3, $3, 'bad', 0, 0, '1.0.0')",
        [(f"bad-{i}", 9000.0 + i, day0 + timedelta(minutes=i)) for i in range(40)])
    gated = await api.run_job(batch_settings, job.job_id, warehouse=warehouse, interval=interval)
    assert gated.status == "failed" and gated.attempt == 1  # not retried
    assert gated.error.startswith("quality gate:") and "nothing was loaded" in gated.error
    assert gated.quality_score < 0.9 and gated.quality_level in ("poor", "unusable", "fair")
    assert gated.rows_loaded == 0 and gated.rows_extracted == 50
    assert await table_rows(warehouse.pool, s, "aggregated_health_metrics") == loaded


class FlakyRunner(JobRunner):
    """Fails its first ``failures`` attempts with a transient error, then runs for real."""

    def __init__(self, *args, failures: int, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.failures = failures
        self.attempts = 0

    async def attempt(self, job, run_id, interval):  # type: ignore[no-untyped-def]
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionResetError("warehouse went away")
        return await super().attempt(job, run_id, interval)


async def test_retries_back_off_exponentially_with_jitter(batch_settings, warehouse, seeded, day0) -> None:
    job = await api.create_job(warehouse, {"job_name": "flaky", "target_tables": ["user_engagement"],
                                           "retry_count": 3})
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    runner = FlakyRunner(batch_settings, warehouse, failures=2, sleep=sleep, rng=lambda: 0.5)
    run = await runner.run(job, RunOptions(interval=(day0, day0 + timedelta(days=1))))
    assert run.status == "succeeded" and run.attempt == 3 and run.rows_loaded == 2
    base = batch_settings.etl_retry_initial_s
    assert slept == pytest.approx([base * 0.75, base * 2 * 0.75])

    slept.clear()
    runner = FlakyRunner(batch_settings, warehouse, failures=10, sleep=sleep, rng=lambda: 0.0)
    run = await runner.run(job, RunOptions(interval=(day0, day0 + timedelta(days=1))))
    assert run.status == "failed" and run.attempt == 4 and run.error == "ConnectionResetError"
    assert slept == pytest.approx([base * 0.5, base * 1.0, base * 2.0])


async def test_timeout_cancels_the_run(batch_settings, warehouse, seeded, day0) -> None:
    job = await api.create_job(warehouse, {"job_name": "slow", "target_tables": ["user_engagement"],
                                           "timeout_minutes": 0.01})
    cancelled = asyncio.Event()

    class Stuck(JobRunner):
        async def attempt(self, job, run_id, interval):  # type: ignore[no-untyped-def]
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    started = asyncio.get_running_loop().time()
    run = await Stuck(batch_settings, warehouse).run(job, RunOptions(interval=one_day(day0)))
    assert asyncio.get_running_loop().time() - started < 10
    assert cancelled.is_set()
    assert run.status == "timed_out" and run.error == "timed out after 0.01 minutes" and run.rows_loaded == 0
    s = quote_ident(warehouse.schema)
    assert await warehouse.pool.fetchval(f"SELECT count(*) FROM {s}.user_engagement") == 0


async def test_rejected_rows_are_counted_not_aggregated(batch_settings, warehouse, day0) -> None:
    readings = normalise(batch_settings, [reading("carol", "steps", 100, "count", day0 + timedelta(hours=1))])
    await store(warehouse, readings)
    s = quote_ident(warehouse.schema)
    await warehouse.pool.execute(f"UPDATE {s}.health_readings SET unit = 'steps'")  # not canonical
    job = await api.create_job(warehouse, {"job_name": "rej", "target_tables": ["aggregated_health_metrics"],
                                           "data_quality_threshold": 0})
    run = await api.run_job(batch_settings, job.job_id, warehouse=warehouse, interval=one_day(day0))
    assert (run.status, run.rows_extracted, run.rows_rejected, run.rows_loaded) == ("succeeded", 1, 1, 0)


async def test_error_messages_hold_no_phi(batch_settings, warehouse, day0) -> None:
    await store(warehouse, normalise(batch_settings, sample_day(day0)))
    job = await api.create_job(warehouse, {"job_name": "broken", "target_tables": ["user_engagement"],
                                           "retry_count": 0})
    await warehouse.pool.execute(f"ALTER TABLE {quote_ident(warehouse.schema)}.user_engagement"
                                 " ADD CONSTRAINT no_alice CHECK (readings < 3)")
    run = await api.run_job(batch_settings, job.job_id, warehouse=warehouse, interval=one_day(day0))
    assert run.status == "failed" and run.error == "CheckViolationError"
    with pytest.raises(asyncpg.CheckViolationError):  # the driver's own message would quote the row
        await warehouse.pool.execute(f"INSERT INTO {quote_ident(warehouse.schema)}.user_engagement VALUES"
                                     " ('2026-01-01', 'k', 5, 1, '{}', now(), now(), 1)")
