"""Shared fixtures for the pure domain tests: a fixed clock, a fixed key, valid messages.

The user and device ids are distinctive on purpose: tests assert they never leak into a
dead-letter message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from streams.domain import Rules
from streams.records import MessageContext

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
KEY = b"unit-test-pseudonym-key"
USER_ID = "PHI-user-jane.doe-19750412@example.org"
DEVICE_ID = "PHI-device-serial-SN998877665544"


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def user_id() -> str:
    return USER_ID


@pytest.fixture
def device_id() -> str:
    return DEVICE_ID


@pytest.fixture
def key() -> bytes:
    return KEY


@pytest.fixture
def rules() -> Rules:
    return Rules.default(KEY)


@pytest.fixture
def ctx() -> MessageContext:
    return MessageContext(topic="health.readings.raw", partition=3, offset=42, ingested_at=NOW)


@pytest.fixture
def reading() -> Callable[..., dict[str, Any]]:
    """A factory of valid single readings; keywords replace fields, ``drop`` removes them."""

    def make(drop: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "event_id": "evt-1",
            "user_id": USER_ID,
            "device_id": DEVICE_ID,
            "source": "fitbit",
            "metric": "heart_rate",
            "value": 72,
            "unit": "bpm",
            "timestamp": "2024-05-01T11:30:00Z",
            "metadata": {"firmware": "1.2.3"},
        }
        doc.update(fields)
        for name in drop:
            doc.pop(name)
        return doc

    return make


@pytest.fixture
def member() -> Callable[..., dict[str, Any]]:
    """A factory of valid batch members (no user, device or source)."""

    def make(drop: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "event_id": "evt-m",
            "metric": "steps",
            "value": 1200,
            "unit": "steps",
            "timestamp": "2024-05-01T11:00:00+00:00",
        }
        doc.update(fields)
        for name in drop:
            doc.pop(name)
        return doc

    return make


@pytest.fixture
def envelope() -> Callable[..., dict[str, Any]]:
    """A factory of batch envelopes around the given members."""

    def make(readings: Any, drop: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "batch_id": "batch-1",
            "user_id": USER_ID,
            "device_id": DEVICE_ID,
            "source": "apple_health",
            "readings": readings,
        }
        doc.update(fields)
        for name in drop:
            doc.pop(name)
        return doc

    return make


@pytest.fixture
def encode() -> Callable[[Any], bytes]:
    return orjson.dumps
