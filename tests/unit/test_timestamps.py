"""Timestamp parsing, the future-skew boundary and the late boundary, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from streams.domain import Rules, normalise_reading, parse_timestamp, process_message
from streams.domain.timestamps import check_not_future, is_late
from streams.errors import Rejected, RejectReason
from streams.records import MessageContext


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00+00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T07:30:00-04:30", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.123456Z", datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01 12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (1714564800000, datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (1714564800123, datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (-1, datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_returns_aware_utc(raw, expected) -> None:
    parsed = parse_timestamp(raw)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("raw", ["2024-05-01T12:00:00", "2024-05-01", "2024-05-01T12:00:00.5"])
def test_naive_timestamp(raw) -> None:
    with pytest.raises(Rejected) as info:
        parse_timestamp(raw)
    assert info.value.code is RejectReason.NAIVE_TIMESTAMP


@pytest.mark.parametrize(
    "raw",
    [
        "yesterday",
        "",
        "2024-13-01T00:00:00Z",
        "2024-05-01T23:59:60Z",
        "1714564800000",
        "0001-01-01T00:00:00+01:00",  # out of range once converted to UTC
        1714564800000.0,
        True,
        False,
        [2024, 5, 1],
        {"ms": 1},
        10**20,
        -(10**20),
    ],
)
def test_unparseable_timestamp_is_invalid_type(raw) -> None:
    with pytest.raises(Rejected) as info:
        parse_timestamp(raw)
    assert info.value.code is RejectReason.INVALID_TYPE
    assert str(raw) not in info.value.message or raw == ""


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


@pytest.mark.parametrize(
    ("ahead", "accepted"),
    [
        (timedelta(0), True),
        (timedelta(seconds=299, milliseconds=999), True),
        (timedelta(seconds=300), True),
        (timedelta(seconds=300, milliseconds=1), False),
        (timedelta(hours=2), False),
    ],
)
def test_future_skew_boundary(ahead, accepted, reading, ctx, rules, now) -> None:
    for raw in ((now + ahead).isoformat(), _ms(now + ahead)):
        fields = reading(timestamp=raw)
        if accepted:
            assert normalise_reading(fields, ctx, rules).measured_at == now + ahead
        else:
            with pytest.raises(Rejected) as info:
                normalise_reading(fields, ctx, rules)
            assert info.value.code is RejectReason.FUTURE_TIMESTAMP


def test_future_skew_is_configurable(reading, ctx, key, now) -> None:
    rules = Rules.default(key, future_skew=timedelta(0))
    assert normalise_reading(reading(timestamp=_ms(now)), ctx, rules).measured_at == now
    with pytest.raises(Rejected):
        normalise_reading(reading(timestamp=_ms(now) + 1), ctx, rules)


def test_future_is_judged_against_the_injected_clock_not_the_wall_clock(reading, encode, rules) -> None:
    past_now = datetime(2001, 1, 1, tzinfo=UTC)
    ctx = MessageContext("t", 0, 0, past_now)
    out = process_message(encode(reading(timestamp="2001-01-01T00:10:00Z")), ctx, rules)
    assert [d.code for d in out.dead_letters] == [RejectReason.FUTURE_TIMESTAMP]


@pytest.mark.parametrize(
    ("age", "late"),
    [
        (timedelta(0), False),
        (timedelta(hours=23, minutes=59, seconds=59), False),
        (timedelta(hours=24), False),
        (timedelta(hours=24, milliseconds=1), True),
        (timedelta(days=30), True),
    ],
)
def test_late_boundary(age, late, reading, ctx, rules, now) -> None:
    stored = normalise_reading(reading(timestamp=_ms(now - age)), ctx, rules)
    assert stored.quality_flags == (("late",) if late else ())
    assert stored.ingested_at == now


def test_late_threshold_is_configurable(reading, ctx, key, now) -> None:
    rules = Rules.default(key, late_after=timedelta(minutes=5))
    assert (
        normalise_reading(reading(timestamp=_ms(now - timedelta(minutes=5))), ctx, rules).quality_flags == ()
    )
    stored = normalise_reading(reading(timestamp=_ms(now - timedelta(minutes=6))), ctx, rules)
    assert stored.quality_flags == ("late",)


def test_late_and_outlier_flags_combine_in_order(reading, ctx, key, now) -> None:
    rules = Rules.default(key, outlier_strategies={"heart_rate": "clip"})
    stored = normalise_reading(reading(value=10, timestamp="2024-04-01T00:00:00Z"), ctx, rules)
    assert stored.quality_flags == ("outlier", "clipped", "late")


def test_helpers_share_the_boundaries(now) -> None:
    check_not_future(now + timedelta(seconds=300), now, timedelta(seconds=300))
    with pytest.raises(Rejected):
        check_not_future(now + timedelta(seconds=301), now, timedelta(seconds=300))
    assert not is_late(now - timedelta(hours=24), now, timedelta(hours=24))
    assert is_late(now - timedelta(hours=25), now, timedelta(hours=24))


def test_context_requires_an_aware_clock_and_stores_utc() -> None:
    with pytest.raises(ValueError):
        MessageContext("t", 0, 0, datetime(2024, 5, 1, 12))  # noqa: DTZ001 - naive on purpose
    ctx = MessageContext("t", 0, 0, datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2))))
    assert ctx.ingested_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert ctx.ingested_at.tzinfo is UTC


def test_produced_at_is_optional_aware_and_copied_to_readings(reading, rules, now) -> None:
    produced = datetime(2024, 5, 1, 13, 59, tzinfo=timezone(timedelta(hours=2)))
    ctx = MessageContext("t", 0, 0, now, produced_at=produced)
    assert ctx.produced_at == datetime(2024, 5, 1, 11, 59, tzinfo=UTC) and ctx.produced_at.tzinfo is UTC
    assert normalise_reading(reading(), ctx, rules).produced_at == produced
    assert normalise_reading(reading(), MessageContext("t", 0, 0, now), rules).produced_at is None
    with pytest.raises(ValueError):
        MessageContext("t", 0, 0, now, produced_at=datetime(2024, 5, 1, 12))  # noqa: DTZ001 - naive on purpose
