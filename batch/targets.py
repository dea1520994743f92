"""Everything the runner knows about each built-in target, SQL included, in one place.

Only names from :data:`batch.config.TARGET_SOURCES` reach this module, and the schema
name is quoted: no identifier is ever built from a request. Values are parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from streams.sink.migrations import quote_ident

#: Columns of ``health_readings`` that the batch jobs read (quality rules included).
READING_FIELDS: Final = ("event_id", "user_key", "device_id", "source", "metric", "value", "unit",
                         "measured_at", "ingested_at", "produced_at", "stored_at", "quality_flags",
                         "measured_until", "statistic")
#: How far back the active-days streak looks.
STREAK_LOOKBACK_DAYS: Final = 400


@dataclass(frozen=True, slots=True)
class Target:
    """A built-in target: its columns (load order), the time column that bounds an interval,
    and, for lineage, each column's type and where it comes from."""

    name: str
    time_column: str
    schema: tuple[tuple[str, str], ...]
    #: column -> (source table, source fields, OpenLineage type, subtype, description)
    lineage: dict[str, tuple[str, tuple[str, ...], str, str, str]]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.schema)


def _agg(desc: str) -> tuple[str, tuple[str, ...], str, str, str]:
    return ("health_readings", ("value",), "DIRECT", "AGGREGATION", desc)


_IDENT = "DIRECT", "IDENTITY", "copied"
_DAY = ("health_readings", ("measured_at",), "DIRECT", "TRANSFORMATION",
        "calendar day of measured_at in `timezone`")
_ZONE = ("user_profiles", ("timezone",), "INDIRECT", "TRANSFORMATION",
         "the user's profile time zone when the job reads user_profiles, else UTC")
#: Widest UTC offsets of any zone (Pacific/Kiritimati +14, Etc/GMT+12 -12): a local day
#: lies within [UTC midnight - 14 h, next UTC midnight + 12 h).
EARLIEST_OFFSET: Final = timedelta(hours=14)
LATEST_OFFSET: Final = timedelta(hours=12)

TARGETS: Final = {
    "aggregated_health_metrics": Target(
        "aggregated_health_metrics", "day",
        (("day", "date"), ("user_key", "text"), ("metric", "text"), ("unit", "text"), ("count", "bigint"),
         ("min", "double precision"), ("max", "double precision"), ("mean", "double precision"),
         ("stddev", "double precision"), ("p50", "double precision"), ("p95", "double precision"),
         ("timezone", "text")),
        {"day": _DAY, "timezone": _ZONE, "user_key": ("health_readings", ("user_key",), *_IDENT),
         "metric": ("health_readings", ("metric",), *_IDENT),
         "unit": ("health_readings", ("unit",), "DIRECT", "IDENTITY", "canonical unit only"),
         "count": _agg("count of readings"), "min": _agg("minimum"), "max": _agg("maximum"),
         "mean": _agg("arithmetic mean"), "stddev": _agg("sample standard deviation"),
         "p50": _agg("median, linear interpolation"), "p95": _agg("95th percentile, linear interpolation")}),
    "user_engagement": Target(
        "user_engagement", "day",
        (("day", "date"), ("user_key", "text"), ("readings", "bigint"), ("metrics_tracked", "integer"),
         ("sources", "text[]"), ("first_reading", "timestamptz"), ("last_reading", "timestamptz"),
         ("active_days_streak", "integer"), ("timezone", "text")),
        {"day": _DAY, "timezone": _ZONE, "user_key": ("health_readings", ("user_key",), *_IDENT),
         "readings": ("health_readings", ("event_id",), "DIRECT", "AGGREGATION", "count of readings"),
         "metrics_tracked": ("health_readings", ("metric",), "DIRECT", "AGGREGATION", "distinct metrics"),
         "sources": ("health_readings", ("source",), "DIRECT", "AGGREGATION", "sorted distinct sources"),
         "first_reading": ("health_readings", ("measured_at",), "DIRECT", "AGGREGATION", "earliest"),
         "last_reading": ("health_readings", ("measured_at",), "DIRECT", "AGGREGATION", "latest"),
         "active_days_streak": ("health_readings", ("measured_at",), "INDIRECT", "WINDOW",
                                "consecutive active days ending on the day")}),
    "system_performance": Target(
        "system_performance", "hour",
        (("hour", "timestamptz"), ("processed", "bigint"), ("stored", "bigint"), ("rejected", "bigint"),
         ("rejected_by_reason", "jsonb"), ("mean_ingest_lag_s", "double precision"),
         ("p95_ingest_lag_s", "double precision"), ("quality_score", "double precision")),
        {"hour": ("health_readings", ("stored_at",), "DIRECT", "TRANSFORMATION", "UTC hour of commit"),
         "processed": ("health_readings", ("event_id",), "DIRECT", "AGGREGATION", "stored + rejected"),
         "stored": ("health_readings", ("event_id",), "DIRECT", "AGGREGATION", "count of commits"),
         "rejected": ("dead_letters", ("reason",), "DIRECT", "AGGREGATION", "count of dead letters"),
         "rejected_by_reason": ("dead_letters", ("reason",), "DIRECT", "AGGREGATION", "count by reason"),
         "mean_ingest_lag_s": ("health_readings", ("stored_at", "produced_at", "ingested_at"), "DIRECT",
                               "AGGREGATION", "mean of stored_at - coalesce(produced_at, ingested_at)"),
         "p95_ingest_lag_s": ("health_readings", ("stored_at", "produced_at", "ingested_at"), "DIRECT",
                              "AGGREGATION", "95th percentile of the ingest lag"),
         "quality_score": ("health_readings", ("value", "unit", "measured_at", "ingested_at"), "DIRECT",
                           "AGGREGATION", "overall data-quality score of the hour")}),
}

