"""Garmin FIT ``monitoring`` arithmetic, as pure functions over decoded values.

Two traps live here (facts in docs/how-to/importing-fit-fitbit.md):

- ``timestamp_16`` is the low 16 bits of a FIT timestamp (seconds since the FIT epoch,
  1989-12-31T00:00:00Z). It is expanded against the latest *full* FIT timestamp of the
  file: ``full = last + ((t16 - (last & 0xFFFF)) & 0xFFFF)``. Masking Unix seconds instead
  is wrong (the two epochs differ by 631 065 600 s, which is not a multiple of 65 536).
- ``cycles`` is a running total per activity type since the device's local midnight, not a
  count. For walking and running it counts steps one for one (the ``steps`` subfield, scale
  1); a decoder that resolves subfields before expanding the compact message's activity
  type leaves ``cycles`` at the raw value / 2, so callers pass the RAW counter.

:func:`step_increments` turns the running totals into increments: per activity type and
local day, ``increment = total - previous total``, assigned to the interval
``(previous sample, this sample]``; the first sample of a local day counts in full, from the
day's first instant; a total lower than the previous one is a reset and counts in full
from the previous sample. A sample exactly at local midnight closes the day before it.

A file that starts in the middle of a local day (``covered_from``, the file's start, after
that day's first instant) did not see the day's earlier samples: another file holds them.
There the first sample of each activity type is only a baseline, not counted, so that two
files of one day never count the morning twice (the steps between the two files' samples
are lost instead; the caller counts the baselines).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from streams.importers.local_time import day_bounds

__all__ = [
    "FIT_EPOCH",
    "LocalDays",
    "StepIncrement",
    "expand_timestamp_16",
    "fit_instant",
    "step_increments",
]

#: The FIT epoch: FIT timestamps count seconds from here (Unix 631 065 600).
FIT_EPOCH = datetime(1989, 12, 31, tzinfo=UTC)
#: FIT timestamps below this are seconds since the device powered on, not instants.
MIN_ABSOLUTE_FIT_TIME = 0x10000000
_JUST_BEFORE = timedelta(microseconds=1)


def expand_timestamp_16(last_full: int, t16: int) -> int:
    """The full FIT timestamp (FIT-epoch seconds) of ``t16`` after the full one ``last_full``."""
    if not 0 <= t16 <= 0xFFFF:
        raise ValueError("timestamp_16 holds 16 bits")
    return last_full + ((t16 - (last_full & 0xFFFF)) & 0xFFFF)


def fit_instant(fit_seconds: int) -> datetime:
    """FIT-epoch seconds as an aware UTC datetime."""
    return FIT_EPOCH + timedelta(seconds=fit_seconds)


@dataclass(frozen=True)
class LocalDays:
    """The device's local days: a fixed UTC offset (from the file) or a zone (``--zone``)."""

    offset: timedelta | None = None
    zone: ZoneInfo | None = None

    def __post_init__(self) -> None:
        if (self.offset is None) == (self.zone is None):
            raise ValueError("LocalDays takes exactly one of offset and zone")

    def day_of(self, instant: datetime) -> date:
        """The local day a sample at ``instant`` closes (``(prev, instant]`` semantics)."""
        at = instant - _JUST_BEFORE
        if self.offset is not None:
            return (at.astimezone(UTC) + self.offset).date()
        return at.astimezone(self.zone).date()

    def start_of(self, day: date) -> datetime:
        """The first instant of local ``day`` (aware UTC)."""
        if self.offset is not None:
            return datetime(day.year, day.month, day.day, tzinfo=UTC) - self.offset
        assert self.zone is not None
        return day_bounds(day, self.zone)[0].astimezone(UTC)


@dataclass(frozen=True)
class StepIncrement:
    """Steps taken in ``(start, end]`` while in ``activity_type`` (a FIT activity_type number)."""

    start: datetime
    end: datetime
    steps: int
    activity_type: int


def step_increments(
    samples: Iterable[tuple[datetime, int, int]], days: LocalDays, *,
    covered_from: datetime | None = None, baselines: list[datetime] | None = None,
) -> Iterator[StepIncrement]:
    """Increments of ``(instant, activity_type, running_total)`` samples, in file order.

    Rules in the module docstring. Increments of zero are not yielded (nothing happened).
    ``covered_from`` is the file's start (``None``: it covers its first day from midnight);
    the instants of samples taken only as a baseline are appended to ``baselines``.
    """
    last: dict[int, tuple[date, datetime, int]] = {}
    for instant, activity, total in samples:
        day = days.day_of(instant)
        prev = last.get(activity)
        if prev is None or prev[0] != day:
            start, steps = days.start_of(day), total
            if covered_from is not None and start < covered_from:
                steps = 0
                if baselines is not None:
                    baselines.append(instant)
        elif total < prev[2]:
            start, steps = prev[1], total
        else:
            start, steps = prev[1], total - prev[2]
        last[activity] = (day, instant, total)
        if steps > 0:
            yield StepIncrement(start, instant, steps, activity)
