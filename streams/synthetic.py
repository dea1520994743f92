"""Realistic synthetic wearable traffic, with a chosen share of bad records. Pure: no I/O.

Every generated message says what the pipeline must do with it (``expected``): one entry
per reading, ``None`` for "stored", else the reject reason code. Tests and the demo
producer share this generator.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

# (metric, unit, low, high, converter-free canonical range is the catalogue's business)
NORMAL_READINGS: dict[str, list[tuple[str, float, float]]] = {
    "heart_rate": [("bpm", 50, 120), ("beats_per_minute", 50, 120), ("/min", 50, 120)],
    "steps": [("count", 0, 2000), ("steps", 0, 2000)],
    "oxygen_saturation": [("%", 92, 100), ("ratio", 0.92, 1.0)],
    "blood_pressure_systolic": [("mmHg", 100, 140), ("kPa", 13.3, 18.6)],
    "blood_pressure_diastolic": [("mmHg", 60, 90), ("kPa", 8.0, 12.0)],
    "blood_glucose": [("mg/dL", 70, 140), ("mmol/L", 3.9, 7.8)],
    "body_weight": [("kg", 50, 110), ("lb", 110, 240)],
    "body_temperature": [("Cel", 36.1, 37.5), ("[degF]", 97.0, 99.5)],
    "respiratory_rate": [("breaths/min", 12, 20)],
    "sleep_duration": [("min", 300, 540), ("h", 5, 9)],
    "active_energy": [("kcal", 100, 900), ("kJ", 400, 3700)],
}
SOURCES = ("fitbit", "apple_health", "garmin", "withings", "dexcom")
BAD_KINDS = (
    "malformed_json", "missing_field", "invalid_type", "unknown_metric", "unknown_unit",
    "out_of_range", "naive_timestamp", "future_timestamp", "nan_value",
)


@dataclass(frozen=True, slots=True)
class SyntheticMessage:
    key: bytes
    value: bytes
    expected: tuple[str | None, ...]  # per reading: None = stored, else reject reason
    event_ids: tuple[str, ...]


class SyntheticReadings:
    """Deterministic for a given seed; ``now`` anchors every timestamp."""

    def __init__(self, now: datetime, *, seed: int | None = 7, users: int = 50) -> None:
        self.now = now
        self.rng = random.Random(seed)
        self.users = [f"user-{self.rng.randrange(10**9):09d}" for _ in range(users)]

    def reading(self) -> dict:
        rng = self.rng
        metric = rng.choice(list(NORMAL_READINGS))
        unit, low, high = rng.choice(NORMAL_READINGS[metric])
        measured = self.now - timedelta(seconds=rng.uniform(1, 3600))
        stamp: str | int = (
            measured.isoformat().replace("+00:00", "Z") if rng.random() < 0.7
            else int(measured.timestamp() * 1000)
        )
        return {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "metric": metric,
            "value": round(rng.uniform(low, high), 2),
            "unit": unit,
            "timestamp": stamp,
        }

    def spoil(self, reading: dict, kind: str) -> dict | bytes:
        """A bad variant of ``reading`` that must be rejected with reason ``kind``."""
        bad = dict(reading)
        if kind == "malformed_json":
            return b'{"event_id": "' + bad["event_id"].encode() + b'", "metric": '
        if kind == "missing_field":
            del bad["unit"]
        elif kind == "invalid_type":
            bad["value"] = "seventy"
        elif kind == "unknown_metric":
            bad["metric"] = "mood_score"
        elif kind == "unknown_unit":
            bad["unit"] = "furlongs"
        elif kind == "out_of_range":
            bad.update(metric="heart_rate", unit="bpm", value=900)
        elif kind == "naive_timestamp":
            bad["timestamp"] = self.now.replace(tzinfo=None).isoformat()
        elif kind == "future_timestamp":
            bad["timestamp"] = (self.now + timedelta(hours=2)).isoformat()
        elif kind == "nan_value":
            return orjson.dumps(bad).replace(
                b'"value":' + orjson.dumps(bad["value"]), b'"value":NaN')
        return bad

    def messages(self, count: int, *, bad_ratio: float = 0.0, batch_size: int = 1
                 ) -> Iterator[SyntheticMessage]:
        """``count`` readings, as single messages (batch_size 1) or envelopes."""
        produced = 0
        while produced < count:
            size = min(batch_size, count - produced)
            yield self._message(size, bad_ratio)
            produced += size

    def _message(self, size: int, bad_ratio: float) -> SyntheticMessage:
        rng = self.rng
        user = rng.choice(self.users)
        header = {"user_id": user, "device_id": f"dev-{rng.randrange(1000)}", "source": rng.choice(SOURCES)}
        members: list[dict | bytes] = []
        expected: list[str | None] = []
        event_ids: list[str] = []
        for _ in range(size):
            reading = self.reading()
            event_ids.append(reading["event_id"])
            if rng.random() < bad_ratio:
                kind = rng.choice(BAD_KINDS if size == 1 else BAD_KINDS[1:])
                members.append(self.spoil(reading, kind))
                expected.append("invalid_type" if kind == "nan_value" else kind)
            else:
                members.append(reading)
                expected.append(None)
        if size == 1:
            member = members[0]
            value = member if isinstance(member, bytes) else orjson.dumps({**header, **member})
            if isinstance(member, bytes) and expected[0] == "invalid_type":  # NaN: add header
                value = member.replace(b"{", b"{" + orjson.dumps(header)[1:-1] + b",", 1)
        else:
            value = _envelope(header, members, rng)
        return SyntheticMessage(user.encode(), value, tuple(expected), tuple(event_ids))


def _envelope(header: dict, members: list[dict | bytes], rng: random.Random) -> bytes:
    parts = [m if isinstance(m, bytes) else orjson.dumps(m) for m in members]
    body = orjson.dumps({**header, "batch_id": str(uuid.UUID(int=rng.getrandbits(128)))})
    return body[:-1] + b',"readings":[' + b",".join(parts) + b"]}"