#: Schemas of the source tables, for lineage (the columns the jobs read).
SOURCE_SCHEMAS: Final = {
    "health_readings": (("event_id", "text"), ("user_key", "text"), ("device_id", "text"), ("source", "text"),
                        ("metric", "text"), ("value", "double precision"), ("unit", "text"),
                        ("measured_at", "timestamptz"), ("ingested_at", "timestamptz"),
                        ("produced_at", "timestamptz"), ("stored_at", "timestamptz"),
                        ("quality_flags", "text[]"), ("measured_until", "timestamptz"),
                        ("statistic", "text")),
    "user_profiles": (("user_key", "text"), ("timezone", "text"), ("birth_year", "smallint"),
                      ("age_over_89", "boolean"), ("sex", "text"), ("updated_at", "timestamptz")),
    "dead_letters": (("topic", "text"), ("partition", "integer"), ("offset", "bigint"), ("reason", "text"),
                     ("metric", "text"), ("source", "text"), ("created_at", "timestamptz")),
}


class Sql:
    """The batch module's SQL for one warehouse schema."""

    def __init__(self, schema: str) -> None:
        self.s = quote_ident(schema)
        fields = ", ".join(READING_FIELDS)
        self.day_readings = (
            f"SELECT {fields} FROM {self.s}.health_readings WHERE measured_at >= $1 AND measured_at < $2"
            " ORDER BY user_key, metric, measured_at, event_id")
        self.committed_readings = (
            f"SELECT {fields} FROM {self.s}.health_readings WHERE stored_at >= $1 AND stored_at < $2")
        local = [f"r.{f}" for f in READING_FIELDS]
        profiles = f" LEFT JOIN {self.s}.user_profiles p ON p.user_key = r.user_key"
        self.local_day_readings = (
            f"SELECT {', '.join(local)}, coalesce(p.timezone, 'UTC') AS timezone"
            f" FROM {self.s}.health_readings r{profiles} WHERE r.measured_at >= $1 AND r.measured_at < $2"
            " ORDER BY r.user_key, r.metric, r.measured_at, r.event_id")
        self.local_active_days = (
            "SELECT r.user_key, array_agg(DISTINCT"
            " (r.measured_at AT TIME ZONE coalesce(p.timezone, 'UTC'))::date) AS days"
            f" FROM {self.s}.health_readings r{profiles} WHERE r.user_key = ANY($1::text[])"
            " AND r.measured_at >= $2 AND r.measured_at < $3 GROUP BY r.user_key")
        self.active_days = (
            "SELECT user_key, array_agg(DISTINCT (measured_at AT TIME ZONE 'UTC')::date) AS days"
            f" FROM {self.s}.health_readings WHERE user_key = ANY($1::text[])"
            " AND measured_at >= $2 AND measured_at < $3 GROUP BY user_key")
        self.rejections = (
            "SELECT date_trunc('hour', created_at, 'UTC') AS hour, reason, metric, count(*) AS n"
            f" FROM {self.s}.dead_letters WHERE created_at >= $1 AND created_at < $2 GROUP BY 1, 2, 3")

    def delete_range(self, target: Target) -> str:
        column = quote_ident(target.time_column)
        return f"DELETE FROM {self.s}.{quote_ident(target.name)} WHERE {column} >= $1 AND {column} < $2"
