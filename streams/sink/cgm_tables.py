"""The DDL of migration 12: the CGM targets of the batch job target ``cgm``.

Kept out of :mod:`streams.sink.migrations` only for size; it ships as that migration and,
like every migration, is never edited once shipped. ``{s}`` is the quoted schema.
"""

from __future__ import annotations

#: Percentages are of the day's (or window's) readings, 0-100; glucose in mg/dL. See
#: docs/how-to/cgm.md for every definition (batch/cgm.py computes them).
_METRICS = """
    timezone       text             NOT NULL,
    readings       integer          NOT NULL CHECK (readings > 0),
    interval_s     double precision NOT NULL CHECK (interval_s > 0),
    expected       double precision NOT NULL,
    active_pct     double precision NOT NULL CHECK (active_pct BETWEEN 0 AND 100),
    mean_mg_dl     double precision NOT NULL,
    sd_mg_dl       double precision,
    cv_pct         double precision,
    gmi_pct        double precision NOT NULL,
    very_low_pct   double precision NOT NULL,
    low_pct        double precision NOT NULL,
    in_range_pct   double precision NOT NULL,
    high_pct       double precision NOT NULL,
    very_high_pct  double precision NOT NULL,
    censored_below integer          NOT NULL,
    censored_above integer          NOT NULL,
    sufficient     boolean          NOT NULL,
    PRIMARY KEY (user_key, local_day)"""

CGM_TABLES = f"""
-- One row per person and local day (in the person's profile zone) with blood glucose.
CREATE TABLE {{s}}.cgm_daily (
    user_key       text             NOT NULL,
    local_day      date             NOT NULL,{_METRICS}
);
CREATE INDEX ON {{s}}.cgm_daily (local_day);

-- One row per person and local day with data: the 14 local days ending on that day.
CREATE TABLE {{s}}.cgm_14d (
    user_key       text             NOT NULL,
    local_day      date             NOT NULL,
    first_day      date             NOT NULL,
    days_with_data integer          NOT NULL CHECK (days_with_data BETWEEN 1 AND 14),{_METRICS}
);
CREATE INDEX ON {{s}}.cgm_14d (local_day);
"""
