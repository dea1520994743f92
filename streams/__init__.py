"""HealthMate Pipeline streaming worker.

The specification's Python API (``StreamingDataProcessor``, ``DataValidator``,
``DataTransformer``, see :mod:`streams.facade`) is imported on first use, so that
``import streams`` stays cheap for the worker.
"""

from typing import Any

_FACADES = frozenset({"StreamingDataProcessor", "DataValidator", "DataTransformer"})
__all__ = sorted(_FACADES)


def __getattr__(name: str) -> Any:
    if name in _FACADES:
        from streams import facade

        return getattr(facade, name)
    raise AttributeError(f"module 'streams' has no attribute {name!r}")
