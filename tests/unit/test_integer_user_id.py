"""``user_id`` as a JSON integer in every form (single, envelope, wide, Open mHealth header):
``1`` is the user ``"1"``, as the README says; a boolean is not an integer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from omh_examples import data_point

from streams.domain import Rules, process_message, user_key
from streams.errors import RejectReason
from streams.records import MessageContext

KEY = b"integer-user-id-key"
AT = "2026-11-26T10:00:00Z"
CTX = MessageContext("health.readings.raw", 0, 7, datetime(2026, 11, 26, 12, tzinfo=UTC))


def _single(user: Any) -> dict[str, Any]:
    return {"event_id": "e-1", "user_id": user, "source": "fitbit", "metric": "heart_rate", "value": 72,
            "unit": "bpm", "timestamp": AT}


def _envelope(user: Any) -> dict[str, Any]:
    return {"batch_id": "b-1", "user_id": user, "source": "fitbit",
            "readings": [{"event_id": "e-1", "metric": "heart_rate", "value": 72, "unit": "bpm",
                          "timestamp": AT}]}


def _wide(user: Any) -> dict[str, Any]:
    return {"user_id": user, "heart_rate": 72, "timestamp": AT, "source": "fitbit"}


def _omh(user: Any) -> dict[str, Any]:
    return data_point("heart-rate", "2.0", user_id=user)


FORMS = [_single, _envelope, _wide, _omh]


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("user", [1, 0, -7, 12345678901234567890])
def test_an_integer_user_id_is_its_decimal_string(form, user) -> None:
    rules = Rules.default(KEY)
    as_int = process_message(orjson.dumps(form(user)), CTX, rules)
    as_text = process_message(orjson.dumps(form(str(user))), CTX, rules)
    assert as_int.dead_letters == [] and len(as_int.readings) == 1
    assert as_int.readings == as_text.readings
    assert as_int.readings[0].user_key == user_key(KEY, str(user))


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("user", [True, 1.0, [1]])
def test_a_boolean_float_or_list_user_id_is_still_refused(form, user) -> None:
    out = process_message(orjson.dumps(form(user)), CTX, Rules.default(KEY))
    assert out.readings == []
    refused = [RejectReason.INVALID_TYPE], [RejectReason.SCHEMA_VIOLATION]  # OMH: its header schema
    assert [d.code for d in out.dead_letters] in refused
