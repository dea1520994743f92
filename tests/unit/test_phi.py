"""No dead-letter message may carry PHI: user id, device id, a reading's value or its timestamp."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from streams.domain import Rules, process_message
from streams.errors import RejectReason

VALUE_OK = 71.123457  # distinctive digits, within every heart-rate bound
VALUE_OUTLIER = 251.987654  # outlier (> 220) but possible (<= 300)
VALUE_IMPOSSIBLE = 31337.777
TIMESTAMP = "2024-05-01T11:11:11.424242Z"
SECRETS_OTHER_THAN_IDS = ["71.123457", "251.987654", "31337.777", "31337", "11:11:11", "424242"]


def _cases(
    reading: Callable[..., dict], envelope: Callable[..., dict]
) -> list[tuple[str, bytes, RejectReason]]:
    def enc(doc: Any) -> bytes:
        return orjson.dumps(doc)

    def nan(doc: dict) -> bytes:
        return enc(doc).replace(b'"PLACEHOLDER"', b"NaN")

    base = {"value": VALUE_OK, "timestamp": TIMESTAMP}
    member = {
        "event_id": "m",
        "metric": "heart_rate",
        "value": VALUE_OK,
        "unit": "bpm",
        "timestamp": TIMESTAMP,
    }
    good = reading(**base)
    return [
        ("truncated json", enc(good)[:-10], RejectReason.MALFORMED_JSON),
        ("not an object", enc([good["user_id"], good["device_id"], VALUE_OK]), RejectReason.INVALID_TYPE),
        ("missing metric", enc(reading(drop=("metric",), **base)), RejectReason.MISSING_FIELD),
        ("bool value", enc(reading(timestamp=TIMESTAMP, value=True)), RejectReason.INVALID_TYPE),
        ("string value", enc(reading(timestamp=TIMESTAMP, value="71.123457")), RejectReason.INVALID_TYPE),
        ("NaN value", nan(reading(timestamp=TIMESTAMP, value="PLACEHOLDER")), RejectReason.INVALID_TYPE),
        ("device_id type", enc(reading(device_id=998877665544, **base)), RejectReason.INVALID_TYPE),
        ("unknown metric", enc(reading(metric="mood", **base)), RejectReason.UNKNOWN_METRIC),
        ("unknown unit", enc(reading(unit="Hz", **base)), RejectReason.UNKNOWN_UNIT),
        ("impossible", enc(reading(timestamp=TIMESTAMP, value=VALUE_IMPOSSIBLE)), RejectReason.OUT_OF_RANGE),
        (
            "naive",
            enc(reading(value=VALUE_OK, timestamp="2024-05-01T11:11:11.424242")),
            RejectReason.NAIVE_TIMESTAMP,
        ),
        (
            "bad ts",
            enc(reading(value=VALUE_OK, timestamp="2024-05-01T11:11:11.424242Q")),
            RejectReason.INVALID_TYPE,
        ),
        ("float ts", enc(reading(value=VALUE_OK, timestamp=1714561871424.242)), RejectReason.INVALID_TYPE),
        (
            "future",
            enc(reading(value=VALUE_OK, timestamp="2024-05-02T11:11:11.424242Z")),
            RejectReason.FUTURE_TIMESTAMP,
        ),
        ("outlier", enc(reading(timestamp=TIMESTAMP, value=VALUE_OUTLIER)), RejectReason.OUTLIER_DROPPED),
        ("big bytes", enc(reading(metadata={"pad": "x" * 5000}, **base)), RejectReason.OVERSIZED),
        ("big batch", enc(envelope([member, member, member])), RejectReason.OVERSIZED),
        ("envelope no source", enc(envelope([member], drop=("source",))), RejectReason.MISSING_FIELD),
        ("envelope bad readings", enc(envelope({"m": member})), RejectReason.INVALID_TYPE),
        ("member unknown unit", enc(envelope([{**member, "unit": "Hz"}])), RejectReason.UNKNOWN_UNIT),
        (
            "member impossible",
            enc(envelope([{**member, "value": VALUE_IMPOSSIBLE}])),
            RejectReason.OUT_OF_RANGE,
        ),
        ("member NaN", nan(envelope([{**member, "value": "PLACEHOLDER"}])), RejectReason.INVALID_TYPE),
        ("member not object", enc(envelope([VALUE_OK])), RejectReason.INVALID_TYPE),
        ("long event_id", enc(reading(event_id="e" * 201, **base)), RejectReason.TEXT_TOO_LONG),
        ("control in source", enc(reading(source="fit\x00bit", **base)), RejectReason.CONTROL_CHARACTER),
        (
            "year 1",
            enc(reading(value=VALUE_OK, timestamp="0001-05-01T11:11:11.424242Z")),
            RejectReason.TIMESTAMP_OUT_OF_RANGE,
        ),
        ("omh bad unit", enc(_omh(good["user_id"], {"value": VALUE_OK, "unit": "bpm"})),
         RejectReason.SCHEMA_VIOLATION),
        ("omh unknown schema", enc(_omh(good["user_id"], {"value": VALUE_OK, "unit": "beats/min"}, "mood")),
         RejectReason.UNSUPPORTED_SCHEMA),
        ("fhir unmapped code", enc(_fhir(good["user_id"], "1234-5")), RejectReason.UNKNOWN_METRIC),
        ("fhir interval end first", enc({**_fhir(good["user_id"], "8867-4"), "effectivePeriod": {
            "start": TIMESTAMP, "end": "2024-05-01T10:11:11.424242Z"}}), RejectReason.REVERSED_INTERVAL),
    ]


def _omh(user_id: str, heart_rate: dict, name: str = "heart-rate") -> dict:
    return {"header": {"id": "dp-1", "creation_date_time": TIMESTAMP, "user_id": user_id,
                       "schema_id": {"namespace": "omh", "name": name, "version": "2.0"}},
            "body": {"heart_rate": heart_rate, "effective_time_frame": {"date_time": TIMESTAMP}}}


def _fhir(user_id: str, code: str) -> dict:
    return {"resourceType": "Observation", "id": "o-1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{user_id}"},
            "device": {"display": "PHI-device-serial-SN998877665544"},
            "valueQuantity": {"value": VALUE_OK, "code": "/min"}}


@pytest.fixture
def phi_rules(key) -> Rules:
    return Rules.default(
        key, max_message_bytes=4096, max_batch_readings=2, outlier_strategies={"heart_rate": "drop"}
    )


def test_every_domain_reject_reason_is_exercised(reading, envelope) -> None:
    # sink_rejected and subject_erased come from the warehouse, not the domain
    # (tests/integration/test_sink_refusal.py, tests/integration/test_erasure.py).
    domain_codes = set(RejectReason) - {RejectReason.SINK_REJECTED, RejectReason.SUBJECT_ERASED}
    assert {code for _, _, code in _cases(reading, envelope)} == domain_codes


def test_no_dead_letter_message_contains_phi(reading, envelope, ctx, phi_rules, user_id, device_id) -> None:
    for label, payload, code in _cases(reading, envelope):
        assert user_id.encode() in payload, label  # the id really was in the input
        out = process_message(payload, ctx, phi_rules)
        assert out.readings == [], label
        [dead] = out.dead_letters
        assert dead.code is code, label
        for secret in [user_id, device_id, "998877665544", *SECRETS_OTHER_THAN_IDS]:
            assert secret not in dead.message, (label, dead.message)
            assert secret != dead.metric and secret != dead.source, label
