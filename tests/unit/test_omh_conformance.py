"""Open mHealth in, judged by the standard's own conformance data: EVERY shouldPass and
shouldFail file of the 13 supported schemas, every published version
(tests/fixtures/omh/test-data, openmhealth/schemas 36078a8, Apache-2.0).

- a shouldFail body is dead-lettered ``schema_violation``, nothing stored;
- a shouldPass body is stored (every reading of it), except the bodies listed by name in
  :data:`REFUSED_BUT_VALID`: valid by their schema, but no true, placeable measurement.
  Each is refused with the reason given there, and the list must stay exact (a listed file
  that is stored, or refused otherwise, fails).
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from streams.domain import process_message
from streams.domain.omh import QUANTITIES, VERSIONS
from streams.domain.omh_schema import reference_errors
from streams.errors import RejectReason

DATA = Path(__file__).parents[1] / "fixtures" / "omh" / "test-data"
#: (schema, version, file) -> why a body its schema accepts is refused.
REFUSED_BUT_VALID = {
    ("blood-pressure", "1.0", "with-time-frame.json"): RejectReason.NAIVE_TIMESTAMP,  # date + part of day
    ("body-height", "1.0", "with-time-frame.json"): RejectReason.NAIVE_TIMESTAMP,  # date + part of day
    ("body-temperature", "4.0", "valid-temperature-with-statistic.json"): RejectReason.REVERSED_INTERVAL,
    ("sleep-duration", "2.0", "with-descriptive-statistic.json"): RejectReason.REVERSED_INTERVAL,
    ("calories-burned", "2.0", "with-descriptive-statistic.json"): RejectReason.REVERSED_INTERVAL,
}


def _files(kind: str) -> list[tuple[str, str, str]]:
    return [(name, version, f.name) for name, versions in VERSIONS.items() for version in versions
            for f in sorted((DATA / name / version / kind).glob("*.json"))]


PASS, FAIL = _files("shouldPass"), _files("shouldFail")


def _data_point(name: str, version: str, body: object) -> bytes:
    header = {"id": f"conf-{name}-{version}", "creation_date_time": "2020-01-01T00:00:00Z",
              "schema_id": {"namespace": "omh", "name": name, "version": version}, "user_id": "conformance"}
    return orjson.dumps({"header": header, "body": body})


def _body(name: str, version: str, kind: str, file: str) -> object:
    return json.loads((DATA / name / version / kind / file).read_text(encoding="utf-8"))


def test_the_fixtures_are_exactly_the_supported_versions() -> None:
    on_disk = {(p.parent.name, p.name) for p in DATA.glob("*/*") if p.is_dir()}
    assert on_disk == {(n, v) for n, vs in VERSIONS.items() for v in vs}
    assert len(VERSIONS) == 13
    # counted with a plain directory walk, independently of the parametrisation above
    assert len(PASS) + len(FAIL) == sum(1 for p in DATA.rglob("*.json")) == 237


@pytest.mark.parametrize(("name", "version", "file"), PASS, ids=lambda v: v)
def test_should_pass(name, version, file, ctx, rules) -> None:  # type: ignore[no-untyped-def]
    out = process_message(_data_point(name, version, _body(name, version, "shouldPass", file)), ctx, rules)
    refused = REFUSED_BUT_VALID.get((name, version, file))
    if refused is not None:
        assert out.readings == [] and out.dead_letters and {d.code for d in out.dead_letters} == {refused}
        return
    assert out.dead_letters == [], [(d.code, d.message) for d in out.dead_letters]
    assert [r.metric for r in out.readings] == [q.metric for q in QUANTITIES[name]]


@pytest.mark.parametrize(("name", "version", "file"), FAIL, ids=lambda v: v)
def test_should_fail(name, version, file, ctx, rules) -> None:  # type: ignore[no-untyped-def]
    out = process_message(_data_point(name, version, _body(name, version, "shouldFail", file)), ctx, rules)
    assert out.readings == []
    assert [d.code for d in out.dead_letters] == [RejectReason.SCHEMA_VIOLATION], out.dead_letters
    assert out.dead_letters[0].message.startswith("/body")


ALL = [(*f, "shouldPass") for f in PASS] + [(*f, "shouldFail") for f in FAIL]


@pytest.mark.parametrize(("name", "version", "file", "kind"), ALL, ids=lambda v: v)
def test_jsonschema_itself_agrees(name, version, file, kind) -> None:  # type: ignore[no-untyped-def]
    """The reference validator (jsonschema over the same official files) judges every file as the
    standard says; the compiled check on the hot path is held to the same verdicts above."""
    errors = list(reference_errors(name, version, _body(name, version, kind, file)))
    assert (errors == []) == (kind == "shouldPass"), [e.message for e in errors]
