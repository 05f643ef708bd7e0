"""Forecast accuracy and the kit's baseline forecast (METRICS.md, "Forecast accuracy").

Submitted forecasts (``forecast_snapshots``) are scored against actuals per forecast period,
scope and category; the baseline forecast (won to date + open pipeline × historical stage win
rates, with no look-ahead) is scored the same way as category ``baseline``. The conventions
(point-in-time state, scopes, in view, undefined percentages, week of period, baseline) are written
down once in :mod:`revops_lib.metrics.pipeline`.
"""

from __future__ import annotations

import datetime as _dt  # noqa: F401  (the docstring examples use it)
import math
from typing import Iterable, Sequence

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError, SchemaError
from revops_lib.metrics.common import (
    check_int,
    date_lit,
    parse_instants,
    ratio,
    require,
    run,
    source_of,
)
from revops_lib.metrics.deal_history import (
    COMPANY,
    FAR_FUTURE,
    TS,
    Calendar,
    DealHistory,
    as_dates,
    as_period,
    deal_rows,
    fiscal_start,
    scope_kinds,
    teams_of,
    to_scopes,
)
from revops_lib.metrics.pipeline import actuals
from revops_lib.metrics.targets import target as period_target
from revops_lib.periods import Period, parse_period, period_of, window

ACCURACY_COLUMNS = ["forecast_period", "scope", "category", "snapshot_date", "week_of_period",
                    "forecast", "actual", "error", "abs_pct_error", "accuracy"]


SUMMARY_COLUMNS = ["category", "n", "mape", "wape", "bias", "hit_rate_10"]


BASELINE = "baseline"


def _rate_counts(deals: DealHistory, cal: Calendar) -> ir.Table:
    """Per instant index ``idx`` and stage: deals closed then that were ever in the stage before, and the won ones.

    ``overall`` rows (stage null) count every deal closed at the instant. Built
    without a calendar x deals product: each closed state contributes +1 from
    the first instant after it starts to count and -1 from the first instant
    after it stops; the deltas are bucketed by instant and summed cumulatively.
    """
    r = deals.rows
    c = r.filter(r.is_closed & r.changed_at.notnull()).select(
        "opportunity_id", "seen", c_from=r.changed_at, c_to=r.valid_to, won=ibis.ifelse(r.is_won, 1, 0).cast("int64"))
    if deals.stage_bits is not None:
        # An open stage is never entered while the deal is closed, so "in stage s before t" for a deal closed
        # at t means "in stage s before its close": the bits of `seen` on the closed row.
        if deals.stage_bits:
            sb = ibis.memtable(pd.DataFrame({"stage": list(deals.stage_bits),
                                         "bit": np.array(list(deals.stage_bits.values()), dtype="int64")}))
            j = c.cross_join(sb).filter((c.seen & sb.bit) != 0)
            j = j.select(stage=sb.stage, overall=ibis.literal(False), start=j.c_from, end=j.c_to, won=j.won)
        else:
            j = None
    else:
        f = r.filter(~r.is_closed & r.stage.notnull()).group_by(["opportunity_id", "stage"]).aggregate(
            first=r.changed_at.min())
        j = c.join(f, "opportunity_id")
        j = j.select(stage=j.stage, overall=ibis.literal(False), start=ibis.greatest(j.c_from, j.first), end=j.c_to,
                     won=j.won)
        j = j.filter(j.start < j.end)
    allc = c.select(stage=ibis.null(dt.string), overall=ibis.literal(True), start=c.c_from, end=c.c_to, won=c.won)
    spans = allc if j is None else j.union(allc, distinct=False)
    far = ibis.timestamp(FAR_FUTURE)
    ev = spans.select("stage", "overall", time=spans.start.cast(TS), dn=ibis.literal(1, "int64"),
                      dw=spans.won).union(
        spans.filter(spans.end < far).select("stage", "overall", time=spans.end.cast(TS), dn=ibis.literal(-1, "int64"),
                                             dw=-spans.won), distinct=False)
    ev = cal.n_le(ev, "time", "b")
    ev = ev.filter(ev.b < cal.n)
    b = ev.group_by(["b", "stage", "overall"]).aggregate(dn=ev.dn.sum(), dw=ev.dw.sum())
    keys = b.select("stage", "overall").distinct()
    grid = cal.table.select("idx").cross_join(keys)
    g = grid.left_join(b, [grid.idx == b.b, grid.stage.identical_to(b.stage), grid.overall == b.overall]).select(
        idx=grid.idx, stage=grid.stage, overall=grid.overall, dn=b.dn.fill_null(0), dw=b.dw.fill_null(0))
    w = ibis.window(group_by=[g.stage, g.overall], order_by=g.idx, preceding=None, following=0)
    return g.select("idx", "stage", "overall", closed=g.dn.sum().over(w), won=g.dw.sum().over(w))


