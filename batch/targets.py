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
#: How far back the active-days streak looks; a streak counts at most the day and these.
STREAK_LOOKBACK_DAYS: Final = 400
STREAK_CAP: Final = STREAK_LOOKBACK_DAYS + 1


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

_GLUCOSE = ("health_readings", ("value",), "DIRECT", "AGGREGATION")
_CGM_COMMON = (
    ("timezone", "text", _ZONE), ("readings", "integer", (*_GLUCOSE, "count of raw glucose samples")),
    ("interval_s", "double precision", ("health_readings", ("measured_at",), "INDIRECT", "AGGREGATION",
                                        "sensor interval: median gap between readings, whole minutes")),
    ("expected", "double precision", ("health_readings", ("measured_at",), "INDIRECT", "AGGREGATION",
                                      "length of the local day(s) / interval_s")),
    ("active_pct", "double precision", (*_GLUCOSE, "100 * readings / expected, at most 100")),
    ("mean_mg_dl", "double precision", (*_GLUCOSE, "mean glucose")),
    ("sd_mg_dl", "double precision", (*_GLUCOSE, "sample standard deviation")),
    ("cv_pct", "double precision", (*_GLUCOSE, "100 * sd / mean")),
    ("gmi_pct", "double precision", (*_GLUCOSE, "3.31 + 0.02392 * mean mg/dL")),
    *((f"{band}_pct", "double precision", (*_GLUCOSE, f"share of readings {desc}")) for band, desc in (
        ("very_low", "< 54 mg/dL or censored low"), ("low", "54-69 mg/dL"), ("in_range", "70-180 mg/dL"),
        ("high", "181-250 mg/dL"), ("very_high", "> 250 mg/dL or censored high"))),
    ("censored_below", "integer", ("health_readings", ("metadata",), "DIRECT", "AGGREGATION",
                                   "readings flagged censored below the sensor's range")),
    ("censored_above", "integer", ("health_readings", ("metadata",), "DIRECT", "AGGREGATION",
                                   "readings flagged censored above the sensor's range")),
    ("sufficient", "boolean", (*_GLUCOSE, "active_pct >= 70")),
)


def _cgm(name: str, extra: tuple[tuple[str, str, tuple[str, tuple[str, ...], str, str, str]], ...]) -> Target:
    columns = (("user_key", "text", ("health_readings", ("user_key",), *_IDENT)),
               ("local_day", "date", _DAY), *extra, *_CGM_COMMON)
    return Target(name, "local_day", tuple((c, t) for c, t, _ in columns), {c: lin for c, _, lin in columns})


_WINDOW = ("health_readings", ("measured_at",), "INDIRECT", "WINDOW", "the 14 local days ending on local_day")
#: The tables each multi-table target writes (the others write the table of their name).
TARGET_TABLES: Final = {"cgm": ("cgm_daily", "cgm_14d")}
#: Tables of the CGM target (:mod:`batch.cgm`), for lineage and reading.
CGM_TARGETS: Final = {
    "cgm_daily": _cgm("cgm_daily", ()),
    "cgm_14d": _cgm("cgm_14d", (("first_day", "date", _WINDOW),
                                ("days_with_data", "integer", _WINDOW))),
}


def tables_of(target: str) -> tuple[Target, ...]:
    """The tables a job target writes."""
    tables = TARGET_TABLES.get(target, (target,))
    return tuple(CGM_TARGETS[t] if t in CGM_TARGETS else TARGETS[t] for t in tables)


#: Schemas of the source tables, for lineage (the columns the jobs read).
SOURCE_SCHEMAS: Final = {
    "health_readings": (("event_id", "text"), ("user_key", "text"), ("device_id", "text"), ("source", "text"),
                        ("metric", "text"), ("value", "double precision"), ("unit", "text"),
                        ("measured_at", "timestamptz"), ("ingested_at", "timestamptz"),
                        ("produced_at", "timestamptz"), ("stored_at", "timestamptz"),
                        ("quality_flags", "text[]"), ("measured_until", "timestamptz"),
                        ("statistic", "text"), ("metadata", "jsonb")),
    "user_profiles": (("user_key", "text"), ("timezone", "text"), ("birth_year", "smallint"),
                      ("age_over_89", "boolean"), ("sex", "text"), ("updated_at", "timestamptz")),
    "dead_letters": (("topic", "text"), ("partition", "integer"), ("offset", "bigint"), ("reason", "text"),
                     ("metric", "text"), ("source", "text"), ("created_at", "timestamptz")),
}


