"""The contract every format reader keeps. Pure: a reader takes a byte stream, yields items.

A reader is ``read(stream: BinaryIO, name: str, ctx: ImportContext) -> Iterator[Item]``:

- an ``Item`` is either a wire message (a ``dict`` in one of our documented input forms: a
  single reading or a batch envelope, with ``user_id`` set to ``ctx.user_id``) or a
  :class:`Skipped` record that counts something deliberately not imported, by ``kind``
  (``"workout_route"``, ``"ambient_temperature"``, ``"dexcom_alert"`` ...);
- it streams: it never reads the whole file into memory;
- it never yields identifying data beyond the user id the caller chose (names, dates of
  birth, vendor account ids, locations stay in the file);
- a file it cannot read raises :class:`ImportFileError` with a one-line reason that names
  where it broke and carries no value from the file.

Readers do not set ``event_id``: the worker derives one from (user, device, source, metric,
instant), which is what makes importing the same file twice store nothing new.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol
from zoneinfo import ZoneInfo

from streams.errors import ImportFileError

__all__ = ["ImportContext", "ImportFileError", "Item", "Reader", "Skipped"]


@dataclass(frozen=True)
class ImportContext:
    """What the caller says about the files: whose they are and how to read their clocks."""

    user_id: str
    #: The zone of naive local times (Fitbit, Dexcom). None: such a file is refused, never
    #: read as UTC.
    zone: ZoneInfo | None = None
    #: Overrides the source a reader would name (``sourceName``, the device's product name).
    source: str | None = None
    #: Publish what was decoded before damage (FIT) instead of refusing the whole file.
    salvage: bool = False


@dataclass(frozen=True)
class Skipped:
    """Something in the file that is deliberately not imported, counted by ``kind``."""

    kind: str
    count: int = 1


Item = dict[str, Any] | Skipped


class Reader(Protocol):
    def __call__(self, stream: BinaryIO, name: str, ctx: ImportContext) -> Iterator[Item]: ...