def stage_win_rates(data, *, dates, won_stages=None, lost_stages=None) -> pd.DataFrame:
    """Historical win rate of each open stage at each date, from deals closed before it (no look-ahead).

    The win rate of stage *s* at cut-off *d* = won / closed among the deals whose
    state at *d* is closed and that were in stage *s* at some time before *d*.

    Parameters
    ----------
    data : Source, source spec or DealHistory
    dates : list of dates or times
        Cut-offs (a date means its 00:00 UTC).

    Returns
    -------
    DataFrame
        ``snapshot_date, stage, closed, won, win_rate``; the row with stage
        ``None`` is the overall rate (every deal closed at the date). Dates
        and stages without a closed deal are absent.

    Examples
    --------
    >>> opps = pd.DataFrame({"opportunity_id": ["a", "b"], "created_at": pd.to_datetime(["2026-01-05", "2026-01-06"]),
    ...     "close_date": [_dt.date(2026, 1, 20), _dt.date(2026, 1, 25)], "is_closed": [True, True],
    ...     "is_won": [True, False], "amount": [100.0, 50.0], "stage": ["closed_won", "closed_lost"]})
    >>> hist = pd.DataFrame({"opportunity_id": ["a", "a", "b", "b"],
    ...     "changed_at": pd.to_datetime(["2026-01-05", "2026-01-20", "2026-01-06", "2026-01-25"]),
    ...     "stage": ["proposal", "closed_won", "proposal", "closed_lost"]})
    >>> stage_win_rates({"opportunities": opps, "opportunity_history": hist}, dates=["2026-01-21", "2026-02-01"])
      snapshot_date     stage  closed  won  win_rate
    0    2026-01-21  proposal       1    1       1.0
    1    2026-01-21      None       1    1       1.0
    2    2026-02-01  proposal       2    1       0.5
    3    2026-02-01      None       2    1       0.5
    """
    instants = parse_instants(dates, "dates")
    deals = deal_rows(data, won_stages=won_stages, lost_stages=lost_stages, scopes=False)
    cal = Calendar(instants)
    rc = _rate_counts(deals, cal)
    rc = rc.filter(rc.closed > 0)
    rc = rc.join(cal.table, "idx")
    df = run(rc.select(snapshot_date=cal.table.t, stage=rc.stage, overall=rc.overall, closed=rc.closed,
                        won=rc.won))
    df["snapshot_date"] = pd.to_datetime(df["snapshot_date"]).astype("datetime64[us]")
    df["closed"] = df["closed"].astype("int64")
    df["won"] = df["won"].astype("int64")
    df["win_rate"] = df["won"] / df["closed"]
    df["stage"] = df["stage"].astype(object).where(~df["overall"].astype(bool), None)
    df = df.sort_values(["snapshot_date", "overall", "stage"], ignore_index=True)
    return df[["snapshot_date", "stage", "closed", "won", "win_rate"]]


