"""The wire contract page's examples of every input form are stored as documented, and the JSON Schema
served for producers (from streams/forms.py) agrees with the pipeline on our own forms."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from streams.domain import Rules, process_message
from streams.errors import RejectReason
from streams.forms import FORMS, MESSAGE_REASONS, json_schema
from streams.records import MessageContext

WIRE_CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "reference" / "wire-contract.md"


def wire_examples() -> list[dict]:
    text = WIRE_CONTRACT.read_text()
    return [orjson.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


EXAMPLES = wire_examples()
OURS = [e for e in EXAMPLES if "header" not in e and "resourceType" not in e]


def test_the_wire_contract_shows_every_form() -> None:
    assert len(OURS) == 4  # single, envelope, wide, interval with a statistic
    assert any("readings" in e for e in OURS) and any("timestamp_end" in e for e in OURS)
    assert any("units" in e for e in OURS)
    assert sum("header" in e for e in EXAMPLES) == 1 and sum("resourceType" in e for e in EXAMPLES) == 1


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: next(iter(e)))
def test_each_wire_contract_example_is_stored(example) -> None:
    ctx = MessageContext("health.readings.raw", 0, 0, datetime(2026, 11, 27, tzinfo=UTC))
    out = process_message(orjson.dumps(example), ctx, Rules.default(b"k"))
    assert out.dead_letters == [] and out.readings


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: next(iter(e)))
def test_the_json_schema_accepts_our_forms_only(example) -> None:
    errors = list(Draft202012Validator(json_schema()).iter_errors(example))
    assert (errors == []) == (example in OURS), errors


@pytest.mark.parametrize("change", [
    {"statistic": "mode"}, {"event_id": ""}, {"value": "72"}, {"timestamp_end": 1.5}, {"user_id": None},
    {"metric": None, "value": None, "heart_rate": "72"},  # wide, with a value that is not a number
    {"metric": None, "value": None, "heart_rate": 72, "units": []},
])
def test_the_json_schema_refuses_what_the_pipeline_refuses(change) -> None:
    doc = {k: v for k, v in {**OURS[0], **change}.items() if v is not None}
    assert list(Draft202012Validator(json_schema()).iter_errors(doc))
    ctx = MessageContext("t", 0, 0, datetime(2026, 11, 27, tzinfo=UTC))
    assert process_message(orjson.dumps(doc), ctx, Rules.default(b"k")).dead_letters


def test_every_reason_code_belongs_to_some_form() -> None:
    listed = set(MESSAGE_REASONS) | {r for form in FORMS for r in form["reasons"]}
    assert listed == set(RejectReason)
    assert [f["form"] for f in FORMS] == ["single", "envelope", "wide", "openmhealth", "fhir"]
