"""Pure, I/O-free domain logic: validate, convert, judge and pseudonymise readings.

Nothing here imports faust, aiokafka, asyncpg or aiohttp, reads the environment or the
clock. The entry point is :func:`process_message`.
"""

from streams.domain.catalogue import (
    DEFAULT_CATALOGUE,
    Conversion,
    MetricRule,
    build_catalogue,
    resolve_unit,
)
from streams.domain.outliers import OutlierStrategy, apply_outlier_policy
from streams.domain.pseudonym import user_key
from streams.domain.timestamps import parse_timestamp
from streams.domain.units import to_canonical
from streams.domain.validate import TRANSFORMATION_VERSION, Rules, normalise_reading, process_message

__all__ = [
    "DEFAULT_CATALOGUE",
    "TRANSFORMATION_VERSION",
    "Conversion",
    "MetricRule",
    "OutlierStrategy",
    "Rules",
    "apply_outlier_policy",
    "build_catalogue",
    "normalise_reading",
    "parse_timestamp",
    "process_message",
    "resolve_unit",
    "to_canonical",
    "user_key",
]
