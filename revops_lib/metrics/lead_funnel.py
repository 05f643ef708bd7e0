"""The lifecycle funnel of leads: stage conversion by source, timing, cohort trend, activity counts.

Every function takes the data first — a :class:`~revops_lib.sources.Source`
(or anything :func:`~revops_lib.sources.open_source` accepts), an Ibis table or
a pandas DataFrame of ``leads`` — runs the heavy work (one aggregate query) in the
engine and returns a small pandas DataFrame or a number.

Definitions (``shared/METRICS.md``, "Funnel conversion")
--------------------------------------------------------
- **Stages** are an ordered list of timestamp columns of ``leads``
  (:data:`DEFAULT_STAGES`); tables name a stage by its column (``mql_at``).
- **Reached** (the default, ``funnel_mode="reached"``): a lead has reached
  stage *i* if it has a timestamp before ``as_of`` for stage *i* or for any
  later stage; a skipped stage is reached at the time of the next stage
  reached. **Strict** (``funnel_mode="strict"``): only if it has timestamps
  before ``as_of`` for the stage and every earlier one, in order (ties allowed).
- **Cohort**: the leads that reached the first stage in the period (and before
  ``as_of``). Per adjacent pair of stages, ``entered`` = cohort leads that
  reached *from_stage*; ``converted`` = those that also reached *to_stage*
  (within ``conversion_window_days`` of reaching *from_stage*, when given);
  ``rate = converted / entered`` with a Wilson score interval
  (``ci_low``, ``ci_high``).
- **Stage timing**: days between reaching *from_stage* and *to_stage* of the
  converted leads; median and 90th percentile by linear interpolation (numpy's
  default, DuckDB's ``quantile_cont``, PostgreSQL's ``percentile_cont``).
- **Activity counts**: leads that reached each stage during the period,
  whenever they were created.

Choices where METRICS.md is silent
----------------------------------
- Rows: the lead funnel and stage timing have a row per group and adjacent pair with
  ``entered`` > 0, the ``all`` rows included (an empty cohort gives no rows). Missing ``source`` or
  ``segment`` values form the group ``unknown``; the funnel report's test across segments leaves it out
  (``source_differences(..., exclude=["unknown"])``: leads get a segment as they become MQLs).
- ``conversion_window_days`` is inclusive (a conversion exactly N days later counts); a negative
  duration (a later stage stamped before an earlier one) counts as within the window and enters the
  timing as it is.
- Stage timing uses the reach times, so a skipped stage adds 0 days to the next pair.
- Chi-square tests are Pearson's without continuity correction (:func:`revops_lib.stats.chi_square_test`);
  with fewer than two groups, or when nobody (or everybody) converted, the p-value is NaN.
- Cohort trend: a cell is *mature* when its period is over and at most 1% of the leads that
  entered ``from_stage`` are still within the window at ``as_of`` (so its rate can rise by at most
  a point); the window defaults to 14, 30 or 90 days for weekly, monthly and quarterly cohorts.
- The previous period is compared at the same age (:func:`same_age_as_of`).

``as_of`` is an exclusive cut-off instant (naive UTC, default the period end):
an event counts when its time is before it.

Speed: timestamps are handled as integer microseconds since the epoch in the
engine (DuckDB's ``epoch_us``, which reads a ``TIMESTAMPTZ`` Parquet column as
it is instead of converting it through the time-zone library), every stage
pair is computed in one aggregate query, and only the aggregates come back.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from revops_lib.errors import ApproximationWarning, ImmatureWarning, ParameterError
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
    raw,
    us,
    with_dtypes,
)
from revops_lib.periods import Period, period_of, window
from revops_lib.sources import to_pandas
from revops_lib.stats import chi_square_test, wilson_interval

#: Lifecycle stages of ``leads``, in order (the ``stages`` parameter's default).
DEFAULT_STAGES: tuple[str, ...] = ("created_at", "mql_at", "sql_at", "opportunity_at", "customer_at")


FUNNEL_MODES = ("reached", "strict")


#: A trend cell is mature when at most this share of its entered leads is still within the window
#: (the rate can then rise by at most one point).
MATURE_PENDING_SHARE = 0.01


TOTAL = "all"




_US_PER_DAY = 86_400_000_000


_EPOCH = pd.Timestamp("1970-01-01")


def _check_mode(mode: str) -> str:
    if mode not in FUNNEL_MODES:
        raise ParameterError(f"`funnel_mode` must be 'reached' (cumulative, the default) or 'strict' "
                             f"(all stages in order), not `{mode!r}`.")
    return mode


def _check_window(days) -> float | None:
    if days is None or (isinstance(days, (int, float)) and not isinstance(days, bool) and days == 0):
        return None
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not days > 0 or math.isinf(days):
        raise ParameterError(f"`conversion_window_days` must be a positive number of days, or None/0 for no "
                             f"window, not `{days!r}`.")
    return float(days)


def _stage_micros(leads: Any, stages: Sequence[str], by: str | None, start: pd.Timestamp | None = None,
                  ids: bool = False, also: Sequence[str] = ()) -> ir.Table:
    """Raw leads -> table of ``g`` (the dimension, when given) and ``a0..an``: stage times in microseconds.

    ``start``: leads whose first-stage time is before it are dropped early by a filter the engine can
    push into the scan (exact for cohorts starting at ``start``: their reach time of the first stage
    is that time). ``ids``: keep ``lead_id`` too (as text), for the records behind the funnel. ``also``: more
    dimensions, as columns ``g_<name>`` (labelled as ``g`` would be).
    """
    t = raw(leads, "leads", needed_by="the funnel")
    if start is not None:
        pre = _prefilter(t, instant(t, stages[0], table="leads", param="stages"), start)
        if pre is not None:
            t = pre
    backend = backend_name(t)
    g = dimension(t, by, table="leads")
    # a projection of its own, so no conversion is computed twice
    return t.select(*([g.name("g")] if g is not None else []),
                    *[dimension(t, d, table="leads").name(f"g_{d}") for d in also],
                    *([(t.lead_id.cast(dt.string) if "lead_id" in t.columns else ibis.null(dt.string)).name("lead_id")]
                      if ids else []),
                    **{f"a{i}": micros(instant(t, s, table="leads", param="stages"), backend)
                       for i, s in enumerate(stages)})


def _reach(a: ir.Table, n: int, cut, mode: str, keep: Sequence[str]) -> ir.Table:
    """Stage times ``a0..an`` -> reach times ``r0..rn`` (microseconds) at the exclusive cut-off ``cut``.

    ``cut``: microseconds, as a number or as a column of ``a`` (one cut-off per row).
    """
    if mode == "reached":
        # reach time of stage i = the first of stages i..n reached before the cut: one CASE per stage
        # (a NULL time compares as unknown and falls through to the next stage)
        return a.select(*keep, **{f"r{i}": ibis.cases(*[(a[f"a{j}"] < cut, a[f"a{j}"]) for j in range(i, n)],
                                                      else_=ibis.null(dt.int64)) for i in range(n)})
    # strict: a timestamp (before the cut) for the stage and every earlier one, in order (ties allowed)
    f = a.select(*keep, **{f"f{i}": ibis.ifelse(a[f"a{i}"] < cut, a[f"a{i}"], ibis.null(dt.int64))
                           for i in range(n)})
    step = f.mutate(r0=f.f0)
    for i in range(1, n):
        prev, cur = step[f"r{i - 1}"], step[f"f{i}"]
        step = step.mutate(**{f"r{i}": ibis.ifelse(prev.notnull() & (cur >= prev), cur, ibis.null(dt.int64))})
    return step.select(*keep, *[f"r{i}" for i in range(n)])


def _stage_times(leads: Any, stages: Sequence[str], as_of: pd.Timestamp, mode: str, by: str | None,
                 start: pd.Timestamp | None = None, ids: bool = False, also: Sequence[str] = ()) -> ir.Table:
    """Raw leads -> table of ``g`` (the dimension, when given), ``g_<name>`` (each of ``also``), ``lead_id`` (with
    ``ids``) and ``r0..rn``: reach times in microseconds."""
    a = _stage_micros(leads, stages, by, start, ids=ids, also=also)
    keep = (["g"] if by is not None else []) + [f"g_{d}" for d in also] + (["lead_id"] if ids else [])
    return _reach(a, len(stages), us(as_of), mode, keep)


def _prefilter(t: ir.Table, first: ir.Value, start: pd.Timestamp) -> ir.Table | None:
    """The leads that can be in a cohort starting at ``start``, by filters the engine pushes into the scan.

    Exact: a lead whose first-stage time is before ``start`` has that time as its reach time of the
    first stage, so it is in no such cohort. The leads without a first-stage time (their first stage
    is reached at a later stage's time) are kept by a second filter: two simple filters let the
    engine skip row groups by their statistics, where ``IS NULL OR >=`` would not.
    """
    if not isinstance(first, ir.Column) or first.get_name() not in t.columns or not first.type().is_timestamp():
        return None
    tz = first.type().timezone
    lit = ibis.timestamp(pd.Timestamp(start).to_pydatetime(), timezone=tz) if tz else \
        ibis.timestamp(pd.Timestamp(start).to_pydatetime())
    col = first.get_name()
    return t.filter(t[col] >= lit).union(t.filter(t[col].isnull()))


def _funnel_query(leads, *, stages, start: pd.Timestamp, cut: pd.Timestamp, as_of: pd.Timestamp, mode: str,
                  by: str | None, window_days: float | None, timing: bool, buckets: Sequence[pd.Timestamp] | None,
                  include_total: bool, pending: bool = False) -> pd.DataFrame:
    """Wide per-group aggregates: ``[g], [k], e{i}, c{i}, [q{i}], [p{i}]`` for each pair i.

    ``p{i}`` (with ``pending``): entered leads whose conversion window is still open at ``as_of``.

    ``buckets``: cohort start times (ascending, the last one = window end) -> column ``k`` (cohort index).
    """
    r = _stage_times(leads, stages, as_of, mode, by, start=start)
    if buckets is None:
        r = r.filter((r.r0 >= us(start)) & (r.r0 < us(cut)))
    else:  # the cohort index; leads outside every cohort get none (cheaper than a filter, dropped below)
        edges = [us(b) for b in buckets[1:-1]] + [us(cut)]
        r = r.mutate(k=ibis.cases((r.r0 < us(start), ibis.null(dt.int64)),
                                  *[(r.r0 < e, j) for j, e in enumerate(edges)], else_=ibis.null(dt.int64)))
    w_us = None if window_days is None else int(round(window_days * _US_PER_DAY))
    aggs = {}
    n = len(stages)
    for i in range(n - 1):
        a, b = r[f"r{i}"], r[f"r{i + 1}"]
        # (b - a) is NULL when b is: a window condition needs no IS NOT NULL, and the quantile of
        # the differences skips the unconverted leads by itself
        aggs[f"e{i}"] = a.count()
        aggs[f"c{i}"] = b.count() if w_us is None else count_if((b - a) <= w_us)
        if timing:  # in microseconds: days in pandas
            aggs[f"q{i}"] = ((b - a).quantile([0.5, 0.9]) if w_us is None
                             else (b - a).quantile([0.5, 0.9], where=(b - a) <= w_us))
        if pending and w_us is not None:
            aggs[f"p{i}"] = count_if(a > us(as_of) - w_us)
    keys = []
    if by is not None:
        keys.append("g")
    if buckets is not None:
        keys.append("k")
    if keys:
        grouped = r.group_by(keys).aggregate(**aggs)
        if include_total and by is not None:
            tot_keys = [k for k in keys if k != "g"]
            tot = (r.group_by(tot_keys).aggregate(**aggs) if tot_keys else r.aggregate(**aggs))
            tot = tot.mutate(g=ibis.literal(TOTAL)).select(*grouped.columns)
            grouped = grouped.union(tot)
        expr = grouped
    else:
        expr = r.aggregate(**aggs)
    df = to_pandas(expr)
    if timing:  # make sure an empty cohort gives the columns too
        for i in range(n - 1):
            if f"q{i}" not in df:
                df[f"q{i}"] = None
    return df


def _long(wide: pd.DataFrame, stages, by: str | None, *, confidence: float, min_sample: int,
          timing: bool = False, key_cols: Sequence[str] = ()) -> pd.DataFrame:
    """Wide aggregates -> one row per group x stage pair (entered > 0 only)."""
    stage_pairs = pairs(stages)
    rows = []
    for rec in wide.to_dict("records"):
        base = {}
        if by is not None:
            base[by] = rec["g"]
        for kc in key_cols:
            base[kc] = rec[kc]
        cohort = as_int(rec.get("e0"))
        for i, (a, b) in enumerate(stage_pairs):
            e = as_int(rec.get(f"e{i}"))
            c = as_int(rec.get(f"c{i}"))
            row = dict(base, from_stage=a, to_stage=b, entered=e, converted=c, cohort=cohort)
            if timing:
                q = rec.get(f"q{i}")
                q = None if q is None or (not isinstance(q, (list, np.ndarray)) and pd.isna(q)) else list(q)
                row["median_days"] = float(q[0]) / _US_PER_DAY if q and q[0] is not None else math.nan
                row["p90_days"] = float(q[1]) / _US_PER_DAY if q and q[1] is not None else math.nan
            if f"p{i}" in rec:
                row["pending"] = as_int(rec[f"p{i}"])
            row["_i"] = i
            rows.append(row)
    cols = ([by] if by is not None else []) + list(key_cols) + ["from_stage", "to_stage", "entered", "converted",
                                                                 "cohort", "_i"]
    if timing:
        cols += ["median_days", "p90_days"]
    df = pd.DataFrame(rows, columns=cols if not rows else None)
    if df.empty:
        df = pd.DataFrame({c: pd.Series(dtype="object" if c in (by, "from_stage", "to_stage") else "float64")
                           for c in cols})
    df = df[df["entered"] > 0].copy()
    df["entered"] = df["entered"].astype("int64")
    df["converted"] = df["converted"].astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        df["rate"] = (df["converted"] / df["entered"]).astype("float64")
        df["cumulative_rate"] = (df["converted"] / df["cohort"].replace(0, np.nan)).astype("float64")
    low, high = wilson_interval(df["converted"].to_numpy(), df["entered"].to_numpy(), confidence=confidence)
    df["ci_low"] = np.asarray(low, dtype="float64")
    df["ci_high"] = np.asarray(high, dtype="float64")
    df["small_sample"] = df["entered"] < min_sample
    return df


def _order(df: pd.DataFrame, by: str | None, key_cols: Sequence[str] = ()) -> pd.DataFrame:
    """``all`` first, then groups by cohort size (largest first), then stage order."""
    if df.empty:
        return df.reset_index(drop=True)
    sort_cols, asc = [], []
    for kc in key_cols:
        sort_cols.append(kc)
        asc.append(True)
    if by is not None:
        size = df.groupby(by)["cohort"].transform("max")
        df = df.assign(_tot=(df[by] != TOTAL).astype(int), _size=-size)
        sort_cols += ["_tot", "_size", by]
        asc += [True, True, True]
    sort_cols.append("_i")
    asc.append(True)
    df = df.sort_values(sort_cols, ascending=asc, kind="stable")
    return df.drop(columns=[c for c in ("_tot", "_size") if c in df.columns]).reset_index(drop=True)


@dataclass
class FunnelTables:
    """What :func:`funnel_tables` returns: the conversion and the timing of one cohort, from one query."""

    conversion: pd.DataFrame
    timing: pd.DataFrame


def funnel_tables(leads, *, period, as_of=None, stages: Sequence[str] = DEFAULT_STAGES, by: str | None = "source",
                  funnel_mode: str = "reached", conversion_window_days: float | None = None,
                  confidence: float = 0.95, min_sample: int = 30, include_total: bool = True) -> FunnelTables:
    """Cohort funnel and stage timing of one period in one aggregate query.

    Parameters
    ----------
    leads : Source, source spec, Ibis table or DataFrame
        The ``leads`` table (columns: the stage timestamps and the ``by`` column).
    period : str or Period
        The cohort: leads that reached the first stage in the period.
    as_of : str or Timestamp, optional
        Exclusive cut-off (default: the period end); later timestamps do not count.
    stages : list of str
        Timestamp columns of ``leads`` in funnel order (default :data:`DEFAULT_STAGES`).
    by : str or None, default "source"
        Column to break the funnel down by (``source``, ``segment`` …); None for the total only.
        Missing values are grouped as ``unknown``.
    funnel_mode : {"reached", "strict"}
    conversion_window_days : float, optional
        Count a conversion only within this many days of reaching ``from_stage`` (None or 0: no window).
    confidence : float, default 0.95
        Of the Wilson interval.
    min_sample : int, default 30
        ``small_sample`` flags rates with ``entered`` below it.
    include_total : bool, default True
        Add the ``by`` = ``all`` rows (all leads together).

    Returns
    -------
    FunnelTables
        ``.conversion``: ``[by], from_stage, to_stage, entered, converted, rate, ci_low, ci_high,
        cumulative_rate, small_sample`` (``cumulative_rate`` = converted / cohort size);
        ``.timing``: ``[by], from_stage, to_stage, n, median_days, p90_days``. One row per group and
        adjacent stage pair with ``entered`` > 0, ``all`` first.
    """
    stages = check_stages(stages)
    mode = _check_mode(funnel_mode)
    win_days = _check_window(conversion_window_days)
    min_sample = check_int(min_sample, "min_sample", 0)
    p, cut_as_of = window(period, as_of, period_required=True)
    cut = min(p.end_naive, cut_as_of)
    wide = _funnel_query(leads, stages=stages, start=p.start_naive, cut=cut, as_of=cut_as_of, mode=mode, by=by,
                         window_days=win_days, timing=True, buckets=None, include_total=include_total)
    df = _order(_long(wide, stages, by, confidence=confidence, min_sample=min_sample, timing=True), by)
    lead = [by] if by is not None else []
    conversion = df[lead + ["from_stage", "to_stage", "entered", "converted", "rate", "ci_low", "ci_high",
                            "cumulative_rate", "small_sample"]].reset_index(drop=True)
    timing = df[lead + ["from_stage", "to_stage", "converted", "median_days", "p90_days"]].rename(
        columns={"converted": "n"}).reset_index(drop=True)
    conversion.attrs.update(period=p.label, as_of=cut_as_of, funnel_mode=mode, window_days=win_days, stages=stages)
    timing.attrs.update(conversion.attrs)
    return FunnelTables(conversion, timing)


def stage_conversion(leads, *, period, as_of=None, stages: Sequence[str] = DEFAULT_STAGES,
                     by: str | None = "source", funnel_mode: str = "reached",
                     conversion_window_days: float | None = None, confidence: float = 0.95,
                     min_sample: int = 30, include_total: bool = True) -> pd.DataFrame:
    """Cohort funnel: entered, converted, rate and Wilson interval per group and adjacent stage pair.

    See :func:`funnel_tables` for the parameters.

    Returns
    -------
    DataFrame
        ``[by], from_stage, to_stage, entered, converted, rate, ci_low, ci_high, cumulative_rate,
        small_sample``; the ``by`` = ``all`` rows first; only rows with ``entered`` > 0.

    Examples
    --------
    >>> leads = pd.DataFrame({
    ...     "lead_id": ["L1", "L2", "L3"], "source": ["web", "web", "event"],
    ...     "created_at": pd.to_datetime(["2026-10-01", "2026-10-02", "2026-10-03"]),
    ...     "mql_at": pd.to_datetime(["2026-10-02", None, None]),
    ...     "sql_at": pd.to_datetime([None, None, "2026-10-05"])})
    >>> stage_conversion(leads, period="2026-10", stages=["created_at", "mql_at", "sql_at"])[
    ...     ["source", "from_stage", "to_stage", "entered", "converted", "rate"]]
      source  from_stage to_stage  entered  converted      rate
    0    all  created_at   mql_at        3          2  0.666667
    1    all      mql_at   sql_at        2          1  0.500000
    2    web  created_at   mql_at        2          1  0.500000
    3    web      mql_at   sql_at        1          0  0.000000
    4  event  created_at   mql_at        1          1  1.000000
    5  event      mql_at   sql_at        1          1  1.000000
    """
    return funnel_tables(leads, period=period, as_of=as_of, stages=stages, by=by, funnel_mode=funnel_mode,
                         conversion_window_days=conversion_window_days, confidence=confidence,
                         min_sample=min_sample, include_total=include_total).conversion


def stage_timing(leads, *, period, as_of=None, stages: Sequence[str] = DEFAULT_STAGES, by: str | None = "source",
                 funnel_mode: str = "reached", conversion_window_days: float | None = None,
                 include_total: bool = True) -> pd.DataFrame:
    """Days from reaching ``from_stage`` to reaching ``to_stage``, for the cohort's converted leads.

    Parameters as :func:`funnel_tables`. A skipped stage is reached at the time of the next stage
    reached, so a lead without ``mql_at`` spends 0 days from MQL to SQL.

    Returns
    -------
    DataFrame
        ``[by], from_stage, to_stage, n, median_days, p90_days`` (linear interpolation); one row per
        group and pair with ``entered`` > 0 (``n`` = converted leads; the days are NaN when it is 0).

    Examples
    --------
    >>> leads = pd.DataFrame({
    ...     "lead_id": ["L1", "L2", "L3"], "source": ["web", "web", "web"],
    ...     "created_at": pd.to_datetime(["2026-10-01", "2026-10-01", "2026-10-01"]),
    ...     "mql_at": pd.to_datetime(["2026-10-02", "2026-10-03", "2026-10-11"])})
    >>> stage_timing(leads, period="2026-10", stages=["created_at", "mql_at"], by=None)
       from_stage to_stage  n  median_days  p90_days
    0  created_at   mql_at  3          2.0       8.4
    """
    return funnel_tables(leads, period=period, as_of=as_of, stages=stages, by=by, funnel_mode=funnel_mode,
                         conversion_window_days=conversion_window_days,
                         include_total=include_total).timing


def source_differences(conversion: pd.DataFrame, *, by: str = "source", alpha: float = 0.05,
                       min_sample: int = 30, exclude: Sequence[str] = ()) -> pd.DataFrame:
    """Chi-square test of independence (converted vs not, across groups) per stage pair.

    Parameters
    ----------
    conversion : DataFrame
        A :func:`stage_conversion` result (``[by], from_stage, to_stage, entered, converted``); the
        ``all`` rows are left out of the test.
    by : str, default "source"
    alpha : float, default 0.05
        ``differ`` is True when ``p_value < alpha``.
    min_sample : int, default 30
        Groups with fewer entered leads are not named ``highest`` or ``lowest``.
    exclude : list of str, optional
        Groups left out of the test and of ``highest``/``lowest``, e.g. ``["unknown"]`` for segments: leads
        get a segment when they become MQLs, so the leads without one are mostly those that never did, and
        their near-zero first rate says how the CRM fills the field, not how a segment converts.

    Returns
    -------
    DataFrame
        ``from_stage, to_stage, groups, chi2, dof, p_value, min_expected, differ, highest, lowest``:
        Pearson's test without continuity correction (``scipy.stats.chi2_contingency``);
        ``min_expected`` below 5 makes the p-value approximate. NaN when fewer than two groups
        have leads or nobody (or everybody) converted. ``highest``/``lowest``: the groups with the
        highest and lowest rate among those with at least ``min_sample`` entered.

    Examples
    --------
    >>> conv = pd.DataFrame({"source": ["a", "b"], "from_stage": ["x", "x"], "to_stage": ["y", "y"],
    ...                      "entered": [100, 100], "converted": [30, 50]})
    >>> round(float(source_differences(conv)["p_value"].iloc[0]), 4)
    0.0039
    """
    rows = []
    cols = ["from_stage", "to_stage", "groups", "chi2", "dof", "p_value", "min_expected", "differ",
            "highest", "lowest"]
    if conversion.empty or by not in conversion.columns:
        return pd.DataFrame(columns=cols)
    data = conversion[(conversion[by] != TOTAL) & ~conversion[by].isin(list(exclude))]
    for (a, b), g in data.groupby(["from_stage", "to_stage"], sort=False):
        g = g[g["entered"] > 0]
        table = np.column_stack([g["converted"].to_numpy(), (g["entered"] - g["converted"]).to_numpy()])
        chi2, pval, dof, mexp = chi_square_test(table) if len(g) else (math.nan, math.nan, 0, math.nan)
        big = g[g["entered"] >= min_sample]
        rate = big["converted"] / big["entered"]
        rows.append(dict(from_stage=a, to_stage=b, groups=int(len(g)), chi2=chi2, dof=dof, p_value=pval,
                         min_expected=mexp, differ=bool(pval < alpha) if not math.isnan(pval) else False,
                         highest=big[by].iloc[int(np.argmax(rate))] if len(big) else None,
                         lowest=big[by].iloc[int(np.argmin(rate))] if len(big) else None))
    out = pd.DataFrame(rows, columns=cols)
    weak = out[out["min_expected"] < 5]
    if len(weak):
        warnings.warn(f"{len(weak)} chi-square test(s) rest on an expected count below 5: their p-values are "
                      "approximate.", ApproximationWarning, stacklevel=2)
    return out


def compare_rates(current: pd.DataFrame, previous: pd.DataFrame, *, by: str | None = "source",
                  group: str = TOTAL, alpha: float = 0.05) -> pd.DataFrame:
    """Stage-to-stage rates of two cohorts side by side, with a chi-square test of the change.

    Parameters
    ----------
    current, previous : DataFrame
        :func:`stage_conversion` results (e.g. this period and the previous one measured at the same age).
    by : str or None
        Their dimension column; ``group`` picks the rows to compare (default ``all``).

    Returns
    -------
    DataFrame
        ``from_stage, to_stage, entered, converted, rate, prior_entered, prior_converted, prior_rate,
        change, p_value, beyond_noise``; ``change`` is in rate points (fractions); ``p_value`` from a
        2x2 Pearson chi-square test; ``beyond_noise`` when ``p_value < alpha``.
    """
    def pick(df):
        if by is not None and by in df.columns:
            df = df[df[by] == group]
        return df.set_index(["from_stage", "to_stage"])[["entered", "converted", "rate"]]

    cur, prev = pick(current), pick(previous)
    prev = prev.rename(columns=lambda c: f"prior_{c}")
    out = cur.join(prev, how="outer")
    order = list(cur.index) + [i for i in prev.index if i not in cur.index]
    out = out.reindex(order)
    for c in ("entered", "converted", "prior_entered", "prior_converted"):
        out[c] = out[c].fillna(0).astype("int64")
    out["change"] = out["rate"] - out["prior_rate"]
    pvals = []
    for r in out.itertuples():
        table = np.array([[r.converted, r.entered - r.converted],
                          [r.prior_converted, r.prior_entered - r.prior_converted]])
        pvals.append(chi_square_test(table)[1])
    out["p_value"] = pvals
    out["beyond_noise"] = out["p_value"] < alpha
    return out.reset_index()


def default_trend_window(kind: str) -> int:
    """Days of the trend's conversion window by cadence: 14 for weeks, 30 for months, 90 for quarters."""
    return {"week": 14, "month": 30, "quarter": 90}.get(kind, 30)


def cohort_trend(leads, *, period, as_of=None, cohorts: int = 12, window_days: float | None = None,
                 stages: Sequence[str] = DEFAULT_STAGES, by: str | None = None, funnel_mode: str = "reached",
                 confidence: float = 0.95, min_sample: int = 30) -> pd.DataFrame:
    """Stage-to-stage rates of the last ``cohorts`` cohorts (periods of the report's kind), within N days.

    Parameters
    ----------
    leads : Source, source spec, Ibis table or DataFrame
    period : str or Period
        The latest cohort; the earlier ones are the periods of the same kind before it.
    as_of : optional
        Cut-off (default: the period end).
    cohorts : int, default 12
    window_days : float, optional
        Conversions count within this many days of reaching ``from_stage`` (default
        :func:`default_trend_window` of the period kind), so young cohorts compare fairly with old ones.
    stages, by, funnel_mode, confidence, min_sample
        As :func:`funnel_tables` (``by`` default None: the total only).

    Returns
    -------
    DataFrame
        ``cohort, cohort_start, [by], from_stage, to_stage, entered, converted, rate, ci_low, ci_high,
        small_sample, pending, mature`` (oldest cohort first). ``pending``: entered leads that have had
        fewer than ``window_days`` days since reaching ``from_stage`` by ``as_of``; ``mature`` is False
        while the cohort period is not over or more than 1% of the entered leads are pending (the rate
        could still rise by more than a point).
    """
    stages = check_stages(stages)
    mode = _check_mode(funnel_mode)
    cohorts = check_int(cohorts, "cohorts")
    min_sample = check_int(min_sample, "min_sample", 0)
    p, cut_as_of = window(period, as_of, period_required=True)
    window_d = _check_window(window_days if window_days is not None else default_trend_window(p.kind))
    periods = p.trailing(cohorts)
    edges = [q.start_naive for q in periods] + [periods[-1].end_naive]
    cut = min(edges[-1], cut_as_of)
    wide = _funnel_query(leads, stages=stages, start=edges[0], cut=cut, as_of=cut_as_of, mode=mode, by=by,
                         window_days=window_d, timing=False, buckets=edges, include_total=False, pending=True)
    wide = wide[wide["k"].notna()] if "k" in wide else wide
    # ordered while ``cohort`` is still the cohort size (it becomes the cohort's label below)
    df = _order(_long(wide, stages, by, confidence=confidence, min_sample=min_sample, key_cols=["k"]), by,
                key_cols=["k"])
    labels = {j: q.label for j, q in enumerate(periods)}
    starts = {j: q.start_date for j, q in enumerate(periods)}
    ends = {j: q.end_naive for j, q in enumerate(periods)}
    if len(df):
        k = df["k"].astype(int)
        df["cohort"] = k.map(labels)
        df["cohort_start"] = k.map(starts)
        over = k.map(ends) <= cut_as_of
        if "pending" not in df:  # no window: nothing is pending
            df["pending"] = 0
        df["pending"] = df["pending"].astype("int64")  # every row has its count (as_int: never None)
        df["mature"] = over & (df["pending"] <= MATURE_PENDING_SHARE * df["entered"])
    else:  # no rows: the dtypes of rows (labels as text, cohort starts as dates, counts as integers)
        df["cohort"], df["cohort_start"] = pd.Series(dtype="str"), pd.Series(dtype=object)
        df["mature"], df["pending"] = pd.Series(dtype=bool), pd.Series(dtype="int64")
    lead = [by] if by is not None else []
    out = df[["cohort", "cohort_start"] + lead + ["from_stage", "to_stage", "entered", "converted", "rate",
                                                  "ci_low", "ci_high", "small_sample", "pending", "mature"]]
    out = with_dtypes(out.reset_index(drop=True), {c: "str" for c in ["cohort", *lead, "from_stage", "to_stage"]})
    out["mature"] = out["mature"].astype(bool)
    out.attrs.update(window_days=window_d, period=p.label, as_of=cut_as_of, cohorts=[q.label for q in periods])
    immature = sorted(set(out.loc[~out["mature"], "cohort"]))
    if immature:
        warnings.warn(f"Cohort(s) {', '.join(immature)} are not mature yet (their window of {window_d:g} days has "
                      "not passed for every lead): their rates will still rise.", ImmatureWarning, stacklevel=2)
    return out


def time_to_convert(leads, *, period, as_of=None, stages: Sequence[str] = DEFAULT_STAGES,
                    funnel_mode: str = "reached", max_days: int = 120) -> pd.DataFrame:
    """Distribution of the days from one stage to the next, for the cohort's converted leads.

    Returns
    -------
    DataFrame
        ``from_stage, to_stage, days, leads, share``: ``leads`` converted within ``days`` whole days
        (``days`` = 0 … ``max_days``, a cumulative count) and ``share`` of all converted leads of the pair
        (so ``share`` reaches 1 only when every conversion took at most ``max_days``).
    """
    stages = check_stages(stages)
    mode = _check_mode(funnel_mode)
    max_days = check_int(max_days, "max_days")
    p, cut_as_of = window(period, as_of, period_required=True)
    cut = min(p.end_naive, cut_as_of)
    r = _stage_times(leads, stages, cut_as_of, mode, None, start=p.start_naive)
    r = r.filter((r.r0 >= us(p.start_naive)) & (r.r0 < us(cut)))
    parts = []
    for i in range(len(stages) - 1):
        a, b = r[f"r{i}"], r[f"r{i + 1}"]
        d = ((b - a) / _US_PER_DAY).ceil().clip(lower=0)
        s = r.filter(b.notnull()).select(i=ibis.literal(i), day=ibis.least(d, max_days + 1).cast(dt.int64))
        parts.append(s)
    u = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    counts = to_pandas(u.group_by(["i", "day"]).aggregate(leads=u.count()))
    rows = []
    stage_pairs = pairs(stages)
    for i, (a, b) in enumerate(stage_pairs):
        c = counts[counts["i"] == i].set_index("day")["leads"]
        total = int(c.sum())
        grid = pd.Series(0, index=range(0, max_days + 2), dtype="int64").add(c, fill_value=0).cumsum()
        for day in range(0, max_days + 1):
            n = int(grid.loc[day])
            rows.append((a, b, day, n, n / total if total else math.nan))
    return pd.DataFrame(rows, columns=["from_stage", "to_stage", "days", "leads", "share"])


def activity_counts(leads, *, period, as_of=None, stages: Sequence[str] = DEFAULT_STAGES, by: str | None = None,
                    funnel_mode: str = "reached") -> pd.DataFrame:
    """Leads that entered each stage during the period (whenever they were created): MQLs, SQLs …

    A skipped stage is entered at the time of the next stage reached (as in the funnel); entries
    at or after ``as_of`` do not count.

    Returns
    -------
    DataFrame
        ``[by], stage, leads`` — every stage (and group) with its count, zeros included.

    Examples
    --------
    >>> leads = pd.DataFrame({
    ...     "lead_id": ["L1", "L2"], "source": ["web", "web"],
    ...     "created_at": pd.to_datetime(["2026-09-20", "2026-10-02"]),
    ...     "mql_at": pd.to_datetime([None, "2026-10-03"]),
    ...     "sql_at": pd.to_datetime(["2026-10-05", None])})
    >>> activity_counts(leads, period="2026-10", stages=["created_at", "mql_at", "sql_at"])
            stage  leads
    0  created_at      1
    1      mql_at      2
    2      sql_at      1
    """
    counts = activity_counts_many(leads, [(period, as_of)], stages=stages, by=by, funnel_mode=funnel_mode)
    return counts.drop(columns="period").reset_index(drop=True)


def activity_counts_many(leads, windows: Sequence[tuple], *, stages: Sequence[str] = DEFAULT_STAGES,
                         by: str | None = None, funnel_mode: str = "reached",
                         count: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`activity_counts` for several ``(period, as_of)`` windows in one query (the scorecard's history).

    Each window counts exactly as :func:`activity_counts` with that period and ``as_of`` (None: the
    period end): reach times are taken at the window's own cut-off.

    ``count``: only these of ``stages`` (default: all), e.g. ``["mql_at", "sql_at"]`` for MQLs and SQLs.
    The same counts as with every stage; faster, since a stage's reach time is one of its own or a later
    stage's times, so only the leads with such a time in some window are paired with the windows.

    Returns
    -------
    DataFrame
        ``period, [by], stage, leads``: the windows in the order given, every counted stage (and group)
        with its count, zeros included.
    """
    stages = check_stages(stages)
    mode = _check_mode(funnel_mode)
    n = len(stages)
    counted = list(range(n))
    if count is not None:
        unknown = [c for c in count if c not in stages]
        if unknown or not count:
            raise ParameterError(f"`count` must name some of the funnel stages ({', '.join(stages)}), "
                                 f"not {list(count)!r}.")
        counted = [i for i, st in enumerate(stages) if st in set(count)]
    spec = []
    for w in windows:
        period, as_of = w if isinstance(w, tuple) else (w, None)
        p, cut_as_of = window(period, as_of, period_required=True)
        spec.append((p.label, us(p.start_naive), us(min(p.end_naive, cut_as_of)), us(cut_as_of)))
    cols = ["period"] + ([by] if by is not None else []) + ["stage", "leads"]
    if not spec:
        return pd.DataFrame(columns=cols)
    a = _stage_micros(leads, stages, by)
    keep = ["g"] if by is not None else []
    # A lead counts in a window only through a stage time inside it (the reach time of stage i is the time of
    # stage i or of a later one), so only the windows between its earliest and its latest such time need
    # pairing with it (a range join, not a cross join).
    times = [a[f"a{i}"] for i in range(counted[0], n)]
    a = a.mutate(_lo=ibis.least(*times) if len(times) > 1 else times[0],
                 _hi=ibis.greatest(*times) if len(times) > 1 else times[0])
    a = a.filter((a._hi >= min(x[1] for x in spec)) & (a._lo < max(x[2] for x in spec)))
    cal = ibis.memtable(pd.DataFrame({"w": range(len(spec)), "w_lo": [x[1] for x in spec],
                                      "w_hi": [x[2] for x in spec], "w_cut": [x[3] for x in spec]},
                                     dtype="int64"))
    j = a.join(cal, (a._hi >= cal.w_lo) & (a._lo < cal.w_hi))
    r = _reach(j, n, j.w_cut, mode, keep + ["w", "w_lo", "w_hi"])
    aggs = {f"n{i}": count_if((r[f"r{i}"] >= r.w_lo) & (r[f"r{i}"] < r.w_hi)) for i in counted}
    wide = to_pandas(r.group_by(["w"] + keep).aggregate(**aggs))
    found = {(int(rec["w"]), rec.get("g")): rec for rec in wide.to_dict("records")}
    if by is None:
        groups = [None]
    else:  # every group of the table, as activity_counts lists them (zeros included)
        groups = sorted(to_pandas(_stage_micros(leads, stages, by).select("g").distinct())["g"].tolist())
    rows = []
    for k, (label, *_rest) in enumerate(spec):
        for g in groups:
            rec = found.get((k, g), {})
            for i in counted:
                rows.append((label, *([g] if by is not None else []), stages[i], as_int(rec.get(f"n{i}"))))
    return pd.DataFrame(rows, columns=cols)


def stage_entries(leads, stage: str, *, period, as_of=None, stages: Sequence[str] = DEFAULT_STAGES) -> int:
    """Number of leads that entered one stage in the period (the scorecard's ``mqls``, ``sqls``).

    >>> leads = pd.DataFrame({"lead_id": ["L1"], "source": ["web"],
    ...     "created_at": pd.to_datetime(["2026-09-20"]), "mql_at": pd.to_datetime(["2026-10-03"])})
    >>> stage_entries(leads, "mql_at", period="2026-10", stages=["created_at", "mql_at"])
    1
    """
    stages = check_stages(stages)
    if stage not in stages:
        raise ParameterError(f"`stage` `{stage}` is not one of the funnel stages: {', '.join(stages)}.")
    counts = activity_counts(leads, period=period, as_of=as_of, stages=stages)
    return int(counts.loc[counts["stage"] == stage, "leads"].iloc[0])


def longer_period(period: Period) -> str:
    """The label of a longer period to suggest when samples are too small (week -> month -> quarter)."""
    if period.kind == "week":
        thursday = period.start + pd.Timedelta(days=3)
        return period_of(thursday, "month", fiscal_year_start_month=period.fiscal_year_start_month).label
    if period.kind == "month":
        return period_of(period.start, "quarter", fiscal_year_start_month=period.fiscal_year_start_month).label
    return ""


def same_age_as_of(period: Period, as_of: pd.Timestamp, other: Period) -> pd.Timestamp:
    """The cut-off that gives ``other``'s cohort the same age as ``period``'s at ``as_of``.

    At or after the period end: the same time after ``other``'s end; within the period: the same
    time after ``other``'s start.
    """
    if as_of >= period.end_naive:
        return other.end_naive + (as_of - period.end_naive)
    return other.start_naive + (as_of - period.start_naive)
