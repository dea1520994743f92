"""FHIR R4 in (Observations, Bundles) and out (Observations, searchset Bundles), pure."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir_examples import BLOOD_PRESSURE, EXPECTED, HEART_RATE, OXYGEN_SATURATION

from streams.config import Settings
from streams.domain import process_message, user_key
from streams.domain.fhir import STATISTIC_EXTENSION
from streams.domain.fhir_export import collection, observation, observation_id, searchset
from streams.domain.pseudonym import device_key
from streams.errors import RejectReason
from web.routes_fhir import fhir_base


def judge(doc, ctx, rules, key: bytes | None = None):  # type: ignore[no-untyped-def]
    return process_message(orjson.dumps(doc), ctx, rules, key)


@pytest.mark.parametrize(("example", "expected"), EXPECTED, ids=[e["id"] for e, _ in EXPECTED])
def test_specification_vital_sign_examples_are_stored(example, expected, ctx, rules) -> None:
    out = judge(example, ctx, rules)
    assert out.dead_letters == []
    got = [(r.event_id, r.metric, r.value, r.unit) for r in out.readings]
    assert [g[:2] + g[3:] for g in got] == [e[:2] + e[3:] for e in expected]
    assert [g[2] for g in got] == pytest.approx([e[2] for e in expected])
    for r in out.readings:
        assert r.user_key == user_key(rules.pseudonym_key, "example")
        panel = {"panel_id": example["id"]} if "component" in example else {}
        assert r.source == "fhir" and r.metadata == {"fhir_status": "final", **panel}


def test_a_date_precision_effective_is_that_utc_day(ctx, rules, key) -> None:
    [r] = judge(HEART_RATE, ctx, rules).readings
    assert r.measured_at == datetime(1999, 7, 2, tzinfo=UTC)
    assert r.measured_until == datetime(1999, 7, 3, tzinfo=UTC)
    [r] = judge(OXYGEN_SATURATION, ctx, rules).readings
    assert r.measured_at == datetime(2014, 12, 5, 8, 30, 10, tzinfo=UTC) and r.measured_until is None
    assert r.device_id == device_key(key, "DeviceMetric/example")  # stored as its pseudonym


def test_a_bundle_judges_each_entry_on_its_own(ctx, rules) -> None:
    broken = {k: v for k, v in HEART_RATE.items() if k != "status"} | {"id": "broken"}
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": HEART_RATE},
            {"resource": broken},
            {"resource": BLOOD_PRESSURE},
        ],
    }
    out = judge(bundle, ctx, rules)
    assert [r.event_id for r in out.readings] == [
        "heart-rate",
        "blood-pressure#8480-6",
        "blood-pressure#8462-4",
    ]
    [dead] = out.dead_letters
    assert dead.code is RejectReason.SCHEMA_VIOLATION
    assert dead.message.startswith("/entry/1/resource/status:")
    assert orjson.loads(dead.payload) == broken  # that entry alone


@pytest.mark.parametrize(
    ("doc", "code", "pointer"),
    [
        ({**HEART_RATE, "status": "preliminary"}, RejectReason.UNSUPPORTED_SCHEMA, None),
        ({**HEART_RATE, "status": "done"}, RejectReason.SCHEMA_VIOLATION, "/status"),
        (
            {**HEART_RATE, "valueQuantity": {"value": "fast"}},
            RejectReason.SCHEMA_VIOLATION,
            "/valueQuantity/value",
        ),
        (
            {**HEART_RATE, "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]}},
            RejectReason.UNKNOWN_METRIC,
            None,
        ),
        (
            {**HEART_RATE, "code": {"coding": [{"system": "http://snomed.info/sct", "code": "364075005"}]}},
            RejectReason.UNKNOWN_METRIC,
            None,
        ),
        ({**HEART_RATE, "valueQuantity": {"value": 44, "code": "Hz"}}, RejectReason.UNKNOWN_UNIT, None),
        ({**HEART_RATE, "effectiveDateTime": "2024-05-01T13:00:00Z"}, RejectReason.FUTURE_TIMESTAMP, None),
        (
            {**HEART_RATE, "effectiveDateTime": "2024-05-01T09:00:00"},
            RejectReason.SCHEMA_VIOLATION,
            "/effectiveDateTime",
        ),  # FHIR itself requires a zone with a time
        (
            {**{k: v for k, v in HEART_RATE.items() if k != "valueQuantity"}, "valueString": "44"},
            RejectReason.MISSING_FIELD,
            None,
        ),
        ({"resourceType": "Patient", "id": "p"}, RejectReason.UNSUPPORTED_SCHEMA, None),
        ({"resourceType": "Bundle", "entry": []}, RejectReason.SCHEMA_VIOLATION, "/type"),
    ],
)
def test_rejections(doc, code, pointer, ctx, rules) -> None:
    [dead] = judge(doc, ctx, rules).dead_letters
    assert dead.code is code, dead.message
    if pointer:
        assert dead.message.split(":")[0] == pointer


def test_effective_period_is_an_interval_and_its_end_may_not_precede_the_start(ctx, rules) -> None:
    period = {k: v for k, v in HEART_RATE.items() if k != "effectiveDateTime"}
    ok = {**period, "effectivePeriod": {"start": "2024-05-01T08:00:00Z", "end": "2024-05-01T09:00:00Z"}}
    [r] = judge(ok, ctx, rules).readings
    assert (r.measured_at.hour, r.measured_until.hour) == (8, 9)
    bad = {**period, "effectivePeriod": {"start": "2024-05-01T09:00:00Z", "end": "2024-05-01T08:00:00Z"}}
    assert [d.code for d in judge(bad, ctx, rules).dead_letters] == [RejectReason.REVERSED_INTERVAL]


def test_user_falls_back_to_the_message_key(ctx, rules) -> None:
    anonymous = {k: v for k, v in HEART_RATE.items() if k != "subject"}
    [r] = judge(anonymous, ctx, rules, key=b"kafka-user").readings
    assert r.user_key == user_key(rules.pseudonym_key, "kafka-user")
    assert [d.code for d in judge(anonymous, ctx, rules).dead_letters] == [RejectReason.MISSING_FIELD]


def _row(**changes):  # type: ignore[no-untyped-def]
    row = {
        "event_id": "e-1",
        "user_key": "a" * 64,
        "device_id": "watch-1",
        "source": "garmin",
        "metric": "heart_rate",
        "loinc_code": "8867-4",
        "value": 61.0,
        "unit": "/min",
        "measured_at": datetime(2024, 5, 1, 10, tzinfo=UTC),
        "measured_until": None,
        "statistic": None,
    }
    return {**row, **changes}


def test_exported_vital_sign_follows_the_profile_and_parses_back() -> None:
    obs = observation(_row())
    parsed = Observation.model_validate(obs)
    assert parsed.status == "final" and parsed.category[0].coding[0].code == "vital-signs"
    assert "http://hl7.org/fhir/StructureDefinition/heartrate" in obs["meta"]["profile"]
    assert parsed.code.coding[0].code == "8867-4" and parsed.code.coding[0].system == "http://loinc.org"
    q = parsed.valueQuantity
    assert (float(q.value), q.code, q.system) == (61.0, "/min", "http://unitsofmeasure.org")
    assert parsed.subject.reference == "Patient/" + "a" * 64
    assert obs["effectiveDateTime"] == "2024-05-01T10:00:00Z" and parsed.device.display == "watch-1"
    assert obs["id"] == observation_id("e-1") != "e-1"


def test_exported_interval_and_statistic() -> None:
    obs = observation(
        _row(
            measured_until=datetime(2024, 5, 2, tzinfo=UTC),
            statistic="minimum",
            metric="steps",
            loinc_code="55423-8",
            unit="{steps}",
        )
    )
    parsed = Observation.model_validate(obs)
    assert obs["effectivePeriod"] == {"start": "2024-05-01T10:00:00Z", "end": "2024-05-02T00:00:00Z"}
    assert parsed.category[0].coding[0].code == "activity" and "meta" not in obs
    assert [(e.url, e.valueCode) for e in parsed.extension if e.valueCode] == [
        (STATISTIC_EXTENSION, "minimum")
    ]


def test_round_trip_readings_in_fhir_out(ctx, rules) -> None:
    """Readings from every FHIR example -> a searchset Bundle -> fhir.resources -> same values, units;
    blood pressure's two readings are one Observation again, with its two components."""
    readings = [r for example, _ in EXPECTED for r in judge(example, ctx, rules).readings]
    bundle = searchset([asdict(r) for r in readings], {"self": "/fhir/Observation?_count=50"}, "/fhir")
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "searchset" and len(readings) == 9 and len(parsed.entry) == len(EXPECTED) == 8
    by_code = {r.loinc_code: r for r in readings}
    for entry in parsed.entry:
        obs = entry.resource
        parts = obs.component or [obs]
        for part in parts:
            r = by_code[part.code.coding[-1].code]  # ours last (a profile code may lead)
            q = part.valueQuantity
            assert (float(q.value), q.code) == (pytest.approx(r.value), r.unit)
        assert (
            obs.effectivePeriod.start == r.measured_at and obs.effectivePeriod.end == r.measured_until
            if r.measured_until
            else obs.effectiveDateTime == r.measured_at
        )
        assert "Patient/example" not in orjson.dumps(bundle).decode()  # never the raw user id
    [bp] = [e.resource for e in parsed.entry if e.resource.component]
    assert bp.code.coding[0].code == "85354-9" and bp.valueQuantity is None


