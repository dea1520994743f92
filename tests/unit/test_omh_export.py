"""Open mHealth out: every emitted data point is valid by the official data-point schema (header
included) and by its body schema (jsonschema over the copied official files), and reading it
back through our own input form gives the same readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from jsonschema import Draft4Validator, FormatChecker

from streams.domain import process_message
from streams.domain.catalogue import DEFAULT_CATALOGUE, resolve_unit
from streams.domain.omh_export import CURRENT, OUT_UNITS, SCHEMA_OF, data_points
from streams.domain.omh_schema import OMH_BASE, reference_errors, registry

T = datetime(2024, 5, 1, 8, tzinfo=UTC)
DATA_POINT = Draft4Validator({"$ref": OMH_BASE + "data-point-1.0.json"}, registry=registry(),
                             format_checker=FormatChecker())
#: metric -> a plausible canonical value
VALUES = {"heart_rate": 61.0, "steps": 1200.0, "blood_pressure_systolic": 121.0,
          "blood_pressure_diastolic": 79.0, "body_weight": 70.5, "body_temperature": 36.6,
          "oxygen_saturation": 97.0, "respiratory_rate": 14.0, "blood_glucose": 99.0, "sleep_duration": 420.0,
          "active_energy": 250.0, "body_height": 172.0, "body_mass_index": 23.7, "body_fat_percentage": 21.0}


def _row(metric: str, n: int, **changes: Any) -> dict[str, Any]:
    rule = DEFAULT_CATALOGUE[metric]
    row = {"event_id": f"e-{metric}-{n}", "user_key": "c" * 64, "device_id": None, "source": "withings",
           "metric": metric, "loinc_code": rule.loinc_code, "value": VALUES[metric],
           "unit": rule.canonical_unit,
           "measured_at": T + timedelta(minutes=n), "measured_until": None, "statistic": None,
           "ingested_at": T + timedelta(hours=1), "metadata": None}
    return {**row, **changes}


def _rows() -> list[dict[str, Any]]:
    rows = []
    for i, metric in enumerate(VALUES):
        n = i - 1 if metric == "blood_pressure_diastolic" else i  # with its systolic: one measurement
        rows.append(_row(metric, n, measured_until=T + timedelta(minutes=n, hours=1)))  # an interval
        rows.append(_row(metric, n, event_id=f"e-{metric}-sum", statistic="maximum",  # a summary
                         measured_until=T + timedelta(minutes=n, hours=2)))
        if metric not in ("steps", "sleep_duration", "active_energy"):  # these need an interval
            rows.append(_row(metric, n + 100))
    return rows


def test_every_metric_maps_to_its_current_schema_in_our_canonical_unit() -> None:
    assert set(OUT_UNITS) == set(SCHEMA_OF)
    # resting heart rate (a daily value) has no schema of its own; heart-rate "at rest" would read
    # back as heart_rate, so it is counted as no_schema rather than emitted as something else
    assert set(DEFAULT_CATALOGUE) - set(OUT_UNITS) == {"resting_heart_rate"}
    for metric, unit in OUT_UNITS.items():
        conv = resolve_unit(DEFAULT_CATALOGUE[metric], unit)
        assert (conv.offset, conv.factor / conv.divisor) == (0, 1), metric  # no conversion on the way out


def test_every_data_point_is_valid_by_its_official_schemas() -> None:
    points, skipped = data_points(_rows())
    assert skipped == {}
    assert len(points) == len(_rows()) - 3  # blood pressure: 3 pairs, 3 data points
    for dp in points:
        assert list(DATA_POINT.iter_errors(dp)) == []
        sid = dp["header"]["schema_id"]
        assert sid["version"] == CURRENT[sid["name"]]
        assert [e.message for e in reference_errors(sid["name"], sid["version"], dp["body"])] == []


def test_reading_them_back_gives_the_same_readings(ctx, rules) -> None:
    rows = [r for r in _rows() if r["measured_at"] < T + timedelta(hours=1)]
    points, _ = data_points(rows)
    back = [r for dp in points for r in process_message(orjson.dumps(dp), ctx, rules).readings]
    assert len(back) == len(rows)
    got = sorted(((r.metric, r.unit, r.measured_at, r.measured_until, r.statistic), r.value) for r in back)
    keys = ("metric", "unit", "measured_at", "measured_until", "statistic")
    want = sorted((tuple(r[k] for k in keys), r["value"]) for r in rows)
    assert [g[0] for g in got] == [w[0] for w in want]
    assert [g[1] for g in got] == pytest.approx([w[1] for w in want])
    assert {r.source for r in back} == {"withings"}


def test_what_the_current_schema_cannot_hold_is_counted_not_emitted() -> None:
    instant_steps = _row("steps", 1)
    lone_systolic = _row("blood_pressure_systolic", 2)
    steps_count = _row("steps", 3, measured_until=T + timedelta(hours=8), statistic="count")  # 3.0: 1.0 set
    resting = {**_row("heart_rate", 5), "metric": "resting_heart_rate"}
    points, skipped = data_points([instant_steps, lone_systolic, steps_count, _row("heart_rate", 4), resting])
    assert [dp["header"]["schema_id"]["name"] for dp in points] == ["heart-rate"]
    assert sum(skipped.values()) == 4 and skipped["no_schema"] == 1
    assert any(k.startswith("/body/effective_time_frame") for k in skipped)
    assert any(k.startswith("/body/diastolic_blood_pressure") for k in skipped)
    assert any(k.startswith("/body/descriptive_statistic") for k in skipped)


def test_blood_pressure_is_one_data_point_with_the_pseudonym() -> None:
    points, _ = data_points([_row("blood_pressure_systolic", 1), _row("blood_pressure_diastolic", 1)])
    [dp] = points
    assert dp["header"]["schema_id"] == {"namespace": "omh", "name": "blood-pressure", "version": "4.0"}
    assert dp["body"]["systolic_blood_pressure"] == {"value": 121.0, "unit": "mmHg"}
    assert dp["body"]["diastolic_blood_pressure"] == {"value": 79.0, "unit": "mmHg"}
    assert dp["header"]["user_id"] == "c" * 64 and dp["body"]["effective_time_frame"] == {
        "date_time": "2024-05-01T08:01:00Z"}
