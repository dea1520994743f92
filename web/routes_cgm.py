"""CGM metrics of one person (analyst): the ``cgm_daily`` and ``cgm_14d`` rows the ETL target
``cgm`` computed, and the ambulatory glucose profile of a 14-day window.

The user id in the path is pseudonymised at once (``Route.pseudonymised``), as the subject
routes do: the audit row, the logs, the metrics and every answer, errors included, only
ever carry ``user_key``. Definitions: :mod:`batch.cgm`, docs/how-to/cgm.md.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Self

from pydantic import Field, model_validator

from batch import cgm_report
from batch.cgm import WINDOW_DAYS
from web.api import Api, Call, Route
from web.auth import Permission
from web.errors import NotFound
from web.models import Strict
from web.responses import Closed

MAX_DAYS = 366


class CgmPath(Strict):
    user_id: str = Field(min_length=1, max_length=256, description="The person's user id (as ingested).")


class CgmQuery(Strict):
    first: date | None = Field(None, alias="from", description="First local day (default: `to` - 13 days).")
    to: date | None = Field(None, description="Last local day (default: the person's latest CGM day).")

    @model_validator(mode="after")
    def _span(self) -> Self:
        if self.first is not None and self.to is not None:
            if self.first > self.to:
                raise ValueError("from must not be after to")
            if (self.to - self.first).days >= MAX_DAYS:
                raise ValueError(f"at most {MAX_DAYS} days at once")
        return self


class AgpQuery(Strict):
    end: date | None = Field(None, description="Last local day of the 14-day window (default: the latest).")
    bin_minutes: int = Field(15, ge=5, le=60, description="Width of the time-of-day bins; divides 60.")

    @model_validator(mode="after")
    def _divides(self) -> Self:
        if 60 % self.bin_minutes:
            raise ValueError("bin_minutes must divide 60")
        return self


class CgmMetrics(Closed):
    local_day: date = Field(description="The local day (cgm_14d: the window's last day).")
    timezone: str
    readings: int
    interval_s: float = Field(description="Sensor interval: median gap between readings, whole minutes.")
    expected: float = Field(description="Possible readings: the local day(s)' length / interval_s.")
    active_pct: float
    mean_mg_dl: float
    sd_mg_dl: float | None
    cv_pct: float | None
    gmi_pct: float
    very_low_pct: float = Field(description="< 54 mg/dL, or censored low.")
    low_pct: float = Field(description="54-69 mg/dL.")
    in_range_pct: float = Field(description="70-180 mg/dL.")
    high_pct: float = Field(description="181-250 mg/dL.")
    very_high_pct: float = Field(description="> 250 mg/dL, or censored high.")
    censored_below: int
    censored_above: int
    sufficient: bool = Field(description="active_pct >= 70.")


class CgmWindow(CgmMetrics):
    first_day: date
    days_with_data: int


class CgmSummary(Closed):
    user_key: str
    first: date = Field(alias="from")
    to: date
    targets: dict[str, str] = Field(description="The consensus targets, for reading the figures.")
    days: list[CgmMetrics]
    windows: list[CgmWindow]


class AgpBin(Closed):
    minute: int = Field(description="Start of the bin, minutes after local midnight.")
    readings: int
    p5: float
    p25: float
    p50: float
    p75: float
    p95: float


class Agp(Closed):
    user_key: str
    bin_minutes: int
    window: CgmWindow
    bins: list[AgpBin]


_MISSING = "no CGM metrics for this person"  # never the id: it could identify them


def _person(api: Api, call: Call, what: str) -> tuple[str, Any, str]:
    """The pseudonym of the path's person (the audit target from now on), the pool, the schema."""
    user_key = api.pseudonymise(call.path.user_id)
    call.target = f"user_key={user_key} {what}"
    return user_key, api.warehouse.pool, api.settings.warehouse_schema


async def summary(api: Api, call: Call) -> dict[str, Any]:
    user_key, pool, schema = _person(api, call, "cgm")
    q: CgmQuery = call.query
    last = q.to or await cgm_report.latest_day(pool, schema, user_key)
    if last is None:
        raise NotFound(_MISSING)
    first = q.first or last - timedelta(days=WINDOW_DAYS - 1)
    return {"user_key": user_key, "from": first, "to": last, "targets": cgm_report.CONSENSUS_TARGETS,
            "days": await cgm_report.rows(pool, schema, "cgm_daily", user_key, first, last),
            "windows": await cgm_report.rows(pool, schema, "cgm_14d", user_key, first, last)}


async def profile(api: Api, call: Call) -> dict[str, Any]:
    user_key, pool, schema = _person(api, call, "cgm.agp")
    q: AgpQuery = call.query
    end = q.end or await cgm_report.latest_day(pool, schema, user_key)
    found = [] if end is None else await cgm_report.rows(pool, schema, "cgm_14d", user_key, end, end)
    if not found:
        raise NotFound(_MISSING if q.end is None else "no 14-day window of this person ends on that day")
    window = found[0]
    bins = await cgm_report.agp(pool, schema, user_key, window["first_day"], window["local_day"],
                                window["timezone"], q.bin_minutes)
    return {"user_key": user_key, "bin_minutes": q.bin_minutes, "window": window, "bins": bins}


ROUTES = [
    Route("GET", "/cgm/{user_id}", "cgm.summary",
          "CGM metrics of one person by local day and 14-day window (consensus on time in range).",
          summary, Permission.READ_CGM, path_model=CgmPath, query_model=CgmQuery, tag="cgm",
          pseudonymised=("user_id",), response=CgmSummary),
    Route("GET", "/cgm/{user_id}/agp", "cgm.agp",
          "Ambulatory glucose profile (5/25/50/75/95th percentiles by time of day) of a 14-day window.",
          profile, Permission.READ_CGM, path_model=CgmPath, query_model=AgpQuery, tag="cgm",
          pseudonymised=("user_id",), response=Agp),
]
