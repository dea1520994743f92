"""Batch: ETL jobs, replays of topic ranges, lineage, and the Airflow glue.

The public async API (what the web layer calls) is :mod:`batch.api`. The specification's
Python API (``DataPipelineManager``, ``BatchDataProcessor``, ``DataWarehouseManager``,
``ETLJobConfig``, ``PipelineType``, see :mod:`batch.facade`) is imported on first use.
"""

from typing import Any

_FACADES = frozenset({"DataPipelineManager", "BatchDataProcessor", "DataWarehouseManager"})
_CONFIG = frozenset({"ETLJobConfig", "PipelineType"})
__all__ = sorted(_FACADES | _CONFIG)


def __getattr__(name: str) -> Any:
    if name in _FACADES:
        import batch.facade

        return getattr(batch.facade, name)
    if name in _CONFIG:
        import batch.config

        return getattr(batch.config, name)
    raise AttributeError(f"module 'batch' has no attribute {name!r}")
