"""Deal history and the pipeline: point-in-time states, coverage, slippage and the waterfall.


The point-in-time building block of the ``forecast_accuracy`` report (the accuracy and the baseline
forecast are in :mod:`revops_lib.metrics.forecast`). Definitions follow
METRICS.md ("Sales" and "Forecast accuracy"); what METRICS.md leaves open is
decided here, once, and written down below.

Inputs
------
Every function takes ``data`` first: a :class:`~revops_lib.sources.Source`,
anything :func:`~revops_lib.sources.open_source` accepts (a folder, a
``.duckdb`` file, an Ibis URL, a dict of pandas DataFrames or Ibis tables keyed
by table name) or, for functions that need one table only, that table as an
Ibis table or pandas DataFrame. Tables used: ``opportunities`` (required),
``opportunity_history`` (point-in-time state; optional), ``forecast_snapshots``
(accuracy), ``targets`` (coverage, projection). The heavy work (history
windows, interval joins against the snapshot calendar, group-bys) runs in the
source's engine (DuckDB, PostgreSQL, ...); results come back as small pandas
DataFrames.

Conventions (decided here)
--------------------------
- **Point-in-time state.** A deal's state at a cut-off instant *t* is its
  ``opportunity_history`` row with the latest ``changed_at`` *before* *t*
  (the row holds over ``[changed_at, next changed_at)``): METRICS.md's "latest
  ``changed_at`` <= t" read with the kit's exclusive cut-off, so that an event
  counts when its time is before the cut-off, everywhere in the kit. Rows with
  the same ``(opportunity_id, changed_at)`` are ordered open before closed, then
  by stage, amount, close date; the last one is the state. A null ``amount``,
  ``close_date`` or ``forecast_category`` in a history row carries the deal's
  previous non-null value forward (the current ``opportunities`` value when
  there is none). A deal exists from its first history row on.
- **Deals without history** fall back to ``opportunities``: open from
  ``created_at`` with the current stage, amount and close date; a closed deal
  is open (stage unknown) until the end of its ``close_date`` and closed, won
  or lost, from then on (a date counts when it is before the cut-off's date).
- **At a snapshot date d** means at the start of day *d* (00:00 UTC): a
  forecast submitted on *d* cannot know anything of day *d*, so only changes
  strictly before *d* count. The baseline, the coverage, slippage and the
  waterfall all use this rule (a period's start is the start of its first day).
- **Closed stages.** A history row is won when its stage is a *won stage* and
  lost when it is a *lost stage*. By default the won stages are
  ``closed_won`` plus the ``stage`` values of won opportunities, the lost
  stages ``closed_lost`` plus those of lost opportunities; a stage that an open
  opportunity also has is never a closed stage. Pass ``won_stages`` /
  ``lost_stages`` to set them.
- **Scopes.** A forecast's ``scope`` is ``company`` (every deal), a team (the
  scope equals ``opportunities.team`` of some deal) or else an owner (matched
  to ``opportunities.owner``). Team and owner are the deal's current ones. A
  scope that matches no deal has an actual of zero.
- **Actual** for (forecast_period, scope) = Σ ``amount`` of opportunities with
  ``is_won`` and ``close_date`` in the period, for that scope.
- **In view**: every forecast period that ended on or before ``as_of`` (period
  end <= as_of), at most the last ``lookback_periods`` of them *per kind of
  label* (months, quarters and ISO weeks separately); every snapshot of those
  periods dated before ``as_of``'s date; every scope and category.
- **Undefined percentages.** With an actual of zero the absolute percentage
  error and the accuracy are undefined (NaN, shown as "—"); such forecasts
  count in ``n``, WAPE and bias (numerator only) but not in MAPE or the hit
  rate. A ratio whose denominator is zero is NaN, never infinite.
- **Week of period** = 1 + floor(days from the period's first day to the
  snapshot date / 7): days 0-6 are week 1; a snapshot before the period starts
  has a week of 0 or less.
- **Baseline forecast** at a snapshot date *d* for a period and scope =
  won-to-date (deals in the scope whose state at *d* is won with a close date
  in the period) + Σ over deals open at *d* with a close date (at *d*) in the
  period of amount (at *d*) × the win rate of their stage (at *d*). The **win
  rate of stage s at d** = won / closed among the deals whose state at *d* is
  closed and that were in stage *s* at some time before *d* (by count). A
  stage without such a deal, or a deal without a stage, uses the overall rate
  (won / closed among all deals closed at *d*); before any deal has closed the
  rate is 0. Only data before *d* is used: changing or adding data from *d* on
  never changes the baseline at *d*.
- **Coverage** of a period = open pipeline with close date in it / its target
  (``targets`` row of the period label with ``metric`` = ``target_metric``,
  default ``revenue_won``, and no segment; the sum of the segment rows when
  there is no total). It is measured at the period's start, or at ``as_of``
  when that is earlier (the next period's coverage at the report's cut-off).
- **Slippage** of a period: deals open at its start with a close date in it,
  and still open at its end (or ``as_of``): neither won nor lost in the
  period. ``pushes`` counts the history changes in the period that moved the
  close date later; ``total_pushes`` those before the cut-off.
- **Waterfall** of a period, over the deals' changes in ``[start, cut-off)``:
  starting = open pipeline with close date in the period at its start; each
  change of a deal moves it in or out of that set or changes its amount:
  ``new`` (first state of a deal created in the period, in the set),
  ``pulled_in`` (entered the set: close date moved into the period, or a deal
  reopened), ``increased`` / ``decreased`` (amount changes while in the set,
  including the change made by the row that takes the deal out), ``won`` /
  ``lost`` (left the set by closing), ``pushed_out`` (left the set open: close
  date moved out of the period, almost always past its end). A deal closed in
  the period with a close date in it that was not in the set just before is
  pulled in and won (or lost) by the same change. Amounts are summed in whole
  cents, so ``ending = starting + new + pulled_in + increased - won - lost -
  decreased - pushed_out`` holds exactly (in cents, and for the published
  amounts evaluated left to right), and ending equals the open pipeline with
  close date in the period at the cut-off.

Performance
-----------
Snapshot calendars are handled without a calendar × deals product: each
history row's validity interval is turned into the range of calendar indices
it covers (a hash lookup by day for calendars of whole days, an as-of join
otherwise), win-rate counts are cumulative sums of +1/-1 events, and the stages
a deal has been in are a bit mask carried by the history window. With
:func:`prepare` the deal rows are computed once per report (a temporary table
in the engine). At 2.5 million history rows (demo scale 100) the pipeline and
baseline of ~150 weekly snapshots take a few seconds on 2 cores
(``bench/forecast.py``).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
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
from revops_lib.metrics.targets import target as period_target
from revops_lib.periods import Period, parse_period, window
from revops_lib.sources import Source

WATERFALL_STEPS = ["starting", "new", "pulled_in", "increased", "won", "lost", "decreased", "pushed_out", "ending"]


COMPANY = "company"


FAR_FUTURE = _dt.datetime(2999, 12, 31)


_FAR_PAST = _dt.datetime(1000, 1, 1)


TS = dt.Timestamp()


def fiscal_start(fiscal_year_start_month) -> int:
    return parse_period("2000-01", fiscal_year_start_month=fiscal_year_start_month).fiscal_year_start_month


def as_period(period, fiscal_year_start_month=1) -> Period:
    if period is None or (isinstance(period, str) and not period.strip()):
        raise ParameterError("`period` is required: give a label such as 2026-10, 2026-Q4 or 2026-W44.")
    if isinstance(period, Period):
        return period
    return parse_period(period, fiscal_year_start_month=fiscal_year_start_month)


def closed_stages(data, *, won_stages: Iterable[str] | None = None,
                  lost_stages: Iterable[str] | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The stage values that mean won and lost (see the module docstring).

    Parameters
    ----------
    data : Source, source spec, or the ``opportunities`` table (Ibis or pandas)
        Columns used: ``stage``, ``is_closed``, ``is_won``.
    won_stages, lost_stages : iterable of str, optional
        Given sets are returned as they are; a missing one is inferred.

    Returns
    -------
    (won, lost) : tuple of tuples of str

    Examples
    --------
    >>> opps = pd.DataFrame({"opportunity_id": ["a", "b", "c"], "created_at": pd.to_datetime(["2026-01-01"] * 3),
    ...                      "close_date": [_dt.date(2026, 2, 1)] * 3, "is_closed": [True, True, False],
    ...                      "is_won": [True, False, False], "amount": [1.0, 2.0, 3.0],
    ...                      "stage": ["Closed Won", "Closed Lost", "Proposal"]})
    >>> closed_stages(opps)
    (('Closed Won', 'closed_won'), ('Closed Lost', 'closed_lost'))
    """
    if won_stages is not None and lost_stages is not None:
        return tuple(won_stages), tuple(lost_stages)
    src = source_of(data, "opportunities")
    require(src, "opportunities")
    o = src.table("opportunities")
    o = o.filter(o.stage.notnull())
    g = run(o.group_by(["stage", "is_closed", "is_won"]).aggregate(n=o.count()))
    open_ = set(g.loc[~g["is_closed"].fillna(False).astype(bool), "stage"])
    closed = g[g["is_closed"].fillna(False).astype(bool)]
    won = (set(closed.loc[closed["is_won"].fillna(False).astype(bool), "stage"]) | {"closed_won"}) - open_
    lost = (set(closed.loc[~closed["is_won"].fillna(False).astype(bool), "stage"]) | {"closed_lost"}) - open_ - won
    return (tuple(sorted(won)) if won_stages is None else tuple(won_stages),
            tuple(sorted(lost)) if lost_stages is None else tuple(lost_stages))


