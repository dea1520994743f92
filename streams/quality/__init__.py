"""Data quality I/O: the in-stream windows (Faust topic, table, agent, timer), their
warehouse snapshots, and the on-demand analysis. The rules live in
:mod:`streams.domain.quality`; this package only moves counts and reports around.
"""

from __future__ import annotations

from datetime import timedelta

from streams.config import Settings
from streams.domain.catalogue import build_catalogue
from streams.domain.quality import DIMENSIONS, QualityConfig


def quality_config(settings: Settings) -> QualityConfig:
    """The quality rules the settings describe (unlisted dimensions weigh 1)."""
    return QualityConfig(
        weights={**dict.fromkeys(DIMENSIONS, 1.0), **settings.quality_weights},
        timeliness_default=timedelta(seconds=settings.quality_timeliness_s),
        timeliness_by_source={s: timedelta(seconds=v)
                              for s, v in settings.quality_timeliness_by_source_s.items()},
        catalogue=build_catalogue(settings.catalogue_overrides),
        known_sources=frozenset(s.strip().lower() for s in settings.known_sources),
    )