def _zone(s: str, *, local: bool) -> tuple[str, str]:
    """A reading's zone (SQL expression) and the join that supplies it (see :class:`DailySql`)."""
    if not local:
        return "'UTC'", ""
    return ("coalesce(p.timezone, 'UTC')", f" LEFT JOIN (SELECT user_key, timezone FROM {s}.user_profiles"
            " WHERE timezone = ANY($4::text[])) p ON p.user_key = r.user_key")


def day_select(s: str, fields: str, *, local: bool) -> str:
    """``SELECT fields, <zone> AS timezone`` of the readings ``r`` of one day, by the rules and
    with the first parameters of :class:`DailySql`; ends in its ``WHERE``, so more conditions
    may follow with ``AND``."""
    zone, join = _zone(s, local=local)
    return (f"SELECT {fields}, {zone} AS timezone FROM {s}.health_readings r{join}"
            " WHERE r.measured_at >= $1 AND r.measured_at < $2"
            f" AND (r.measured_at AT TIME ZONE {zone})::date = $3")


class DailySql:
    """The SQL of the daily targets for one schema, by UTC days or by local days.

    ``s`` is the schema, quoted. Every statement reads the readings of one day; its first
    parameters are ``$1``/``$2``, which bound ``measured_at`` (the day in UTC, or the widest
    span any zone's day can cover), ``$3``, the day, and for local days ``$4``, the profile
    zones PostgreSQL knows (:attr:`Sql.known_zones`; looked up once, not per statement, as
    ``pg_timezone_names`` is slow). A reading's day is ``(measured_at AT TIME ZONE zone)::date``
    with the zone ``'UTC'``, or for local days the user's profile zone (no profile, or a zone
    not known: ``'UTC'``). Aggregated readings are those in their metric's canonical unit
    with a finite value, and, unless the job includes statistics, raw samples only: the
    statements that need it take ``include_statistics``, metrics and canonical units next.
    """

    def __init__(self, s: str, *, local: bool) -> None:
        n = 4 if local else 3  # the day's parameters; the statement's own come next
        zone, join = _zone(s, local=local)
        day = day_select(s, ", ".join(f"r.{f}" for f in READING_FIELDS), local=local)
        canonical = ("c.metric IS NOT NULL AND d.value IS NOT NULL"
                     " AND d.value NOT IN ('NaN', 'Infinity', '-Infinity')")
        catalogue = f"unnest(${n + 2}::text[], ${n + 3}::text[]) AS c(metric, unit)"
        wanted = f"(${n + 1}::boolean OR d.statistic IS NULL)"
        #: Every reading of the day, for the quality gate (read with a cursor, in chunks).
        self.readings = f"SELECT * FROM ({day}) d ORDER BY user_key, metric, measured_at, event_id"
        #: The day's readings left out of the aggregates for not being in canonical form.
        self.rejected = (f"SELECT count(*) FROM ({day}) d LEFT JOIN {catalogue}"
                         f" ON c.metric = d.metric AND c.unit = d.unit WHERE {wanted} AND NOT ({canonical})")
        metrics = ", ".join(quote_ident(c) for c in TARGETS["aggregated_health_metrics"].columns)
        #: ``percentile_cont`` interpolates linearly; ``stddev_samp`` is NULL for one reading.
        self.metric_aggregates = (
            f"INSERT INTO {s}.aggregated_health_metrics ({metrics})"
            " SELECT $3::date, d.user_key, d.metric, d.unit, count(*), min(d.value), max(d.value),"
            " avg(d.value), stddev_samp(d.value), percentile_cont(0.5) WITHIN GROUP (ORDER BY d.value),"
            " percentile_cont(0.95) WITHIN GROUP (ORDER BY d.value), d.timezone"
            f" FROM ({day}) d JOIN {catalogue} ON c.metric = d.metric AND c.unit = d.unit"
            f" WHERE {wanted} AND {canonical} GROUP BY d.user_key, d.metric, d.unit, d.timezone")
        engagement = ", ".join(quote_ident(c) for c in TARGETS["user_engagement"].columns)
        users = (f"WITH d AS ({day}),"
                 " users AS (SELECT user_key, count(*) AS readings, count(DISTINCT metric) AS metrics,"
                 ' array_agg(DISTINCT source COLLATE "C" ORDER BY source COLLATE "C") AS sources,'
                 " min(measured_at) AS first, max(measured_at) AS last, min(timezone) AS timezone"
                 " FROM d GROUP BY user_key)")
        insert = (f" INSERT INTO {s}.user_engagement ({engagement})"
                  " SELECT $3::date, u.user_key, u.readings, u.metrics, u.sources, u.first, u.last,")
        #: The first day of a run: the streak is the island of consecutive active days (gaps
        #: and islands: a day minus its rank is constant along a run) that ends on ``$3``; the
        #: two parameters after the day's bound the ``measured_at`` of the history it reads.
        self.engagement_first = (
            f"{users}, active AS (SELECT DISTINCT r.user_key,"
            f" (r.measured_at AT TIME ZONE {zone})::date AS day FROM {s}.health_readings r{join}"
            " WHERE r.user_key IN (SELECT user_key FROM users)"
            f" AND r.measured_at >= ${n + 1} AND r.measured_at < ${n + 2}),"
            " islands AS (SELECT user_key, day,"
            " day - (row_number() OVER (PARTITION BY user_key ORDER BY day))::int AS island"
            " FROM active WHERE day <= $3),"
            " streaks AS (SELECT user_key, count(*) AS streak FROM islands GROUP BY user_key, island"
            f" HAVING max(day) = $3){insert} least(coalesce(k.streak, 1), {STREAK_CAP}), u.timezone"
            " FROM users u LEFT JOIN streaks k USING (user_key)")
        #: Every later day: the day before was loaded just before, in the same transaction,
        #: so its streak plus one, or 1 if the user was not active then. No history is read.
        self.engagement_next = (
            f"{users}{insert} least(coalesce(k.active_days_streak, 0) + 1, {STREAK_CAP}), u.timezone"
            f" FROM users u LEFT JOIN {s}.user_engagement k ON k.user_key = u.user_key"
            " AND k.day = $3::date - 1")


