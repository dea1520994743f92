"""User pseudonyms: HMAC-SHA256, deterministic, keyed, never the raw id."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from streams.domain import Rules, process_message, user_key
from streams.domain.pseudonym import Pseudonymiser, device_key, device_pseudonym_key


def test_rfc4231_test_case_2() -> None:
    assert user_key(b"Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_user_key_is_hex_hmac_sha256_of_utf8(user_id) -> None:
    expected = hmac.new(b"k", user_id.encode("utf-8"), hashlib.sha256).hexdigest()
    assert user_key(b"k", user_id) == expected
    assert user_key(b"k", "Zoë") == hmac.new(b"k", "Zoë".encode(), hashlib.sha256).hexdigest()


def test_user_key_is_deterministic_and_keyed(user_id) -> None:
    assert user_key(b"k1", user_id) == user_key(b"k1", user_id)
    assert user_key(b"k1", user_id) != user_key(b"k2", user_id)
    assert user_key(b"k1", user_id) != user_key(b"k1", user_id + "x")
    assert len(user_key(b"k1", user_id)) == 64


@pytest.mark.parametrize("key", [b"short", b"x" * 64, b"y" * 65, bytes(range(200))])
def test_pseudonymiser_equals_user_key(key, user_id) -> None:
    fast = Pseudonymiser(key, cache_size=2)
    for uid in [user_id, "a", "b", "c", user_id, "", "Zoë"]:
        assert fast(uid) == user_key(key, uid)


def test_stored_reading_carries_the_pseudonym_only(reading, encode, ctx, key, user_id) -> None:
    stored = process_message(encode(reading()), ctx, Rules.default(key)).readings[0]
    assert stored.user_key == user_key(key, user_id)
    assert user_id not in repr(stored)


def test_rules_repr_hides_the_key(key) -> None:
    assert key.decode() not in repr(Rules.default(key))


def test_device_ids_are_stored_as_a_keyed_pseudonym_of_their_own(reading, encode, ctx, key,
                                                                  device_id) -> None:
    out = process_message(encode(reading(user_id=device_id)), ctx, Rules.default(key))
    [stored] = out.readings
    assert stored.device_id == device_key(key, device_id) == hmac.new(
        device_pseudonym_key(key), device_id.encode(), hashlib.sha256).hexdigest()
    assert device_id not in repr(stored)
    # The same string as a user id and as a device id: two different pseudonyms.
    assert stored.user_key == user_key(key, device_id) != stored.device_id
    assert device_key(key, device_id) != device_key(b"other-key", device_id)


def test_a_missing_or_empty_device_id_stays_missing(reading, encode, ctx, key) -> None:
    for device in (None, ""):
        [stored] = process_message(encode(reading(device_id=device)), ctx, Rules.default(key)).readings
        assert stored.device_id == device