def _baseline_engine(deals: DealHistory, pairs: pd.DataFrame, scopes: Sequence[str]) -> pd.DataFrame:
    """Baseline per (t, label, scope) for ``pairs`` = DataFrame(t, label, p_start, p_end)."""
    kinds = scope_kinds(scopes, deals.teams)
    scoped = [k for k in ("team", "owner") if k in kinds.values()]
    if scoped and not deals.with_scopes:
        raise ParameterError("Team or owner scopes need a DealHistory prepared with `scopes`=True.")
    if scoped:
        scoped = ["team", "owner"] if "owner" in scoped else ["team"]
    vals = ["won_to_date", "open_pipeline", "weighted_pipeline"]
    pairs = pairs.assign(t=pd.to_datetime(pairs["t"]).astype("datetime64[us]")).drop_duplicates(["t", "label"])
    cal = Calendar(pairs["t"])
    pm = ibis.memtable(pd.DataFrame({
        "t_idx": pairs["t"].map(lambda x: cal.pos[pd.Timestamp(x)]).astype("int64"), "label": pairs["label"],
        "p_start": pd.to_datetime(pairs["p_start"]).astype("datetime64[us]"),
        "p_end": pd.to_datetime(pairs["p_end"]).astype("datetime64[us]")}))
    pm = pm.mutate(p_start=pm.p_start.cast(dt.date), p_end=pm.p_end.cast(dt.date))
    rc = _rate_counts(deals, cal)
    rc = rc.mutate(rate=ibis.ifelse(rc.closed > 0, rc.won.cast("float64") / rc.closed.cast("float64"),
                                    ibis.null(dt.float64)))
    stage_rate = rc.filter(~rc.overall).select(ridx=rc.idx, rstage=rc.stage, stage_rate=rc.rate)
    all_rate = rc.filter(rc.overall).select(aidx=rc.idx, all_rate=rc.rate)
    r = deals.rows
    # open deals: the instants each state covers, summed per stage and close date, then the periods
    okeys = ["stage", "close_date", *scoped]
    o = cal.covering(r.filter(~r.is_closed), ["amount", *okeys])
    o = o.group_by(["idx", *okeys]).aggregate(amount=o.amount.sum())
    o = o.join(pm, [o.idx == pm.t_idx, o.close_date >= pm.p_start, o.close_date < pm.p_end]).select(
        idx=o.idx, label=pm.label, stage=o.stage, amount=o.amount.fill_null(0.0), **{k: o[k] for k in scoped})
    o = o.left_join(stage_rate, [o.idx == stage_rate.ridx, o.stage == stage_rate.rstage])
    o = o.left_join(all_rate, o.idx == all_rate.aidx)
    weight = ibis.coalesce(o.stage_rate, o.all_rate, ibis.literal(0.0))
    o = o.select("idx", "label", *scoped, won_to_date=ibis.literal(0.0), open_pipeline=o.amount,
                 weighted_pipeline=o.amount * weight)
    # won deals: +amount from the first instant after the win, -amount after a reopening; summed per close
    # date, then accumulated up to each snapshot of the periods holding that close date
    w = r.filter(r.is_won).select("changed_at", "valid_to", "close_date", "amount", *scoped)
    w = cal.n_le(w, "changed_at", "_from")
    w = cal.n_le(w, "valid_to", "_to")
    w = w.filter(w._to > w._from)
    amt = w.amount.fill_null(0.0)
    ev = w.select("close_date", *scoped, b=w._from, amt=amt).union(
        w.filter(w._to < cal.n).select("close_date", *scoped, b=w._to, amt=-amt), distinct=False)
    ev = ev.group_by(["close_date", *scoped, "b"]).aggregate(amt=ev.amt.sum())
    wj = ev.join(pm, [ev.close_date >= pm.p_start, ev.close_date < pm.p_end, ev.b <= pm.t_idx])
    wj = wj.select(idx=pm.t_idx, label=pm.label, **{k: ev[k] for k in scoped}, won_to_date=ev.amt,
                   open_pipeline=ibis.literal(0.0), weighted_pipeline=ibis.literal(0.0))
    s = o.union(wj, distinct=False)
    g = run(s.group_by(["idx", "label", *scoped]).aggregate(**{v: s[v].sum() for v in vals}))
    for k in ("team", "owner"):
        if k not in g.columns:
            g[k] = None
    for v in vals:
        g[v] = g[v].astype(float).fillna(0.0)
    g["t"] = pd.Series(cal.ts, dtype="datetime64[us]").reindex(g["idx"].astype("int64").to_numpy()).to_numpy()
    out = to_scopes(g, ["t", "label"], vals, kinds)
    grid = pairs[["t", "label"]].merge(pd.DataFrame({"scope": list(kinds)}), how="cross")
    out["t"] = pd.to_datetime(out["t"]).astype("datetime64[us]")
    out = grid.merge(out, on=["t", "label", "scope"], how="left")
    for v in vals:
        out[v] = out[v].astype(float).fillna(0.0)
    # round away float summation noise (engines add in any order); amounts are kept to the cent
    for v in vals:
        out[v] = out[v].round(6)
    out["forecast"] = out["won_to_date"] + out["weighted_pipeline"]
    return out


