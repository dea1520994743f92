"""Parsing and judging the ``timestamp`` of a reading.

Every datetime returned here is timezone-aware UTC. The clock is never read: "now" is
always passed in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from streams.domain.text import has_control_character
from streams.errors import Rejected, RejectReason

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_timestamp(raw: object, name: str = "timestamp", *, naive_is_utc: bool = False) -> datetime:
    """``raw`` as an aware UTC datetime.

    Accepts an ISO-8601 string with an offset or ``Z`` (anything
    ``datetime.fromisoformat`` of Python 3.11 reads), or an ``int`` of milliseconds since
    the Unix epoch (exact, no float rounding). A string without an offset raises
    ``Rejected(NAIVE_TIMESTAMP)``, unless ``naive_is_utc`` (the setting
    ``HEALTHMATE_NAIVE_TIMESTAMPS=utc``), which reads it as UTC. A string that holds a
    control character is ``Rejected(CONTROL_CHARACTER)``. Anything else (bool,
    float, unparseable or out-of-range) raises ``Rejected(INVALID_TYPE)``. Messages name
    the field ``name`` and never include the timestamp itself.
    """
    cls = raw.__class__
    if cls is str:
        if has_control_character(raw):  # type: ignore[arg-type]
            # fromisoformat stops reading at a NUL: "...Z\x00junk" would parse as "...Z".
            raise Rejected(RejectReason.CONTROL_CHARACTER, f"field {name!r} contains a control character")
        try:
            dt = datetime.fromisoformat(raw)  # type: ignore[arg-type]
        except ValueError:
            raise Rejected(
                RejectReason.INVALID_TYPE, f"field {name!r} is not a valid ISO-8601 string"
            ) from None
        tz = dt.tzinfo
        if tz is UTC:
            return dt
        if tz is None and naive_is_utc:
            return dt.replace(tzinfo=UTC)
        if tz is None or dt.utcoffset() is None:
            raise Rejected(RejectReason.NAIVE_TIMESTAMP, f"field {name!r} has no timezone offset")
        try:
            return dt.astimezone(UTC)
        except OverflowError:
            raise Rejected(RejectReason.INVALID_TYPE, f"field {name!r} is out of range") from None
    if cls is int:
        try:
            return _EPOCH + timedelta(0, 0, 0, cast(int, raw))  # milliseconds; positional is ~25% cheaper
        except OverflowError:
            raise Rejected(RejectReason.INVALID_TYPE, f"field {name!r} is out of range") from None
    raise Rejected(
        RejectReason.INVALID_TYPE,
        f"field {name!r} must be an ISO-8601 string or integer epoch milliseconds, got {_type_name(raw)}",
    )


def check_not_future(measured_at: datetime, now: datetime, skew: timedelta) -> None:
    """Raise ``Rejected(FUTURE_TIMESTAMP)`` if ``measured_at`` is more than ``skew`` after ``now``.

    Exactly ``skew`` ahead is accepted.
    """
    if measured_at - now > skew:
        raise Rejected(
            RejectReason.FUTURE_TIMESTAMP, "field 'timestamp' is in the future beyond the allowed skew"
        )


def is_late(measured_at: datetime, ingested_at: datetime, late_after: timedelta) -> bool:
    """Whether the reading arrived more than ``late_after`` after it was measured (exactly is not late)."""
    return ingested_at - measured_at > late_after


def _type_name(raw: object) -> str:
    return "null" if raw is None else type(raw).__name__


def utc_text(ts: datetime) -> str:
    """An aware datetime as RFC 3339 text in UTC with ``Z`` (FHIR instant, Open mHealth date-time)."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
