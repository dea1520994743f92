"""Readings -> batch envelopes, and the per-file summary. Pure.

:class:`Packer` puts consecutive readings of one (user, device, source) into one envelope of
our wire form, closing it at ``max_readings`` readings or before its JSON would pass
``max_bytes`` (the worker dead-letters a larger message as ``oversized``). The envelope's
``batch_id`` is derived from its content, so a dry run prints the same messages twice.
Event ids are left to the worker (derived from user, device, source, metric and instant).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

#: Distinct skip kinds kept in a summary; further kinds are counted as ``other``.
MAX_SKIP_KINDS = 64


@dataclass(frozen=True)
class Message:
    """One Kafka message: ``key`` (the user id), ``value`` (JSON bytes), ``readings`` in it."""

    key: bytes
    value: bytes
    readings: int


class Packer:
    def __init__(self, max_readings: int, max_bytes: int) -> None:
        self.max_readings, self.max_bytes = max_readings, max_bytes
        self._group: tuple[Any, ...] | None = None
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, reading: dict[str, Any]) -> Message | None:
        """Add one single-reading dict; returns the envelope it closed, if any."""
        member = dict(reading)
        group = (member.pop("user_id", None), member.pop("device_id", None), member.pop("source", None))
        part = orjson.dumps(member)
        done = None
        if self._parts and (group != self._group or len(self._parts) >= self.max_readings
                            or self._size + len(part) + 1 > self.max_bytes - 512):
            done = self.flush()
        self._group = group
        self._parts.append(part)
        self._size += len(part) + 1
        return done

    def flush(self) -> Message | None:
        """The open envelope, if any (call once at the end of each file)."""
        if not self._parts or self._group is None:
            return None
        user_id, device_id, source = self._group
        body = b"[" + b",".join(self._parts) + b"]"
        batch_id = "imp-" + hashlib.sha256(body).hexdigest()[:32]
        head = orjson.dumps({"batch_id": batch_id, "user_id": user_id, "device_id": device_id,
                             "source": source})
        value = head[:-1] + b',"readings":' + body + b"}"
        message = Message(str(user_id).encode(), value, len(self._parts))
        self._parts, self._size, self._group = [], 0, None
        return message


@dataclass
class FileSummary:
    """What one file gave: the line on stderr (or one JSON object with ``--json``)."""

    file: str
    format: str | None = None
    messages: int = 0
    readings: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def skip(self, kind: str, count: int) -> None:
        if kind not in self.skipped and len(self.skipped) >= MAX_SKIP_KINDS:
            kind = "other"
        self.skipped[kind] += count

    def finish(self, error: str | None = None) -> FileSummary:
        self.error = error
        self.seconds = round(time.monotonic() - self.started, 3)
        return self

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, "messages": self.messages,
                "readings": self.readings, "skipped": dict(sorted(self.skipped.items())),
                "seconds": self.seconds, "error": self.error}

    def line(self) -> str:
        skipped = ", ".join(f"{k} {n}" for k, n in sorted(self.skipped.items())) or "nothing"
        text = (f"{self.file}: {self.format or 'unknown format'}, {self.messages} messages, "
                f"{self.readings} readings, skipped: {skipped}, {self.seconds:.1f} s")
        return f"{text}; ERROR: {self.error}" if self.error else text
