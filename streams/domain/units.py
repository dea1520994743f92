"""Conversion of a reading's value to its metric's canonical UCUM unit."""

from __future__ import annotations

from streams.domain.catalogue import Conversion, MetricRule, resolve_unit


def convert(conversion: Conversion, value: float) -> float:
    """Apply ``conversion`` to ``value``: ``(value + offset) * factor / divisor``, as a float.

    May return ``inf`` for a huge finite input; callers range-check the result.
    """
    return (value + conversion.offset) * conversion.factor / conversion.divisor


def to_canonical(rule: MetricRule, value: float, unit: str) -> float:
    """``value`` expressed in ``unit``, converted to ``rule.canonical_unit``.

    Raises ``Rejected(UNKNOWN_UNIT)`` if ``unit`` is not accepted for the metric (see
    :func:`~streams.domain.catalogue.resolve_unit`). Does not range-check.
    """
    conv = resolve_unit(rule, unit)
    return (value + conv.offset) * conv.factor / conv.divisor
