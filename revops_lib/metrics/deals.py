"""Deals and sales: the deal-stage funnel, win rate, deal size, sales cycle, open pipeline, velocity.

Definitions (``shared/METRICS.md``, "Funnel conversion" › deal-stage funnel, and "Sales")
-----------------------------------------------------------------------------------------
- **Deal stages**: for opportunities created in the period, a deal has reached
  a configured stage if its history (before ``as_of``) holds that stage or a
  later one (:data:`DEFAULT_DEAL_STAGES`; stages not in the list, such as
  ``closed_lost``, are ignored). A deal without any history row falls back to
  its ``opportunities.stage``. The table has a row for every adjacent pair (``rate`` NaN when
  nobody entered).
- **Win rate** = won / (won + lost) over opportunities closed in the period (by count; the
  amount-weighted version is won amount / closed amount). **Average deal size** = mean amount won.
  **Sales cycle** = median days from the UTC date of ``created_at`` to ``close_date`` of deals won.
- **Open pipeline** at a cut-off: Σ amount of deals created before it and not closed before its date.
- **Pipeline velocity** = open deals × win rate × average deal size / cycle (revenue per day), with
  rate, size and cycle over the trailing ``lookback_periods`` quarters before ``min(period end, as_of)``.

Sales metrics count every opportunity type unless ``types`` is given.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Sequence

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError, SourceError
from revops_lib.metrics.common import (
    as_int,
    backend_name,
    check_int,
    check_stages,
    count_if,
    dimension,
    instant,
    micros,
    pairs,
    ratio,
    raw,
    typed,
    us,
)
from revops_lib.periods import Period, resolve_as_of, window
from revops_lib.sources import date_windows, open_source, to_pandas
from revops_lib.stats import wilson_interval

#: Deal stages of ``opportunity_history``, in order (the demo CRM's, without ``closed_lost``).
DEFAULT_DEAL_STAGES: tuple[str, ...] = ("qualification", "discovery", "proposal", "negotiation", "closed_won")


def deal_stage_conversion(history, opportunities=None, *, period, as_of=None,
                          stages: Sequence[str] = DEFAULT_DEAL_STAGES, confidence: float = 0.95) -> pd.DataFrame:
    """Deal-stage funnel of the opportunities created in the period.

    Parameters
    ----------
    history : Source, source spec, Ibis table or DataFrame
        ``opportunity_history`` (``opportunity_id, changed_at, stage``); a Source also gives
        ``opportunities``. A Source without ``opportunity_history`` gives the funnel from ``opportunities``
        alone: each deal's current stage, a lost deal at the first stage only (``attrs['basis']``).
    opportunities : Ibis table or DataFrame, optional
        ``opportunities`` (``opportunity_id, created_at, stage``): the cohort is the deals created in
        the period; without it, a deal's creation is its first history row.
    period, as_of
        The cohort period and the exclusive cut-off (default the period end): history rows from
        ``as_of`` on do not count.
    stages : list of str
        Deal stages in order (default :data:`DEFAULT_DEAL_STAGES`); other stage values are ignored.

    Returns
    -------
    DataFrame
        ``from_stage, to_stage, entered, converted, rate, ci_low, ci_high, cumulative_rate`` for every
        adjacent pair (``rate`` NaN when ``entered`` is 0); ``cumulative_rate`` = converted / deals in
        the cohort. ``.attrs['deals']``: the cohort size.

    Examples
    --------
    >>> h = pd.DataFrame({"opportunity_id": ["O1", "O1", "O2", "O2"],
    ...     "changed_at": pd.to_datetime(["2026-10-01", "2026-10-05", "2026-10-02", "2026-10-09"]),
    ...     "stage": ["qualification", "proposal", "qualification", "closed_lost"]})
    >>> deal_stage_conversion(h, period="2026-10", stages=["qualification", "discovery", "proposal"])[
    ...     ["from_stage", "to_stage", "entered", "converted", "rate"]]
          from_stage   to_stage  entered  converted  rate
    0  qualification  discovery        2          1   0.5
    1      discovery   proposal        1          1   1.0
    """
    stages = check_stages(stages)
    p, cut_as_of = window(period, as_of, period_required=True)
    cut = min(p.end_naive, cut_as_of)
    if not isinstance(history, (ir.Table, pd.DataFrame)):
        src = open_source(history)
        if not src.has("opportunity_history"):
            if src.has("opportunities"):
                return _deal_stages_from_opportunities(src.raw("opportunities"), p, cut, stages, confidence)
            raise SourceError(f"Tables `opportunity_history` and `opportunities` are absent from "
                              f"{src.description}; the deal-stage funnel needs one of them.")
        h_raw = src.raw("opportunity_history")
        if opportunities is None and src.has("opportunities"):
            opportunities = src.raw("opportunities")
    else:
        h_raw = raw(history, "opportunity_history", needed_by="the funnel")
    backend = backend_name(h_raw)
    h_stage = dimension(h_raw, "stage", table="opportunity_history")
    h_id = dimension(h_raw, "opportunity_id", table="opportunity_history")
    h_t = micros(instant(h_raw, "changed_at", table="opportunity_history", param="history"), backend)
    idx = ibis.cases(*[(h_stage == s, i) for i, s in enumerate(stages)], else_=ibis.null(dt.int64))
    h = h_raw.select(oid=h_id, t=h_t, idx=idx)
    reach = (h.filter(h.t < us(cut_as_of)).group_by("oid")
             .aggregate(top=h.idx.max(), first=h.t.min()))
    if opportunities is not None:
        o_raw = raw(opportunities, "opportunities", needed_by="the funnel")
        ob = backend_name(o_raw)
        o = o_raw.select(oid=dimension(o_raw, "opportunity_id", table="opportunities"),
                         created=micros(instant(o_raw, "created_at", table="opportunities",
                                                  param="opportunities"), ob),
                         ostage=dimension(o_raw, "stage", table="opportunities"))
        o = o.filter((o.created >= us(p.start_naive)) & (o.created < us(cut)))
        any_hist = h.select("oid").distinct().mutate(has=ibis.literal(True))
        j = o.left_join(reach, "oid").select(o.oid, o.ostage, reach.top)
        j = j.left_join(any_hist, "oid").select(j.oid, j.ostage, j.top, any_hist.has)
        fallback = ibis.cases(*[(j.ostage == s, i) for i, s in enumerate(stages)], else_=ibis.null(dt.int64))
        top = ibis.ifelse(j.has.isnull(), fallback, j.top)
        cohort = j.select(top=top)
    else:
        first_any = h.group_by("oid").aggregate(created=h.t.min())
        first_any = first_any.filter((first_any.created >= us(p.start_naive)) & (first_any.created < us(cut)))
        cohort = first_any.left_join(reach, "oid").select(top=reach.top)
    df = _stage_table(cohort, stages, confidence)
    df.attrs.update(period=p.label, basis="opportunity_history")
    return df


def _deal_stages_from_opportunities(o_raw, p: Period, cut, stages, confidence) -> pd.DataFrame:
    """The deal-stage funnel when there is no ``opportunity_history`` (a CRM export of deals alone): a deal's
    furthest stage is its current ``stage``, and a deal whose stage is not among ``stages`` (lost, or unknown)
    counts at the first stage only — it was created — so the later rates are lower bounds
    (``attrs['basis'] = 'opportunities'``)."""
    ob = backend_name(o_raw)
    created = micros(instant(o_raw, "created_at", table="opportunities", param="opportunities"), ob)
    stage = dimension(o_raw, "stage", table="opportunities") if "stage" in o_raw.columns else ibis.null(dt.string)
    o = o_raw.select(created=created, stage=stage)
    o = o.filter((o.created >= us(p.start_naive)) & (o.created < us(cut)))
    top = ibis.cases(*[(o.stage == s, i) for i, s in enumerate(stages)], else_=0)
    df = _stage_table(o.select(top=top), stages, confidence)
    df.attrs.update(period=p.label, basis="opportunities")
    return df


def _stage_table(cohort, stages, confidence) -> pd.DataFrame:
    """Stage-to-stage counts and rates from a table of each deal's furthest stage index ``top``."""
    aggs = {"deals": cohort.count()}
    for i in range(len(stages)):
        aggs[f"n{i}"] = count_if(cohort.top >= i)
    wide = to_pandas(cohort.aggregate(**aggs)).iloc[0]
    reached = [as_int(wide[f"n{i}"]) for i in range(len(stages))]
    deals = as_int(wide["deals"])
    rows = [(a, b, reached[i], reached[i + 1]) for i, (a, b) in enumerate(pairs(stages))]
    df = pd.DataFrame(rows, columns=["from_stage", "to_stage", "entered", "converted"])
    with np.errstate(divide="ignore", invalid="ignore"):
        df["rate"] = np.where(df["entered"] > 0, df["converted"] / df["entered"].replace(0, 1), np.nan)
        df["rate"] = df["rate"].astype("float64")
    low, high = wilson_interval(df["converted"].to_numpy(), df["entered"].to_numpy(), confidence=confidence)
    df["ci_low"], df["ci_high"] = low, high
    df["cumulative_rate"] = df["converted"] / deals if deals else math.nan
    df["entered"] = df["entered"].astype("int64")
    df["converted"] = df["converted"].astype("int64")
    df.attrs.update(deals=deals, reached=dict(zip(stages, reached)))
    return df


