"""The DLQ record built for a rejected reading: headers, key, and payload cut."""

from __future__ import annotations

from streams.dlq import dead_letter_record
from streams.errors import RejectReason
from streams.records import DeadLetter


def letter(payload: bytes) -> DeadLetter:
    return DeadLetter(payload, RejectReason.UNKNOWN_UNIT, "unit 'furlongs' is not accepted",
                      "steps", "garmin")


def test_headers_locate_the_source_and_say_why():
    record = dead_letter_record(letter(b"{}"), key=b"k", topic="raw", partition=2, offset=41,
                                member_index=3, max_payload_bytes=100)
    headers = dict(record.headers)
    assert headers["error.code"] == b"unknown_unit"
    assert headers["error.message"] == b"unit 'furlongs' is not accepted"
    assert (headers["source.topic"], headers["source.partition"], headers["source.offset"]) == (
        b"raw", b"2", b"41")
    assert headers["dlq.id"] == b"raw/2/41/3"
    assert headers["pipeline.version"]
    assert "payload.truncated" not in headers
    assert (record.key, record.value) == (b"k", b"{}")


def test_payload_over_the_limit_is_cut_and_flagged():
    record = dead_letter_record(letter(b"x" * 101), key=None, topic="raw", partition=0, offset=0,
                                member_index=0, max_payload_bytes=100)
    headers = dict(record.headers)
    assert record.value == b"x" * 100
    assert headers["payload.truncated"] == b"true"
    assert headers["payload.original_bytes"] == b"101"


def test_payload_at_the_limit_is_kept_whole():
    record = dead_letter_record(letter(b"x" * 100), key=None, topic="raw", partition=0, offset=0,
                                member_index=0, max_payload_bytes=100)
    assert record.value == b"x" * 100 and "payload.truncated" not in dict(record.headers)
