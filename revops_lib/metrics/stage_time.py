"""Time in deal stage and stuck deals, from ``opportunity_history`` (METRICS.md, "Channels, reps and stages").

Definitions
-----------
- **Stage spell.** ``opportunity_history`` ordered by ``changed_at`` (ties as in
  :mod:`revops_lib.metrics.deal_history`: open before closed stages, then by stage): a deal *enters* a stage
  at its first row in that stage after a row in another stage (or its first row), and *leaves* it at its
  next row in another stage. Rows that change only the amount or the close date do not end a spell. Only
  rows before ``as_of`` count.
- **Time in stage** = days (fractional) from entering to leaving. A spell in a closed stage (a won or lost
  stage, see :func:`revops_lib.metrics.deal_history.closed_stages`) is the deal's end, not a stage it
  spends time in: it is never measured. An open deal's current spell has not ended: it is *censored* at
  ``as_of`` (its time so far is ``as_of`` − entry).
- **Per stage and outcome**: the spells that *left* the stage in the period, by the deal's outcome at the
  period's cut-off (its end, or ``as_of`` when earlier) — ``won`` or ``lost`` (its last stage before the cut-off
  is a won or lost stage) or ``open`` (it moved on and is still open) — and ``all`` of them: ``n``,
  ``median_days`` and ``p90_days``.
- **Percentiles** are linear interpolation between order statistics (numpy's default
  ``np.quantile(x, q, method="linear")``, pandas' ``Series.quantile``, DuckDB's ``quantile_cont``,
  PostgreSQL's ``percentile_cont``): for sorted values x₀ … xₙ₋₁ the q-quantile is
  x_⌊h⌋ + (h − ⌊h⌋)(x_⌊h⌋₊₁ − x_⌊h⌋) with h = (n − 1) q.
- **Stuck deal**: a deal open at the period's cut-off whose current (censored) spell is longer than that stage's
  ``p90_days`` (of the ``all`` row) in the period; listed longest first relative to the p90.

Deals without any history row have no stage spells (their stage times are unknown).
"""

from __future__ import annotations

from typing import Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError
from revops_lib.metrics.common import backend_name, caches, micros, require, run, source_of, us, with_dtypes
from revops_lib.metrics.deal_history import closed_stages
from revops_lib.metrics.lead_funnel import TOTAL
from revops_lib.periods import window

__all__ = ["time_in_stage", "stuck_deals", "stage_time_tables", "stage_spells", "TIME_IN_STAGE_COLUMNS", "OUTCOMES"]

#: The published columns of ``time_in_stage.csv`` (DESIGN.md, "Published tables").
TIME_IN_STAGE_COLUMNS = ["stage", "outcome", "n", "median_days", "p90_days"]

#: Outcomes in the table's order (``all``: every spell that left the stage in the period).
OUTCOMES = ("won", "lost", "open", TOTAL)

_US_PER_DAY = 86_400_000_000.0


def stage_spells(data, *, as_of, won_stages=None, lost_stages=None, by: str | None = None) -> ir.Table:
    """Every stage spell of every deal before ``as_of``, as an Ibis table (the records behind :func:`time_in_stage`).

    Returns
    -------
    Ibis table
        ``opportunity_id, stage, entered_us, left_us`` (null while the spell lasts), ``days`` (to leaving, or
        to ``as_of`` when censored), ``censored``, ``outcome`` (``won``, ``lost`` or ``open`` at ``as_of``)
        and the ``by`` column of ``opportunities`` when given; closed-stage spells are left out.
    """
    src = source_of(data, "opportunity_history")
    require(src, "opportunity_history")
    won, lost = closed_stages(src, won_stages=won_stages, lost_stages=lost_stages) if src.has("opportunities") else (
        tuple(won_stages or ("closed_won",)), tuple(lost_stages or ("closed_lost",)))
    cut = us(as_of)
    h = src.table("opportunity_history")
    backend = backend_name(h)
    closed_l = list(won) + list(lost) or ["\x00"]
    h = h.filter(h.opportunity_id.notnull() & h.changed_at.notnull() & h.stage.notnull())
    h = h.select("opportunity_id", "stage", t=micros(h.changed_at, backend), is_closed=h.stage.isin(closed_l))
    h = h.filter(h.t < cut)
    order = [h.t, h.is_closed, h.stage]
    w = ibis.window(group_by=h.opportunity_id, order_by=order)
    h = h.mutate(prev=h.stage.lag().over(w))
    e = h.filter(h.prev.isnull() | (h.prev != h.stage))
    we = ibis.window(group_by=e.opportunity_id, order_by=[e.t, e.is_closed, e.stage])
    e = e.mutate(left_us=e.t.lead().over(we), seq=ibis.row_number().over(we))
    last = e.filter(e.left_us.isnull()).select(oid=e.opportunity_id, final=e.stage)
    s = e.filter(~e.is_closed)
    s = s.join(last, s.opportunity_id == last.oid)
    outcome = ibis.cases((s.final.isin(list(won) or ["\x00"]), "won"), (s.final.isin(list(lost) or ["\x00"]), "lost"),
                         else_="open")
    end = ibis.coalesce(s.left_us, ibis.literal(cut, "int64"))
    s = s.select(s.opportunity_id, s.stage, entered_us=s.t, left_us=s.left_us,
                 days=(end - s.t).cast("float64") / _US_PER_DAY, censored=s.left_us.isnull(), outcome=outcome)
    if by is not None:
        if not src.has("opportunities"):
            raise ParameterError(f"`by` = `{by}` needs the `opportunities` table.")
        o = src.table("opportunities")
        if by not in ("team", "segment", "owner", "type", "source", "product"):
            raise ParameterError(f"`by` must be a column of `opportunities` such as 'team' or 'segment', not `{by!r}`.")
        oo = o.select(oid2=o.opportunity_id, **{by: o[by].fill_null("unknown")})
        s = s.left_join(oo, s.opportunity_id == oo.oid2).select(*s.columns, **{by: ibis.coalesce(oo[by], "unknown")})
    return s