def baseline_forecast(data, *, snapshots, scopes: Iterable[str] = (COMPANY,), fiscal_year_start_month: int = 1,
                      won_stages=None, lost_stages=None) -> pd.DataFrame:
    """The kit's mechanical forecast at each snapshot: won-to-date + stage-weighted open pipeline.

    See the module docstring ("Baseline forecast") for the exact rule; only
    data from before each snapshot date is used.

    Parameters
    ----------
    data : Source or source spec
        ``opportunities`` and (optionally) ``opportunity_history``.
    snapshots : DataFrame
        ``snapshot_date`` (date: the state at its 00:00 UTC; or a timestamp,
        used as the cut-off) and ``forecast_period`` (label), one row per
        forecast to make; duplicates are ignored.
    scopes : iterable of str
        ``company``, team or owner names.
    fiscal_year_start_month : int
    won_stages, lost_stages : iterable of str, optional

    Returns
    -------
    DataFrame
        ``snapshot_date, forecast_period, scope, won_to_date, open_pipeline,
        weighted_pipeline, forecast`` (forecast = won_to_date +
        weighted_pipeline), one row per snapshot × scope.

    Examples
    --------
    >>> opps = pd.DataFrame({"opportunity_id": ["a", "b", "c"],
    ...     "created_at": pd.to_datetime(["2026-01-05", "2026-01-06", "2026-02-02"]),
    ...     "close_date": [_dt.date(2026, 1, 20), _dt.date(2026, 1, 25), _dt.date(2026, 2, 20)],
    ...     "is_closed": [True, True, False], "is_won": [True, False, False], "amount": [100.0, 50.0, 80.0],
    ...     "stage": ["closed_won", "closed_lost", "proposal"]})
    >>> hist = pd.DataFrame({"opportunity_id": ["a", "a", "b", "b", "c"],
    ...     "changed_at": pd.to_datetime(["2026-01-05", "2026-01-20", "2026-01-06", "2026-01-25", "2026-02-02"]),
    ...     "stage": ["proposal", "closed_won", "proposal", "closed_lost", "proposal"]})
    >>> snaps = pd.DataFrame({"snapshot_date": [_dt.date(2026, 2, 9)], "forecast_period": ["2026-02"]})
    >>> b = baseline_forecast({"opportunities": opps, "opportunity_history": hist}, snapshots=snaps)
    >>> b[["forecast_period", "scope", "won_to_date", "open_pipeline", "forecast"]]
      forecast_period    scope  won_to_date  open_pipeline  forecast
    0         2026-02  company          0.0           80.0      40.0
    """
    fy = fiscal_start(fiscal_year_start_month)
    if not isinstance(snapshots, pd.DataFrame) or not {"snapshot_date", "forecast_period"} <= set(snapshots.columns):
        raise ParameterError("`snapshots` must be a DataFrame with columns snapshot_date and forecast_period.")
    scopes = list(dict.fromkeys(scopes))
    snaps = snapshots[["snapshot_date", "forecast_period"]].drop_duplicates().reset_index(drop=True)
    cols = ["snapshot_date", "forecast_period", "scope", "won_to_date", "open_pipeline", "weighted_pipeline",
            "forecast"]
    if snaps.empty or not scopes:
        return pd.DataFrame(columns=cols)
    periods = {lab: as_period(lab, fy) for lab in snaps["forecast_period"].unique()}
    snaps["t"] = parse_instants(snaps["snapshot_date"], "snapshot_date")
    pairs = pd.DataFrame({
        "t": snaps["t"], "label": snaps["forecast_period"],
        "p_start": [periods[x].start_date for x in snaps["forecast_period"]],
        "p_end": [periods[x].end_date for x in snaps["forecast_period"]],
    }).drop_duplicates()
    kinds = scope_kinds(scopes, teams_of(source_of(data)))
    deals = deal_rows(data, won_stages=won_stages, lost_stages=lost_stages,
                   scopes=any(k != "company" for k in kinds.values()))
    out = _baseline_engine(deals, pairs, scopes)
    key = snaps[["snapshot_date", "forecast_period", "t"]].assign(t=lambda d: d["t"].astype("datetime64[us]"))
    out = key.merge(out.rename(columns={"label": "forecast_period"}), on=["t", "forecast_period"], how="left")
    return out.sort_values(["snapshot_date", "forecast_period", "scope"], key=_sort_key,
                           ignore_index=True)[cols]


def _sort_key(s: pd.Series):
    if s.name == "scope":
        return s.map(lambda x: (x != COMPANY, str(x)))
    if s.name == "category":
        order = {"commit": 0, "best_case": 1, BASELINE: 9}
        return s.map(lambda x: (order.get(x, 5), str(x)))
    if s.name in ("snapshot_date",):
        return pd.to_datetime(s)
    return s


def periods_in_view(labels: Iterable[str], *, as_of, lookback_periods: int = 12,
                    fiscal_year_start_month: int = 1) -> list[Period]:
    """Forecast periods in view: ended on or before ``as_of``, the last ``lookback_periods`` of each kind.

    Parameters
    ----------
    labels : iterable of period labels (duplicates allowed)
    as_of : date, time or ISO text
        The cut-off; a period is in view when its end is on or before it.
    lookback_periods : int, default 12
        How many periods of each kind (month, quarter, week) to keep, the latest.
    fiscal_year_start_month : int

    Returns
    -------
    list of Period, oldest first.

    Examples
    --------
    >>> [p.label for p in periods_in_view(["2026-08", "2026-09", "2026-10", "2026-Q3", "2026-Q4"],
    ...                                   as_of="2026-11-01", lookback_periods=2)]
    ['2026-Q3', '2026-09', '2026-10']
    """
    n = check_int(lookback_periods, "lookback_periods")
    cut = window(None, as_of)[1]
    fy = fiscal_start(fiscal_year_start_month)
    ps = []
    for lab in dict.fromkeys(labels):
        try:
            ps.append(parse_period(lab, fiscal_year_start_month=fy))
        except Exception:
            raise SchemaError(f"`forecast_snapshots.forecast_period` value `{lab}` is not a period label: use "
                              "YYYY-MM, YYYY-Qn or YYYY-Www.") from None
    ended = [p for p in set(ps) if p.end_naive <= cut]
    out = []
    for kind in ("week", "month", "quarter"):
        out += sorted(p for p in ended if p.kind == kind)[-n:]
    return sorted(out)


