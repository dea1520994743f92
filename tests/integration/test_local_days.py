"""Daily targets by each user's local day (sources include user_profiles), on the real warehouse:
across a DST change and across the date line; without user_profiles, UTC days as before."""

from __future__ import annotations

from datetime import date, datetime

from batch_support import normalise, reading, store, table_rows
from prometheus_client import CollectorRegistry

from batch import api
from streams.domain.profiles import UserProfile
from streams.domain.pseudonym import user_key
from streams.metrics import Metrics
from streams.sink.migrations import quote_ident
from streams.sink.profiles import upsert_profile

TARGETS = ["aggregated_health_metrics", "user_engagement"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _profiles(settings, warehouse, zones: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    keys = {user: user_key(settings.pseudonym_key_bytes, user) for user in zones}
    for user, zone in zones.items():
        await upsert_profile(warehouse.pool, settings.warehouse_schema,
                             UserProfile(keys[user], zone, 1980, False, "female", at("2026-01-01T00:00:00Z")))
    return keys


async def _steps(settings, warehouse, job_id: str, local: bool, start: str, end: str):  # type: ignore[no-untyped-def]
    sources = ["health_metrics", "user_profiles"] if local else ["health_metrics"]
    job = await api.create_job(warehouse, {"job_id": job_id, "job_name": f"Steps {job_id}",
                                           "source_tables": sources, "target_tables": TARGETS})
    run = await api.run_job(settings, job.job_id, warehouse=warehouse, interval=(at(start), at(end)))
    assert run.status == "succeeded", run.error
    s = quote_ident(warehouse.schema)
    agg = await table_rows(warehouse.pool, s, "aggregated_health_metrics")
    engaged = await table_rows(warehouse.pool, s, "user_engagement")
    return ({(r["day"], r["user_key"]): (r["count"], r["mean"] * r["count"], r["timezone"]) for r in agg},
            {(r["day"], r["user_key"]): (r["readings"], r["timezone"]) for r in engaged})


async def test_steps_per_local_day_across_the_spring_forward(batch_settings, warehouse) -> None:  # noqa: F811
    settings = batch_settings
    keys = await _profiles(settings, warehouse, {"berlin": "Europe/Berlin"})
    instants = ["2026-03-28T22:30:00Z",  # Sat 23:30 CET
                "2026-03-28T23:30:00Z",  # Sun 00:30 CET
                "2026-03-29T21:30:00Z",  # Sun 23:30 CEST (the 23-hour day)
                "2026-03-29T22:30:00Z"]  # Mon 00:30 CEST
    docs = [reading("berlin", "steps", 100 * (i + 1), "steps", at(t)) for i, t in enumerate(instants)]
    await store(warehouse, normalise(settings, docs))
    b = keys["berlin"]

    local, engaged = await _steps(settings, warehouse, "local_dst", True, "2026-03-28T00:00:00Z",
                                  "2026-03-31T00:00:00Z")
    assert local == {(date(2026, 3, 28), b): (1, 100, "Europe/Berlin"),
                     (date(2026, 3, 29), b): (2, 500, "Europe/Berlin"),
                     (date(2026, 3, 30), b): (1, 400, "Europe/Berlin")}
    assert engaged[(date(2026, 3, 29), b)] == (2, "Europe/Berlin")

    utc, _ = await _steps(settings, warehouse, "utc_dst", False, "2026-03-28T00:00:00Z",
                          "2026-03-31T00:00:00Z")
    assert utc == {(date(2026, 3, 28), b): (2, 300, "UTC"), (date(2026, 3, 29), b): (2, 700, "UTC")}


async def test_one_utc_instant_is_three_local_days_across_the_date_line(batch_settings, warehouse) -> None:  # noqa: F811
    settings = batch_settings
    keys = await _profiles(settings, warehouse, {"kiri": "Pacific/Kiritimati", "pago": "Pacific/Pago_Pago"})
    docs = [reading(user, "steps", 1000, "steps", at("2026-06-15T10:30:00Z"))
            for user in ("kiri", "pago", "utc")]
    docs.append(reading("kiri", "steps", 50, "steps", at("2026-06-15T09:59:00Z")))  # 23:59 on the 15th there
    await store(warehouse, normalise(settings, docs))
    u = user_key(settings.pseudonym_key_bytes, "utc")

    local, engaged = await _steps(settings, warehouse, "local_dateline", True, "2026-06-14T00:00:00Z",
                                  "2026-06-17T00:00:00Z")
    assert local == {(date(2026, 6, 16), keys["kiri"]): (1, 1000, "Pacific/Kiritimati"),
                     (date(2026, 6, 15), keys["kiri"]): (1, 50, "Pacific/Kiritimati"),
                     (date(2026, 6, 14), keys["pago"]): (1, 1000, "Pacific/Pago_Pago"),
                     (date(2026, 6, 15), u): (1, 1000, "UTC")}  # no profile: UTC
    # Streaks count local days: kiri was active on the 15th and the 16th.
    rows = await table_rows(warehouse.pool, quote_ident(warehouse.schema), "user_engagement")
    streaks = {(r["day"], r["user_key"]): r["active_days_streak"] for r in rows}
    assert streaks[(date(2026, 6, 16), keys["kiri"])] == 2
    assert engaged[(date(2026, 6, 14), keys["pago"])] == (1, "Pacific/Pago_Pago")


async def test_rerunning_a_local_day_job_gives_the_same_rows(batch_settings, warehouse) -> None:  # noqa: F811
    settings = batch_settings
    await _profiles(settings, warehouse, {"kiri": "Pacific/Kiritimati"})
    doc = reading("kiri", "steps", 7, "steps", at("2026-06-15T10:30:00Z"))
    await store(warehouse, normalise(settings, [doc]))
    first = await _steps(settings, warehouse, "again", True, "2026-06-14T00:00:00Z", "2026-06-17T00:00:00Z")
    metrics = Metrics(CollectorRegistry())
    run = await api.run_job(settings, "again", warehouse=warehouse, metrics=metrics,
                            interval=(at("2026-06-14T00:00:00Z"), at("2026-06-17T00:00:00Z")))
    assert run.status == "succeeded" and run.rows_loaded == 2
    labels = {s.labels["etl_job"] for m in metrics.etl_runs.collect() for s in m.samples}
    assert labels == {"again"}  # the job id, never its name "Steps again"
    s = quote_ident(warehouse.schema)
    agg = await table_rows(warehouse.pool, s, "aggregated_health_metrics")
    again = {(r["day"], r["user_key"]): (r["count"], r["mean"] * r["count"], r["timezone"]) for r in agg}
    assert again == first[0]