@dataclass(eq=False)
class DealHistory:
    """The deals of a source as point-in-time rows, reusable across queries (see :func:`prepare`).

    ``rows`` is an Ibis table with one row per state of a deal, valid over
    ``[changed_at, valid_to)``: ``opportunity_id, changed_at, valid_to, stage,
    amount, close_date, forecast_category, is_closed, is_won, seq`` (0 = the
    deal's first row) and, when prepared with scopes, ``team, owner``.
    Every function of this module accepts a DealHistory as ``data``.
    """

    source: Source
    rows: ir.Table
    won_stages: tuple[str, ...]
    lost_stages: tuple[str, ...]
    teams: frozenset = frozenset()
    with_scopes: bool = True
    materialized: bool = False
    stage_bits: dict | None = None  # open stage -> bit of ``rows.seen``; None: too many stages for a mask

    def release(self) -> None:
        """Drop the engine-side copy made by ``prepare(materialize=True)``."""
        if self.materialized and hasattr(self.rows, "release"):
            try:
                self.rows.release()
            except Exception:  # pragma: no cover - already gone
                pass
            self.materialized = False

    def __enter__(self) -> "DealHistory":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return (f"<DealHistory of {self.source.description}: won stages {list(self.won_stages)}, "
                f"lost stages {list(self.lost_stages)}{', materialized' if self.materialized else ''}>")


