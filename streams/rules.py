"""The domain rules a :class:`~streams.config.Settings` describes; shared by the worker,
replays and every other path that judges readings, so that they judge alike."""

from __future__ import annotations

from datetime import timedelta

from streams.config import Settings
from streams.domain.catalogue import build_catalogue
from streams.domain.outliers import OutlierStrategy
from streams.domain.validate import TRANSFORMATION_VERSION, Rules


def rules_from_settings(settings: Settings) -> Rules:
    """The domain rules the settings describe."""
    return Rules(
        catalogue=build_catalogue(settings.catalogue_overrides),
        pseudonym_key=settings.pseudonym_key_bytes,
        future_skew=timedelta(seconds=settings.future_skew_seconds),
        late_after=timedelta(hours=settings.late_after_hours),
        outlier_strategies={m: OutlierStrategy(s) for m, s in settings.outlier_strategy.items()},
        max_message_bytes=settings.max_message_bytes,
        max_batch_readings=settings.max_batch_readings,
        transformation_version=TRANSFORMATION_VERSION,
        naive_timestamps=settings.naive_timestamps,
    )
