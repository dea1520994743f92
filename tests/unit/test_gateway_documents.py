"""web.gateway.documents: forms, the user binding and the event ids the worker will store."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from streams.domain.catalogue import DEFAULT_CATALOGUE
from streams.domain.event_ids import derive_event_id
from streams.domain.judge import Rules
from streams.domain.pseudonym import user_key
from web.errors import ApiError
from web.gateway.body import Document
from web.gateway.documents import EventIds, bind, form_of

KEY = b"unit-test-pseudonym-key"
AT = "2026-03-01T08:00:00+01:00"
SINGLE = {"metric": "heart_rate", "value": 61, "unit": "bpm", "timestamp": AT, "source": "fitbit"}
ENVELOPE = {"batch_id": "b1", "source": "garmin", "readings": [
    {"metric": "heart_rate", "value": 60, "unit": "bpm", "timestamp": AT},
    {"metric": "steps", "value": 10, "unit": "count", "timestamp": AT, "event_id": "mine-1"}]}
WIDE = {"heart_rate": 70, "oxygen_saturation": 97, "timestamp": AT, "source": "oura"}
OMH = {"header": {"id": "p-1", "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"},
                  "creation_date_time": AT},
       "body": {"heart_rate": {"value": 55, "unit": "beats/min"}, "effective_time_frame": {"date_time": AT}}}


def doc(value: dict, index: int = 0) -> Document:
    return Document(index, json.dumps(value).encode(), value)


@pytest.mark.parametrize(("value", "form"), [
    (SINGLE, "single"), (ENVELOPE, "envelope"), (WIDE, "wide"), (OMH, "openmhealth"),
    ({"resourceType": "Observation"}, "fhir"), ({"hello": 1}, None),
])
def test_forms_are_recognised_in_the_workers_order(value: dict, form: str | None) -> None:
    assert form_of(value, DEFAULT_CATALOGUE) == form


def test_a_producer_writes_its_own_user_into_documents_that_name_none() -> None:
    message = bind(doc(SINGLE), "alice", any_user=False, catalogue=DEFAULT_CATALOGUE)
    assert message.key == b"alice" and json.loads(message.value) == {**SINGLE, "user_id": "alice"}
    named = doc({**SINGLE, "user_id": "alice"})
    assert bind(named, "alice", any_user=False, catalogue=DEFAULT_CATALOGUE).value == named.raw
    omh = bind(doc(OMH), "alice", any_user=False, catalogue=DEFAULT_CATALOGUE)
    assert omh.key == b"alice" and omh.value == doc(OMH).raw  # the key is the user of the data point


@pytest.mark.parametrize("value", [
    {**SINGLE, "user_id": "bob"}, {**ENVELOPE, "user_id": "bob"}, {**WIDE, "user_id": 42},
    {**OMH, "header": {**OMH["header"], "user_id": "bob"}},
])
def test_a_producer_may_not_name_another_user(value: dict) -> None:
    with pytest.raises(ApiError) as caught:
        bind(doc(value, 3), "alice", any_user=False, catalogue=DEFAULT_CATALOGUE)
    assert (caught.value.status, caught.value.reason) == (403, "other_user")
    assert caught.value.message == "document 3 names a user other than the token's"


def test_a_service_must_name_the_user_and_writes_for_any() -> None:
    message = bind(doc({**WIDE, "user_id": 42}), "partner", any_user=True, catalogue=DEFAULT_CATALOGUE)
    assert message.key == b"42" and message.user_id == "42"
    with pytest.raises(ApiError) as caught:
        bind(doc(SINGLE), "partner", any_user=True, catalogue=DEFAULT_CATALOGUE)
    assert (caught.value.status, caught.value.reason) == (400, "no_user")


def test_an_integer_user_is_its_decimal_string_in_every_form() -> None:
    for value in ({**SINGLE, "user_id": 42}, {**ENVELOPE, "user_id": 42},
                  {**OMH, "header": {**OMH["header"], "user_id": 42}}):
        assert bind(doc(value), "42", any_user=False, catalogue=DEFAULT_CATALOGUE).key == b"42"
        assert bind(doc(value), "p", any_user=True, catalogue=DEFAULT_CATALOGUE).user_id == "42"


def test_unknown_forms_and_mistyped_users_are_refused() -> None:
    for value, reason in (({"hello": 1}, "unknown_form"), ({**SINGLE, "user_id": ["x"]}, "bad_user"),
                          ({**SINGLE, "user_id": True}, "bad_user"),
                          ({**OMH, "header": {**OMH["header"], "user_id": ""}}, "bad_user")):
        with pytest.raises(ApiError) as caught:
            bind(doc(value), "alice", any_user=False, catalogue=DEFAULT_CATALOGUE)
        assert (caught.value.status, caught.value.reason) == (400, reason)


def test_event_ids_are_the_ones_the_worker_derives_from_the_pseudonym() -> None:
    ids = EventIds(Rules.default(KEY))
    at = datetime.fromisoformat(AT)
    pseudonym = user_key(KEY, "alice")
    single = bind(doc(SINGLE), "alice", any_user=False, catalogue=DEFAULT_CATALOGUE)
    envelope = bind(doc({**ENVELOPE, "device_id": "w1"}), "alice", any_user=False,
                    catalogue=DEFAULT_CATALOGUE)
    got, count = ids.of([single, envelope])
    assert count == 3 and got == [[derive_event_id(pseudonym, None, "fitbit", "heart_rate", at)],
                                  [derive_event_id(pseudonym, "w1", "garmin", "heart_rate", at), "mine-1"]]


def test_ids_do_not_depend_on_the_clock_and_bad_readings_have_none() -> None:
    ids = EventIds(Rules.default(KEY))
    future = {**SINGLE, "timestamp": "2999-01-01T00:00:00Z"}
    [[got]], _ = ids.of([bind(doc(future), "alice", any_user=False, catalogue=DEFAULT_CATALOGUE)])
    assert got.startswith("drv-")
    bad = {**ENVELOPE, "readings": [{"metric": "heart_rate", "value": "fast", "unit": "bpm", "timestamp": AT},
                                    *ENVELOPE["readings"]]}
    [got_ids], count = ids.of([bind(doc(bad), "alice", any_user=False, catalogue=DEFAULT_CATALOGUE)])
    assert count == 3 and len(got_ids) == 2 and got_ids[1] == "mine-1"
    single = [bind(doc(SINGLE), "alice", any_user=False, catalogue=DEFAULT_CATALOGUE)]
    assert ids.of(single, datetime(2000, 1, 1, tzinfo=UTC)) == ids.of(single)