def prepare(data, *, won_stages=None, lost_stages=None, scopes: bool = True, materialize: bool = True) -> DealHistory:
    """Build the point-in-time deal rows once, to run several computations on them.

    Parameters
    ----------
    data : Source or source spec
        ``opportunities`` (required) and ``opportunity_history`` (optional).
    won_stages, lost_stages : iterable of str, optional
        Stage values meaning won / lost (default: inferred, see :func:`closed_stages`).
    scopes : bool, default True
        Carry each deal's ``team`` and ``owner`` (needed for team or owner scopes).
    materialize : bool, default True
        Compute the rows once in the engine (a temporary table) instead of in
        every query; call :meth:`DealHistory.release` (or use ``with``) when done.

    Returns
    -------
    DealHistory

    Examples
    --------
    >>> with prepare("data/demo") as deals:                                  # doctest: +SKIP
    ...     pipe = pipeline_snapshots(deals, dates=["2026-10-05", "2026-10-12"])
    ...     base = baseline_forecast(deals, snapshots=snaps)
    """
    d = deal_rows(data, won_stages=won_stages, lost_stages=lost_stages, scopes=scopes)
    if materialize and not d.materialized:
        try:
            d.rows = d.rows.cache()
            d.materialized = True
        except Exception:  # a backend without temporary tables: compute in every query instead
            pass
    return d


