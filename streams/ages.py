"""How long ago each partition last committed, with both ends of the age on one clock.

An age was the wall clock of one moment minus the wall clock of another taken by a
different caller: ``/pipeline/status`` read "now" before awaiting Kafka and PostgreSQL, and
a commit landing during those awaits was newer than "now", so the console showed
"last commit -0.3 s ago". Here the commit instant and the reading instant both come from
the same monotonic clock, and the reading instant is taken when the age is asked for, after
the commit was recorded. An age is therefore never negative, and a wall clock stepped by NTP
does not change it. (The wall-clock time of the commit is still kept for display, elsewhere.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator


class CommitAges:
    """``mark(key)`` when a partition commits; ``age_s(key)`` is the time since, in seconds.

    ``monotonic`` must never go backwards (``time.monotonic`` by default; tests pass their
    own). Not thread-safe: call from the event loop.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._at: dict[Hashable, float] = {}

    def mark(self, key: Hashable) -> None:
        self._at[key] = self._monotonic()

    def forget(self, key: Hashable) -> None:
        self._at.pop(key, None)

    def age_s(self, key: Hashable) -> float | None:
        """Seconds since the last ``mark(key)``, read now; ``None`` if never marked."""
        at = self._at.get(key)
        return None if at is None else self._monotonic() - at

    def __iter__(self) -> Iterator[Hashable]:
        return iter(sorted(self._at))  # type: ignore[type-var]
