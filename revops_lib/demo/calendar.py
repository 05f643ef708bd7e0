"""The demo company's calendar: day, month, quarter and week arithmetic, working hours, and the
planned calendar of demand (growth, seasonality, weekdays, event and webinar days).

Days are integers counted from 1970-01-01, months integers counted from 1970-01, times integer
microseconds since the epoch (UTC), as everywhere in the generator.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

from revops_lib.demo.truth import (
    _DAILY,
    EVENT_SEASON,
    GROWTH_PER_YEAR,
    LEAD_SHARE,
    LEADS_PER_36_MONTHS,
    SEASON,
    WEEKDAY,
    WEEKDAY_OUTBOUND,
)
from revops_lib.errors import ParameterError

# --------------------------------------------------------------------------- days, months, weeks

DAY = 86_400_000_000  # microseconds
HOUR = 3_600_000_000
SECOND = 1_000_000
MONTH_DAYS = 30.4375
_EPOCH = _dt.date(1970, 1, 1)


def _day(d: _dt.date) -> int:
    return (d - _EPOCH).days


def _date(day: int) -> _dt.date:
    return _EPOCH + _dt.timedelta(days=int(day))


def _month_of_day(days) -> np.ndarray:
    """Months since 1970-01 of day numbers."""
    return np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def _month_start(months) -> np.ndarray:
    return np.asarray(months, dtype="int64").astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _add_months(d: _dt.date, k: int) -> _dt.date:
    m = d.year * 12 + d.month - 1 + k
    y, mo = divmod(m, 12)
    first_next = _dt.date(y + (mo + 1) // 12, (mo + 1) % 12 + 1, 1)
    last = (first_next - _dt.timedelta(days=1)).day
    return _dt.date(y, mo + 1, min(d.day, last))


def _month_label(mi: int) -> str:
    y, m = divmod(int(mi), 12)
    return f"{y + 1970}-{m + 1:02d}"


def _quarter_label(mi: int) -> str:
    y, m = divmod(int(mi), 12)
    return f"{y + 1970}-Q{m // 3 + 1}"


def _week_label(day: int) -> str:
    y, w, _ = _date(day).isocalendar()
    return f"{y}-W{w:02d}"


def _weekday(days) -> np.ndarray:
    return (np.asarray(days, dtype=np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0


def _to_date(value, name: str) -> _dt.date:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc)
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return _to_date(value.to_pydatetime(), name)
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ParameterError(f"`{name}` must be a date such as '2026-11-01', got {value!r}.")


# --------------------------------------------------------------------------- hours of the day

def _tod(rng, n, mean_h=14.5, sd_h=3.0) -> np.ndarray:
    """Time of day in microseconds, business hours around ``mean_h`` UTC."""
    h = np.clip(rng.normal(mean_h, sd_h, n), 0.0, 23.999)
    return (h * HOUR).astype(np.int64)


def _business(us) -> np.ndarray:
    """Squeeze each day's 24 hours into 08:00-19:00 UTC (order-preserving): when people work."""
    us = np.asarray(us, dtype=np.int64)
    day = us // DAY
    return day * DAY + 8 * HOUR + ((us - day * DAY) * (11 / 24)).astype(np.int64)


# --------------------------------------------------------------------------- the planned calendar

def plan_calendar(co, rng) -> None:
    """Daily expected leads per daily source (growth x season x weekday), the events' expected leads,
    and each month's event days and webinar day, on the company ``co``
    (:class:`revops_lib.demo.company._Company`): ``days``, ``growth``, ``total_leads``, ``lam_daily``,
    ``lam_events``, ``event_days``, ``webinar_day``. Draws from ``rng`` (the calendar stream, which
    :func:`revops_lib.demo.marketing.plan_sends` continues)."""
    days = np.arange(co.start_day, co.end_day, dtype=np.int64)
    co.days = days
    month = _month_of_day(days) % 12
    wd = _weekday(days)
    growth = (1 + GROWTH_PER_YEAR) ** ((days - co.start_day) / 365.25)
    co.growth = growth
    total = LEADS_PER_36_MONTHS * co.scale * co.n_days / (36 * MONTH_DAYS)
    co.total_leads = total
    prof_web = growth * np.take(SEASON, month) * np.take(WEEKDAY, wd)
    prof_out = growth * np.take(SEASON, month) * np.take(WEEKDAY_OUTBOUND, wd)
    lam = np.zeros((len(_DAILY), co.n_days))
    for i, s in enumerate(_DAILY):
        prof = prof_out if s == "outbound" else prof_web
        lam[i] = LEAD_SHARE[s] * total * prof / prof.sum()
    co.lam_daily = lam
    prof_ev = growth * np.take(EVENT_SEASON, month)
    co.lam_events = LEAD_SHARE["events"] * total * prof_ev / prof_ev.sum()
    # event days (1-2 per month, Tue-Thu) and one webinar (Wed/Thu) per month
    co.event_days: dict[int, np.ndarray] = {}
    co.webinar_day: dict[int, int] = {}
    mo = _month_of_day(days)
    for mi in range(co.m0, co.m_last + 1):
        md = days[(mo == mi)]
        mid_week = md[np.isin(_weekday(md), (1, 2, 3))]
        k = 1 + int(rng.random() < 0.5)
        if len(mid_week):
            co.event_days[mi] = np.sort(rng.choice(mid_week, size=min(k, len(mid_week)), replace=False))
        else:
            co.event_days[mi] = np.zeros(0, dtype=np.int64)
        web = md[np.isin(_weekday(md), (2, 3))]
        co.webinar_day[mi] = int(web[rng.integers(len(web))]) if len(web) else -1