def deal_rows(data, *, won_stages=None, lost_stages=None, scopes: bool = True) -> DealHistory:
    if isinstance(data, DealHistory):
        if scopes and not data.with_scopes:
            raise ParameterError("This DealHistory was prepared with `scopes`=False; team and owner scopes need "
                                 "prepare(data, scopes=True).")
        return data
    src = source_of(data, "opportunities")
    require(src, "opportunities")
    won, lost = closed_stages(src, won_stages=won_stages, lost_stages=lost_stages)
    o = src.table("opportunities")
    out = ["opportunity_id", "changed_at", "valid_to", "stage", "amount", "close_date", "forecast_category",
           "is_closed", "is_won", "seq", "seen"] + (["team", "owner"] if scopes else [])
    far = ibis.timestamp(FAR_FUTURE)
    parts = []
    stage_bits: dict | None = {}
    if src.has("opportunity_history"):
        h = src.table("opportunity_history")
        h = h.filter(h.opportunity_id.notnull())
        won_l = list(won) or ["\x00"]
        closed_l = list(won) + list(lost) or ["\x00"]
        h = h.select("opportunity_id", "stage", "amount", "close_date", "forecast_category",
                     changed_at=h.changed_at.cast(TS), is_closed=h.stage.isin(closed_l).fill_null(False),
                     is_won=h.stage.isin(won_l).fill_null(False))
        # One sort per deal and time gives each row its successor (valid_to), its rank (seq) and the set of
        # open stages the deal has been in so far (seen: a bit mask, for the stage win rates). Rows without
        # a time sort last in their deal and are never a state (changed_at < t is never true). Ties on
        # changed_at: open before closed, then stage, amount, close date.
        order = [h.changed_at, h.is_closed, h.stage, h.amount, h.close_date]
        w_all = ibis.window(group_by=h.opportunity_id, order_by=order)
        w_cum = ibis.window(group_by=h.opportunity_id, order_by=order, preceding=None, following=0)
        info = run(h.group_by("stage").aggregate(
            a=h.amount.isnull().sum(), c=h.close_date.isnull().sum(), f=h.forecast_category.isnull().sum()))
        fill = [c for c in ("a", "c", "f") if int(info[c].fillna(0).sum())]
        fill = [{"a": "amount", "c": "close_date", "f": "forecast_category"}[c] for c in fill]
        open_stages = sorted(x for x in info["stage"].dropna() if x not in set(won) | set(lost))
        stage_bits = {st: 1 << i for i, st in enumerate(open_stages)} if len(open_stages) <= 62 else None
        seen = {}
        if stage_bits:
            bit = h.stage.cases(*[(st, ibis.literal(b, "int64")) for st, b in stage_bits.items()],
                                else_=ibis.literal(0, "int64"))
            seen = {"seen": bit.bit_or().over(w_cum)}
        h = h.mutate(valid_to=h.changed_at.lead().over(w_all).fill_null(far), seq=ibis.row_number().over(w_all),
                     **seen, **{f"_g_{c}": h[c].count().over(w_cum) for c in fill})
        if fill:  # forward-fill nulls of the sparse columns: the deal's previous non-null value
            h = h.mutate(**{c: h[c].max().over(ibis.window(group_by=[h.opportunity_id, h[f"_g_{c}"]]))
                            for c in fill}).drop(*[f"_g_{c}" for c in fill])
        if scopes or fill:  # team and owner; the current value where the history has none yet
            oo = o.select("opportunity_id", "team", "owner", o_amount="amount", o_close_date="close_date",
                          o_forecast_category="forecast_category")
            h = h.left_join(oo, "opportunity_id").select(
                "opportunity_id", "changed_at", "valid_to", "stage",
                amount=ibis.coalesce(h.amount, oo.o_amount), close_date=ibis.coalesce(h.close_date, oo.o_close_date),
                forecast_category=ibis.coalesce(h.forecast_category, oo.o_forecast_category),
                is_closed=h.is_closed, is_won=h.is_won, seq=h.seq,
                seen=h.seen if "seen" in h.columns else ibis.literal(0, "int64"), team=oo.team, owner=oo.owner)
        if "seen" not in h.columns:
            h = h.mutate(seen=ibis.literal(0, "int64"))
        parts.append(h.select(out))
        ids = src.table("opportunity_history").select("opportunity_id")
        no_hist = o.anti_join(ids.filter(ids.opportunity_id.notnull()), "opportunity_id")
    else:
        no_hist = o
    # deals without history: open from created_at (current stage, amount, close date); a closed deal is
    # closed from the end of its close date on. One row (k=0), or two for a closed deal (k=1: the close).
    closed = no_hist.is_closed.fill_null(False) & no_hist.close_date.notnull()
    nh = no_hist.select("opportunity_id", "close_date", "amount", "stage", "forecast_category",
                        "is_won", *(["team", "owner"] if scopes else []), closed=closed,
                        created_at=no_hist.created_at.cast(TS),
                        k=ibis.ifelse(closed, ibis.array([0, 1]), ibis.array([0])).unnest())
    end_of_close = ibis.greatest(
        nh.created_at, nh.close_date.cast(TS) + ibis.interval(days=1) - ibis.interval(microseconds=1))
    is_close = nh.k == 1
    nh_won = nh.is_won.fill_null(False)
    parts.append(nh.select(
        "opportunity_id", changed_at=ibis.ifelse(is_close, end_of_close, nh.created_at),
        valid_to=ibis.ifelse(nh.closed & ~is_close, end_of_close, far),
        stage=ibis.ifelse(is_close, ibis.coalesce(nh.stage, ibis.ifelse(nh_won, "closed_won", "closed_lost")),
                          ibis.ifelse(nh.closed, ibis.null(dt.string), nh.stage)),
        amount=nh.amount, close_date=nh.close_date,
        forecast_category=ibis.ifelse(nh.closed & ~is_close, ibis.null(dt.string), nh.forecast_category),
        is_closed=is_close, is_won=is_close & nh_won, seq=nh.k.cast("int64"), seen=ibis.literal(0, "int64"),
        **({"team": nh.team, "owner": nh.owner} if scopes else {}),
    ).select(out))
    rows = parts[0]
    for p in parts[1:]:
        rows = rows.union(p, distinct=False)
    return DealHistory(src, rows, won, lost, teams=teams_of(src) if scopes else frozenset(), with_scopes=scopes,
                       stage_bits=stage_bits)