def _order(stages_seen, stages: Sequence[str]) -> list[str]:
    known = [s for s in stages if s in stages_seen]
    return known + sorted(s for s in stages_seen if s not in set(stages))


def time_in_stage(data, *, period, as_of=None, stages: Sequence[str] = (), by: str | None = None,
                  won_stages=None, lost_stages=None, spells: ir.Table | None = None) -> pd.DataFrame:
    """Median and 90th-percentile days in each deal stage, by outcome, of the spells that ended in the period.

    Parameters
    ----------
    data : Source or source spec
        ``opportunity_history`` (required); ``opportunities`` for the won / lost stages and ``by``.
    period : str or Period
    as_of : date or time, optional
        Exclusive cut-off (default: the period end); spells that left the stage at or after it do not count.
    stages : list of str, optional
        Deal stages in display order (e.g. :data:`revops_lib.metrics.deals.DEFAULT_DEAL_STAGES`); stages not in
        it follow, alphabetically.
    by : str, optional
        A column of ``opportunities`` to split by (``team``, ``segment``, …).
    won_stages, lost_stages : iterable of str, optional
    spells : Ibis table, optional
        :func:`stage_spells` of the same data, cut-off (the earlier of the period end and ``as_of``), won and
        lost stages and ``by`` (computed when absent; :func:`stage_time_tables` shares one between this and
        :func:`stuck_deals`).

    Returns
    -------
    DataFrame
        ``[by], stage, outcome, n, median_days, p90_days`` (:data:`TIME_IN_STAGE_COLUMNS`): per stage, the
        outcomes ``won``, ``lost``, ``open`` that have spells, then ``all``.

    Examples
    --------
    >>> h = pd.DataFrame({"opportunity_id": ["A", "A", "A", "B", "B"],
    ...     "changed_at": pd.to_datetime(["2026-10-01", "2026-10-03", "2026-10-05", "2026-10-01", "2026-10-11"]),
    ...     "stage": ["qualification", "qualification", "closed_won", "qualification", "proposal"]})
    >>> time_in_stage({"opportunity_history": h}, period="2026-10")
               stage outcome  n  median_days  p90_days
    0  qualification     won  1          4.0       4.0
    1  qualification    open  1         10.0      10.0
    2  qualification     all  2          7.0       9.4
    """
    p, cut_as_of = window(period, as_of, period_required=True)
    cut = min(p.end_naive, cut_as_of)
    s = spells if spells is not None else stage_spells(data, as_of=cut, won_stages=won_stages,
                                                         lost_stages=lost_stages, by=by)
    s = s.filter(s.left_us.notnull() & (s.left_us >= us(p.start_naive)) & (s.left_us < us(cut)))
    keys = ([by] if by else []) + ["stage"]

    def agg(t, outcome_col):
        q = t.days.quantile([0.5, 0.9])
        return t.group_by([*keys, outcome_col]).aggregate(n=t.count(), q=q)

    per = agg(s, "outcome")
    tot = agg(s.mutate(outcome=ibis.literal(TOTAL)), "outcome")
    g = run(per.union(tot))
    cols = keys + ["outcome", "n", "median_days", "p90_days"]
    if g.empty:
        out = pd.DataFrame({c: pd.Series(dtype="int64" if c == "n" else "float64" if c.endswith("days") else "str")
                            for c in cols})
        out.attrs.update(period=p.label, as_of=cut_as_of)
        return out
    qs = g["q"].map(lambda v: list(v) if v is not None else [np.nan, np.nan])
    g["median_days"] = qs.map(lambda v: float(v[0])).astype("float64")
    g["p90_days"] = qs.map(lambda v: float(v[1])).astype("float64")
    g["n"] = g["n"].astype("int64")
    order = _order(set(g["stage"]), stages)
    g["_s"] = g["stage"].map({st: i for i, st in enumerate(order)})
    g["_o"] = g["outcome"].map({o: i for i, o in enumerate(OUTCOMES)})
    g = g.sort_values(([by] if by else []) + ["_s", "_o"], ignore_index=True)
    out = with_dtypes(g[cols], {c: "str" for c in keys + ["outcome"]})
    out.attrs.update(period=p.label, as_of=cut_as_of)
    return out


