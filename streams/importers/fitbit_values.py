"""Pure helpers of the Fitbit Takeout reader: its time formats and the weight unit.

Fitbit writes local wall-clock times without an offset in two spellings: ``MM/DD/YY
HH:MM:SS`` (heart rate, steps, resting heart rate, weight's ``date`` + ``time``) and
``YYYY-MM-DDTHH:MM:SS.000`` (sleep, SpO2 CSVs). They become instants only through
:class:`~streams.importers.local_time.LocalClock`.

Weight has no unit field. Fitbit writes it in the account's unit (pounds or kilograms) and
writes the BMI it computed beside it, from the weight in kg and the profile's height. So the
unit is read from the two numbers: the height implied by ``sqrt(kg / bmi)`` is that of an
adult (:data:`ADULT_HEIGHT_M`) under exactly one of the two readings. Both or neither (no
BMI, a child, heights at the very edges) is ambiguous: the reading is not guessed.
"""

from __future__ import annotations

import math
from datetime import date, datetime

__all__ = ["ADULT_HEIGHT_M", "LB_IN_KG", "parse_local", "parse_us_date", "weight_unit"]

LB_IN_KG = 0.45359237
#: Heights (m) taken as an adult's when telling pounds from kilograms. Under the other unit a
#: height is 0.6735x (lb read as kg: 1.485x), so only 2.153-2.20 m (kg) overlaps.
ADULT_HEIGHT_M = (1.45, 2.20)


def parse_us_date(text: str) -> date:
    """``MM/DD/YY`` (Fitbit's date; years 2000-2099) as a date; ``ValueError`` otherwise."""
    if len(text) != 8 or text[2] != "/" or text[5] != "/":
        raise ValueError("not an MM/DD/YY date")
    return date(2000 + int(text[6:8]), int(text[0:2]), int(text[3:5]))


def parse_local(text: str) -> datetime:
    """A Fitbit time as a datetime: ``MM/DD/YY HH:MM:SS`` or ISO-8601 (naive or not).

    Raises ``ValueError`` on anything else. The result is naive when the text had no offset.
    """
    if not isinstance(text, str):
        raise ValueError("a time must be text")
    if len(text) == 17 and text[8] == " " and text[11] == ":" and text[14] == ":":
        day = parse_us_date(text[:8])
        # Naive on purpose: a wall-clock time, resolved in the user's zone by LocalClock.
        return datetime(day.year, day.month, day.day,  # noqa: DTZ001
                        int(text[9:11]), int(text[12:14]), int(text[15:17]))
    return datetime.fromisoformat(text)


def weight_unit(weight: float, bmi: float | None) -> str | None:
    """``"kg"`` or ``"lb"`` for a Fitbit weight, from its BMI; ``None`` when ambiguous."""
    if bmi is None or not (bmi > 0) or not (weight > 0) or not math.isfinite(weight * bmi):
        return None
    low, high = ADULT_HEIGHT_M
    as_kg = low <= math.sqrt(weight / bmi) <= high
    as_lb = low <= math.sqrt(weight * LB_IN_KG / bmi) <= high
    if as_kg == as_lb:
        return None
    return "kg" if as_kg else "lb"