def _states_at(rows: ir.Table, cal: ir.Table) -> ir.Table:
    """Rows that are the state of their deal at each instant ``cal.t`` (interval join)."""
    return rows.join(cal, [rows.changed_at < cal.t, rows.valid_to >= cal.t])


def _calendar(instants: Sequence[pd.Timestamp]) -> ir.Table:
    ts = sorted(set(pd.Timestamp(t) for t in instants))
    return ibis.memtable(pd.DataFrame({"t": pd.Series(ts, dtype="datetime64[us]")}))


class Calendar:
    """A sorted calendar of cut-off instants, indexed 0..n-1.

    :meth:`n_le` gives, for a timestamp column, how many instants are <= it:
    a row valid over [a, b) is the state at instant ``i`` exactly when
    ``n_le(a) <= i < n_le(b)``, and an event at time x counts at instant ``i``
    exactly when ``i >= n_le(x)``. For calendars of whole days (snapshot dates)
    this is a hash join on the date; otherwise an as-of join.
    """

    def __init__(self, instants: Iterable):
        self.ts = sorted(set(pd.Timestamp(t) for t in instants))
        self.n = len(self.ts)
        self.table = ibis.memtable(pd.DataFrame({"idx": np.arange(self.n, dtype="int64"),
                                             "t": pd.Series(self.ts, dtype="datetime64[us]")}))
        self.pos = {t: i for i, t in enumerate(self.ts)}
        self.midnight = self.n > 0 and all(t == t.normalize() for t in self.ts)
        if self.midnight:
            days = pd.date_range(self.ts[0], self.ts[-1], freq="D")
            n_le = np.searchsorted(np.array(self.ts, dtype="datetime64[us]"), days.values.astype("datetime64[us]"),
                                   side="right")
            self.days = ibis.memtable(pd.DataFrame({"day": days.astype("datetime64[us]"), "n_le": n_le.astype("int64")}))
            self.days = self.days.mutate(day=self.days.day.cast(dt.date))
            self.first_day = self.ts[0].date()

    def n_le(self, tbl: ir.Table, col: str, name: str) -> ir.Table:
        """``tbl`` with an int column ``name`` = number of instants <= ``tbl[col]`` (n for a null time)."""
        keep = [tbl[c] for c in tbl.columns]
        if self.n == 0:
            return tbl.mutate(**{name: ibis.literal(0, "int64")})
        if self.midnight:
            days = self.days.view()
            day = tbl[col].cast(dt.date)
            j = tbl.left_join(days, day == days.day)
            val = ibis.coalesce(days.n_le, ibis.ifelse(day < date_lit(self.first_day), 0, self.n))
            return j.select(*keep, **{name: val.cast("int64")})
        cal = self.table.view()
        j = tbl.asof_join(cal, on=tbl[col] >= cal.t)
        val = ibis.ifelse(tbl[col].isnull(), self.n, (cal.idx + 1).fill_null(0))
        return j.select(*keep, **{name: val.cast("int64")})

    def covering(self, rows: ir.Table, keys: Sequence[str]) -> ir.Table:
        """One row per (row, instant index) the row is the state at: ``idx`` + ``keys``."""
        r = rows.select("changed_at", "valid_to", *keys)
        r = self.n_le(r, "changed_at", "_from")
        r = self.n_le(r, "valid_to", "_to")
        r = r.filter(r._to > r._from)
        return r.select(*keys, idx=ibis.range(r._from, r._to).unnest())


