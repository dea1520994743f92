"""User profiles from the compacted topic ``health.users.profiles``. Pure: no I/O but tzdata.

Wire contract: the message key is the user id (UTF-8); the value is a JSON object::

    {"timezone": "Europe/Paris", "birth_year": 1975, "sex": "female",
     "updated_at": "2026-11-30T10:00:00Z"}

- ``timezone``: an IANA zone name (``zoneinfo``); absent or null means ``"UTC"``.
- ``birth_year``: an integer between 1900 and the year of ``now``, or null. Under HIPAA
  Safe Harbor, ages over 89 are one band: when ``now.year - birth_year > 89`` the year is
  *not stored* (``birth_year`` None) and ``age_over_89`` is True. The check is on the
  year alone, so someone who turns 90 later this year is already in the band.
- ``sex``: ``female``, ``male``, ``other`` or ``unknown`` (case-insensitive; absent or
  null: ``unknown``).
- ``updated_at``: an aware ISO-8601 string or epoch milliseconds; absent: the record's
  Kafka timestamp, else ingestion time. The warehouse keeps the profile with the latest
  ``updated_at`` (a replayed older version never overwrites a newer one).
- An empty or null value is a tombstone: the profile is deleted.
- Unknown fields are ignored. A ``user_id`` field, if present, is ignored: the key is
  authoritative, as compaction is by key.

A bad profile raises ``Rejected`` with a reason code and a PHI-free message; the agent
dead-letters it like a reading. The user id becomes the keyed pseudonym here and is
never kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.domain.decode import decode
from streams.domain.pseudonym import Pseudonymiser
from streams.domain.timestamps import parse_timestamp
from streams.errors import Rejected, RejectReason

SEXES: Final = frozenset({"female", "male", "other", "unknown"})
#: Safe Harbor: an age above this is reported only as "over 89".
MAX_REPORTED_AGE: Final = 89
MIN_BIRTH_YEAR: Final = 1900
MAX_PROFILE_BYTES: Final = 16_384
_MAX_ZONE_NAME = 64


@dataclass(frozen=True, slots=True)
class UserProfile:
    """One row of ``user_profiles``; ``user_key`` is the pseudonym, never the raw id."""

    user_key: str
    timezone: str
    birth_year: int | None
    age_over_89: bool
    sex: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ProfileDeleted:
    """A tombstone: remove the profile of ``user_key``."""

    user_key: str


@lru_cache(maxsize=1024)
def valid_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone that ``zoneinfo`` can load."""
    if not name or len(name) > _MAX_ZONE_NAME or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def judge_profile(key: bytes | None, value: bytes | None, pseudonymise: Pseudonymiser, *,
                  now: datetime, produced_at: datetime | None = None) -> UserProfile | ProfileDeleted:
    """The profile (or deletion) one message of the profiles topic describes; raises ``Rejected``."""
    if not key:
        raise Rejected(RejectReason.MISSING_FIELD, "the profile message has no key (the user id)")
    try:
        user_id = key.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(RejectReason.INVALID_TYPE, "the profile key is not UTF-8") from None
    user_key = pseudonymise(user_id)
    if not value:
        return ProfileDeleted(user_key)
    if len(value) > MAX_PROFILE_BYTES:
        raise Rejected(RejectReason.OVERSIZED, "profile exceeds the maximum size in bytes")
    doc, nonfinite = decode(value)
    if doc.__class__ is not dict:
        raise Rejected(RejectReason.INVALID_TYPE, "a profile must be a JSON object")
    if nonfinite:
        raise Rejected(RejectReason.INVALID_TYPE, "the profile holds a NaN or infinite number")
    birth_year, over_89 = _birth_year(doc.get("birth_year"), now)
    return UserProfile(user_key, _zone(doc.get("timezone")), birth_year, over_89, _sex(doc.get("sex")),
                       _updated_at(doc, produced_at or now))


def _zone(raw: Any) -> str:
    if raw is None:
        return "UTC"
    if raw.__class__ is not str:
        raise Rejected(RejectReason.INVALID_TYPE, "field 'timezone' must be a string")
    if not valid_zone(raw):
        raise Rejected(RejectReason.INVALID_TYPE, "field 'timezone' is not an IANA time zone name")
    return raw


def _birth_year(raw: Any, now: datetime) -> tuple[int | None, bool]:
    if raw is None:
        return None, False
    if raw.__class__ is not int:
        raise Rejected(RejectReason.INVALID_TYPE, "field 'birth_year' must be an integer")
    if not MIN_BIRTH_YEAR <= raw <= now.year:
        raise Rejected(RejectReason.OUT_OF_RANGE,
                       f"field 'birth_year' must be in {MIN_BIRTH_YEAR}..this year")
    if now.year - raw > MAX_REPORTED_AGE:
        return None, True
    return raw, False


def _sex(raw: Any) -> str:
    if raw is None:
        return "unknown"
    if raw.__class__ is not str or raw.strip().lower() not in SEXES:
        raise Rejected(RejectReason.INVALID_TYPE, f"field 'sex' must be one of {sorted(SEXES)}")
    return raw.strip().lower()


def _updated_at(doc: dict[str, Any], default: datetime) -> datetime:
    raw = doc.get("updated_at")
    if raw is None:
        return default.astimezone(UTC)
    return parse_timestamp(raw, "updated_at")
