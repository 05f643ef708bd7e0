"""Deal history: every deal's state at any instant, and the conventions of the forecast family.


The point-in-time building block of the ``forecast_accuracy`` report: the pipeline, coverage,
slippage and waterfall (:mod:`revops_lib.metrics.pipeline`) and the accuracy and baseline forecast
(:mod:`revops_lib.metrics.forecast`) all read deals through it. Definitions follow
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
a deal has been in are a bit mask carried by the history window (a running
maximum per open stage, summed: portable to every engine, Spark included). With
:func:`prepare` the deal rows are computed once per report (a temporary table
in the engine). At 2.5 million history rows (demo scale 100) the pipeline and
baseline of ~150 weekly snapshots take a few seconds on 2 cores
(``bench/forecast.py``).
"""

from __future__ import annotations

import datetime as _dt
import functools
import operator
from dataclasses import dataclass
from typing import Iterable, Sequence

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError
from revops_lib.metrics.common import (
    NO_ASOF_ENGINES,
    backend_name,
    caches,
    date_lit,
    parse_instants,
    require,
    run,
    source_of,
)
from revops_lib.periods import Period, parse_period
from revops_lib.sources import Source

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


def prepare(data, *, won_stages=None, lost_stages=None, scopes: bool = True, materialize: bool = True,
            stage_mask: bool = True) -> DealHistory:
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
    stage_mask : bool, default True
        Carry ``seen``, the bit mask of the open stages each deal has been in (one running maximum per stage,
        about a fifth of the rows' cost), which the stage win rates of the baseline forecast read. Without it
        (``stage_bits`` None) those rates are computed from the rows instead: the same numbers, more slowly.

    Returns
    -------
    DealHistory

    Examples
    --------
    >>> with prepare("data/demo") as deals:                                  # doctest: +SKIP
    ...     pipe = pipeline_snapshots(deals, dates=["2026-10-05", "2026-10-12"])
    ...     base = baseline_forecast(deals, snapshots=snaps)
    """
    d = deal_rows(data, won_stages=won_stages, lost_stages=lost_stages, scopes=scopes, stage_mask=stage_mask)
    if materialize and not d.materialized and caches(d.rows, spark=True):  # (Spark finds these rows in its cache)
        try:
            d.rows = d.rows.cache()
            d.materialized = True
        except Exception:  # a backend without temporary tables: compute in every query instead
            pass
    return d


def deal_rows(data, *, won_stages=None, lost_stages=None, scopes: bool = True,
              stage_mask: bool = True) -> DealHistory:
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
        stage_bits = {st: 1 << i for i, st in enumerate(open_stages)} if len(open_stages) <= 62 and stage_mask \
            else None
        seen = {}
        if stage_bits:
            # the OR of the stage bits so far, as a sum of one running max per stage (its bit once the deal
            # has been in it, else 0): plain window maxima, which every engine has (Spark has no window BIT_OR)
            terms = [ibis.ifelse(h.stage == st, ibis.literal(b, "int64"), ibis.literal(0, "int64")).max().over(w_cum)
                     for st, b in stage_bits.items()]
            seen = {"seen": functools.reduce(operator.add, terms)}
        h = h.mutate(valid_to=h.changed_at.lead().over(w_all).fill_null(far), seq=ibis.row_number().over(w_all),
                     **seen, **{f"_g_{c}": h[c].count().over(w_cum) for c in fill})
        if fill:  # forward-fill nulls of the sparse columns: the deal's previous non-null value
            h = h.mutate(**{c: h[c].max().over(ibis.window(group_by=[h.opportunity_id, h[f"_g_{c}"]]))
                            for c in fill}).drop(*[f"_g_{c}" for c in fill])
        if scopes or fill:  # team and owner; the current value where the history has none yet
            # only the columns used travel through the join (the current values of the columns with gaps)
            oo = o.select("opportunity_id", *(["team", "owner"] if scopes else []),
                          **{f"o_{c}": c for c in fill})
            j = h.left_join(oo, "opportunity_id")
            h = j.select(
                "opportunity_id", "changed_at", "valid_to", "stage",
                **{c: ibis.coalesce(j[c], j[f"o_{c}"]) if c in fill else j[c]
                   for c in ("amount", "close_date", "forecast_category")},
                is_closed=j.is_closed, is_won=j.is_won, seq=j.seq,
                seen=j.seen if "seen" in h.columns else ibis.literal(0, "int64"),
                **({"team": j.team, "owner": j.owner} if scopes else {}))
        if "seen" not in h.columns:
            h = h.mutate(seen=ibis.literal(0, "int64"))
        parts.append(h.select(out))
        ids = src.table("opportunity_history").select("opportunity_id")
        no_hist = o.anti_join(ids.filter(ids.opportunity_id.notnull()).distinct(), "opportunity_id")
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
            self.days = ibis.memtable(pd.DataFrame({"day": days.astype("datetime64[us]"),
                                                    "n_le": n_le.astype("int64")}))
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
        if backend_name(tbl) in NO_ASOF_ENGINES:  # Spark SQL has no as-of join: a binary search in the row
            return tbl.mutate(**{name: ibis.ifelse(tbl[col].isnull(), self.n, self._search(tbl[col], 0, self.n))
                                 .cast("int64")})
        cal = self.table.view()
        j = tbl.asof_join(cal, on=tbl[col] >= cal.t)
        val = ibis.ifelse(tbl[col].isnull(), self.n, (cal.idx + 1).fill_null(0))
        return j.select(*keep, **{name: val.cast("int64")})

    def _search(self, x: ir.Value, lo: int, hi: int) -> ir.Value:
        """The number of instants <= ``x`` among those at ``lo..hi-1`` plus ``lo`` (all before ``lo`` are <= x):
        nested comparisons, ``log2(n)`` deep."""
        if lo >= hi:
            return ibis.literal(lo, "int64")
        mid = (lo + hi) // 2
        return ibis.ifelse(x >= ibis.timestamp(self.ts[mid].to_pydatetime()), self._search(x, mid + 1, hi),
                           self._search(x, lo, mid))

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