def deal_states(data, *, at, won_stages=None, lost_stages=None) -> pd.DataFrame:
    """Every deal's state at one or more cut-off instants, from ``opportunity_history``.

    Parameters
    ----------
    data : Source, source spec (or dict of tables) or DealHistory
        ``opportunities`` (required) and ``opportunity_history`` (optional:
        deals without history fall back to ``opportunities``).
    at : date, timestamp, ISO text or a list of them
        Exclusive cut-offs: a date means its start (00:00 UTC), so the state at
        a date *d* holds the changes strictly before *d*.
    won_stages, lost_stages : iterable of str, optional
        Stage values meaning won / lost (default: inferred, see
        :func:`closed_stages`).

    Returns
    -------
    DataFrame
        ``at, opportunity_id, stage, amount, close_date, forecast_category,
        is_closed, is_won, team, owner, changed_at`` — one row per deal that
        exists at ``at`` (has a state before it), sorted by ``at`` and id.

    Examples
    --------
    >>> opps = pd.DataFrame({"opportunity_id": ["o1"], "created_at": pd.to_datetime(["2026-01-02 10:00"]),
    ...     "close_date": [_dt.date(2026, 3, 10)], "is_closed": [True], "is_won": [True], "amount": [120.0],
    ...     "team": ["smb"], "stage": ["closed_won"]})
    >>> hist = pd.DataFrame({"opportunity_id": ["o1", "o1", "o1"],
    ...     "changed_at": pd.to_datetime(["2026-01-02 10:00", "2026-02-01 09:00", "2026-03-10 15:00"]),
    ...     "stage": ["qualification", "proposal", "closed_won"], "amount": [100.0, 120.0, 120.0],
    ...     "close_date": [_dt.date(2026, 2, 28), _dt.date(2026, 3, 31), _dt.date(2026, 3, 10)]})
    >>> s = deal_states({"opportunities": opps, "opportunity_history": hist}, at=["2026-02-01", "2026-02-02"])
    >>> s[["at", "stage", "amount", "is_closed"]]
              at          stage  amount  is_closed
    0 2026-02-01  qualification   100.0      False
    1 2026-02-02       proposal   120.0      False
    """
    instants = parse_instants(at if isinstance(at, (list, tuple, pd.Series, pd.Index, np.ndarray)) else [at], "at")
    deals = deal_rows(data, won_stages=won_stages, lost_stages=lost_stages)
    cal = _calendar(instants)
    s = _states_at(deals.rows, cal)
    df = run(s.select(at=s.t, opportunity_id=s.opportunity_id, stage=s.stage, amount=s.amount,
                       close_date=s.close_date, forecast_category=s.forecast_category, is_closed=s.is_closed,
                       is_won=s.is_won, team=s.team, owner=s.owner, changed_at=s.changed_at))
    df = df.sort_values(["at", "opportunity_id"], ignore_index=True)
    df["close_date"] = as_dates(df["close_date"])
    return df


