"""Forecast accuracy, a mechanical baseline forecast, coverage, slippage and the pipeline waterfall.

The library behind the ``forecast_accuracy`` report. Definitions follow
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
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError, SchemaError
from revops_lib.periods import Period, parse_period, period_of, resolve_as_of
from revops_lib.sources import Source, open_source, to_pandas
from revops_lib.text import md

__all__ = [
    "FOOTNOTES",
    "ACCURACY_COLUMNS",
    "SUMMARY_COLUMNS",
    "WATERFALL_STEPS",
    "closed_stages",
    "DealHistory",
    "prepare",
    "deal_states",
    "pipeline_snapshots",
    "stage_win_rates",
    "baseline_forecast",
    "actuals",
    "periods_in_view",
    "score_forecasts",
    "forecast_accuracy",
    "accuracy_summary",
    "accuracy_by_week",
    "bias_by_scope",
    "forecast_vs_actual",
    "coverage",
    "slippage",
    "pipeline_waterfall",
    "projection",
    "assess",
    "ForecastReport",
]

FOOTNOTES = [
    ("Actual", "Σ amount of opportunities won with close_date in the forecast period, for the scope "
               "(company = all deals; otherwise opportunities.team, or the owner when no team has that name)."),
    ("Error, APE, accuracy", "error = forecast − actual; absolute percentage error (APE) = |forecast − actual| / actual; "
                             "accuracy = max(0, 1 − APE). With an actual of zero APE and accuracy are undefined (—)."),
    ("MAPE, WAPE, bias", "MAPE = mean APE (forecasts with an actual > 0); WAPE = Σ|forecast − actual| / Σ actual; "
                         "bias = Σ(forecast − actual) / Σ actual (positive = over-forecast), across the periods, "
                         "snapshots and scopes in view."),
    ("Hit rate within 10%", "share of forecasts (with an actual > 0) whose APE is at most 10%."),
    ("In view", "every forecast period that ended on or before as of — the last lookback_periods (default 12) of "
                "each kind (months, quarters, weeks) — with all its snapshots, scopes and categories."),
    ("Week of period", "1 + whole weeks between the period's first day and the snapshot date."),
    ("Point-in-time state", "a deal's opportunity_history row with the latest changed_at before the cut-off; at a "
                            "snapshot date d the cut-off is the start of d (00:00 UTC): nothing of day d is known."),
    ("Baseline forecast", "at each snapshot date: won-to-date + Σ over deals open then with a close date in the period "
                          "of amount × the win rate of their stage, measured on deals closed before that date that "
                          "were ever in the stage (won / closed, by count; overall rate when a stage has none)."),
    ("Coverage", "open pipeline with close date in the period, at its start (or at as of if earlier) / the "
                 "period's target (targets, metric revenue_won)."),
    ("Slippage", "opportunities whose close date was in the period at its start and that were neither won nor "
                 "lost in the period; pushes = close-date changes to a later date."),
    ("Pipeline waterfall", "starting = open pipeline with close date in the period at its start; + new + pulled in "
                           "+ increased − won − lost − decreased − pushed out = ending, exactly (in cents)."),
]

ACCURACY_COLUMNS = ["forecast_period", "scope", "category", "snapshot_date", "week_of_period",
                    "forecast", "actual", "error", "abs_pct_error", "accuracy"]
SUMMARY_COLUMNS = ["category", "n", "mape", "wape", "bias", "hit_rate_10"]
WATERFALL_STEPS = ["starting", "new", "pulled_in", "increased", "won", "lost", "decreased", "pushed_out", "ending"]

COMPANY = "company"
BASELINE = "baseline"
_FAR_FUTURE = _dt.datetime(2999, 12, 31)
_FAR_PAST = _dt.datetime(1000, 1, 1)
_TS = dt.Timestamp()


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


def _source(data: Any, name: str | None = None) -> Source:
    """A Source from a Source, a DealHistory, a source spec, a dict of frames, or (with ``name``) one table."""
    if isinstance(data, Source):
        return data
    if isinstance(data, DealHistory):
        return data.source
    if isinstance(data, (ir.Table, pd.DataFrame)):
        if name is None:
            raise ParameterError(
                "`data` is a single table, but this function needs several: pass a Source, a folder or "
                "a dict of tables such as {'opportunities': df, 'opportunity_history': df}.")
        return Source.from_frames({name: data})
    return open_source(data)


def _require(src: Source, *names: str) -> None:
    missing = [n for n in names if not src.has(n)]
    if missing:
        raise SchemaError(
            f"Table(s) {', '.join(f'`{m}`' for m in missing)} absent from {src.description}: "
            f"this computation needs {', '.join(names)}.")


def _fy(fiscal_year_start_month) -> int:
    return parse_period("2000-01", fiscal_year_start_month=fiscal_year_start_month).fiscal_year_start_month


def _period(period, fiscal_year_start_month=1) -> Period:
    if period is None or (isinstance(period, str) and not period.strip()):
        raise ParameterError("`period` is required: give a label such as 2026-10, 2026-Q4 or 2026-W44.")
    if isinstance(period, Period):
        return period
    return parse_period(period, fiscal_year_start_month=fiscal_year_start_month)


def _cutoff(period, as_of, fiscal_year_start_month=1) -> pd.Timestamp:
    """The exclusive cut-off (naive UTC); ``period`` may be None when ``as_of`` is given."""
    if (period is None or (isinstance(period, str) and not period.strip())) and (
            as_of is None or (isinstance(as_of, str) and not as_of.strip())):
        raise ParameterError("Give `period` or `as_of`: the cut-off defaults to the period's end.")
    p = None if period is None or (isinstance(period, str) and not period.strip()) else _period(
        period, fiscal_year_start_month)
    return resolve_as_of(p, as_of)


def _instants(values, name: str) -> list[pd.Timestamp]:
    """Cut-off instants (naive UTC) from dates, timestamps or ISO text; a date means its 00:00 UTC."""
    out = []
    for v in values:
        try:
            ts = resolve_as_of(None, v)
        except Exception:
            raise ParameterError(f"Cannot read `{name}` value `{v!r}` as a date or time (e.g. 2026-10-05).") from None
        out.append(ts)
    return out


def _count(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"`{name}` must be a whole number >= {minimum}, not `{value!r}`.")
    return int(value)


def _ts_lit(ts) -> ir.Value:
    return ibis.timestamp(pd.Timestamp(ts).to_pydatetime())


def _date_lit(d) -> ir.Value:
    return ibis.date(pd.Timestamp(d).date() if not isinstance(d, _dt.date) or isinstance(d, _dt.datetime) else d)


def _run(expr) -> pd.DataFrame:
    return to_pandas(expr)


def _memtable(df: pd.DataFrame) -> ir.Table:
    return ibis.memtable(df)


# ---------------------------------------------------------------------------
# Closed stages and the deal rows (the point-in-time building block)
# ---------------------------------------------------------------------------


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
    src = _source(data, "opportunities")
    _require(src, "opportunities")
    o = src.table("opportunities")
    o = o.filter(o.stage.notnull())
    g = _run(o.group_by(["stage", "is_closed", "is_won"]).aggregate(n=o.count()))
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
    d = _deals(data, won_stages=won_stages, lost_stages=lost_stages, scopes=scopes)
    if materialize and not d.materialized:
        try:
            d.rows = d.rows.cache()
            d.materialized = True
        except Exception:  # a backend without temporary tables: compute in every query instead
            pass
    return d


def _deals(data, *, won_stages=None, lost_stages=None, scopes: bool = True) -> DealHistory:
    if isinstance(data, DealHistory):
        if scopes and not data.with_scopes:
            raise ParameterError("This DealHistory was prepared with `scopes`=False; team and owner scopes need "
                                 "prepare(data, scopes=True).")
        return data
    src = _source(data, "opportunities")
    _require(src, "opportunities")
    won, lost = closed_stages(src, won_stages=won_stages, lost_stages=lost_stages)
    o = src.table("opportunities")
    out = ["opportunity_id", "changed_at", "valid_to", "stage", "amount", "close_date", "forecast_category",
           "is_closed", "is_won", "seq", "seen"] + (["team", "owner"] if scopes else [])
    far = ibis.timestamp(_FAR_FUTURE)
    parts = []
    stage_bits: dict | None = {}
    if src.has("opportunity_history"):
        h = src.table("opportunity_history")
        h = h.filter(h.opportunity_id.notnull())
        won_l = list(won) or ["\x00"]
        closed_l = list(won) + list(lost) or ["\x00"]
        h = h.select("opportunity_id", "stage", "amount", "close_date", "forecast_category",
                     changed_at=h.changed_at.cast(_TS), is_closed=h.stage.isin(closed_l).fill_null(False),
                     is_won=h.stage.isin(won_l).fill_null(False))
        # One sort per deal and time gives each row its successor (valid_to), its rank (seq) and the set of
        # open stages the deal has been in so far (seen: a bit mask, for the stage win rates). Rows without
        # a time sort last in their deal and are never a state (changed_at < t is never true). Ties on
        # changed_at: open before closed, then stage, amount, close date.
        order = [h.changed_at, h.is_closed, h.stage, h.amount, h.close_date]
        w_all = ibis.window(group_by=h.opportunity_id, order_by=order)
        w_cum = ibis.window(group_by=h.opportunity_id, order_by=order, preceding=None, following=0)
        info = _run(h.group_by("stage").aggregate(
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
                        created_at=no_hist.created_at.cast(_TS),
                        k=ibis.ifelse(closed, ibis.array([0, 1]), ibis.array([0])).unnest())
    end_of_close = ibis.greatest(
        nh.created_at, nh.close_date.cast(_TS) + ibis.interval(days=1) - ibis.interval(microseconds=1))
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
    return DealHistory(src, rows, won, lost, teams=_teams(src) if scopes else frozenset(), with_scopes=scopes,
                       stage_bits=stage_bits)


def _states_at(rows: ir.Table, cal: ir.Table) -> ir.Table:
    """Rows that are the state of their deal at each instant ``cal.t`` (interval join)."""
    return rows.join(cal, [rows.changed_at < cal.t, rows.valid_to >= cal.t])


def _calendar(instants: Sequence[pd.Timestamp]) -> ir.Table:
    ts = sorted(set(pd.Timestamp(t) for t in instants))
    return _memtable(pd.DataFrame({"t": pd.Series(ts, dtype="datetime64[us]")}))


class _Cal:
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
        self.table = _memtable(pd.DataFrame({"idx": np.arange(self.n, dtype="int64"),
                                             "t": pd.Series(self.ts, dtype="datetime64[us]")}))
        self.pos = {t: i for i, t in enumerate(self.ts)}
        self.midnight = self.n > 0 and all(t == t.normalize() for t in self.ts)
        if self.midnight:
            days = pd.date_range(self.ts[0], self.ts[-1], freq="D")
            n_le = np.searchsorted(np.array(self.ts, dtype="datetime64[us]"), days.values.astype("datetime64[us]"),
                                   side="right")
            self.days = _memtable(pd.DataFrame({"day": days.astype("datetime64[us]"), "n_le": n_le.astype("int64")}))
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
            val = ibis.coalesce(days.n_le, ibis.ifelse(day < _date_lit(self.first_day), 0, self.n))
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


# ---------------------------------------------------------------------------
# Point-in-time: deal states, pipeline, stage win rates
# ---------------------------------------------------------------------------


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
    instants = _instants(at if isinstance(at, (list, tuple, pd.Series, pd.Index, np.ndarray)) else [at], "at")
    deals = _deals(data, won_stages=won_stages, lost_stages=lost_stages)
    cal = _calendar(instants)
    s = _states_at(deals.rows, cal)
    df = _run(s.select(at=s.t, opportunity_id=s.opportunity_id, stage=s.stage, amount=s.amount,
                       close_date=s.close_date, forecast_category=s.forecast_category, is_closed=s.is_closed,
                       is_won=s.is_won, team=s.team, owner=s.owner, changed_at=s.changed_at))
    df = df.sort_values(["at", "opportunity_id"], ignore_index=True)
    df["close_date"] = _as_dates(df["close_date"])
    return df


def _as_dates(s: pd.Series) -> pd.Series:
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
    instants = _instants(dates, "dates")
    keys = [by] if isinstance(by, str) else list(by or [])
    allowed = {"stage", "forecast_category", "team", "owner", "close_month"}
    bad = [k for k in keys if k not in allowed]
    if bad:
        raise ParameterError(f"`by` value(s) {bad} not allowed; use any of {sorted(allowed)}.")
    deals = _deals(data, won_stages=won_stages, lost_stages=lost_stages, scopes=bool({"team", "owner"} & set(keys)))
    cal = _Cal(instants)
    r = deals.rows.filter(~deals.rows.is_closed)
    if "close_month" in keys:
        r = r.mutate(close_month=r.close_date.strftime("%Y-%m"))
    cov = cal.covering(r, ["amount", *keys])
    g = cov.group_by(["idx", *keys]).aggregate(deals=cov.count(), amount=cov.amount.sum())
    g = g.join(cal.table, "idx").select(snapshot_date=cal.table.t, *[g[k] for k in keys], deals=g.deals,
                                        amount=g.amount)
    g = _run(g)
    g["amount"] = g["amount"].astype(float).fillna(0.0)
    g["deals"] = g["deals"].astype("int64")
    g["snapshot_date"] = pd.to_datetime(g["snapshot_date"]).astype("datetime64[us]")
    return g.sort_values(["snapshot_date", *keys], ignore_index=True)[["snapshot_date", *keys, "deals", "amount"]]


def _rate_counts(deals: DealHistory, cal: _Cal) -> ir.Table:
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
            sb = _memtable(pd.DataFrame({"stage": list(deals.stage_bits),
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
    far = ibis.timestamp(_FAR_FUTURE)
    ev = spans.select("stage", "overall", time=spans.start.cast(_TS), dn=ibis.literal(1, "int64"),
                      dw=spans.won).union(
        spans.filter(spans.end < far).select("stage", "overall", time=spans.end.cast(_TS), dn=ibis.literal(-1, "int64"),
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
    instants = _instants(dates, "dates")
    deals = _deals(data, won_stages=won_stages, lost_stages=lost_stages, scopes=False)
    cal = _Cal(instants)
    rc = _rate_counts(deals, cal)
    rc = rc.filter(rc.closed > 0)
    rc = rc.join(cal.table, "idx")
    df = _run(rc.select(snapshot_date=cal.table.t, stage=rc.stage, overall=rc.overall, closed=rc.closed,
                        won=rc.won))
    df["snapshot_date"] = pd.to_datetime(df["snapshot_date"]).astype("datetime64[us]")
    df["closed"] = df["closed"].astype("int64")
    df["won"] = df["won"].astype("int64")
    df["win_rate"] = df["won"] / df["closed"]
    df["stage"] = df["stage"].astype(object).where(~df["overall"].astype(bool), None)
    df = df.sort_values(["snapshot_date", "overall", "stage"], ignore_index=True)
    return df[["snapshot_date", "stage", "closed", "won", "win_rate"]]


# ---------------------------------------------------------------------------
# Scopes, actuals, baseline
# ---------------------------------------------------------------------------


def _teams(src: Source) -> frozenset:
    o = src.table("opportunities")
    return frozenset(x for x in _run(o.select("team").distinct())["team"].tolist() if isinstance(x, str))


def _scope_kinds(scopes: Iterable[str], teams: frozenset) -> dict[str, str]:
    return {s: ("company" if s == COMPANY else "team" if s in teams else "owner") for s in scopes}


def _to_scopes(g: pd.DataFrame, keys: list[str], values: list[str], kinds: dict[str, str]) -> pd.DataFrame:
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


def _period_table(periods: Sequence[Period]) -> ir.Table:
    return _memtable(pd.DataFrame({
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
    fy = _fy(fiscal_year_start_month)
    ps = [_period(p, fy) for p in periods]
    scopes = list(dict.fromkeys(scopes))
    src = _source(data, "opportunities")
    _require(src, "opportunities")
    if not ps or not scopes:
        return pd.DataFrame({"forecast_period": pd.Series(dtype=object), "scope": pd.Series(dtype=object),
                             "actual": pd.Series(dtype=float)})
    kinds = _scope_kinds(scopes, _teams(src))
    o = src.table("opportunities")
    pt = _period_table(ps)
    won = o.filter(o.is_won.fill_null(False) & o.close_date.notnull())
    if as_of is not None:
        won = won.filter(won.close_date < _date_lit(_cutoff(None, as_of).date()))
    j = won.join(pt, [won.close_date >= pt.p_start, won.close_date < pt.p_end])
    g = _run(j.group_by([j.label, j.team, j.owner]).aggregate(actual=j.amount.sum()))
    g["actual"] = g["actual"].astype(float).fillna(0.0)
    out = _to_scopes(g, ["label"], ["actual"], kinds)
    grid = pd.MultiIndex.from_product([[p.label for p in ps], scopes], names=["label", "scope"]).to_frame(index=False)
    out = grid.merge(out, on=["label", "scope"], how="left")
    # engines add in any order: drop the float noise below a millionth of a currency unit
    out["actual"] = out["actual"].astype(float).fillna(0.0).round(6)
    out = out.rename(columns={"label": "forecast_period"})[["forecast_period", "scope", "actual"]]
    return out.astype({"forecast_period": "str", "scope": "str"})


def _baseline_engine(deals: DealHistory, pairs: pd.DataFrame, scopes: Sequence[str]) -> pd.DataFrame:
    """Baseline per (t, label, scope) for ``pairs`` = DataFrame(t, label, p_start, p_end)."""
    kinds = _scope_kinds(scopes, deals.teams)
    scoped = [k for k in ("team", "owner") if k in kinds.values()]
    if scoped and not deals.with_scopes:
        raise ParameterError("Team or owner scopes need a DealHistory prepared with `scopes`=True.")
    if scoped:
        scoped = ["team", "owner"] if "owner" in scoped else ["team"]
    vals = ["won_to_date", "open_pipeline", "weighted_pipeline"]
    pairs = pairs.assign(t=pd.to_datetime(pairs["t"]).astype("datetime64[us]")).drop_duplicates(["t", "label"])
    cal = _Cal(pairs["t"])
    pm = _memtable(pd.DataFrame({
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
    g = _run(s.group_by(["idx", "label", *scoped]).aggregate(**{v: s[v].sum() for v in vals}))
    for k in ("team", "owner"):
        if k not in g.columns:
            g[k] = None
    for v in vals:
        g[v] = g[v].astype(float).fillna(0.0)
    g["t"] = pd.Series(cal.ts, dtype="datetime64[us]").reindex(g["idx"].astype("int64").to_numpy()).to_numpy()
    out = _to_scopes(g, ["t", "label"], vals, kinds)
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
    fy = _fy(fiscal_year_start_month)
    if not isinstance(snapshots, pd.DataFrame) or not {"snapshot_date", "forecast_period"} <= set(snapshots.columns):
        raise ParameterError("`snapshots` must be a DataFrame with columns snapshot_date and forecast_period.")
    scopes = list(dict.fromkeys(scopes))
    snaps = snapshots[["snapshot_date", "forecast_period"]].drop_duplicates().reset_index(drop=True)
    cols = ["snapshot_date", "forecast_period", "scope", "won_to_date", "open_pipeline", "weighted_pipeline",
            "forecast"]
    if snaps.empty or not scopes:
        return pd.DataFrame(columns=cols)
    periods = {lab: _period(lab, fy) for lab in snaps["forecast_period"].unique()}
    snaps["t"] = _instants(snaps["snapshot_date"], "snapshot_date")
    pairs = pd.DataFrame({
        "t": snaps["t"], "label": snaps["forecast_period"],
        "p_start": [periods[x].start_date for x in snaps["forecast_period"]],
        "p_end": [periods[x].end_date for x in snaps["forecast_period"]],
    }).drop_duplicates()
    kinds = _scope_kinds(scopes, _teams(_source(data)))
    deals = _deals(data, won_stages=won_stages, lost_stages=lost_stages,
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


# ---------------------------------------------------------------------------
# Forecast accuracy
# ---------------------------------------------------------------------------


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
    n = _count(lookback_periods, "lookback_periods")
    cut = _cutoff(None, as_of)
    fy = _fy(fiscal_year_start_month)
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
    fy = _fy(fiscal_year_start_month)
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
    f["snapshot_date"] = _as_dates(pd.to_datetime(f["snapshot_date"]))
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
    fy = _fy(fiscal_year_start_month)
    cut = _cutoff(period, as_of, fy)
    src = _source(data)
    _require(src, "forecast_snapshots", "opportunities")
    fs = src.table("forecast_snapshots")
    fs = fs.filter(fs.snapshot_date.notnull() & (fs.snapshot_date < _date_lit(cut.date())))
    f = _run(fs.select("snapshot_date", "forecast_period", "scope", "category", forecast=fs.amount))
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
        deals = _deals(data if isinstance(data, DealHistory) else src, won_stages=won_stages,
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
    fy = _fy(fiscal_year_start_month)
    snaps = keys[["snapshot_date", "forecast_period"]].drop_duplicates().reset_index(drop=True)
    periods = {lab: parse_period(lab, fiscal_year_start_month=fy) for lab in snaps["forecast_period"].unique()}
    snaps["t"] = pd.Series(_instants(snaps["snapshot_date"], "snapshot_date"), dtype="datetime64[us]")
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


# ---------------------------------------------------------------------------
# Coverage, projection, slippage, waterfall
# ---------------------------------------------------------------------------


def _targets(src: Source, labels: Sequence[str], metric: str) -> dict[str, float]:
    if not src.has("targets") or not labels:
        return {}
    t = src.table("targets")
    df = _run(t.filter((t.metric == metric) & t.period.isin(list(labels))).select("period", "segment", "target"))
    out = {}
    for lab, g in df.groupby("period"):
        total = g[g["segment"].isna()]
        vals = (total if len(total) else g)["target"].dropna()
        if len(vals):
            out[lab] = float(vals.sum())
    return out


def _ratio(a, b) -> float:
    return float(a) / float(b) if b is not None and not pd.isna(b) and b > 0 and not pd.isna(a) else np.nan


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
    fy = _fy(fiscal_year_start_month)
    ps = [_period(q, fy) for q in periods]
    ats = list(at) if isinstance(at, (list, tuple, pd.Series, np.ndarray)) else [at] * len(ps)
    if len(ats) != len(ps):
        raise ParameterError(f"`at` gives {len(ats)} instants for {len(ps)} periods: give one, or one per period.")
    instants = _instants(ats, "at") if ps else []
    out = pd.DataFrame({"period": [q.label for q in ps],
                        "measured_at": pd.Series(instants, dtype="datetime64[us]")})
    if not ps:
        return out.assign(deals=pd.Series(dtype="int64"), amount=pd.Series(dtype="float64"))
    deals = _deals(data, won_stages=won_stages, lost_stages=lost_stages, scopes=False)
    cal = _Cal(instants)
    pm = _memtable(pd.DataFrame({
        "t_idx": pd.Series([cal.pos[t] for t in instants], dtype="int64"), "label": [q.label for q in ps],
        "p_start": pd.Series([pd.Timestamp(q.start_date) for q in ps], dtype="datetime64[us]"),
        "p_end": pd.Series([pd.Timestamp(q.end_date) for q in ps], dtype="datetime64[us]")}))
    pm = pm.mutate(p_start=pm.p_start.cast(dt.date), p_end=pm.p_end.cast(dt.date))
    r = deals.rows
    o = cal.covering(r.filter(~r.is_closed), ["amount", "close_date"])
    o = o.join(pm, [o.idx == pm.t_idx, o.close_date >= pm.p_start, o.close_date < pm.p_end])
    g = _run(o.group_by(["t_idx", "label"]).aggregate(deals=o.count(), amount=o.amount.fill_null(0.0).sum()))
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
    fy = _fy(fiscal_year_start_month)
    p = _period(period, fy)
    cut = _cutoff(p, as_of, fy)
    n = _count(lookback_periods, "lookback_periods")
    src = _source(data, "opportunities")
    qs = p.trailing(n) + [p.next()]
    deals = _deals(data if isinstance(data, DealHistory) else src, won_stages=won_stages, lost_stages=lost_stages,
                   scopes=False)
    b = open_pipeline_by_period(deals, periods=qs, at=[min(q.start_naive, cut) for q in qs],
                                fiscal_year_start_month=fy)
    won = actuals(src, periods=qs, scopes=[COMPANY], as_of=cut, fiscal_year_start_month=fy)
    tg = _targets(src, [q.label for q in qs], target_metric)
    out = b[["period", "measured_at"]].copy()
    out["open_pipeline"] = b["amount"]
    out["target"] = out["period"].map(tg).astype(float)
    out["coverage"] = [_ratio(a, t) for a, t in zip(out["open_pipeline"], out["target"])]
    out["won"] = out["period"].map(dict(zip(won["forecast_period"], won["actual"]))).astype(float)
    started = [q.start_naive < cut for q in qs]
    out["won"] = out["won"].where(started)
    out["attainment"] = [_ratio(a, t) for a, t in zip(out["won"], out["target"])]
    out["complete"] = [q.end_naive <= cut for q in qs]
    out["measured_at"] = pd.to_datetime(out["measured_at"])
    return out


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
    fy = _fy(fiscal_year_start_month)
    p = _period(period, fy)
    cut = _cutoff(p, as_of, fy)
    src = _source(data, "opportunities")
    kinds = list(dict.fromkeys([p.kind, "month", "quarter"] if kinds is None else kinds))
    qs = [period_of(cut, k, fiscal_year_start_month=fy) for k in kinds]
    cols = ["forecast_period", "category", "submitted", "forecast", "won_to_date", "target", "pct_of_target"]
    deals = _deals(data if isinstance(data, DealHistory) else src, won_stages=won_stages, lost_stages=lost_stages,
                   scopes=False)
    pairs = pd.DataFrame({"t": pd.Series([cut] * len(qs), dtype="datetime64[us]"), "label": [q.label for q in qs],
                          "p_start": [q.start_date for q in qs], "p_end": [q.end_date for q in qs]})
    b = _baseline_engine(deals, pairs, [COMPANY]).set_index("label")
    tg = _targets(src, [q.label for q in qs], target_metric)
    rows = []
    calls = pd.DataFrame(columns=["snapshot_date", "forecast_period", "category", "amount"])
    if src.has("forecast_snapshots"):
        fs = src.table("forecast_snapshots")
        fs = fs.filter((fs.scope == COMPANY) & fs.forecast_period.isin([q.label for q in qs])
                       & (fs.snapshot_date < _date_lit(cut.date())))
        calls = _run(fs.select("snapshot_date", "forecast_period", "category", "amount"))
    for q in qs:
        won = float(b.loc[q.label, "won_to_date"]) if q.label in b.index else 0.0
        target = tg.get(q.label, np.nan)
        c = calls[calls["forecast_period"] == q.label].sort_values("snapshot_date")
        for cat, g in sorted(c.groupby("category"), key=lambda x: _sort_key(pd.Series([x[0]], name="category"))[0]):
            last = g.iloc[-1]
            rows.append([q.label, cat, pd.Timestamp(last["snapshot_date"]).date(), float(last["amount"]), won, target,
                         _ratio(last["amount"], target)])
        fb = float(b.loc[q.label, "forecast"]) if q.label in b.index else won
        rows.append([q.label, BASELINE, cut.date(), fb, won, target, _ratio(fb, target)])
    return pd.DataFrame(rows, columns=cols)


def _in_period(r: ir.Table, p: Period) -> ir.Value:
    return (~r.is_closed & r.close_date.notnull() & (r.close_date >= _date_lit(p.start_date))
            & (r.close_date < _date_lit(p.end_date))).fill_null(False)


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
    fy = _fy(fiscal_year_start_month)
    p = _period(period, fy)
    cut = _window_cut(p, _cutoff(p, as_of, fy))
    deals = _deals(data, won_stages=won_stages, lost_stages=lost_stages)
    r = deals.rows
    w = ibis.window(group_by=r.opportunity_id, order_by=[r.changed_at, r.seq])
    r2 = r.mutate(pushed=(r.close_date > r.close_date.lag().over(w)).fill_null(False))
    r2 = r2.filter(r2.changed_at < _ts_lit(cut))
    pushes = r2.group_by("opportunity_id").aggregate(
        pushes=ibis.ifelse(r2.pushed & (r2.changed_at >= _ts_lit(p.start_naive)), 1, 0).sum(),
        total_pushes=ibis.ifelse(r2.pushed, 1, 0).sum())
    cal = _calendar([p.start_naive])
    s0 = _states_at(r, cal)
    s0 = s0.filter(_in_period(s0, p)).select("opportunity_id", a0=s0.amount, c0=s0.close_date)
    s1 = _states_at(r, _calendar([cut]))
    j = s0.join(s1, "opportunity_id")
    start_stats = _run(s0.aggregate(n=s0.count(), amount=s0.a0.sum())).iloc[0]
    j = j.filter(~j.is_closed)
    j = j.left_join(pushes, "opportunity_id").select(
        "opportunity_id", "team", "owner", "stage", "amount", close_date_at_start=j.c0, close_date=j.close_date,
        pushes=pushes.pushes.fill_null(0), total_pushes=pushes.total_pushes.fill_null(0))
    df = _run(j)
    df["close_date_at_start"] = _as_dates(df["close_date_at_start"])
    df["close_date"] = _as_dates(df["close_date"])
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
                    starting_amount=s_amt, rate=_ratio(df["amount"].sum(), s_amt))
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
    fy = _fy(fiscal_year_start_month)
    p = _period(period, fy)
    cut = _window_cut(p, _cutoff(p, as_of, fy))
    deals = _deals(data, won_stages=won_stages, lost_stages=lost_stages, scopes=False)
    r = deals.rows
    start = _ts_lit(p.start_naive)
    init = r.filter((r.changed_at < start) & (r.valid_to >= start)).mutate(is_init=ibis.literal(True))
    chg = r.filter((r.changed_at >= start) & (r.changed_at < _ts_lit(cut))).mutate(is_init=ibis.literal(False))
    u = init.union(chg, distinct=False)
    inside = (u.close_date.notnull() & (u.close_date >= _date_lit(p.start_date))
              & (u.close_date < _date_lit(p.end_date))).fill_null(False)
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
    res = _run(agg.aggregate(**{k: agg[k].sum() for k in parts},
                             **{f"n_{k}": ibis.ifelse(agg[k] != 0, 1, 0).sum() for k in parts})).iloc[0]
    i0 = u.filter(u.is_init & u.inn)
    st = _run(i0.aggregate(cents=i0.cents.sum(), n=i0.count())).iloc[0]
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


# ---------------------------------------------------------------------------
# The report: everything the forecast_accuracy notebook shows, computed once
# ---------------------------------------------------------------------------

_KIND_WORD = {"week": "week", "month": "month", "quarter": "quarter"}


def _reliable_week(by_week: pd.DataFrame, kind: str, category: str, level: float = 0.9) -> int | None:
    """First week from which the median accuracy stays at or above ``level`` for every later week."""
    g = by_week[(by_week["kind"] == kind) & (by_week["category"] == category) & (by_week["week_of_period"] >= 1)]
    g = g.sort_values("week_of_period")
    if g.empty:
        return None
    ok = (g["median_accuracy"] >= level).to_numpy()
    if not ok[-1]:
        return None
    k = len(ok) - 1
    while k > 0 and ok[k - 1]:
        k -= 1
    return int(g["week_of_period"].iloc[k])


class ForecastReport:
    """Everything the ``forecast_accuracy`` report shows, computed once (see :func:`assess`).

    Attributes hold the frames (``accuracy``, ``summary``, ``summary_by_scope``,
    ``by_week``, ``calls``, ``coverage``, ``projection``, ``waterfall``,
    ``slippage``); methods return what a notebook cell displays (a formatted
    table, a chart or one-sentence findings) and publish the data behind it.
    """

    def __init__(self, *, period: Period, as_of: pd.Timestamp, currency: str = "USD", call_category: str = "commit",
                 bias_threshold: float = 0.05, accuracy=None, coverage=None, projection=None, waterfall=None,
                 slippage=None, notes: dict | None = None, target_metric: str = "revenue_won"):
        self.period, self.as_of, self.currency = period, as_of, currency
        self.bias_threshold = bias_threshold
        self.target_metric = target_metric
        self.notes = dict(notes or {})
        empty_acc = score_forecasts(pd.DataFrame(), pd.DataFrame())
        self.accuracy = accuracy if accuracy is not None else empty_acc
        cats = list(dict.fromkeys(self.accuracy["category"]))
        self.call_category = call_category if call_category in cats or not cats else next(
            (c for c in cats if c != BASELINE), call_category)
        self.summary = accuracy_summary(self.accuracy)
        self.summary_by_scope = bias_by_scope(self.accuracy, threshold=bias_threshold)
        self.by_week = accuracy_by_week(self.accuracy)
        kinds = set(self.by_week["kind"]) if len(self.by_week) else set()
        self.kind = period.kind if period.kind in kinds else next((k for k in ("month", "quarter", "week")
                                                                     if k in kinds), period.kind)
        self.calls = forecast_vs_actual(self.accuracy, kind=self.kind)
        self.coverage, self.projection = coverage, projection
        self.waterfall, self.slippage = waterfall, slippage

    # -- helpers ---------------------------------------------------------------
    def _money(self, x) -> str:
        from revops_lib.plots import fmt_money

        return fmt_money(x, self.currency) if x is not None and not pd.isna(x) else "—"

    @staticmethod
    def _pct(x, signed: bool = False) -> str:
        from revops_lib.plots import fmt_pct

        if x is None or pd.isna(x):
            return "—"
        return ("+" if signed and x > 0 else "") + fmt_pct(x)

    def _note(self, key: str):

        return md(f"*{self.notes[key]}*")

    def _show(self, text: str) -> None:
        """Display a note in place of a chart (chart cells end with ';', which would hide a returned note)."""
        from IPython.display import display

        display(md(f"*{text}*"))

    def finding(self, topic: str):
        """One finding as Markdown: ``accuracy``, ``baseline``, ``convergence``, ``bias``, ``projection``,
        ``coverage``, ``waterfall`` or ``slippage``."""
        topics = {"accuracy": self._accuracy_finding, "baseline": self._baseline_finding,
                  "convergence": self._convergence_finding, "bias": self._bias_finding,
                  "projection": self._projection_finding, "coverage": self._coverage_finding,
                  "waterfall": self._waterfall_finding, "slippage": self._slippage_finding}
        if topic not in topics:
            raise ParameterError(f"`topic` must be one of {', '.join(topics)}, not `{topic}`.")
        text = topics[topic]()
        if text is None:
            key = "accuracy" if topic in ("accuracy", "baseline", "convergence", "bias") else "pipeline"
            text = self.notes.get(key, "Nothing to report for this section.")
        return md(text)

    def _sum(self, category: str, frame=None) -> pd.Series | None:
        s = self.summary if frame is None else frame
        row = s[s["category"] == category]
        return row.iloc[0] if len(row) else None

    # -- the verdict -------------------------------------------------------------
    def findings(self):
        """The findings in one sentence each (Markdown)."""

        b = [self._accuracy_finding(), self._baseline_finding(), self._convergence_finding(),
             self._bias_finding(), self._projection_finding(), self._coverage_finding(),
             self._waterfall_finding(), self._slippage_finding()]
        return md("\n".join(f"- {x}" for x in b if x))

    def _accuracy_finding(self) -> str | None:
        if "accuracy" in self.notes:
            return self.notes["accuracy"]
        s = self._sum(self.call_category)
        if s is None:
            return None
        acc = self.accuracy
        n_p = acc["forecast_period"].nunique()
        n = int(s["n"])
        return (f"Over the {n_p} forecast period{'s' if n_p != 1 else ''} in view ({n:,} {self.call_category} "
                f"call{'s' if n != 1 else ''} across snapshots and scopes), the {self.call_category} call missed the "
                f"actual by "
                f"{self._pct(s['wape'])} (WAPE; MAPE {self._pct(s['mape'])}) and was within 10% "
                f"{self._pct(s['hit_rate_10'])} of the time.")

    def _baseline_finding(self) -> str | None:
        s, b = self._sum(self.call_category), self._sum(BASELINE)
        if s is None or b is None or pd.isna(s["wape"]) or pd.isna(b["wape"]):
            return None
        verdict = "beats" if s["wape"] < b["wape"] else "does not beat"
        return (f"The {self.call_category} call {verdict} the kit's mechanical baseline "
                f"(WAPE {self._pct(s['wape'])} vs {self._pct(b['wape'])}).")

    def convergence_weeks(self) -> dict:
        """{(kind, category): first week from which the median accuracy stays >= 90%} (None: never)."""
        out = {}
        for (kind, cat), _ in self.by_week.groupby(["kind", "category"]):
            out[(kind, cat)] = _reliable_week(self.by_week, kind, cat)
        return out

    def _convergence_finding(self) -> str | None:
        if self.by_week.empty:
            return None
        parts = []
        for kind in ("month", "quarter", "week"):
            if kind not in set(self.by_week["kind"]):
                continue
            w = _reliable_week(self.by_week, kind, self.call_category)
            wb = _reliable_week(self.by_week, kind, BASELINE)
            txt = (f"from week {w} of the {kind}" if w else f"at no week of the {kind}")
            has_baseline = BASELINE in set(self.by_week["category"])
            bt = f" (baseline: {'week ' + str(wb) if wb else 'never'})" if has_baseline else ""
            parts.append(txt + bt)
        return (f"The {self.call_category} call becomes reliable (median accuracy of 90% or better from then on) "
                + "; ".join(parts) + ".")

    def _bias_finding(self) -> str | None:
        s = self.summary_by_scope
        s = s[(s["category"] == self.call_category) & (s["scope"] != COMPANY) & s["bias"].notna()]
        if s.empty:
            return None
        opt = s[s["verdict"] == "optimistic"].sort_values("bias", ascending=False)
        sand = s[s["verdict"] == "sandbagging"].sort_values("bias")
        ok = s[s["verdict"] == "on target"]
        bits = []
        if len(opt):
            bits.append("optimistic: " + ", ".join(f"{r.scope} ({self._pct(r.bias, True)})" for r in opt.itertuples()))
        if len(sand):
            bits.append("sandbagging: " + ", ".join(f"{r.scope} ({self._pct(r.bias, True)})" for r in sand.itertuples()))
        if len(ok):
            bits.append("on target: " + ", ".join(f"{r.scope} ({self._pct(r.bias, True)})" for r in ok.itertuples()))
        return (f"Bias of the {self.call_category} call by scope (over-forecast > +{self._pct(self.bias_threshold)}, "
                f"under-forecast < −{self._pct(self.bias_threshold)}) — " + "; ".join(bits) + ".")

    def _projection_finding(self) -> str | None:
        p = self.projection
        if p is None or p.empty:
            return None
        bits = []
        for lab, g in p.groupby("forecast_period", sort=False):
            call = g[g["category"] == self.call_category]
            base = g[g["category"] == BASELINE]
            t = g["target"].iloc[0]
            txt = f"{lab}: {self._money(g['won_to_date'].iloc[0])} won so far"
            if len(call):
                c = call.iloc[0]
                txt += f", latest {self.call_category} {self._money(c['forecast'])}"
                txt += "" if pd.isna(t) else f" ({self._pct(c['pct_of_target'])} of target)"
            if len(base):
                b = base.iloc[0]
                txt += f", baseline {self._money(b['forecast'])}"
                txt += "" if pd.isna(t) else f" ({self._pct(b['pct_of_target'])})"
            if pd.isna(t):
                txt += ", no target"
            bits.append(txt)
        return "Periods in progress — " + "; ".join(bits) + "."

    def _coverage_finding(self) -> str | None:
        c = self.coverage
        if c is None or c.empty:
            return None
        nxt = c.iloc[-1]
        past = c[c["complete"] & c["coverage"].notna()]
        if pd.isna(nxt["coverage"]):
            txt = (f"Open pipeline due in {nxt['period']} is {self._money(nxt['open_pipeline'])} at the cut-off "
                   f"(no {self.target_metric} target to compare it with)")
        else:
            txt = (f"Open pipeline due in {nxt['period']} covers {nxt['coverage']:.1f}x its "
                   f"{self._money(nxt['target'])} target at the cut-off")
        if len(past):
            txt += (f" (previous {len(past)} periods: {past['coverage'].min():.1f}x–{past['coverage'].max():.1f}x at "
                    f"their start, attainment {self._pct(past['attainment'].min())}–{self._pct(past['attainment'].max())})")
        return txt + "."

    def _waterfall_finding(self) -> str | None:
        w = self.waterfall
        if w is None or w.empty:
            return None
        a = w.set_index("step")["amount"]
        return (f"{self.period.label} pipeline due in the period went from {self._money(a['starting'])} to "
                f"{self._money(a['ending'])}: {self._money(a['won'])} won, {self._money(a['lost'])} lost, "
                f"{self._money(a['pushed_out'])} pushed out, {self._money(a['new'] + a['pulled_in'])} added "
                f"(new or pulled in).")

    def _slippage_finding(self) -> str | None:
        s = self.slippage
        if s is None:
            return None
        at = s.attrs
        if not at.get("starting_count"):
            return f"No open pipeline was due in {self.period.label} at its start, so nothing could slip."
        multi = int((s["pushes"] >= 2).sum()) if len(s) else 0
        return (f"{at['count']:,} of {at['starting_count']:,} deals due in {self.period.label} at its start slipped "
                f"({self._money(at['amount'])}, {self._pct(at['rate'])} of that pipeline): neither won nor lost in "
                f"the period" + (f"; {multi} of them {'was' if multi == 1 else 'were'} pushed twice or more in it"
                                 if multi else "") + ".")

    def record_headlines(self) -> None:
        """Headline numbers for ``reports/index.html``."""
        from revops_lib.report import headline

        s = self._sum(self.call_category)
        if s is not None:
            headline(f"{self.call_category.capitalize()} WAPE", self._pct(s["wape"]))
            headline(f"{self.call_category.capitalize()} bias", self._pct(s["bias"], True))
        if self.coverage is not None and len(self.coverage):
            nxt = self.coverage.iloc[-1]
            headline(f"Coverage {nxt['period']}", "—" if pd.isna(nxt["coverage"]) else f"{nxt['coverage']:.1f}x")
        if self.slippage is not None:
            headline("Slipped deals", f"{self.slippage.attrs.get('count', 0):,}")

    # -- tables ---------------------------------------------------------------------
    def _formats(self, money=(), pct=(), signed=(), ints=()):
        f = {c: (lambda x: self._money(x)) for c in money}
        f.update({c: (lambda x: self._pct(x)) for c in pct})
        f.update({c: (lambda x: self._pct(x, True)) for c in signed})
        f.update({c: "{:,}" for c in ints})
        return f

    def summary_table(self):
        """Accuracy per category (published as ``summary.csv``)."""
        from revops_lib.report import publish

        if "accuracy" in self.notes:
            publish(self.summary, "summary")
            return self._note("accuracy")
        return publish(self.summary, "summary",
                       formats=self._formats(pct=("mape", "wape", "hit_rate_10"), signed=("bias",), ints=("n",)))

    def accuracy_table(self):
        """Every snapshot in view (published as ``accuracy.csv``); shows the first and last call of each period."""
        from revops_lib.plots import style_table
        from revops_lib.report import publish

        publish(self.accuracy, "accuracy")
        if "accuracy" in self.notes:
            return self._note("accuracy")
        c = self.calls
        if c.empty:
            return md("No company-scope forecast in view.")
        wide = c.pivot_table(index=["forecast_period", "actual"], columns=["category", "call"], values="forecast",
                             aggfunc="first", sort=False)
        cols = [(cat, call) for cat in dict.fromkeys(c["category"]) for call in ("first", "last")
                if (cat, call) in wide.columns]
        wide = wide[cols]
        wide.columns = [f"{cat} ({'first' if call == 'first' else 'last'} call)" for cat, call in cols]
        wide = wide.reset_index()
        order = {p: i for i, p in enumerate(dict.fromkeys(c["forecast_period"]))}
        wide = wide.sort_values("forecast_period", key=lambda s: s.map(order), ascending=False, ignore_index=True)
        money = [col for col in wide.columns if col != "forecast_period"]
        return style_table(wide, self._formats(money=money))

    def bias_table(self):
        """Bias and accuracy per scope and category (published as ``summary_by_scope.csv``)."""
        from revops_lib.report import publish

        if "accuracy" in self.notes:
            return self._note("accuracy")
        return publish(self.summary_by_scope, "summary_by_scope",
                       formats=self._formats(pct=("mape", "wape", "hit_rate_10"), signed=("bias",), ints=("n",)))

    def projection_table(self):
        """Periods in progress: latest calls, baseline, target (published as ``projection.csv``)."""
        from revops_lib.report import publish

        if self.projection is None:
            return self._note("pipeline")
        return publish(self.projection, "projection",
                       formats=self._formats(money=("forecast", "won_to_date", "target"), pct=("pct_of_target",)))

    def coverage_table(self):
        """Coverage per period (published as ``coverage.csv``)."""
        from revops_lib.report import publish

        if self.coverage is None:
            return self._note("pipeline")
        c = self.coverage.copy()
        c["measured_at"] = pd.to_datetime(c["measured_at"]).dt.strftime("%Y-%m-%d %H:%M").str.replace(" 00:00", "")
        styled = publish(c, "coverage", formats={
            **self._formats(money=("open_pipeline", "target", "won"), pct=("attainment",)),
            "coverage": lambda x: f"{x:.2f}x"})
        return styled

    def waterfall_table(self):
        """The waterfall steps (published as ``pipeline_waterfall.csv``)."""
        from revops_lib.report import publish

        if self.waterfall is None:
            return self._note("pipeline")
        return publish(self.waterfall, "pipeline_waterfall", formats=self._formats(money=("amount",)))

    def slippage_table(self, limit: int = 15):
        """Slipped deals, largest first (all of them published as ``slippage.csv``)."""
        from revops_lib.plots import style_table
        from revops_lib.report import publish

        if self.slippage is None:
            return self._note("pipeline")
        publish(self.slippage, "slippage")
        if self.slippage.empty:
            return md("No deal slipped.")
        return style_table(self.slippage.head(limit), self._formats(money=("amount",)))

    # -- charts ------------------------------------------------------------------
    def convergence_chart(self):
        """Median accuracy by week of the period, per category (published as ``accuracy_by_week.csv``)."""
        from revops_lib.plots import plot_forecast_convergence
        from revops_lib.report import publish

        publish(self.by_week, "accuracy_by_week")
        if self.by_week.empty:
            return self._show(self.notes.get("accuracy", "No forecast in view."))
        return plot_forecast_convergence(self.by_week, kind=self.kind)

    def bias_chart(self):
        """Bias of the call category per scope."""
        from revops_lib.plots import plot_bias_by_scope

        s = self.summary_by_scope
        if s[(s["category"] == self.call_category) & s["bias"].notna()].empty:
            return self._show(self.notes.get("accuracy", "No forecast in view."))
        return plot_bias_by_scope(s, category=self.call_category, threshold=self.bias_threshold)

    def calls_chart(self):
        """The first call of each period vs its actual (published as ``forecast_vs_actual.csv``)."""
        from revops_lib.plots import plot_forecast_vs_actual
        from revops_lib.report import publish

        publish(self.calls, "forecast_vs_actual")
        if self.calls.empty:
            return self._show(self.notes.get("accuracy", "No company-scope forecast in view."))
        return plot_forecast_vs_actual(self.calls, currency=self.currency)

    def coverage_chart(self):
        """Coverage per period."""
        from revops_lib.plots import plot_coverage

        if self.coverage is None:
            return self._show(self.notes["pipeline"])
        if self.coverage["coverage"].notna().sum() == 0:
            return self._show(f"No `{self.target_metric}` target for these periods: coverage cannot be computed.")
        return plot_coverage(self.coverage)

    def waterfall_chart(self):
        """The pipeline waterfall of the report period."""
        from revops_lib.plots import plot_pipeline_waterfall

        if self.waterfall is None:
            return self._show(self.notes["pipeline"])
        return plot_pipeline_waterfall(self.waterfall, currency=self.currency, period=self.period.label)

def assess(source, *, period, as_of=None, lookback_periods: int = 12, coverage_periods: int = 6,
           target_metric: str = "revenue_won", call_category: str = "commit", bias_threshold: float = 0.05,
           currency: str = "USD", fiscal_year_start_month: int = 1, won_stages=None,
           lost_stages=None) -> ForecastReport:
    """Compute every part of the forecast-accuracy report for one period.

    Parameters
    ----------
    source : Source or source spec
    period : str or Period
        The report period (its kind picks the convergence chart and the coverage periods).
    as_of : date or time, optional (default: the period end)
    lookback_periods : int, default 12
        Forecast periods in view per kind.
    coverage_periods : int, default 6
        Periods of the report's kind shown in the coverage table (plus the next one).
    target_metric : str, default ``"revenue_won"``
    call_category : str, default ``"commit"``
        The category whose accuracy and bias the findings describe.
    bias_threshold : float, default 0.05
        |bias| above which a scope is called optimistic or sandbagging.
    currency : str, default ``"USD"``
        Label of money amounts.
    fiscal_year_start_month : int, default 1
    won_stages, lost_stages : iterable of str or comma-separated text, optional
        Stage values meaning won / lost (empty or None: inferred).

    Returns
    -------
    ForecastReport
    """
    fy = _fy(fiscal_year_start_month)
    p = _period(period, fy)
    cut = _cutoff(p, as_of, fy)
    won_stages, lost_stages = (
        ([x.strip() for x in v.split(",") if x.strip()] or None) if isinstance(v, str) else v
        for v in (won_stages, lost_stages))
    if not (isinstance(bias_threshold, (int, float)) and 0 <= bias_threshold < 1):
        raise ParameterError(f"`bias_threshold` must be a fraction in [0, 1), not `{bias_threshold!r}`.")
    src = open_source(source)
    notes = {}
    acc = cov = proj = wf = slip = None
    if not src.has("opportunities"):
        notes["pipeline"] = ("No `opportunities` table in the source: actuals, the baseline, coverage, slippage and "
                             "the waterfall cannot be computed.")
        notes["accuracy"] = notes["pipeline"]
        return ForecastReport(period=p, as_of=cut, currency=currency, notes=notes, call_category=call_category,
                              bias_threshold=bias_threshold, target_metric=target_metric)
    with prepare(src, won_stages=won_stages, lost_stages=lost_stages) as deals:
        if src.has("forecast_snapshots"):
            acc = forecast_accuracy(deals, period=p, as_of=cut, lookback_periods=lookback_periods,
                                    fiscal_year_start_month=fy)
            if acc.empty:
                notes["accuracy"] = (f"No forecast period in view: none of the forecast periods in "
                                     f"`forecast_snapshots` ended by {cut:%Y-%m-%d %H:%M} UTC.")
        else:
            notes["accuracy"] = ("No `forecast_snapshots` table in the source: the accuracy sections are skipped "
                                 "(coverage, slippage and the waterfall below still use the pipeline).")
        cov = coverage(deals, period=p, as_of=cut, lookback_periods=coverage_periods, target_metric=target_metric,
                       fiscal_year_start_month=fy)
        proj = projection(deals, period=p, as_of=cut, target_metric=target_metric, fiscal_year_start_month=fy)
        wf = pipeline_waterfall(deals, period=p, as_of=cut, fiscal_year_start_month=fy)
        slip = slippage(deals, period=p, as_of=cut, fiscal_year_start_month=fy)
    return ForecastReport(period=p, as_of=cut, currency=currency, call_category=call_category,
                          bias_threshold=bias_threshold, accuracy=acc, coverage=cov, projection=proj, waterfall=wf,
                          slippage=slip, notes=notes, target_metric=target_metric)
