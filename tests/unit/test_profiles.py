"""User profiles: pseudonymised, Safe Harbor age band, IANA zones, tombstones, bad profiles."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from streams.domain.profiles import ProfileDeleted, UserProfile, judge_profile, valid_zone
from streams.domain.pseudonym import Pseudonymiser, user_key
from streams.errors import Rejected, RejectReason

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
KEY = b"profile-test-key"
USER = "PHI-user-42@example.org"


def judge(value: object, key: bytes | None = USER.encode(), **kw):  # type: ignore[no-untyped-def]
    raw = value if isinstance(value, bytes | type(None)) else orjson.dumps(value)
    return judge_profile(key, raw, Pseudonymiser(KEY), now=NOW, **kw)


def test_a_full_profile_is_pseudonymised() -> None:
    got = judge({"timezone": "Europe/Paris", "birth_year": 1975, "sex": "Female",
                 "updated_at": "2026-11-30T10:00:00+01:00", "user_id": "ignored", "extra": 1})
    assert got == UserProfile(user_key(KEY, USER), "Europe/Paris", 1975, False, "female",
                              datetime(2026, 11, 30, 9, tzinfo=UTC))
    assert USER not in repr(got)


def test_defaults_for_absent_fields() -> None:
    produced = datetime(2026, 11, 1, tzinfo=UTC)
    assert judge({}, produced_at=produced) == UserProfile(user_key(KEY, USER), "UTC", None, False, "unknown",
                                                          produced)
    assert judge({"timezone": None, "sex": None, "birth_year": None}).updated_at == NOW


@pytest.mark.parametrize(("year", "stored", "band"), [
    (1937, 1937, False),  # 89 this year: still reported
    (1936, None, True),   # 90 this year: only the band
    (1900, None, True),
    (2026, 2026, False),
])
def test_ages_over_89_are_one_band(year: int, stored: int | None, band: bool) -> None:
    got = judge({"birth_year": year})
    assert (got.birth_year, got.age_over_89) == (stored, band)


@pytest.mark.parametrize(("value", "code", "field"), [
    ({"timezone": "Mars/Olympus"}, RejectReason.INVALID_TYPE, "timezone"),
    ({"timezone": "../../etc/passwd"}, RejectReason.INVALID_TYPE, "timezone"),
    ({"timezone": " Europe/Paris"}, RejectReason.INVALID_TYPE, "timezone"),
    ({"timezone": 2}, RejectReason.INVALID_TYPE, "timezone"),
    ({"birth_year": 1899}, RejectReason.OUT_OF_RANGE, "birth_year"),
    ({"birth_year": 2027}, RejectReason.OUT_OF_RANGE, "birth_year"),
    ({"birth_year": "1975"}, RejectReason.INVALID_TYPE, "birth_year"),
    ({"birth_year": True}, RejectReason.INVALID_TYPE, "birth_year"),
    ({"birth_year": 1975.0}, RejectReason.INVALID_TYPE, "birth_year"),
    ({"sex": "f"}, RejectReason.INVALID_TYPE, "sex"),
    ({"sex": 1}, RejectReason.INVALID_TYPE, "sex"),
    ({"updated_at": "2026-11-30T10:00:00"}, RejectReason.NAIVE_TIMESTAMP, "'updated_at'"),
    ([1, 2], RejectReason.INVALID_TYPE, "object"),
    (b"{not json", RejectReason.MALFORMED_JSON, "JSON"),
    (b'{"birth_year": NaN}', RejectReason.INVALID_TYPE, "NaN"),
    (b"{" + b'"a":"' + b"x" * 20_000 + b'"}', RejectReason.OVERSIZED, "size"),
])
def test_bad_profiles_are_rejected_without_phi(value: object, code: RejectReason, field: str) -> None:
    with pytest.raises(Rejected) as info:
        judge(value)
    assert info.value.code is code and field in info.value.message
    assert USER not in info.value.message


@pytest.mark.parametrize("key", [None, b""])
def test_a_profile_needs_its_key(key: bytes | None) -> None:
    with pytest.raises(Rejected) as info:
        judge({"timezone": "UTC"}, key=key)
    assert info.value.code is RejectReason.MISSING_FIELD


def test_a_key_that_is_not_utf8_is_rejected() -> None:
    with pytest.raises(Rejected) as info:
        judge({}, key=b"\xff\xfe")
    assert info.value.code is RejectReason.INVALID_TYPE


@pytest.mark.parametrize("value", [None, b""])
def test_tombstones_delete(value: bytes | None) -> None:
    assert judge(value) == ProfileDeleted(user_key(KEY, USER))


def test_numeric_and_string_user_ids_are_one_key() -> None:
    assert judge({}, key=b"1").user_key == user_key(KEY, "1")


@pytest.mark.parametrize(("name", "ok"), [("UTC", True), ("Pacific/Kiritimati", True),
                                          ("America/New_York", True), ("", False), ("Nowhere/City", False),
                                          ("/etc/localtime", False), ("x" * 65, False)])
def test_valid_zone(name: str, ok: bool) -> None:
    assert valid_zone(name) is ok