def as_dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.date.astype(object).where(s.notna(), None)


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


def teams_of(src: Source) -> frozenset:
    o = src.table("opportunities")
    return frozenset(x for x in run(o.select("team").distinct())["team"].tolist() if isinstance(x, str))


def scope_kinds(scopes: Iterable[str], teams: frozenset) -> dict[str, str]:
    return {s: ("company" if s == COMPANY else "team" if s in teams else "owner") for s in scopes}


def to_scopes(g: pd.DataFrame, keys: list[str], values: list[str], kinds: dict[str, str]) -> pd.DataFrame:
    """Sum a frame grouped by ``keys + [team, owner]`` into one row per ``keys + [scope]``."""
    frames = []
    for scope, kind in kinds.items():
        if kind == "company":
            part = g
        elif kind == "team":
            part = g[g["team"] == scope]
        else:
            part = g[g["owner"] == scope]
        s = part.groupby(keys, as_index=False, dropna=False)[values].sum() if len(part) else pd.DataFrame(
            columns=keys + values)
        s.insert(len(keys), "scope", scope)
        frames.append(s)
    if not frames:
        return pd.DataFrame(columns=keys + ["scope"] + values)
    return pd.concat(frames, ignore_index=True)


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
    parts = ("s_new", "s_pulled", "s_inc", "s_won", "s_lost", "s_dec", "s_push")
    agg = c.group_by("opportunity_id").aggregate(**{k: c[k].sum() for k in parts})
    res = run(agg.aggregate(**{k: agg[k].sum() for k in parts},
                             **{f"n_{k}": ibis.ifelse(agg[k] != 0, 1, 0).sum() for k in parts})).iloc[0]
    i0 = u.filter(u.is_init & u.inn)
    st = run(i0.aggregate(cents=i0.cents.sum(), n=i0.count())).iloc[0]
    cents = {"starting": int(st["cents"] or 0)}
    names = dict(zip(parts, ["new", "pulled_in", "increased", "won", "lost", "decreased", "pushed_out"]))
    for k, name in names.items():
        cents[name] = int(res[k] or 0) if not pd.isna(res[k]) else 0
    amounts = {k: v / 100 for k, v in cents.items()}
    a = amounts
    # the identity, evaluated left to right on the published values
    amounts["ending"] = (a["starting"] + a["new"] + a["pulled_in"] + a["increased"] - a["won"] - a["lost"]
                         - a["decreased"] - a["pushed_out"])
    cents["ending"] = (cents["starting"] + cents["new"] + cents["pulled_in"] + cents["increased"] - cents["won"]
                       - cents["lost"] - cents["decreased"] - cents["pushed_out"])
    df = pd.DataFrame({"step": WATERFALL_STEPS, "amount": [float(amounts[s]) for s in WATERFALL_STEPS]})
    counts = {"starting": int(st["n"] or 0)}
    for k, name in names.items():
        counts[name] = int(res[f"n_{k}"] or 0) if not pd.isna(res[f"n_{k}"]) else 0
    df.attrs.update(cents=cents, deals=counts, period=p.label, cut=cut)
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
