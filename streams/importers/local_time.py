"""Naive local wall-clock times (Fitbit) turned into instants, with the DST traps handled.

Pure. The rules, chosen deliberately and documented in docs/how-to/importing-fit-fitbit.md:

- A naive time needs a zone (``--zone``); without one the file is refused, never read as UTC.
- A time that does not exist (inside a spring-forward gap, e.g. 02:30 on the night clocks
  jump from 02:00 to 03:00) cannot be a real reading: :meth:`LocalClock.instant` returns
  ``None`` and the reader counts it skipped (``nonexistent_local_time``).
- A time that exists twice (the repeated hour of a fall-back night) takes its first
  occurrence (``fold=0``) unless the file's own order says otherwise: once the wall clock
  of a time series goes *backwards* inside the ambiguous hour, later ambiguous times of
  that series take the second occurrence (``fold=1``) until the ambiguous hour is left.
  A series written in recording order (01:00 … 01:59, 01:00 … 01:59) therefore maps to
  strictly increasing instants; one sorted by wall clock maps the second pass onto the
  first, and readings at the very same second then share an event id (stored once).
- A local day runs from its first instant to the next day's first instant (23 or 25 hours
  on a DST change); a midnight inside a gap starts at the transition.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["LocalClock", "day_bounds"]


def _exists(naive: datetime, zone: ZoneInfo) -> bool:
    aware = naive.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive


def _ambiguous(naive: datetime, zone: ZoneInfo) -> bool:
    # Only meaningful for a time that exists: in a gap the two folds differ as well.
    return naive.replace(tzinfo=zone, fold=0).utcoffset() != naive.replace(tzinfo=zone, fold=1).utcoffset()


class LocalClock:
    """Resolves the naive times of ONE file, in file order, in ``zone`` (rules above)."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._last: datetime | None = None
        self._second_pass = False

    def instant(self, naive: datetime) -> datetime | None:
        """The aware instant of ``naive`` (in ``zone``), or ``None`` if it does not exist."""
        if naive.tzinfo is not None:
            raise ValueError("LocalClock takes naive wall-clock times only")
        zone = self.zone
        if not _exists(naive, zone):
            return None
        fold = 0
        if _ambiguous(naive, zone):
            if self._last is not None and naive < self._last:
                self._second_pass = True
            fold = 1 if self._second_pass else 0
        else:
            self._second_pass = False
        self._last = naive
        return naive.replace(tzinfo=zone, fold=fold)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The first instant of local ``day`` in ``zone`` and that of the next day (aware, in ``zone``).

    Subtract them in UTC: Python subtracts two datetimes of one zone as wall-clock times.
    """
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    # A nonexistent midnight (a gap at 00:00) with fold=0 reads the offset before the jump,
    # which lands exactly on the transition: the day's first real instant.
    return start.astimezone(UTC).astimezone(zone), end.astimezone(UTC).astimezone(zone)