class Sql:
    """The batch module's SQL for one warehouse schema."""

    def __init__(self, schema: str) -> None:
        self.s = quote_ident(schema)
        self.known_zones = ("SELECT coalesce(array_agg(DISTINCT timezone), '{}') FROM"
                            f" {self.s}.user_profiles WHERE timezone IN (SELECT name FROM pg_timezone_names)")
        self.utc_days = DailySql(self.s, local=False)
        self.local_days = DailySql(self.s, local=True)
        fields = ", ".join(READING_FIELDS)
        self.committed_readings = (
            f"SELECT {fields} FROM {self.s}.health_readings WHERE stored_at >= $1 AND stored_at < $2")
        lag = "greatest(0, extract(epoch FROM stored_at - coalesce(produced_at, ingested_at)))::float8"
        self.hourly_commits = (
            "SELECT date_trunc('hour', stored_at, 'UTC') AS hour, count(*) AS stored,"
            f" avg({lag}) AS mean_lag, percentile_cont(0.95) WITHIN GROUP (ORDER BY {lag}) AS p95_lag"
            f" FROM {self.s}.health_readings WHERE stored_at >= $1 AND stored_at < $2 GROUP BY 1")
        self.rejections = (
            "SELECT date_trunc('hour', created_at, 'UTC') AS hour, reason, metric, count(*) AS n"
            f" FROM {self.s}.dead_letters WHERE created_at >= $1 AND created_at < $2 GROUP BY 1, 2, 3")

    def delete_range(self, target: Target) -> str:
        column = quote_ident(target.time_column)
        return f"DELETE FROM {self.s}.{quote_ident(target.name)} WHERE {column} >= $1 AND {column} < $2"
