"""Derived event ids: deterministic, sensitive to each identifying field, optional in every form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from streams.domain import process_message, user_key
from streams.domain.event_ids import derive_event_id
from streams.errors import RejectReason

AT = datetime(2024, 5, 1, 11, 30, tzinfo=UTC)
BASE = ("key", "dev", "fitbit", "heart_rate", AT)


def test_derivation_is_deterministic_and_shaped() -> None:
    eid = derive_event_id(*BASE)
    assert eid == derive_event_id(*BASE)
    assert eid.startswith("drv-") and len(eid) == 44
    assert eid == derive_event_id("key", "dev", "fitbit", "heart_rate",
                                  AT.astimezone(timezone(timedelta(hours=2))))


@pytest.mark.parametrize("index", range(5))
def test_every_field_changes_the_id(index) -> None:
    changed = list(BASE)
    changed[index] = AT + timedelta(milliseconds=1) if index == 4 else "other"
    assert derive_event_id(*changed) != derive_event_id(*BASE)


def test_absent_and_empty_device_differ() -> None:
    assert derive_event_id("k", None, "s", "m", AT) != derive_event_id("k", "", "s", "m", AT)
    assert derive_event_id("k", None, "s", "m", AT) != derive_event_id("k", "null", "s", "m", AT)


def test_field_boundaries_cannot_be_shifted() -> None:
    assert derive_event_id("ab", "c", "s", "m", AT) != derive_event_id("a", "bc", "s", "m", AT)


def test_single_reading_without_event_id_gets_the_derived_one(reading, encode, ctx, rules, key, user_id,
                                                               device_id) -> None:
    for how in ({"drop": ("event_id",)}, {"event_id": None}):
        out = process_message(encode(reading(**how)), ctx, rules)
        [stored] = out.readings
        assert stored.event_id == derive_event_id(user_key(key, user_id), device_id, "fitbit", "heart_rate",
                                                  datetime(2024, 5, 1, 11, 30, tzinfo=UTC))
        assert user_id not in stored.event_id


def test_epoch_and_iso_spellings_of_one_instant_dedupe(reading, encode, ctx, rules) -> None:
    iso = process_message(encode(reading(drop=("event_id",))), ctx, rules).readings[0]
    epoch_ms = int(datetime(2024, 5, 1, 11, 30, tzinfo=UTC).timestamp() * 1000)
    epoch = process_message(encode(reading(drop=("event_id",), timestamp=epoch_ms)), ctx, rules).readings[0]
    assert iso.event_id == epoch.event_id


def test_envelope_members_without_event_id_are_derived_per_member(member, envelope, ctx, rules) -> None:
    members = [member(drop=("event_id",)), member(drop=("event_id",), timestamp="2024-05-01T11:01:00Z")]
    out = process_message(orjson.dumps(envelope(members)), ctx, rules)
    ids = [r.event_id for r in out.readings]
    assert len(set(ids)) == 2 and all(i.startswith("drv-") for i in ids)


@pytest.mark.parametrize("bad", ["", 5, True, [], {}])
def test_a_given_event_id_must_be_a_non_empty_string(bad, reading, encode, ctx, rules) -> None:
    [dead] = process_message(encode(reading(event_id=bad)), ctx, rules).dead_letters
    assert dead.code is RejectReason.INVALID_TYPE and "'event_id'" in dead.message


def test_unknown_metric_is_reported_before_any_derivation(reading, encode, ctx, rules) -> None:
    [dead] = process_message(encode(reading(drop=("event_id",), metric="mood")), ctx, rules).dead_letters
    assert dead.code is RejectReason.UNKNOWN_METRIC


def test_interval_end_and_statistic_are_part_of_the_identity() -> None:
    plain = derive_event_id(*BASE)
    hour = derive_event_id(*BASE, measured_until=AT + timedelta(hours=1))
    mean = derive_event_id(*BASE, measured_until=AT + timedelta(hours=1), statistic="average")
    peak = derive_event_id(*BASE, measured_until=AT + timedelta(hours=1), statistic="maximum")
    assert len({plain, hour, mean, peak}) == 4
    assert derive_event_id(*BASE, measured_until=None, statistic=None) == plain