def _week_of_period(snapshot_dates: pd.Series, period_starts: pd.Series) -> pd.Series:
    days = (pd.to_datetime(snapshot_dates) - pd.to_datetime(period_starts)).dt.days
    return (1 + np.floor_divide(days, 7)).astype("int64")


def score_forecasts(forecasts: pd.DataFrame, actual: pd.DataFrame, *, fiscal_year_start_month: int = 1) -> pd.DataFrame:
    """Error, absolute percentage error, accuracy and week of period of each forecast.

    Parameters
    ----------
    forecasts : DataFrame
        ``forecast_period, scope, category, snapshot_date, forecast``.
    actual : DataFrame
        ``forecast_period, scope, actual`` (see :func:`actuals`); a missing
        (period, scope) counts as an actual of 0.

    Returns
    -------
    DataFrame
        The published ``accuracy`` columns: ``forecast_period, scope, category,
        snapshot_date, week_of_period, forecast, actual, error, abs_pct_error,
        accuracy``. ``error = forecast - actual``; ``abs_pct_error =
        |error| / actual`` and ``accuracy = max(0, 1 - abs_pct_error)`` are NaN
        when the actual is 0.

    Examples
    --------
    >>> f = pd.DataFrame({"forecast_period": ["2026-10", "2026-10"], "scope": ["company", "x"],
    ...                   "category": ["commit", "commit"], "snapshot_date": [_dt.date(2026, 10, 12)] * 2,
    ...                   "forecast": [110.0, 5.0]})
    >>> a = pd.DataFrame({"forecast_period": ["2026-10"], "scope": ["company"], "actual": [100.0]})
    >>> score_forecasts(f, a)[["scope", "week_of_period", "error", "abs_pct_error", "accuracy"]]
         scope  week_of_period  error  abs_pct_error  accuracy
    0  company               2   10.0            0.1       0.9
    1        x               2    5.0            NaN       NaN
    """
    fy = fiscal_start(fiscal_year_start_month)
    f = forecasts.copy()
    if f.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in (
            ("forecast_period", object), ("scope", object), ("category", object), ("snapshot_date", object),
            ("week_of_period", "int64"), ("forecast", float), ("actual", float), ("error", float),
            ("abs_pct_error", float), ("accuracy", float))})
    f = f.merge(actual[["forecast_period", "scope", "actual"]], on=["forecast_period", "scope"], how="left")
    f["actual"] = f["actual"].astype(float).fillna(0.0)
    f["forecast"] = f["forecast"].astype(float)
    starts = {lab: parse_period(lab, fiscal_year_start_month=fy).start_date for lab in f["forecast_period"].unique()}
    f["snapshot_date"] = as_dates(pd.to_datetime(f["snapshot_date"]))
    f["week_of_period"] = _week_of_period(f["snapshot_date"], f["forecast_period"].map(starts))
    f["error"] = f["forecast"] - f["actual"]
    pos = f["actual"] > 0
    f["abs_pct_error"] = np.where(pos, f["error"].abs() / f["actual"].where(pos, 1.0), np.nan)
    f["accuracy"] = np.maximum(0.0, 1.0 - f["abs_pct_error"])
    return f[ACCURACY_COLUMNS]


def _sort_accuracy(df: pd.DataFrame, fy: int) -> pd.DataFrame:
    if df.empty:
        return df.reset_index(drop=True)
    order = {lab: (p.start, p.end) for lab, p in
             ((lab, parse_period(lab, fiscal_year_start_month=fy)) for lab in df["forecast_period"].unique())}
    out = df.assign(_p=df["forecast_period"].map(lambda x: order[x][0]),
                    _q=df["forecast_period"].map(lambda x: order[x][1]),
                    _s=_sort_key(df["scope"]), _c=_sort_key(df["category"]))
    return out.sort_values(["_p", "_q", "forecast_period", "_s", "_c", "snapshot_date"],
                           ignore_index=True).drop(columns=["_p", "_q", "_s", "_c"])