def _opps(data) -> ir.Table:
    return typed(data, "opportunities", needed_by="the funnel")


def _check_types(types) -> tuple[str, ...] | None:
    if types is None:
        return None
    if isinstance(types, str):
        types = (types,)
    return tuple(types)


def closed_deal_stats(opportunities, *, start: _dt.date, end: _dt.date, as_of: pd.Timestamp,
                      types: Sequence[str] | None = None) -> dict:
    """Counts and amounts of the deals closed with ``start <= close_date < end`` and before ``as_of``'s date.

    Returns a dict: ``closed, won, lost, won_amount, closed_amount, avg_deal_size, sales_cycle_days``
    (the cycle: median calendar days from the UTC date of ``created_at`` to ``close_date`` of the won
    deals, linear interpolation). Missing values are NaN.
    """
    return _closed_deal_rows(opportunities, [(start, end, as_of)], types)[0]


def closed_deal_stats_many(opportunities, windows: Sequence[tuple], *,
                           types: Sequence[str] | None = None, squares: bool = False) -> pd.DataFrame:
    """:func:`closed_deal_stats` for several ``(start, end, as_of)`` windows in one query.

    Returns one row per window, in the order given, with the keys of :func:`closed_deal_stats` as
    columns (``closed, won, lost, won_amount, closed_amount, avg_deal_size, sales_cycle_days``); with
    ``squares`` also ``won_amount_sq, lost_amount_sq`` (Σ amount² of the won and of the lost deals: the spread
    of the amount-weighted win rate).
    """
    cols = ["closed", "won", "lost", "won_amount", "closed_amount", "avg_deal_size", "sales_cycle_days"]
    cols += ["won_amount_sq", "lost_amount_sq"] if squares else []
    return pd.DataFrame(_closed_deal_rows(opportunities, windows, types, squares), columns=cols)