def test_an_empty_bundle_has_no_entry_array() -> None:
    """FHIR JSON has no empty arrays: "entry": [] is an error to the HL7 validator (found by
    scripts/fhir-validator on a search that matched nothing and on an erased person's export)."""
    self_link = {"relation": "self", "url": "/fhir/Observation?_count=50"}
    assert searchset([], {"self": self_link["url"]}, "/fhir") == {
        "resourceType": "Bundle", "type": "searchset", "link": [self_link]}
    assert collection([], "/fhir") == {"resourceType": "Bundle", "type": "collection"}


def test_a_collection_bundle_has_no_total(ctx, rules) -> None:
    """bdl-1: ``total`` only on a searchset or history Bundle (the subject export is a collection)."""
    readings = [asdict(r) for r in judge(HEART_RATE, ctx, rules).readings]
    bundle = collection(readings, "/fhir")
    assert "total" not in bundle and len(bundle["entry"]) == 1
    Bundle.model_validate(bundle)


def test_the_fhir_base_is_absolute() -> None:
    """R4: a Bundle entry's fullUrl is an absolute URL (the HL7 validator's
    BUNDLE_ENTRY_URL_ABSOLUTE on every entry while the API sent /data-pipeline/fhir/...)."""
    assert fhir_base(Settings(dev_mode=True, web_host="127.0.0.1", web_port=6066)) == "http://127.0.0.1:6066/data-pipeline/fhir"
    assert fhir_base(Settings(dev_mode=True, web_host="::1", web_port=8080)) == "http://[::1]:8080/data-pipeline/fhir"
    public = Settings(dev_mode=True, api_public_url="https://health.example.org:8443")
    assert fhir_base(public) == "https://health.example.org:8443/data-pipeline/fhir"
    with pytest.raises(ValueError, match="api_public_url"):
        Settings(dev_mode=True, api_public_url="https://health.example.org/base/")
