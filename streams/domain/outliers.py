"""What to do with a possible but implausible value (an outlier)."""

from __future__ import annotations

from enum import StrEnum

from streams.domain.catalogue import MetricRule
from streams.errors import Rejected, RejectReason
from streams.records import FLAG_CLIPPED, FLAG_OUTLIER

_NO_FLAGS: tuple[str, ...] = ()
_OUTLIER: tuple[str, ...] = (FLAG_OUTLIER,)
_CLIPPED: tuple[str, ...] = (FLAG_OUTLIER, FLAG_CLIPPED)


class OutlierStrategy(StrEnum):
    """Per-metric outlier policy; the values are what configuration uses."""

    FLAG = "flag"  # keep the value, flag "outlier"
    CLIP = "clip"  # replace the value by the bound it crossed, flag "outlier" and "clipped"
    DROP = "drop"  # reject the reading with OUTLIER_DROPPED


def apply_outlier_policy(
    rule: MetricRule, value: float, strategy: OutlierStrategy
) -> tuple[float, tuple[str, ...]]:
    """The value to store and the quality flags it earns under ``strategy``.

    ``value`` is canonical and already known to be possible. A value equal to an outlier
    bound is not an outlier. Raises ``Rejected(OUTLIER_DROPPED)`` for ``DROP``.
    """
    bound = rule.outlier_bound(value)
    if bound is None:
        return value, _NO_FLAGS
    if strategy is OutlierStrategy.FLAG:
        return value, _OUTLIER
    if strategy is OutlierStrategy.CLIP:
        return float(bound), _CLIPPED
    raise Rejected(RejectReason.OUTLIER_DROPPED, f"{rule.name} value is outside the outlier bounds")