def forecast_accuracy(data, *, period=None, as_of=None, lookback_periods: int = 12, baseline: bool = True,
                      fiscal_year_start_month: int = 1, won_stages=None, lost_stages=None) -> pd.DataFrame:
    """Every forecast snapshot in view scored against its actual, the kit's baseline included.

    Parameters
    ----------
    data : Source or source spec
        ``forecast_snapshots`` and ``opportunities`` (+ ``opportunity_history``
        for the baseline).
    period : str or Period, optional
        The report period; ``as_of`` defaults to its end.
    as_of : date or time, optional
        Cut-off: periods in view ended on or before it; snapshots dated before
        its date count.
    lookback_periods : int, default 12
        Latest periods in view per kind of label.
    baseline : bool, default True
        Add category ``baseline`` (see :func:`baseline_forecast`) for every
        (snapshot_date, forecast_period, scope) that has a submitted forecast.
    fiscal_year_start_month : int
    won_stages, lost_stages : iterable of str, optional

    Returns
    -------
    DataFrame
        The published ``accuracy`` table: ``forecast_period, scope, category,
        snapshot_date, week_of_period, forecast, actual, error, abs_pct_error,
        accuracy``, sorted by period, scope (company first), category,
        snapshot date.

    Examples
    --------
    >>> opps = pd.DataFrame({"opportunity_id": ["a"], "created_at": pd.to_datetime(["2026-09-20"]),
    ...     "close_date": [_dt.date(2026, 10, 20)], "is_closed": [True], "is_won": [True], "amount": [100.0],
    ...     "team": ["smb"], "stage": ["closed_won"]})
    >>> snaps = pd.DataFrame({"snapshot_date": [_dt.date(2026, 10, 5)], "forecast_period": ["2026-10"],
    ...     "scope": ["company"], "category": ["commit"], "amount": [90.0]})
    >>> acc = forecast_accuracy({"opportunities": opps, "forecast_snapshots": snaps}, period="2026-10")
    >>> acc[["category", "forecast", "actual", "abs_pct_error"]]
       category  forecast  actual  abs_pct_error
    0    commit      90.0   100.0            0.1
    1  baseline       0.0   100.0            1.0
    """
    fy = fiscal_start(fiscal_year_start_month)
    cut = window(period, as_of, fiscal_year_start_month=fy)[1]
    src = source_of(data)
    require(src, "forecast_snapshots", "opportunities")
    fs = src.table("forecast_snapshots")
    fs = fs.filter(fs.snapshot_date.notnull() & (fs.snapshot_date < date_lit(cut.date())))
    f = run(fs.select("snapshot_date", "forecast_period", "scope", "category", forecast=fs.amount))
    f = f.dropna(subset=["forecast_period", "scope", "category"])
    view = periods_in_view(f["forecast_period"].unique(), as_of=cut, lookback_periods=lookback_periods,
                           fiscal_year_start_month=fy)
    labels = {p.label: p for p in view}
    f["forecast_period"] = f["forecast_period"].map(
        lambda x: parse_period(x, fiscal_year_start_month=fy).label)
    f = f[f["forecast_period"].isin(labels)].reset_index(drop=True)
    scopes = list(dict.fromkeys(f["scope"]))
    act = actuals(src, periods=list(labels.values()), scopes=scopes, fiscal_year_start_month=fy) if len(f) else \
        pd.DataFrame(columns=["forecast_period", "scope", "actual"])
    parts = [f]
    if baseline and len(f):
        deals = deal_rows(data if isinstance(data, DealHistory) else src, won_stages=won_stages,
                       lost_stages=lost_stages)
        keys = f[["snapshot_date", "forecast_period", "scope"]].drop_duplicates()
        b = _baseline_for(deals, keys, fy)
        name = BASELINE if BASELINE not in set(f["category"]) else f"kit_{BASELINE}"
        parts.append(b.assign(category=name)[["snapshot_date", "forecast_period", "scope", "category", "forecast"]])
    allf = pd.concat(parts, ignore_index=True) if len(f) else f
    scored = score_forecasts(allf, act, fiscal_year_start_month=fy)
    return _sort_accuracy(scored, fy)


def _baseline_for(deals: DealHistory, keys: pd.DataFrame, fiscal_year_start_month: int = 1) -> pd.DataFrame:
    """Baseline for the exact (snapshot_date, forecast_period, scope) rows of ``keys`` (internal helper)."""
    fy = fiscal_start(fiscal_year_start_month)
    snaps = keys[["snapshot_date", "forecast_period"]].drop_duplicates().reset_index(drop=True)
    periods = {lab: parse_period(lab, fiscal_year_start_month=fy) for lab in snaps["forecast_period"].unique()}
    snaps["t"] = pd.Series(parse_instants(snaps["snapshot_date"], "snapshot_date"), dtype="datetime64[us]")
    pairs = pd.DataFrame({"t": snaps["t"], "label": snaps["forecast_period"],
                          "p_start": [periods[x].start_date for x in snaps["forecast_period"]],
                          "p_end": [periods[x].end_date for x in snaps["forecast_period"]]}).drop_duplicates()
    out = _baseline_engine(deals, pairs, list(dict.fromkeys(keys["scope"])))
    out = out.rename(columns={"label": "forecast_period"})
    k = keys.merge(snaps, on=["snapshot_date", "forecast_period"], how="left")
    return k.merge(out, on=["t", "forecast_period", "scope"], how="left").drop(columns=["t"])


