"""The pipeline: open pipeline by period, coverage, slippage, the waterfall and actuals (METRICS.md, "Sales").

Built on the point-in-time deal states of :mod:`revops_lib.metrics.deal_history`, whose docstring
writes down the conventions (point-in-time state, closed stages, scopes, coverage, slippage, waterfall).
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

from revops_lib.errors import ParameterError
from revops_lib.metrics.common import (
    check_int,
    date_lit,
    parse_instants,
    ratio,
    require,
    run,
    source_of,
    ts_lit,
)
from revops_lib.metrics.deal_history import (
    COMPANY,
    Calendar,
    DealHistory,
    _calendar,
    _states_at,
    as_dates,
    as_period,
    deal_rows,
    fiscal_start,
    scope_kinds,
    teams_of,
    to_scopes,
)
from revops_lib.metrics.targets import target as period_target
from revops_lib.periods import Period, window

WATERFALL_STEPS = ["starting", "new", "pulled_in", "increased", "won", "lost", "decreased", "pushed_out", "ending"]


def pipeline_snapshots(data, *, dates, by: str | Sequence[str] | None = None, won_stages=None,
                       lost_stages=None) -> pd.DataFrame:
    """Open pipeline (deals and amount) at each date, from the point-in-time state.

    Parameters
    ----------
    data : Source, source spec or DealHistory
    dates : list of dates or times
        Cut-offs; a date means its start (00:00 UTC).
    by : str or list of str, optional
        State columns to split by: ``stage``, ``forecast_category``, ``team``,
        ``owner``, ``close_month`` (``YYYY-MM`` of the planned close date).

    Returns
    -------
    DataFrame
        ``snapshot_date`` (the cut-off, a Timestamp), the ``by`` columns,
        ``deals``, ``amount``; dates without any open deal are absent.

    Examples
    --------
    >>> opps = pd.DataFrame({"opportunity_id": ["a", "b"], "created_at": pd.to_datetime(["2026-01-05", "2026-01-20"]),
    ...     "close_date": [_dt.date(2026, 2, 10), _dt.date(2026, 3, 1)], "is_closed": [True, False],
    ...     "is_won": [True, False], "amount": [100.0, 50.0], "stage": ["closed_won", "proposal"]})
    >>> pipeline_snapshots(opps, dates=["2026-02-01", "2026-03-01"])
      snapshot_date  deals  amount
    0    2026-02-01      2   150.0
    1    2026-03-01      1    50.0
    """
    instants = parse_instants(dates, "dates")
    keys = [by] if isinstance(by, str) else list(by or [])
    allowed = {"stage", "forecast_category", "team", "owner", "close_month"}
    bad = [k for k in keys if k not in allowed]
    if bad:
        raise ParameterError(f"`by` value(s) {bad} not allowed; use any of {sorted(allowed)}.")
    deals = deal_rows(data, won_stages=won_stages, lost_stages=lost_stages, scopes=bool({"team", "owner"} & set(keys)))
    cal = Calendar(instants)
    r = deals.rows.filter(~deals.rows.is_closed)
    if "close_month" in keys:
        r = r.mutate(close_month=r.close_date.strftime("%Y-%m"))
    cov = cal.covering(r, ["amount", *keys])
    g = cov.group_by(["idx", *keys]).aggregate(deals=cov.count(), amount=cov.amount.sum())
    g = g.join(cal.table, "idx").select(snapshot_date=cal.table.t, *[g[k] for k in keys], deals=g.deals,
                                        amount=g.amount)
    g = run(g)
    g["amount"] = g["amount"].astype(float).fillna(0.0)
    g["deals"] = g["deals"].astype("int64")
    g["snapshot_date"] = pd.to_datetime(g["snapshot_date"]).astype("datetime64[us]")
    return g.sort_values(["snapshot_date", *keys], ignore_index=True)[["snapshot_date", *keys, "deals", "amount"]]


def open_pipeline_by_period(data, *, periods, at, fiscal_year_start_month: int = 1, won_stages=None,
                            lost_stages=None) -> pd.DataFrame:
    """Point-in-time open pipeline with planned close date in each period.

    Parameters
    ----------
    data : Source, source spec or DealHistory
    periods : list of str or Period
    at : instant, or a list of instants (one per period)
        When the pipeline is measured (the state of each deal at that instant).

    Returns
    -------
    DataFrame
        ``period, measured_at, deals, amount``: the open deals at ``measured_at`` whose
        close date (as then planned) falls in the period; one row per period, in order.

    Examples
    --------
    >>> opps = pd.DataFrame({"opportunity_id": ["a", "b"], "created_at": pd.to_datetime(["2026-01-05", "2026-01-20"]),
    ...     "close_date": [_dt.date(2026, 2, 10), _dt.date(2026, 3, 1)], "is_closed": [False, False],
    ...     "is_won": [False, False], "amount": [100.0, 50.0], "stage": ["proposal", "proposal"]})
    >>> open_pipeline_by_period(opps, periods=["2026-02", "2026-03"], at="2026-02-01")[["period", "deals", "amount"]]
        period  deals  amount
    0  2026-02      1   100.0
    1  2026-03      1    50.0
    """
    fy = fiscal_start(fiscal_year_start_month)
    ps = [as_period(q, fy) for q in periods]
    ats = list(at) if isinstance(at, (list, tuple, pd.Series, np.ndarray)) else [at] * len(ps)
    if len(ats) != len(ps):
        raise ParameterError(f"`at` gives {len(ats)} instants for {len(ps)} periods: give one, or one per period.")
    instants = parse_instants(ats, "at") if ps else []
    out = pd.DataFrame({"period": [q.label for q in ps],
                        "measured_at": pd.Series(instants, dtype="datetime64[us]")})
    if not ps:
        return out.assign(deals=pd.Series(dtype="int64"), amount=pd.Series(dtype="float64"))
    deals = deal_rows(data, won_stages=won_stages, lost_stages=lost_stages, scopes=False)
    cal = Calendar(instants)
    pm = ibis.memtable(pd.DataFrame({
        "t_idx": pd.Series([cal.pos[t] for t in instants], dtype="int64"), "label": [q.label for q in ps],
        "p_start": pd.Series([pd.Timestamp(q.start_date) for q in ps], dtype="datetime64[us]"),
        "p_end": pd.Series([pd.Timestamp(q.end_date) for q in ps], dtype="datetime64[us]")}))
    pm = pm.mutate(p_start=pm.p_start.cast(dt.date), p_end=pm.p_end.cast(dt.date))
    r = deals.rows
    o = cal.covering(r.filter(~r.is_closed), ["amount", "close_date"])
    o = o.join(pm, [o.idx == pm.t_idx, o.close_date >= pm.p_start, o.close_date < pm.p_end])
    g = run(o.group_by(["t_idx", "label"]).aggregate(deals=o.count(), amount=o.amount.fill_null(0.0).sum()))
    found = {(int(i), lab): (d, a) for i, lab, d, a in zip(g["t_idx"], g["label"], g["deals"], g["amount"])}
    vals = [found.get((cal.pos[t], q.label), (0, 0.0)) for t, q in zip(instants, ps)]
    out["deals"] = pd.Series([int(d) for d, _ in vals], dtype="int64")
    # engines add in any order: drop the float noise below a millionth of a currency unit
    out["amount"] = pd.Series([0.0 if a is None or pd.isna(a) else float(a) for _, a in vals], dtype="float64").round(6)
    return out


def undated_open_deals(data, *, at, won_stages=None, lost_stages=None) -> tuple[int, float]:
    """Open deals at ``at`` (their state then) without an expected close date: ``(deals, amount)``.

    They count in open pipeline and the deal funnel; coverage, the projection, the waterfall and slippage need a
    close date and leave them out — this is how many they leave out.

    Examples
    --------
    >>> opps = pd.DataFrame({"opportunity_id": ["a", "b", "c"],
    ...     "created_at": pd.to_datetime(["2026-01-05", "2026-01-20", "2026-01-21"]),
    ...     "close_date": [_dt.date(2026, 2, 10), None, None], "is_closed": [False, False, False],
    ...     "is_won": [False, False, False], "amount": [100.0, 50.0, 20.0], "stage": ["proposal"] * 3})
    >>> undated_open_deals(opps, at="2026-02-01")
    (2, 70.0)
    """
    t = parse_instants([at], "at")[0]
    deals = deal_rows(data, won_stages=won_stages, lost_stages=lost_stages, scopes=False)
    cal = Calendar([t])
    r = deals.rows
    o = cal.covering(r.filter(~r.is_closed), ["amount", "close_date"])
    o = o.filter(o.close_date.isnull())
    g = run(o.aggregate(deals=o.count(), amount=o.amount.fill_null(0.0).sum()))
    n = int(g["deals"].iloc[0]) if len(g) else 0
    a = g["amount"].iloc[0] if len(g) else 0.0
    return n, 0.0 if a is None or pd.isna(a) else round(float(a), 6)


def coverage(data, *, period, as_of=None, lookback_periods: int = 6, target_metric: str = "revenue_won",
             fiscal_year_start_month: int = 1, won_stages=None, lost_stages=None) -> pd.DataFrame:
    """Pipeline coverage of the report's kind of period: the last periods and the next one.

    Parameters
    ----------
    data : Source or source spec
        ``opportunities`` (+ ``opportunity_history``, ``targets``).
    period : str or Period
        The report period: coverage is shown for it, the ``lookback_periods - 1``
        before it and the next one.
    as_of : date or time, optional (default: the period end)
    target_metric : str, default ``"revenue_won"``
        ``targets.metric`` holding the revenue goal.

    Returns
    -------
    DataFrame
        ``period, measured_at, open_pipeline, target, coverage, won, attainment,
        complete``: ``open_pipeline`` is the point-in-time open pipeline with
        close date in the period at ``measured_at`` (the period start, or
        ``as_of`` if earlier); ``coverage = open_pipeline / target``; ``won``
        the amount won with close date in the period before ``as_of`` (NaN
        for a period not started by then); ``attainment = won / target``;
        ``complete`` whether the period ended by ``as_of``. Ratios are NaN without a positive target.
    """
    fy = fiscal_start(fiscal_year_start_month)
    p = as_period(period, fy)
    cut = window(p, as_of, fiscal_year_start_month=fy)[1]
    n = check_int(lookback_periods, "lookback_periods")
    src = source_of(data, "opportunities")
    qs = p.trailing(n) + [p.next()]
    deals = deal_rows(data if isinstance(data, DealHistory) else src, won_stages=won_stages, lost_stages=lost_stages,
                   scopes=False)
    b = open_pipeline_by_period(deals, periods=qs, at=[min(q.start_naive, cut) for q in qs],
                                fiscal_year_start_month=fy)
    won = actuals(src, periods=qs, scopes=[COMPANY], as_of=cut, fiscal_year_start_month=fy)
    tg = {q.label: v for q in qs if not math.isnan(v := period_target(src, q, target_metric))}
    out = b[["period", "measured_at"]].copy()
    out["open_pipeline"] = b["amount"]
    out["target"] = out["period"].map(tg).astype(float)
    out["coverage"] = [ratio(a, t) for a, t in zip(out["open_pipeline"], out["target"])]
    out["won"] = out["period"].map(dict(zip(won["forecast_period"], won["actual"]))).astype(float)
    started = [q.start_naive < cut for q in qs]
    out["won"] = out["won"].where(started)
    out["attainment"] = [ratio(a, t) for a, t in zip(out["won"], out["target"])]
    out["complete"] = [q.end_naive <= cut for q in qs]
    out["measured_at"] = pd.to_datetime(out["measured_at"])
    return out


def _in_period(r: ir.Table, p: Period) -> ir.Value:
    return (~r.is_closed & r.close_date.notnull() & (r.close_date >= date_lit(p.start_date))
            & (r.close_date < date_lit(p.end_date))).fill_null(False)


def _window_cut(p: Period, cut: pd.Timestamp) -> pd.Timestamp:
    return min(max(cut, p.start_naive), p.end_naive)


def slippage(data, *, period, as_of=None, fiscal_year_start_month: int = 1, won_stages=None,
             lost_stages=None) -> pd.DataFrame:
    """Deals that were due in the period at its start and were neither won nor lost in it.

    Parameters
    ----------
    data : Source or source spec
    period : str or Period
    as_of : date or time, optional
        The end of the window (default and at most: the period end).

    Returns
    -------
    DataFrame
        ``opportunity_id, team, owner, stage, amount, close_date_at_start,
        close_date, status, pushes, total_pushes``, largest amount first:
        ``stage``/``amount``/``close_date`` at the cut-off; ``status`` is
        ``pushed out`` (close date now after the period), ``overdue`` (still
        due in the period but not closed) or ``moved earlier``; ``pushes`` =
        close-date changes to a later date during the period, ``total_pushes``
        before the cut-off. ``.attrs``: ``count``, ``amount``,
        ``starting_count``, ``starting_amount`` (the pipeline due at the start)
        and ``rate`` (slipped amount / starting amount).
    """
    fy = fiscal_start(fiscal_year_start_month)
    p = as_period(period, fy)
    cut = _window_cut(p, window(p, as_of, fiscal_year_start_month=fy)[1])
    deals = deal_rows(data, won_stages=won_stages, lost_stages=lost_stages)
    r = deals.rows
    pushes = push_counts(r, cut=cut, since=p.start_naive)
    cal = _calendar([p.start_naive])
    s0 = _states_at(r, cal)
    s0 = s0.filter(_in_period(s0, p)).select("opportunity_id", a0=s0.amount, c0=s0.close_date)
    s1 = _states_at(r, _calendar([cut]))
    j = s0.join(s1, "opportunity_id")
    start_stats = run(s0.aggregate(n=s0.count(), amount=s0.a0.sum())).iloc[0]
    j = j.filter(~j.is_closed)
    j = j.left_join(pushes, "opportunity_id").select(
        "opportunity_id", "team", "owner", "stage", "amount", close_date_at_start=j.c0, close_date=j.close_date,
        pushes=pushes.pushes.fill_null(0), total_pushes=pushes.total_pushes.fill_null(0))
    df = run(j)
    df["close_date_at_start"] = as_dates(df["close_date_at_start"])
    df["close_date"] = as_dates(df["close_date"])
    cd = pd.to_datetime(df["close_date"])
    df["status"] = np.select([cd >= pd.Timestamp(p.end_date), cd < pd.Timestamp(p.start_date)],
                             ["pushed out", "moved earlier"], default="overdue")
    df["amount"] = df["amount"].astype(float)
    for c in ("pushes", "total_pushes"):
        df[c] = df[c].astype("int64")
    df = df.sort_values(["amount", "opportunity_id"], ascending=[False, True], ignore_index=True)
    df = df[["opportunity_id", "team", "owner", "stage", "amount", "close_date_at_start", "close_date", "status",
             "pushes", "total_pushes"]]
    s_amt = float(start_stats["amount"] or 0.0)
    df.attrs.update(count=len(df), amount=float(df["amount"].sum()), starting_count=int(start_stats["n"]),
                    starting_amount=s_amt, rate=ratio(df["amount"].sum(), s_amt))
    return df


#: The per-deal change columns of :func:`waterfall_steps` and the waterfall step each adds to.
WATERFALL_PARTS = {"s_new": "new", "s_pulled": "pulled_in", "s_inc": "increased", "s_won": "won", "s_lost": "lost",
                   "s_dec": "decreased", "s_push": "pushed_out"}


def waterfall_steps(data, p: Period, cut: pd.Timestamp, *, won_stages=None,
                    lost_stages=None) -> tuple[ir.Table, ir.Table]:
    """The engine tables behind :func:`pipeline_waterfall` (and its records): ``(u, c)``.

    ``u``: each deal's state at the period start (``is_init``) and its changes in ``[start, cut)``, with
    ``inn`` (open and due in the period), ``cents`` (amount in whole cents) and their ordering columns;
    ``c``: the changes, each with the cents it adds to the steps of :data:`WATERFALL_PARTS` (0 for none).
    """
    deals = deal_rows(data, won_stages=won_stages, lost_stages=lost_stages, scopes=False)
    r = deals.rows
    start = ts_lit(p.start_naive)
    init = r.filter((r.changed_at < start) & (r.valid_to >= start)).mutate(is_init=ibis.literal(True))
    chg = r.filter((r.changed_at >= start) & (r.changed_at < ts_lit(cut))).mutate(is_init=ibis.literal(False))
    u = init.union(chg, distinct=False)
    inside = (u.close_date.notnull() & (u.close_date >= date_lit(p.start_date))
              & (u.close_date < date_lit(p.end_date))).fill_null(False)
    u = u.mutate(inn=inside & ~u.is_closed, due=inside,
                 cents=(u.amount.fill_null(0.0) * 100).round().cast("int64"))
    w = ibis.window(group_by=u.opportunity_id, order_by=[u.changed_at, u.seq])
    u = u.mutate(p_in=u.inn.lag().over(w), p_cents=u.cents.lag().over(w), p_closed=u.is_closed.lag().over(w),
                 has_prev=ibis.row_number().over(w) > 0)
    c = u.filter(~u.is_init)
    p_in = c.p_in.fill_null(False)
    lands = c.is_closed & c.due & ~c.p_closed.fill_null(False)
    first = ~c.has_prev
    delta = c.cents - c.p_cents.fill_null(0)
    exit_ = c.has_prev & p_in & ~c.inn
    entry = c.has_prev & ~p_in & (c.inn | lands)
    born = first & (c.inn | lands)
    closes = (exit_ & c.is_closed) | ((entry | born) & lands)
    zero = ibis.literal(0, "int64")
    c = c.mutate(
        s_new=ibis.ifelse(born, c.cents, zero),
        s_pulled=ibis.ifelse(entry, c.cents, zero),
        s_inc=ibis.ifelse(c.has_prev & p_in & (delta > 0), delta, zero),
        s_dec=ibis.ifelse(c.has_prev & p_in & (delta < 0), -delta, zero),
        s_won=ibis.ifelse(closes & c.is_won, c.cents, zero),
        s_lost=ibis.ifelse(closes & ~c.is_won, c.cents, zero),
        s_push=ibis.ifelse(exit_ & ~c.is_closed, c.cents, zero),
    )
    return u, c


def pipeline_waterfall(data, *, period, as_of=None, fiscal_year_start_month: int = 1, won_stages=None,
                       lost_stages=None) -> pd.DataFrame:
    """The period's pipeline waterfall: starting, new, pulled in, increased, won, lost, decreased, pushed out, ending.

    Parameters
    ----------
    data : Source or source spec
    period : str or Period
    as_of : date or time, optional
        End of the window (default and at most: the period end).

    Returns
    -------
    DataFrame
        ``step, amount`` with the nine steps in that order (amounts positive;
        the won, lost, decreased and pushed-out steps are subtracted). Sums are
        taken in whole cents, so the identity holds exactly; ``ending`` equals
        the open pipeline with close date in the period at the cut-off.
        ``.attrs['deals']`` gives the number of deals behind each step.

    Examples
    --------
    >>> opps = pd.DataFrame({"opportunity_id": ["a", "b"], "created_at": pd.to_datetime(["2026-09-01", "2026-10-03"]),
    ...     "close_date": [_dt.date(2026, 10, 20), _dt.date(2026, 10, 25)], "is_closed": [True, False],
    ...     "is_won": [True, False], "amount": [100.0, 40.0], "stage": ["closed_won", "proposal"]})
    >>> pipeline_waterfall(opps, period="2026-10").set_index("step")["amount"].to_dict()
    {'starting': 100.0, 'new': 40.0, 'pulled_in': 0.0, 'increased': 0.0, 'won': 100.0, 'lost': 0.0, 'decreased': 0.0, 'pushed_out': 0.0, 'ending': 40.0}
    """
    fy = fiscal_start(fiscal_year_start_month)
    p = as_period(period, fy)
    cut = _window_cut(p, window(p, as_of, fiscal_year_start_month=fy)[1])
    u, c = waterfall_steps(data, p, cut, won_stages=won_stages, lost_stages=lost_stages)
    parts = tuple(WATERFALL_PARTS)
    agg = c.group_by("opportunity_id").aggregate(**{k: c[k].sum() for k in parts})
    res = run(agg.aggregate(**{k: agg[k].sum() for k in parts},
                             **{f"n_{k}": ibis.ifelse(agg[k] != 0, 1, 0).sum() for k in parts})).iloc[0]
    i0 = u.filter(u.is_init & u.inn)
    st = run(i0.aggregate(cents=i0.cents.sum(), n=i0.count())).iloc[0]
    cents = {"starting": int(st["cents"] or 0)}
    counts = {"starting": int(st["n"] or 0)}
    for k, name in WATERFALL_PARTS.items():
        cents[name] = int(res[k] or 0) if not pd.isna(res[k]) else 0
        counts[name] = int(res[f"n_{k}"] or 0) if not pd.isna(res[f"n_{k}"]) else 0
    return waterfall_frame(cents, counts, p.label, cut)


def waterfall_frame(cents: dict, counts: dict, label: str, cut) -> pd.DataFrame:
    """The published waterfall from each step's whole cents and deal count (``starting`` and the parts of
    :data:`WATERFALL_PARTS`): ``ending`` by the identity, in cents and on the published amounts (left to right).
    Shared by :func:`pipeline_waterfall` and :func:`revops_lib.metrics.records.waterfall_of_records`."""
    cents = dict(cents)
    amounts = {k: v / 100 for k, v in cents.items()}
    a = amounts
    # the identity, evaluated left to right on the published values
    amounts["ending"] = (a["starting"] + a["new"] + a["pulled_in"] + a["increased"] - a["won"] - a["lost"]
                         - a["decreased"] - a["pushed_out"])
    cents["ending"] = (cents["starting"] + cents["new"] + cents["pulled_in"] + cents["increased"] - cents["won"]
                       - cents["lost"] - cents["decreased"] - cents["pushed_out"])
    df = pd.DataFrame({"step": WATERFALL_STEPS, "amount": [float(amounts[s]) for s in WATERFALL_STEPS]})
    df.attrs.update(cents=cents, deals=dict(counts), period=label, cut=cut)
    return df


def _period_table(periods: Sequence[Period]) -> ir.Table:
    return ibis.memtable(pd.DataFrame({
        "label": [p.label for p in periods],
        "p_start": pd.Series([pd.Timestamp(p.start_date) for p in periods], dtype="datetime64[us]"),
        "p_end": pd.Series([pd.Timestamp(p.end_date) for p in periods], dtype="datetime64[us]"),
    })).mutate(p_start=lambda t: t.p_start.cast(dt.date), p_end=lambda t: t.p_end.cast(dt.date))


def actuals(data, *, periods, scopes: Iterable[str] = (COMPANY,), as_of=None,
            fiscal_year_start_month: int = 1) -> pd.DataFrame:
    """Won amount per forecast period and scope (METRICS.md "Actual").

    Parameters
    ----------
    data : Source, source spec, or the ``opportunities`` table (Ibis or pandas)
        Columns used: ``is_won``, ``close_date``, ``amount``, ``team``, ``owner``.
    periods : iterable of period labels or Periods
    scopes : iterable of str
        ``company`` (all deals), team names or owner names (a scope that is no
        team is matched to the owner).
    as_of : date or time, optional
        When given, only deals with a close date before ``as_of``'s date count
        (won to date); by default the whole period counts.
    fiscal_year_start_month : int
        Shifts quarter labels.

    Returns
    -------
    DataFrame
        ``forecast_period, scope, actual`` — every period × scope, 0.0 when
        nothing was won.

    Examples
    --------
    >>> opps = pd.DataFrame({"opportunity_id": ["a", "b", "c"], "created_at": pd.to_datetime(["2026-01-05"] * 3),
    ...     "close_date": [_dt.date(2026, 2, 10), _dt.date(2026, 2, 28), _dt.date(2026, 3, 1)],
    ...     "is_closed": [True, True, True], "is_won": [True, True, True], "amount": [100.0, 50.0, 7.0],
    ...     "team": ["smb", "ent", "smb"]})
    >>> actuals(opps, periods=["2026-02", "2026-Q1"], scopes=["company", "smb"])
      forecast_period    scope  actual
    0         2026-02  company   150.0
    1         2026-02      smb   100.0
    2         2026-Q1  company   157.0
    3         2026-Q1      smb   107.0
    """
    fy = fiscal_start(fiscal_year_start_month)
    ps = [as_period(p, fy) for p in periods]
    scopes = list(dict.fromkeys(scopes))
    src = source_of(data, "opportunities")
    require(src, "opportunities")
    if not ps or not scopes:
        return pd.DataFrame({"forecast_period": pd.Series(dtype=object), "scope": pd.Series(dtype=object),
                             "actual": pd.Series(dtype=float)})
    kinds = scope_kinds(scopes, teams_of(src))
    o = src.table("opportunities")
    pt = _period_table(ps)
    won = o.filter(o.is_won.fill_null(False) & o.close_date.notnull())
    if as_of is not None:
        won = won.filter(won.close_date < date_lit(window(None, as_of)[1].date()))
    j = won.join(pt, [won.close_date >= pt.p_start, won.close_date < pt.p_end])
    g = run(j.group_by([j.label, j.team, j.owner]).aggregate(actual=j.amount.sum()))
    g["actual"] = g["actual"].astype(float).fillna(0.0)
    out = to_scopes(g, ["label"], ["actual"], kinds)
    grid = pd.MultiIndex.from_product([[p.label for p in ps], scopes], names=["label", "scope"]).to_frame(index=False)
    out = grid.merge(out, on=["label", "scope"], how="left")
    # engines add in any order: drop the float noise below a millionth of a currency unit
    out["actual"] = out["actual"].astype(float).fillna(0.0).round(6)
    out = out.rename(columns={"label": "forecast_period"})[["forecast_period", "scope", "actual"]]
    return out.astype({"forecast_period": "str", "scope": "str"})


def push_counts(rows: ir.Table, *, cut, since=None) -> ir.Table:
    """Per deal, the changes of its close date to a later date (*pushes*), as an engine table.

    ``rows`` are a deal's state rows (:attr:`DealHistory.rows`, or the typed ``opportunity_history``)
    ordered by ``changed_at`` (then ``seq`` when present); a row without a close date keeps the one
    before (so it pushes nothing). Returns ``opportunity_id, pushes, total_pushes, first_close_date,
    latest_close_date``: ``pushes`` counts the pushes made in ``[since, cut)`` (before ``cut`` without
    ``since``), ``total_pushes`` those before ``cut``; the close dates are the first and latest before
    ``cut``. The one definition of a push, for slippage and the data-quality list alike.
    """
    r = rows.filter(rows.close_date.notnull())
    order = [r.changed_at] + ([r.seq] if "seq" in r.columns else [])
    w = ibis.window(group_by=r.opportunity_id, order_by=order)
    r = r.mutate(pushed=(r.close_date > r.close_date.lag().over(w)).fill_null(False))
    r = r.filter(r.changed_at < ts_lit(cut))
    in_window = r.pushed if since is None else r.pushed & (r.changed_at >= ts_lit(since))
    return r.group_by("opportunity_id").aggregate(
        pushes=ibis.ifelse(in_window, 1, 0).sum(), total_pushes=ibis.ifelse(r.pushed, 1, 0).sum(),
        first_close_date=r.close_date.argmin(r.changed_at), latest_close_date=r.close_date.argmax(r.changed_at))
