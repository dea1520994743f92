"""web.gateway.body: the door's cheap checks on a request body (pure, no server)."""

from __future__ import annotations

import gzip
import json

import pytest

from web.errors import ApiError
from web.gateway.body import BodyLimits, decompress, read_documents, too_deep

LIMITS = BodyLimits(max_decompressed_bytes=10_000, max_message_bytes=500, max_documents=5, max_depth=6)
READING = {"metric": "heart_rate", "value": 61, "unit": "bpm", "timestamp": "2026-01-01T00:00:00Z",
           "source": "fitbit"}


def refusal(body: bytes, ctype: str = "application/json", encoding: str = "") -> ApiError:
    with pytest.raises(ApiError) as caught:
        read_documents(body, ctype, encoding, LIMITS)
    return caught.value


def test_ndjson_lines_are_documents_as_sent_and_blank_lines_are_skipped() -> None:
    lines = [json.dumps({**READING, "value": v}).encode() for v in (60, 61, 62)]
    body = lines[0] + b"\r\n\n" + lines[1] + b"\n  \n" + lines[2] + b"\n"
    docs = read_documents(body, "application/x-ndjson; charset=utf-8", "", LIMITS)
    assert [d.raw for d in docs] == lines
    assert [d.doc["value"] for d in docs] == [60, 61, 62] and [d.index for d in docs] == [0, 1, 2]


def test_one_object_and_an_array_of_objects() -> None:
    (one,) = read_documents(json.dumps(READING).encode(), "application/json", "", LIMITS)
    assert one.doc == READING
    docs = read_documents(json.dumps([READING, READING]).encode(), "application/json", "", LIMITS)
    assert [json.loads(d.raw) for d in docs] == [READING, READING]


def test_gzip_bodies_are_decoded() -> None:
    body = gzip.compress(json.dumps([READING] * 3).encode())
    assert len(read_documents(body, "application/json", "gzip", LIMITS)) == 3


def test_a_gzip_bomb_is_refused_without_inflating_it_whole() -> None:
    bomb = gzip.compress(b" " * 50_000_000)  # 50 MB of spaces: ~50 KB compressed
    error = refusal(bomb, encoding="gzip")
    assert (error.status, error.reason) == (413, "gzip_bomb")
    assert decompress(gzip.compress(b"x" * 10_000), "gzip", 10_000) == b"x" * 10_000


@pytest.mark.parametrize(("body", "encoding", "status", "reason"), [
    (b"not json at all", "", 400, "malformed_json"),
    (b'{"metric": NaN}', "", 400, "malformed_json"),
    (b"[1, 2]", "", 400, "not_object"),
    (b'"text"', "", 400, "not_object"),
    (b"[]", "", 400, "empty"),
    (b"\x1f\x8b\x08\x00garbage", "gzip", 400, "bad_gzip"),
    (gzip.compress(b"{}")[:-4], "gzip", 400, "bad_gzip"),
    (b"{}", "br", 415, "encoding"),
    (json.dumps([READING] * 6).encode(), "", 413, "too_many_documents"),
    (json.dumps({**READING, "metadata": {"note": "x" * 600}}).encode(), "", 413, "message_too_large"),
])
def test_refusals_name_the_problem(body: bytes, encoding: str, status: int, reason: str) -> None:
    error = refusal(body, encoding=encoding)
    assert (error.status, error.reason) == (status, reason)


def test_an_ndjson_refusal_names_the_line_and_never_quotes_it() -> None:
    body = json.dumps(READING).encode() + b"\n{\"user_id\": \"secret-person\", broken\n"
    error = refusal(body, "application/x-ndjson")
    assert error.message == "document 1 is not valid JSON"
    assert "secret" not in json.dumps(error.body("r"))


def test_unknown_media_types_are_refused() -> None:
    error = refusal(json.dumps(READING).encode(), "text/plain")
    assert (error.status, error.reason) == (415, "media_type")


def test_nesting_depth() -> None:
    nested: dict = {"metadata": {}}
    node = nested["metadata"]
    for _ in range(5):  # levels: document 1, metadata 2, then 5 more = 7 > 6
        node["a"] = {}
        node = node["a"]
    assert too_deep(nested, 6) and not too_deep(nested, 7)
    error = refusal(json.dumps({**READING, **nested}).encode())
    assert (error.status, error.reason) == (400, "too_deep")
    assert not too_deep({"a": [1, [2, [3]]]}, 4) and too_deep({"a": [1, [2, [3]]]}, 3)
