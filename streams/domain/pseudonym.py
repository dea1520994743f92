"""Pseudonymisation of user and device ids: the warehouse never sees either in clear.

User ids are keyed with the pseudonym key itself; device ids with a key derived from it
under :data:`DEVICE_LABEL`, so a device pseudonym never equals a user pseudonym, even when
a device id and a user id are the same string.
"""

from __future__ import annotations

import hashlib
import hmac

_BLOCK = 64  # SHA-256 block size in bytes


def user_key(key: bytes, user_id: str) -> str:
    """The pseudonym of ``user_id``: lower-case hex HMAC-SHA256 of its UTF-8 bytes under ``key``.

    Deterministic for a given key (the same user always maps to the same 64-character
    key), and not reversible without the key. Raises ``UnicodeEncodeError`` for a string
    that is not valid Unicode (lone surrogates); decoded JSON never produces one.
    """
    return hmac.digest(key, user_id.encode(), "sha256").hex()


DEVICE_LABEL = b"healthmate/device_id/v1"


def device_pseudonym_key(key: bytes) -> bytes:
    """The key device ids are pseudonymised with: HMAC-SHA256(key, DEVICE_LABEL)."""
    return hmac.digest(key, DEVICE_LABEL, "sha256")


def device_key(key: bytes, device_id: str) -> str:
    """The pseudonym of ``device_id`` (64 lower-case hex characters, like :func:`user_key`)."""
    return user_key(device_pseudonym_key(key), device_id)


class Pseudonymiser:
    """:func:`user_key` for one fixed key, fast enough for the hot path.

    Calling it returns exactly ``user_key(key, user_id)``. The HMAC inner and outer states
    are precomputed once (RFC 2104), and up to ``cache_size`` recent results are kept in
    memory (the cache is emptied when full). Not thread-safe for concurrent first calls,
    which is harmless: both compute the same value.
    """

    __slots__ = ("_inner", "_outer", "_cache", "_cache_size")

    def __init__(self, key: bytes, cache_size: int = 65_536) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        self._cache: dict[str, str] = {}
        self._cache_size = cache_size

    def __call__(self, user_id: str) -> str:
        """The pseudonym of ``user_id``; raises ``UnicodeEncodeError`` like :func:`user_key`."""
        cached = self._cache.get(user_id)
        if cached is not None:
            return cached
        inner = self._inner.copy()
        inner.update(user_id.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        result = outer.hexdigest()
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[user_id] = result
        return result