def _closed_deals_agg(opportunities, windows: Sequence[tuple], types, by: Sequence[str] = (),
                      squares: bool = False) -> pd.DataFrame:
    """One query: per window ``w`` (and ``by`` columns of ``opportunities``) the closed-deal aggregates."""
    o = _opps(opportunities)
    types = _check_types(types)
    his = [min(pd.Timestamp(e).date(), pd.Timestamp(a).date()) for _, e, a in windows]
    los = [pd.Timestamp(st).date() for st, _, _ in windows]
    o = o.filter(o.is_closed & (o.close_date >= ibis.date(min(los))) & (o.close_date < ibis.date(max(his))))
    if types is not None:
        o = o.filter(o.type.isin(list(types)))
    o = o.mutate(_won=o.is_won.fill_null(False), _cycle=o.close_date.delta(o.created_at.date(), unit="day"))
    cal = date_windows(los, his)
    j = o.join(cal, (o.close_date >= cal.w_lo) & (o.close_date < cal.w_hi))
    won = j._won
    return to_pandas(j.group_by(["w", *by]).aggregate(
        closed=j.count(),
        won=count_if(won),
        won_amount=j.amount.sum(where=won),
        closed_amount=j.amount.sum(),
        avg_deal_size=j.amount.mean(where=won),
        sales_cycle_days=j._cycle.cast(dt.float64).quantile(0.5, where=won),
        **(dict(won_sq=(j.amount * j.amount).sum(where=won), lost_sq=(j.amount * j.amount).sum(where=~won))
           if squares else {}),
    ))


