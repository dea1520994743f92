"""FHIR R4 vital-signs conformance out: blood pressure as one 85354-9 panel, every exported
vital sign checked against the profile's rules (tests/fhir_profile.py, written from the spec)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fhir.resources.R4B.observation import Observation
from fhir_examples import EXPECTED
from fhir_profile import VITAL_CODES, is_vital_sign, vital_sign_problems
from omh_examples import data_point

from streams.domain import process_message
from streams.domain.fhir_export import collection, resources, searchset

#: UCUM factors of the specification examples' units to ours (written from UCUM, not the catalogue)
TO_CANONICAL = {"[lb_av]": ("kg", 0.45359237), "[in_i]": ("cm", 2.54), "/min": ("/min", 1), "Cel": ("Cel", 1),
                "%": ("%", 1), "mm[Hg]": ("mm[Hg]", 1), "kg/m2": ("kg/m2", 1)}


def judge(doc, ctx, rules, key=None):  # type: ignore[no-untyped-def]
    return process_message(orjson.dumps(doc), ctx, rules, key)


def _values(obs: dict) -> dict[str, tuple[float, str]]:
    """LOINC code -> (value, UCUM code) of an Observation's quantity or components."""
    parts = obs.get("component") or [obs]
    return {p["code"]["coding"][0]["code"]: (float(p["valueQuantity"]["value"]), p["valueQuantity"]["code"])
            for p in parts if "valueQuantity" in p}


@pytest.mark.parametrize(("example", "expected"), EXPECTED, ids=[e["id"] for e, _ in EXPECTED])
def test_specification_examples_come_back_as_the_same_observation(example, expected, ctx, rules) -> None:
    out = judge(example, ctx, rules)
    assert out.dead_letters == []
    [obs] = resources([asdict(r) for r in out.readings])
    Observation.model_validate(obs)
    assert vital_sign_problems(obs) == []
    theirs = [c["code"] for c in example["code"]["coding"] if c["system"] == "http://loinc.org"]
    ours = [c["code"] for c in obs["code"]["coding"]]
    assert ours[0] == theirs[0] and set(ours) <= set(theirs)  # the profile's code first
    want = {}
    for part in example.get("component") or [example]:
        unit, factor = TO_CANONICAL[part["valueQuantity"]["code"]]
        want[part["code"]["coding"][0]["code"]] = (part["valueQuantity"]["value"] * factor, unit)
    got = _values(obs)
    assert got.keys() == want.keys()
    for code, (value, unit) in want.items():
        assert got[code] == (pytest.approx(value), unit)


def test_a_panel_that_came_in_comes_back_as_that_panel_and_reads_back(ctx, rules) -> None:
    [bp] = [e for e, _ in EXPECTED if e["id"] == "blood-pressure"]
    first = judge(bp, ctx, rules).readings
    [panel] = resources([asdict(r) for r in first])
    assert panel["code"]["coding"][0]["code"] == "85354-9" and len(panel["component"]) == 2
    again = judge(panel, ctx, rules, key=b"someone").readings  # our own export, read back
    assert sorted((r.metric, r.value, r.unit, r.measured_at) for r in again) == sorted(
        (r.metric, r.value, r.unit, r.measured_at) for r in first)
    [panel_again] = resources([asdict(r) for r in again])
    assert _values(panel_again) == _values(panel)


def _row(metric: str, value: float, unit: str, loinc: str, **changes):  # type: ignore[no-untyped-def]
    row = {"event_id": f"e-{metric}-{value}", "user_key": "b" * 64, "device_id": "cuff-1", "source": "omron",
           "metric": metric, "loinc_code": loinc, "value": value, "unit": unit,
           "measured_at": datetime(2024, 5, 1, 8, tzinfo=UTC), "measured_until": None, "statistic": None,
           "metadata": None}
    return {**row, **changes}


def _sys(value: float, **changes):  # type: ignore[no-untyped-def]
    return _row("blood_pressure_systolic", value, "mm[Hg]", "8480-6", **changes)


def _dia(value: float, **changes):  # type: ignore[no-untyped-def]
    return _row("blood_pressure_diastolic", value, "mm[Hg]", "8462-4", **changes)


