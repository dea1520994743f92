"""Which interval a batch run covers. Pure.

Batch targets are rebuilt by whole UTC days (``system_performance`` by the hours of those
days), so every interval is widened to day boundaries: ``[floor(start), ceil(end))``.

- An explicit interval is used as given (then widened).
- A scheduled job covers its last schedule period before ``as_of``: from the cron tick
  before the latest tick at or before ``as_of``, to ``as_of`` itself (so a daily 02:00 job
  rebuilds yesterday and today so far).
- A job without a schedule covers yesterday and today.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from croniter import croniter

from batch.config import ETLJobConfig

_DAY = timedelta(days=1)


def floor_day(ts: datetime) -> datetime:
    return datetime.combine(ts.astimezone(UTC).date(), time(), UTC)


def ceil_day(ts: datetime) -> datetime:
    floor = floor_day(ts)
    return floor if floor == ts else floor + _DAY


def resolve_interval(job: ETLJobConfig, interval: tuple[datetime, datetime] | None, as_of: datetime
                     ) -> tuple[datetime, datetime]:
    """The day-aligned ``[start, end)`` a run of ``job`` covers (aware datetimes, UTC)."""
    if interval is not None:
        start, end = interval
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("interval bounds must be timezone-aware")
        if end <= start:
            raise ValueError("interval end must be after its start")
    elif job.schedule is not None:
        cron = croniter(job.schedule, as_of.astimezone(UTC) + timedelta(microseconds=1))
        cron.get_prev(datetime)  # the latest tick at or before as_of
        start, end = cron.get_prev(datetime), as_of
    else:
        start, end = floor_day(as_of) - _DAY, as_of
    return floor_day(start), ceil_day(end)
