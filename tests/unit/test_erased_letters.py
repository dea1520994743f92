"""Dead letters of erased subjects, pure: no payload of theirs, the other fields kept."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.dlq import dead_letter_record
from streams.domain import TRANSFORMATION_VERSION
from streams.errors import RejectReason
from streams.records import DeadLetter, NormalisedReading
from streams.sink.copy_encoding import DeadLetterRow
from streams.sink.refusals import blank_payloads, subject_erased_letters

AT = datetime(2026, 11, 26, 10, tzinfo=UTC)


def reading(offset: int, user: str, event: str) -> NormalisedReading:
    return NormalisedReading(
        event_id=event, user_key=user, device_id=None, source="garmin", metric="steps", loinc_code="55423-8",
        value=1.0, unit="{steps}", original_value=1.0, original_unit="count", measured_at=AT, ingested_at=AT,
        quality_flags=(), metadata=None, kafka_topic="raw", kafka_partition=2, kafka_offset=offset,
        transformation_version=TRANSFORMATION_VERSION)


def test_subject_erased_letters_carry_no_payload_and_follow_booked_member_indexes() -> None:
    booked = [DeadLetterRow("raw", 2, 7, 0, DeadLetter(b"{}", RejectReason.UNKNOWN_UNIT, "m", "steps", "x"))]
    readings = [reading(7, "k1", "a"), reading(7, "k1", "b"), reading(8, "k1", "c")]
    rows, records = subject_erased_letters(readings, booked, max_payload_bytes=100)
    assert [(r.offset, r.member_index) for r in rows] == [(7, 1), (7, 2), (8, 0)]
    assert {r.letter.code for r in rows} == {RejectReason.SUBJECT_ERASED}
    assert [r.value for r in records] == [b"", b"", b""] and {r.key for r in records} == {b"k1"}
    headers = dict(records[0].headers)
    assert headers["error.code"] == b"subject_erased" and headers["dlq.id"] == b"raw/2/7/1"
    assert {"source.topic", "source.partition", "source.offset", "pipeline.version"} <= set(headers)


def test_blank_payloads_empties_only_the_erased_keys_records() -> None:
    payload = b'{"user_id": "jane", "unit": "furlongs"}' * 10
    letter = DeadLetter(payload, RejectReason.UNKNOWN_UNIT, "m", None, None)
    records = [dead_letter_record(letter, key=key, topic="raw", partition=0, offset=i, member_index=0,
                                  max_payload_bytes=50)
               for i, key in enumerate((b"erased", b"other", None))]
    assert blank_payloads(records, frozenset({"erased"})) == 1
    erased, other, keyless = records
    assert erased.value == b"" and dict(erased.headers)["subject.erased"] == b"true"
    assert not any(k.startswith("payload.") for k, _ in erased.headers)  # nothing about the payload
    assert dict(erased.headers)["error.code"] == b"unknown_unit"  # the domain's reason stays
    assert other.value and keyless.value and "subject.erased" not in dict(other.headers)