VITAL_ROWS = [
    _row("heart_rate", 61, "/min", "8867-4"), _row("respiratory_rate", 14, "/min", "9279-1"),
    _row("oxygen_saturation", 97, "%", "59408-5"),  # exported with the profile's 2708-6 first
    _row("body_temperature", 36.6, "Cel", "8310-5"),
    _row("body_height", 172, "cm", "8302-2"), _row("body_weight", 70, "kg", "29463-7"),
    _row("body_mass_index", 23.7, "kg/m2", "39156-5"),
    _row("heart_rate", 48, "/min", "8867-4", measured_until=datetime(2024, 5, 1, 9, tzinfo=UTC),
         statistic="minimum"),
    _sys(121), _dia(79),  # one measurement
    _sys(140, measured_at=datetime(2024, 5, 2, tzinfo=UTC)),  # a systolic alone
    _dia(90, device_id="cuff-2"),  # another device: another measurement
]


def test_every_exported_vital_sign_meets_the_profile() -> None:
    bundle = collection(VITAL_ROWS, "/fhir")
    observations = [e["resource"] for e in bundle["entry"]]
    assert len(observations) == len(VITAL_ROWS) - 1  # 121/79 is one panel
    assert all(is_vital_sign(o) for o in observations)
    for obs in observations:
        assert vital_sign_problems(obs) == [], obs
        Observation.model_validate(obs)
    panels = [o for o in observations if o["code"]["coding"][0]["code"] == "85354-9"]
    assert sorted(sorted(_values(p).items()) for p in panels) == sorted([
        [("8462-4", (79.0, "mm[Hg]")), ("8480-6", (121.0, "mm[Hg]"))],
        [("8480-6", (140.0, "mm[Hg]"))],
        [("8462-4", (90.0, "mm[Hg]"))]])
    lone = next(p for p in panels if _values(p).keys() == {"8480-6"})
    assert lone["component"][1]["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assert set(VITAL_CODES) >= {o["code"]["coding"][0]["code"] for o in observations}


def test_the_checker_catches_broken_observations() -> None:
    [good] = resources([_sys(121), _dia(79)])
    broken = {**good, "component": good["component"][:1]}
    assert vital_sign_problems(broken) == ["component 8462-4 appears 0 times"]
    [hr] = resources([VITAL_ROWS[0]])
    assert vital_sign_problems({**hr, "valueQuantity": {**hr["valueQuantity"], "system": None}})
    assert vital_sign_problems({**hr, "subject": {"reference": "Patient/alice"}})
    assert vital_sign_problems({**hr, "category": []})


def test_readings_pair_by_measurement() -> None:
    t = datetime(2024, 5, 1, 8, tzinfo=UTC)
    rows = [_sys(120, event_id="b"), _dia(80, event_id="x"), _sys(125, event_id="a"), _dia(85, event_id="y"),
            _sys(130, measured_at=t + timedelta(minutes=1)), _dia(81, source="other"),
            _sys(119, metadata={"panel_id": "p-1"}), _dia(77, metadata={"panel_id": "p-1"})]
    got = sorted(sorted(_values(p).values()) for p in resources(rows))
    assert got == sorted([
        [(80.0, "mm[Hg]"), (125.0, "mm[Hg]")],  # two of each at one key: paired in event-id order
        [(85.0, "mm[Hg]"), (120.0, "mm[Hg]")],
        [(130.0, "mm[Hg]")], [(81.0, "mm[Hg]")],  # another instant, another source
        [(77.0, "mm[Hg]"), (119.0, "mm[Hg]")]])  # one source event


def test_open_mhealth_and_wide_blood_pressure_are_one_panel(ctx, rules) -> None:
    omh = judge(data_point("blood-pressure", "4.0"), ctx, rules).readings
    wide = judge({"user_id": "u", "source": "app", "timestamp": "2024-05-01T09:00:00Z",
                  "blood_pressure_systolic": 118, "blood_pressure_diastolic": 76}, ctx, rules).readings
    found = resources([asdict(r) for r in omh + wide])
    assert [sorted(_values(o)) for o in found] == [["8462-4", "8480-6"]] * 2
    assert {r.metadata.get("panel_id") for r in omh} == {"dp-blood-pressure-4.0"}


def test_searchset_counts_observations_not_readings() -> None:
    bundle = searchset([_sys(121), _dia(79), VITAL_ROWS[0]], {"self": "/x"}, "/fhir")
    assert [e["resource"]["code"]["coding"][0]["code"] for e in bundle["entry"]] == ["85354-9", "8867-4"]


def test_the_panel_codes_are_the_catalogues() -> None:
    from streams.domain.catalogue import DEFAULT_CATALOGUE
    from streams.domain.panels import COMPONENT_LOINC

    assert {m: DEFAULT_CATALOGUE[m].loinc_code for m in COMPONENT_LOINC} == COMPONENT_LOINC