def _summarize(g: pd.DataFrame) -> pd.Series:
    g = g[g["forecast"].notna()]
    ape = g["abs_pct_error"].dropna()
    total = g["actual"].sum()
    return pd.Series({
        "n": int(len(g)),
        "mape": float(ape.mean()) if len(ape) else np.nan,
        "wape": float(g["error"].abs().sum() / total) if total > 0 else np.nan,
        "bias": float(g["error"].sum() / total) if total > 0 else np.nan,
        "hit_rate_10": float((ape <= 0.10).mean()) if len(ape) else np.nan,
    })


def accuracy_summary(accuracy: pd.DataFrame, *, by: str | Sequence[str] = "category") -> pd.DataFrame:
    """MAPE, WAPE, bias and hit rate within 10% per category (or any grouping of the accuracy table).

    Parameters
    ----------
    accuracy : DataFrame
        As returned by :func:`forecast_accuracy`.
    by : str or list of str, default ``"category"``
        Grouping columns, e.g. ``["scope", "category"]``.

    Returns
    -------
    DataFrame
        ``<by>, n, mape, wape, bias, hit_rate_10`` — ``n`` counts every forecast;
        MAPE and the hit rate use the forecasts with an actual > 0; WAPE =
        Σ|error| / Σ actual and bias = Σ error / Σ actual over all of them (NaN
        when Σ actual is 0). For ``by="category"`` this is the published
        ``summary`` table.

    Examples
    --------
    >>> acc = pd.DataFrame({"category": ["commit"] * 3, "forecast": [110.0, 80.0, 5.0],
    ...     "actual": [100.0, 100.0, 0.0], "error": [10.0, -20.0, 5.0], "abs_pct_error": [0.1, 0.2, np.nan]})
    >>> accuracy_summary(acc)
      category  n  mape   wape   bias  hit_rate_10
    0   commit  3  0.15  0.175 -0.025          0.5
    """
    keys = [by] if isinstance(by, str) else list(by)
    cols = keys + SUMMARY_COLUMNS[1:]
    if accuracy.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c in keys else float) for c in cols})
    rows = []
    for k, g in accuracy.groupby(keys, sort=False, dropna=False):
        k = k if isinstance(k, tuple) else (k,)
        rows.append({**dict(zip(keys, k)), **_summarize(g).to_dict()})
    out = pd.DataFrame(rows)
    out["n"] = out["n"].astype("int64")
    for c in ("mape", "wape", "bias", "hit_rate_10"):
        out[c] = out[c].astype(float)
    out = out.sort_values(keys, key=_sort_key, ignore_index=True)
    return out[cols]


def accuracy_by_week(accuracy: pd.DataFrame, *, scope: str | None = None) -> pd.DataFrame:
    """How accuracy converges over the weeks of the period, per kind of period and category.

    Returns
    -------
    DataFrame
        ``kind, category, week_of_period, n, mape, wape, bias, hit_rate_10,
        median_accuracy``; ``scope`` restricts to one scope (default: all).
    """
    from revops_lib.periods import label_kind

    a = accuracy if scope is None else accuracy[accuracy["scope"] == scope]
    a = a.assign(kind=a["forecast_period"].map(label_kind)) if len(a) else a.assign(kind=pd.Series(dtype=object))
    s = accuracy_summary(a, by=["kind", "category", "week_of_period"])
    if len(a):
        med = a.groupby(["kind", "category", "week_of_period"])["accuracy"].median().rename("median_accuracy")
        s = s.merge(med.reset_index(), on=["kind", "category", "week_of_period"], how="left")
    else:
        s["median_accuracy"] = pd.Series(dtype=float)
    return s


def bias_by_scope(accuracy: pd.DataFrame, *, threshold: float = 0.05) -> pd.DataFrame:
    """Who sandbags and who is optimistic: bias per scope and category, with a verdict.

    Returns
    -------
    DataFrame
        ``scope, category, n, mape, wape, bias, hit_rate_10, verdict`` where
        verdict is ``optimistic`` (bias > threshold), ``sandbagging`` (bias <
        -threshold), ``on target`` or ``—`` (bias undefined).
    """
    s = accuracy_summary(accuracy, by=["scope", "category"])
    s["verdict"] = np.select([s["bias"] > threshold, s["bias"] < -threshold, s["bias"].notna()],
                             ["optimistic", "sandbagging", "on target"], default="—")
    return s