def _num(x) -> float:
    return math.nan if x is None or pd.isna(x) else float(x)


def _stats_row(r: dict) -> dict:
    closed = as_int(r.get("closed"))
    won_n = as_int(r.get("won")) if closed else 0
    return dict(closed=closed, won=won_n, lost=closed - won_n,
                won_amount=_num(r.get("won_amount")) if won_n else 0.0,
                closed_amount=_num(r.get("closed_amount")) if closed else 0.0,
                avg_deal_size=_num(r.get("avg_deal_size")), sales_cycle_days=_num(r.get("sales_cycle_days")))


def _closed_deal_rows(opportunities, windows: Sequence[tuple], types, squares: bool = False) -> list[dict]:
    if not windows:
        return []
    agg = _closed_deals_agg(opportunities, windows, types, squares=squares)
    found = {int(rec["w"]): rec for rec in agg.to_dict("records")}
    rows = [_stats_row(found.get(k, {})) for k in range(len(windows))]
    if squares:  # Σ amount² of the won and the lost deals (0 without any)
        for k, row in enumerate(rows):
            rec = found.get(k, {})
            row.update(won_amount_sq=_num(rec.get("won_sq")) if row["won"] else 0.0,
                       lost_amount_sq=_num(rec.get("lost_sq")) if row["lost"] else 0.0)
    return rows


