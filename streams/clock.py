"""The clock every service is given: a callable returning an aware UTC datetime.

Passed in, never read from a global, so that tests can drive time (arroyo's
``utils/clock.py``, bytewax's ``TimeTestingGetter``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)