def forecast_vs_actual(accuracy: pd.DataFrame, *, scope: str = COMPANY, kind: str | None = None) -> pd.DataFrame:
    """The first and the last call of each period next to its actual, for one scope.

    Returns
    -------
    DataFrame
        ``forecast_period, kind, category, call`` (``first`` / ``last``),
        ``snapshot_date, week_of_period, forecast, actual, abs_pct_error``; the
        first call is the earliest snapshot in week 1 or later, the last call
        the latest snapshot.
    """
    from revops_lib.periods import label_kind

    cols = ["forecast_period", "kind", "category", "call", "snapshot_date", "week_of_period", "forecast", "actual",
            "abs_pct_error"]
    a = accuracy[accuracy["scope"] == scope]
    if a.empty:
        return pd.DataFrame(columns=cols)
    a = a.assign(kind=a["forecast_period"].map(label_kind))
    if kind is not None:
        a = a[a["kind"] == kind]
    a = a.sort_values("snapshot_date")
    inside = a[a["week_of_period"] >= 1]
    first = inside.groupby(["forecast_period", "category"], sort=False).head(1).assign(call="first")
    last = a.groupby(["forecast_period", "category"], sort=False).tail(1).assign(call="last")
    out = pd.concat([first, last], ignore_index=True)
    order = list(dict.fromkeys(accuracy["forecast_period"]))
    out["_o"] = out["forecast_period"].map({p: i for i, p in enumerate(order)})
    out = out.sort_values(["_o", "category", "call"], key=lambda s: _sort_key(s) if s.name == "category" else s,
                          ignore_index=True)
    return out[cols]


def projection(data, *, period, as_of=None, kinds: Sequence[str] | None = None, target_metric: str = "revenue_won",
               fiscal_year_start_month: int = 1, won_stages=None, lost_stages=None) -> pd.DataFrame:
    """Where the periods in progress at ``as_of`` are heading: latest calls, the baseline and the target.

    Parameters
    ----------
    data : Source or source spec
    period : str or Period
        The report period (its kind is always included).
    as_of : date or time, optional (default: the period end)
    kinds : list of {'week', 'month', 'quarter'}, optional
        Kinds of period in progress to project (default: the report's kind,
        month and quarter).

    Returns
    -------
    DataFrame
        ``forecast_period, category, submitted, forecast, won_to_date, target,
        pct_of_target`` — per period in progress (the one holding ``as_of``):
        the latest company-scope forecast of each category submitted before
        ``as_of`` (``submitted`` = its snapshot date) and the kit's baseline at
        ``as_of`` (``submitted`` = the cut-off).
    """
    fy = fiscal_start(fiscal_year_start_month)
    p = as_period(period, fy)
    cut = window(p, as_of, fiscal_year_start_month=fy)[1]
    src = source_of(data, "opportunities")
    kinds = list(dict.fromkeys([p.kind, "month", "quarter"] if kinds is None else kinds))
    qs = [period_of(cut, k, fiscal_year_start_month=fy) for k in kinds]
    cols = ["forecast_period", "category", "submitted", "forecast", "won_to_date", "target", "pct_of_target"]
    deals = deal_rows(data if isinstance(data, DealHistory) else src, won_stages=won_stages, lost_stages=lost_stages,
                   scopes=False)
    pairs = pd.DataFrame({"t": pd.Series([cut] * len(qs), dtype="datetime64[us]"), "label": [q.label for q in qs],
                          "p_start": [q.start_date for q in qs], "p_end": [q.end_date for q in qs]})
    b = _baseline_engine(deals, pairs, [COMPANY]).set_index("label")
    tg = {q.label: v for q in qs if not math.isnan(v := period_target(src, q, target_metric))}
    rows = []
    calls = pd.DataFrame(columns=["snapshot_date", "forecast_period", "category", "amount"])
    if src.has("forecast_snapshots"):
        fs = src.table("forecast_snapshots")
        fs = fs.filter((fs.scope == COMPANY) & fs.forecast_period.isin([q.label for q in qs])
                       & (fs.snapshot_date < date_lit(cut.date())))
        calls = run(fs.select("snapshot_date", "forecast_period", "category", "amount"))
    for q in qs:
        won = float(b.loc[q.label, "won_to_date"]) if q.label in b.index else 0.0
        target = tg.get(q.label, np.nan)
        c = calls[calls["forecast_period"] == q.label].sort_values("snapshot_date")
        for cat, g in sorted(c.groupby("category"), key=lambda x: _sort_key(pd.Series([x[0]], name="category"))[0]):
            last = g.iloc[-1]
            rows.append([q.label, cat, pd.Timestamp(last["snapshot_date"]).date(), float(last["amount"]), won, target,
                         ratio(last["amount"], target)])
        fb = float(b.loc[q.label, "forecast"]) if q.label in b.index else won
        rows.append([q.label, BASELINE, cut.date(), fb, won, target, ratio(fb, target)])
    return pd.DataFrame(rows, columns=cols)