#: The columns of :func:`stuck_deals` and their dtypes, with rows or without.
STUCK_DEAL_DTYPES = {"opportunity_id": "str", "stage": "str", "entered_at": "datetime64[us]",
                     "days_in_stage": "float64", "stage_p90_days": "float64", "times_p90": "float64",
                     "amount": "float64", "close_date": "datetime64[s]", "owner": "str", "team": "str"}


def stuck_deals(data, *, period, as_of=None, times: pd.DataFrame | None = None, stages: Sequence[str] = (),
                won_stages=None, lost_stages=None, spells: ir.Table | None = None) -> pd.DataFrame:
    """Deals open at the cut-off in a stage for longer than that stage's p90 (see the module docstring).

    Parameters
    ----------
    times : DataFrame, optional
        :func:`time_in_stage` of the same period (computed when absent): its ``all`` rows give each stage's p90.
    spells : Ibis table, optional
        :func:`stage_spells` of the same data and cut-off, without ``by`` (as in :func:`time_in_stage`).

    Returns
    -------
    DataFrame
        ``opportunity_id, stage, entered_at, days_in_stage, stage_p90_days, times_p90, amount, close_date, owner,
        team`` (the deal's current values in ``opportunities`` when present), longest first relative to the
        stage's p90.

    >>> h = pd.DataFrame({"opportunity_id": ["A", "A", "B", "B", "C"],
    ...     "changed_at": pd.to_datetime(["2026-10-01", "2026-10-03", "2026-10-02", "2026-10-06", "2026-09-01"]),
    ...     "stage": ["qualification", "proposal", "qualification", "proposal", "qualification"]})
    >>> stuck_deals({"opportunity_history": h}, period="2026-10")[["opportunity_id", "stage", "days_in_stage",
    ...                                                           "stage_p90_days"]]
      opportunity_id          stage  days_in_stage  stage_p90_days
    0              C  qualification           61.0             3.8
    """
    p, cut_as_of = window(period, as_of, period_required=True)
    cut = min(p.end_naive, cut_as_of)
    if times is None:
        times = time_in_stage(data, period=p, as_of=cut_as_of, stages=stages, won_stages=won_stages,
                              lost_stages=lost_stages, spells=spells)
    cols = list(STUCK_DEAL_DTYPES)
    none = pd.DataFrame({c: pd.Series(dtype=t) for c, t in STUCK_DEAL_DTYPES.items()})
    tot = times[(times["outcome"] == TOTAL) & times["p90_days"].notna()]
    if tot.empty:
        return none
    p90 = ibis.memtable(pd.DataFrame({"p_stage": tot["stage"].astype(str), "p90": tot["p90_days"].astype("float64")}))
    s = spells if spells is not None else stage_spells(data, as_of=cut, won_stages=won_stages,
                                                         lost_stages=lost_stages)
    s = s.filter(s.censored)
    j = s.join(p90, s.stage == p90.p_stage)
    j = j.filter(j.days > j.p90).select("opportunity_id", "stage", "entered_us", "days", "p90")
    src = source_of(data, "opportunity_history")
    if src.has("opportunities"):
        o = src.table("opportunities")
        oo = o.select(oid=o.opportunity_id, amount=o.amount, close_date=o.close_date, owner=o.owner, team=o.team)
        j = j.left_join(oo, j.opportunity_id == oo.oid).drop("oid")
    df = run(j)
    if df.empty:
        return none
    for c in ("amount", "close_date", "owner", "team"):
        if c not in df.columns:
            df[c] = None
    df["entered_at"] = pd.to_datetime(df["entered_us"], unit="us")
    df = df.rename(columns={"days": "days_in_stage", "p90": "stage_p90_days"})
    df["times_p90"] = df["days_in_stage"] / df["stage_p90_days"]
    df = df.sort_values(["times_p90", "opportunity_id"], ascending=[False, True], ignore_index=True)
    return with_dtypes(df[cols], STUCK_DEAL_DTYPES)


def stage_time_tables(data, *, period, as_of=None, stages: Sequence[str] = (), won_stages=None,
                      lost_stages=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(time_in_stage(...), stuck_deals(...))`` of one period from one computation of the stage spells.

    Both read the same spells (two window passes over ``opportunity_history``); where the engine caches
    (:func:`revops_lib.metrics.common.caches`) they are materialized once with Ibis's ``cache()`` and released
    after, else each query computes them. The results equal the two calls made separately.
    """
    p, cut_as_of = window(period, as_of, period_required=True)
    cut = min(p.end_naive, cut_as_of)
    spells = stage_spells(data, as_of=cut, won_stages=won_stages, lost_stages=lost_stages)
    cached = None
    if caches(spells):
        cached = spells = spells.cache()
    try:
        times = time_in_stage(data, period=p, as_of=cut_as_of, stages=stages, won_stages=won_stages,
                              lost_stages=lost_stages, spells=spells)
        stuck = stuck_deals(data, period=p, as_of=cut_as_of, times=times, stages=stages, won_stages=won_stages,
                            lost_stages=lost_stages, spells=spells)
    finally:
        if cached is not None:
            cached.release()
    return times, stuck