def closed_deal_stats_by(opportunities, by: str | Sequence[str], *, start: _dt.date, end: _dt.date,
                         as_of: pd.Timestamp, types: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`closed_deal_stats` per group of ``by`` (columns of ``opportunities``, e.g. ``owner``), in one query.

    Returns one row per group with a deal closed in the window: the ``by`` columns (nulls kept as nulls),
    then ``closed, won, lost, won_amount, closed_amount, avg_deal_size, sales_cycle_days``.

    >>> o = pd.DataFrame({"opportunity_id": ["O1", "O2", "O3"], "owner": ["ana", "ana", "bo"],
    ...     "created_at": pd.to_datetime(["2026-09-01"] * 3),
    ...     "close_date": pd.to_datetime(["2026-10-05", "2026-10-20", "2026-10-02"]).date,
    ...     "is_closed": [True, True, True], "is_won": [True, False, True], "amount": [100.0, 300.0, 50.0]})
    >>> s = closed_deal_stats_by(o, "owner", start=_dt.date(2026, 10, 1), end=_dt.date(2026, 11, 1),
    ...                          as_of=pd.Timestamp("2026-11-01"))
    >>> s[["owner", "won", "lost", "won_amount", "sales_cycle_days"]]
      owner  won  lost  won_amount  sales_cycle_days
    0   ana    1     1       100.0              34.0
    1    bo    1     0        50.0              31.0
    """
    keys = [by] if isinstance(by, str) else list(by)
    cols = keys + ["closed", "won", "lost", "won_amount", "closed_amount", "avg_deal_size", "sales_cycle_days"]
    agg = _closed_deals_agg(opportunities, [(start, end, as_of)], types, keys)
    rows = [{**{k: rec[k] for k in keys}, **_stats_row(rec)} for rec in agg.to_dict("records")]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(keys, na_position="last", ignore_index=True) if len(out) else out


def win_rate(opportunities, *, period, as_of=None, weight: str = "count",
             types: Sequence[str] | None = None) -> float:
    """Win rate of the deals closed in the period: won / (won + lost).

    ``weight="amount"`` gives won amount / closed amount. NaN when nothing closed.

    >>> o = pd.DataFrame({"opportunity_id": ["O1", "O2", "O3"],
    ...     "created_at": pd.to_datetime(["2026-09-01"] * 3),
    ...     "close_date": pd.to_datetime(["2026-10-05", "2026-10-20", "2026-11-02"]).date,
    ...     "is_closed": [True, True, True], "is_won": [True, False, True], "amount": [100.0, 300.0, 50.0]})
    >>> win_rate(o, period="2026-10"), win_rate(o, period="2026-10", weight="amount")
    (0.5, 0.25)
    """
    if weight not in ("count", "amount"):
        raise ParameterError(f"`weight` must be 'count' or 'amount', not `{weight!r}`.")
    p, cut = window(period, as_of, period_required=True)
    s = closed_deal_stats(opportunities, start=p.start_date, end=p.end_date, as_of=cut, types=types)
    return ratio(s["won"], s["closed"]) if weight == "count" else ratio(s["won_amount"], s["closed_amount"])


def average_deal_size(opportunities, *, period, as_of=None, types: Sequence[str] | None = None) -> float:
    """Mean ``amount`` of the deals won in the period (NaN when none)."""
    p, cut = window(period, as_of, period_required=True)
    return closed_deal_stats(opportunities, start=p.start_date, end=p.end_date, as_of=cut,
                             types=types)["avg_deal_size"]


def sales_cycle_days(opportunities, *, period, as_of=None, types: Sequence[str] | None = None) -> float:
    """Median calendar days from the UTC date of ``created_at`` to ``close_date`` of the deals won in the period."""
    p, cut = window(period, as_of, period_required=True)
    return closed_deal_stats(opportunities, start=p.start_date, end=p.end_date, as_of=cut,
                             types=types)["sales_cycle_days"]


def open_opportunities(opportunities, *, as_of, types: Sequence[str] | None = None) -> dict:
    """Deals open at ``as_of``: created before it and not closed before its date.

    Returns a dict ``count, amount``.
    """
    return _open_rows(opportunities, [as_of], types)[0]


def open_opportunities_many(opportunities, cuts: Sequence, *, types: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`open_opportunities` at several instants in one query: one row (``count, amount``) per cut."""
    return pd.DataFrame(_open_rows(opportunities, cuts, types), columns=["count", "amount"])


def _open_rows(opportunities, cuts: Sequence, types) -> list[dict]:
    if not len(cuts):
        return []
    o = _opps(opportunities)
    types = _check_types(types)
    stamps = [resolve_as_of(None, c) for c in cuts]  # naive UTC (aware times converted, dates at 00:00)
    o = o.filter(o.created_at < ibis.timestamp(max(stamps).to_pydatetime()))
    if types is not None:
        o = o.filter(o.type.isin(list(types)))
    o = o.mutate(_closed=o.is_closed.fill_null(False))
    cal = ibis.memtable(pd.DataFrame({"w": pd.Series(range(len(stamps)), dtype="int64"),
                                      "w_cut": pd.to_datetime(stamps).astype("datetime64[us]"),
                                      "w_day": pd.to_datetime([s.normalize() for s in stamps])}))
    cal = cal.mutate(w_day=cal.w_day.date())
    j = o.join(cal, (o.created_at < cal.w_cut) & ~(o._closed & (o.close_date < cal.w_day)))
    agg = to_pandas(j.group_by("w").aggregate(count=j.count(), amount=j.amount.sum()))
    found = {int(rec["w"]): rec for rec in agg.to_dict("records")}
    rows = []
    for k in range(len(stamps)):
        r = found.get(k, {})
        amount = r.get("amount")
        rows.append(dict(count=as_int(r.get("count")),
                         amount=float(amount) if amount is not None and not pd.isna(amount) else 0.0))
    return rows


def _lookback_start(cut_date: _dt.date, periods: int, kind: str) -> _dt.date:
    if kind == "quarter":
        return (pd.Timestamp(cut_date) - pd.DateOffset(months=3 * periods)).date()
    if kind == "month":
        return (pd.Timestamp(cut_date) - pd.DateOffset(months=periods)).date()
    if kind == "week":
        return cut_date - _dt.timedelta(weeks=periods)
    raise ParameterError(f"`lookback_kind` must be 'quarter', 'month' or 'week', not `{kind!r}`.")


def pipeline_velocity(opportunities, *, period, as_of=None, lookback_periods: int = 4,
                      lookback_kind: str = "quarter", types: Sequence[str] | None = None) -> pd.DataFrame:
    """Pipeline velocity (revenue per day) at the cut-off.

    velocity = open opportunities × win rate × average deal size / sales cycle length, with the rate,
    size and length over the deals closed in the ``lookback_periods`` ``lookback_kind`` before the
    cut-off (``min(period end, as_of)``; default the trailing 4 quarters).

    Returns
    -------
    DataFrame
        One row: ``open_opportunities, win_rate, avg_deal_size, sales_cycle_days, velocity_per_day,
        lookback_start, lookback_end`` (``lookback_end`` exclusive).
    """
    lookback_periods = check_int(lookback_periods, "lookback_periods")
    p, cut = window(period, as_of, period_required=True)
    start, end = _velocity_window(p, cut, lookback_periods, lookback_kind)
    s = closed_deal_stats(opportunities, start=start, end=end, as_of=cut, types=types)
    op = open_opportunities(opportunities, as_of=min(cut, p.end_naive), types=types)
    return pd.DataFrame([_velocity(s, op, start, end)])


def _velocity_window(p: Period, cut: pd.Timestamp, lookback_periods: int, lookback_kind: str):
    end = min(p.end_date, cut.date())
    return _lookback_start(end, lookback_periods, lookback_kind), end


def _velocity(s: dict, op: dict, start, end) -> dict:
    """Pipeline velocity from the lookback's closed-deal stats and the open deals at the cut-off."""
    wr = ratio(s["won"], s["closed"])
    size, days = s["avg_deal_size"], s["sales_cycle_days"]
    vel = op["count"] * wr * size / days if days and not math.isnan(days) and days > 0 else math.nan
    return dict(open_opportunities=op["count"], win_rate=wr, avg_deal_size=size, sales_cycle_days=days,
                velocity_per_day=vel, lookback_start=start, lookback_end=end)


def sales_metrics(opportunities, *, period, as_of=None, lookback_periods: int = 4,
                  types: Sequence[str] | None = None) -> pd.DataFrame:
    """The Sales metrics of METRICS.md for one period, in one row.

    Returns
    -------
    DataFrame
        ``period, closed, won, lost, win_rate, won_amount, closed_amount, win_rate_amount,
        avg_deal_size, sales_cycle_days, open_opportunities, open_amount, velocity_per_day,
        velocity_win_rate, velocity_avg_deal_size, velocity_cycle_days`` — ``win_rate`` = won / closed
        (count), ``win_rate_amount`` = won amount / closed amount (deals closed in the period);
        velocity figures over the trailing ``lookback_periods`` quarters.

    Examples
    --------
    >>> o = pd.DataFrame({"opportunity_id": ["O1", "O2"],
    ...     "created_at": pd.to_datetime(["2026-09-01 10:00", "2026-09-10 09:00"]),
    ...     "close_date": pd.to_datetime(["2026-10-05", "2026-10-20"]).date,
    ...     "is_closed": [True, True], "is_won": [True, False], "amount": [100.0, 300.0]})
    >>> sales_metrics(o, period="2026-10")[["won", "lost", "win_rate", "win_rate_amount", "sales_cycle_days"]]
       won  lost  win_rate  win_rate_amount  sales_cycle_days
    0    1     1       0.5             0.25              34.0
    """
    lookback_periods = check_int(lookback_periods, "lookback_periods")
    p, cut = window(period, as_of, period_required=True)
    start, end = _velocity_window(p, cut, lookback_periods, "quarter")
    # the period's closed deals and the velocity lookback's in one query; the open deals once
    s, lb = _closed_deal_rows(opportunities, [(p.start_date, p.end_date, cut), (start, end, cut)], types)
    op = open_opportunities(opportunities, as_of=min(cut, p.end_naive), types=types)
    v = _velocity(lb, op, start, end)
    row = dict(period=p.label, closed=s["closed"], won=s["won"], lost=s["lost"],
               win_rate=ratio(s["won"], s["closed"]), won_amount=s["won_amount"],
               closed_amount=s["closed_amount"], win_rate_amount=ratio(s["won_amount"], s["closed_amount"]),
               avg_deal_size=s["avg_deal_size"], sales_cycle_days=s["sales_cycle_days"],
               open_opportunities=op["count"], open_amount=op["amount"],
               velocity_per_day=float(v["velocity_per_day"]), velocity_win_rate=float(v["win_rate"]),
               velocity_avg_deal_size=float(v["avg_deal_size"]), velocity_cycle_days=float(v["sales_cycle_days"]))
    return pd.DataFrame([row])
