"""Local days of the daily ETL targets in the Python reference (which the SQL path is checked
against, tests/integration/test_etl_sql.py): DST changes and the date line. Pure, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from etl_reference import EngagementAccumulator, MetricAggregator, local_day, on_day

from batch.config import ETLJobConfig
from batch.graph import lineage_graph
from batch.targets import EARLIEST_OFFSET, LATEST_OFFSET
from streams.config import Settings


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(("instant", "zone", "day"), [
    # Europe/Berlin springs forward on 2026-03-29 (02:00 -> 03:00): that day has 23 hours.
    ("2026-03-28T22:59:59Z", "Europe/Berlin", date(2026, 3, 28)),  # 23:59:59 CET
    ("2026-03-28T23:00:00Z", "Europe/Berlin", date(2026, 3, 29)),  # 00:00 CET
    ("2026-03-29T21:59:59Z", "Europe/Berlin", date(2026, 3, 29)),  # 23:59:59 CEST
    ("2026-03-29T22:00:00Z", "Europe/Berlin", date(2026, 3, 30)),
    # America/New_York falls back on 2026-11-01 (02:00 -> 01:00): that day has 25 hours.
    ("2026-11-01T04:00:00Z", "America/New_York", date(2026, 11, 1)),  # 00:00 EDT
    ("2026-11-02T04:59:59Z", "America/New_York", date(2026, 11, 1)),  # 23:59:59 EST
    ("2026-11-02T05:00:00Z", "America/New_York", date(2026, 11, 2)),
    # The date line: Kiritimati is UTC+14, Pago Pago UTC-11; the same instant, two days apart.
    ("2026-06-15T10:30:00Z", "Pacific/Kiritimati", date(2026, 6, 16)),
    ("2026-06-15T10:30:00Z", "Pacific/Pago_Pago", date(2026, 6, 14)),
    ("2026-06-15T10:30:00Z", "UTC", date(2026, 6, 15)),
    ("2026-06-15T23:30:00Z", None, date(2026, 6, 15)),
    ("2026-06-15T23:30:00Z", "Not/AZone", date(2026, 6, 15)),  # never fails a job: UTC
])
def test_local_day(instant: str, zone: str | None, day: date) -> None:
    assert local_day(at(instant), zone) == day


def row(user: str, value: float, instant: str, zone: str | None) -> dict:
    measured = at(instant)
    return {"event_id": f"{user}-{instant}", "user_key": user, "device_id": "d", "source": "fitbit",
            "metric": "steps", "value": value, "unit": "{steps}", "measured_at": measured,
            "ingested_at": measured, "produced_at": None, "stored_at": measured, "quality_flags": [],
            "timezone": zone}


def test_step_totals_per_local_day_across_the_spring_forward() -> None:
    rows = [row("berlin", 100, "2026-03-28T22:30:00Z", "Europe/Berlin"),   # 28th 23:30 local
            row("berlin", 200, "2026-03-28T23:30:00Z", "Europe/Berlin"),   # 29th 00:30 local
            row("berlin", 300, "2026-03-29T21:30:00Z", "Europe/Berlin"),   # 29th 23:30 local
            row("berlin", 400, "2026-03-29T22:30:00Z", "Europe/Berlin")]   # 30th 00:30 local
    day = date(2026, 3, 29)
    kept = on_day(rows, day)
    assert [r["value"] for r in kept] == [200, 300]
    agg = MetricAggregator(day)
    [(d, user, metric, unit, count, lo, hi, mean, *_, zone)] = agg.feed(kept) + agg.finish()
    assert (d, user, count, mean * count, zone) == (day, "berlin", 2, 500, "Europe/Berlin")


def test_the_same_utc_hour_lands_on_three_days_across_the_date_line() -> None:
    instant = "2026-06-15T10:30:00Z"
    rows = [row("kiritimati", 1, instant, "Pacific/Kiritimati"), row("pago", 2, instant, "Pacific/Pago_Pago"),
            row("london", 3, instant, None)]
    by_day = {d: [r["user_key"] for r in on_day(rows, d)] for d in (date(2026, 6, 14) + timedelta(days=i)
                                                                    for i in range(3))}
    assert by_day == {date(2026, 6, 14): ["pago"], date(2026, 6, 15): ["london"],
                      date(2026, 6, 16): ["kiritimati"]}
    acc = EngagementAccumulator(date(2026, 6, 16))
    acc.feed(on_day(rows, date(2026, 6, 16)))
    [engaged] = acc.rows({})
    assert (engaged[1], engaged[2], engaged[-1]) == ("kiritimati", 1, "Pacific/Kiritimati")


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12", "Pacific/Pago_Pago", "Asia/Kolkata"])
def test_the_extraction_window_covers_every_local_day(zone: str) -> None:
    day = date(2026, 6, 15)
    start = datetime(2026, 6, 15, tzinfo=UTC)
    window = (start - EARLIEST_OFFSET, start + timedelta(days=1) + LATEST_OFFSET)
    minute = timedelta(minutes=1)
    instant = window[0] - minute
    while instant < window[1] + minute:
        inside = window[0] <= instant < window[1]
        if local_day(instant, zone) == day:
            assert inside, (zone, instant)
        instant += 15 * minute


def test_lineage_names_user_profiles_as_the_source_of_the_zone() -> None:
    settings = Settings.model_validate({"dev_mode": True})
    local = ETLJobConfig(job_name="j", source_tables=["health_metrics", "user_profiles"],
                         target_tables=["user_engagement"])
    graph = lineage_graph(local, settings)
    [zone] = [t for t in graph["transformations"] if t["field"] == "timezone"]
    assert [i["dataset"].rsplit(".", 1)[1] for i in zone["inputs"]] == ["user_profiles"]
    ids = {n["id"] for n in graph["sources"] + graph["targets"] + graph["transformations"]}
    assert all(e["from"] in ids and e["to"] in ids for e in graph["edges"])
    utc = lineage_graph(ETLJobConfig(job_name="j", target_tables=["user_engagement"]), settings)
    assert "timezone" not in {t["field"] for t in utc["transformations"]}  # the constant UTC
