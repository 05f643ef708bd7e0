"""Funnel conversion: the lifecycle funnel of leads, the deal-stage funnel and the sales metrics.

Every function takes the data first — a :class:`~revops_lib.sources.Source`
(or anything :func:`~revops_lib.sources.open_source` accepts), an Ibis table or
a pandas DataFrame of the contract table — runs the heavy work (one aggregate
query per table) in the engine and returns a small pandas DataFrame or a number.

Definitions (``shared/METRICS.md``, "Funnel conversion" and "Sales")
--------------------------------------------------------------------
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
- **Deal stages**: for opportunities created in the period, a deal has reached
  a configured stage if its history (before ``as_of``) holds that stage or a
  later one (:data:`DEFAULT_DEAL_STAGES`; stages not in the list, such as
  ``closed_lost``, are ignored). A deal without any history row falls back to
  its ``opportunities.stage``.
- **Sales**: win rate by count and by amount, average deal size, sales cycle
  length and pipeline velocity (see :func:`sales_metrics`).

Choices where METRICS.md is silent
----------------------------------
- Rows: the lead funnel and stage timing have a row per group and adjacent pair with
  ``entered`` > 0, the ``all`` rows included (an empty cohort gives no rows); the deal-stage funnel
  has a row for every adjacent pair (``rate`` NaN when nobody entered). Missing ``source`` or
  ``segment`` values form the group ``unknown``.
- ``conversion_window_days`` is inclusive (a conversion exactly N days later counts); a negative
  duration (a later stage stamped before an earlier one) counts as within the window and enters the
  timing as it is.
- Stage timing uses the reach times, so a skipped stage adds 0 days to the next pair.
- Chi-square tests are Pearson's without continuity correction; with fewer than two groups, or
  when nobody (or everybody) converted, the p-value is NaN.
- Cohort trend: a cell is *mature* when its period is over and at most 1% of the leads that
  entered ``from_stage`` are still within the window at ``as_of`` (so its rate can rise by at most
  a point); the window defaults to 14, 30 or 90 days for weekly, monthly and quarterly cohorts.
- The previous period is compared at the same age (:func:`same_age_as_of`).
- Sales metrics count every opportunity type unless ``types`` is given; "open qualified
  opportunities" of pipeline velocity are the deals open at the cut-off (created before it, not
  closed before its date); the trailing window is the ``lookback_periods`` quarters before
  ``min(period end, as_of)``.

``as_of`` is an exclusive cut-off instant (naive UTC, default the period end):
an event counts when its time is before it; a date counts when it is before
``as_of``'s date.

Speed: timestamps are handled as integer microseconds since the epoch in the
engine (DuckDB's ``epoch_us``, which reads a ``TIMESTAMPTZ`` Parquet column as
it is instead of converting it through the time-zone library), every stage
pair is computed in one aggregate query, and only the aggregates come back.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError, SchemaError, SourceError
from revops_lib.periods import Period, parse_period, period_of, resolve_as_of
from revops_lib.schema import TABLES
from revops_lib.sources import as_table, date_windows, open_source, to_pandas
from revops_lib.text import md

__all__ = [
    "DEFAULT_STAGES",
    "DEFAULT_DEAL_STAGES",
    "FOOTNOTES",
    "wilson_interval",
    "funnel_tables",
    "stage_conversion",
    "stage_timing",
    "source_differences",
    "compare_rates",
    "cohort_trend",
    "time_to_convert",
    "activity_counts",
    "stage_entries",
    "deal_stage_conversion",
    "closed_deal_stats",
    "win_rate",
    "average_deal_size",
    "sales_cycle_days",
    "open_opportunities",
    "pipeline_velocity",
    "sales_metrics",
    "FunnelTables",
    "FunnelReport",
    "analyze",
    "default_trend_window",
    "stage_label",
    "pair_label",
    "longer_period",
    "same_age_as_of",
]

#: Lifecycle stages of ``leads``, in order (the ``stages`` parameter's default).
DEFAULT_STAGES: tuple[str, ...] = ("created_at", "mql_at", "sql_at", "opportunity_at", "customer_at")
#: Deal stages of ``opportunity_history``, in order (the demo CRM's, without ``closed_lost``).
DEFAULT_DEAL_STAGES: tuple[str, ...] = ("qualification", "discovery", "proposal", "negotiation", "closed_won")
FUNNEL_MODES = ("reached", "strict")
#: A trend cell is mature when at most this share of its entered leads is still within the window
#: (the rate can then rise by at most one point).
MATURE_PENDING_SHARE = 0.01
TOTAL = "all"
UNKNOWN = "unknown"

FOOTNOTES = [
    ("Reached a stage", "a lead has reached stage i if it has a timestamp for stage i or for any later stage "
     "(stages skipped in the CRM count as passed, at the time of the next stage reached); "
     "timestamps at or after as of do not count."),
    ("Cohort funnel", "the cohort is the leads whose first stage (created_at) falls in the period; per adjacent "
     "pair of stages, entered = cohort leads that reached from_stage, converted = those that also reached "
     "to_stage by as of (within conversion_window_days of reaching from_stage when set); rate = converted / entered."),
    ("Interval", "ci_low, ci_high: Wilson score interval, 95% by default; rates with entered below min_sample "
     "(default 30) are flagged as too few to read."),
    ("Strict view", "funnel_mode strict: a lead counts in a stage only if it has a timestamp for that stage and "
     "for every earlier one, in order."),
    ("Comparing sources", "chi-square test of independence on converted vs not, across sources, per stage pair "
     "(p-value); changes vs the previous period: the same test on the two periods' counts."),
    ("Stage timing", "for leads that converted from from_stage to to_stage: days between the two stage times; "
     "median and 90th percentile (linear interpolation between order statistics)."),
    ("Cohort trend", "the same stage-to-stage rates for the last 12 cohorts, counting conversions within N days of "
     "reaching from_stage so young cohorts compare fairly with old ones; a cell is immature while its period "
     "is not over or more than 1% of its leads have had less than N days since reaching from_stage."),
    ("Activity counts", "leads that entered each stage during the period, whenever they were created."),
    ("Deal-stage funnel", "from opportunity_history, for opportunities created in the period: how many reached "
     "each configured deal stage (same reached rule, by stage order), and stage-to-stage rates."),
    ("Win rate", "won / (won + lost) over opportunities closed in the period (by count); the amount-weighted "
     "version is won amount / closed amount."),
    ("Average deal size", "mean amount of opportunities won in the period."),
    ("Sales cycle length", "median calendar days from the UTC date of created_at to close_date, over "
     "opportunities won in the period."),
    ("Pipeline velocity", "open opportunities at as of × win rate × average deal size / sales cycle length "
     "(revenue per day), with rate, size and length over the trailing lookback_periods quarters (default 4)."),
]

_US_PER_DAY = 86_400_000_000
_EPOCH = pd.Timestamp("1970-01-01")


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


def _z(confidence: float) -> float:
    from scipy.stats import norm

    if not isinstance(confidence, (int, float)) or isinstance(confidence, bool) or not 0 < confidence < 1:
        raise ParameterError(f"`confidence` must be a number between 0 and 1 (e.g. 0.95), not `{confidence!r}`.")
    return float(norm.ppf(0.5 + confidence / 2))


def wilson_interval(converted, entered, *, confidence: float = 0.95):
    """Wilson score interval of a proportion ``converted / entered`` (closed form).

    Parameters
    ----------
    converted, entered : int or array-like
        Successes and trials (``converted <= entered``).
    confidence : float, default 0.95

    Returns
    -------
    (low, high) : tuple of float or of numpy arrays
        NaN where ``entered`` is 0. Same numbers as
        ``statsmodels.stats.proportion.proportion_confint(method="wilson")``.

    Examples
    --------
    >>> low, high = wilson_interval(30, 100)
    >>> round(low, 4), round(high, 4)
    (0.2189, 0.3958)
    """
    z = _z(confidence)
    k = np.asarray(converted, dtype="float64")
    n = np.asarray(entered, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        z2n = z * z / n
        denom = 1.0 + z2n
        center = (p + z2n / 2.0) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / denom
        low = np.where(n > 0, np.where(k <= 0, 0.0, np.clip(center - half, 0.0, 1.0)), np.nan)
        high = np.where(n > 0, np.where(k >= n, 1.0, np.clip(center + half, 0.0, 1.0)), np.nan)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def _chi2_pvalue(table: np.ndarray) -> tuple[float, float, int, float]:
    """Pearson chi-square test of independence (no continuity correction): chi2, p, dof, min expected."""
    from scipy.stats import chi2_contingency

    table = np.asarray(table, dtype="float64")
    table = table[table.sum(axis=1) > 0]
    if table.shape[0] < 2 or (table.sum(axis=0) == 0).any():
        return math.nan, math.nan, 0, math.nan
    res = chi2_contingency(table, correction=False)
    return float(res.statistic), float(res.pvalue), int(res.dof), float(res.expected_freq.min())


# ---------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------


@ibis.udf.scalar.builtin(name="epoch_us")
def _duck_epoch_us(x) -> dt.int64:  # DuckDB: microseconds since the epoch of a TIMESTAMP or TIMESTAMPTZ
    ...


def _backend_name(t: ir.Table) -> str:
    try:
        return t._find_backend(use_default=True).name
    except Exception:  # pragma: no cover - unbound expressions run on the default DuckDB
        return "duckdb"


def _raw_table(data: Any, name: str) -> ir.Table:
    """The table as stored (raw columns: types are handled column by column here)."""
    if isinstance(data, ir.Table):
        return data
    if isinstance(data, pd.DataFrame):
        return as_table(data)
    if data is None:
        raise ParameterError(f"Give the `{name}` data: a Source, an Ibis table or a pandas DataFrame.")
    src = open_source(data)
    if not src.has(name):
        raise SourceError(f"Table `{name}` is absent from {src.description}; the funnel needs it.")
    return src.raw(name)


def _typed_table(data: Any, name: str) -> ir.Table:
    if isinstance(data, (ir.Table, pd.DataFrame)):
        return as_table(data, name)
    if data is None:
        raise ParameterError(f"Give the `{name}` data: a Source, an Ibis table or a pandas DataFrame.")
    src = open_source(data)
    if not src.has(name):
        raise SourceError(f"Table `{name}` is absent from {src.description}; the funnel needs it.")
    return src.table(name)


def _instant(t: ir.Table, col: str, *, table: str, param: str) -> ir.Value:
    """A timestamp column as an instant (tz-aware or naive UTC), without converting time zones."""
    spec = TABLES[table]
    if col not in t.columns:
        if col in spec.names and spec.column(col).kind in ("timestamp", "date"):
            return ibis.null(dt.Timestamp())
        cols = [c for c in t.columns]
        raise ParameterError(f"`{param}` names column `{col}`, which is not in `{table}`; "
                             f"columns: {', '.join(cols)}.")
    c = t[col]
    ty = c.type()
    if ty.is_timestamp():
        return c
    if ty.is_date():
        return c.cast(dt.Timestamp())
    if ty.is_string():
        return c.try_cast(dt.Timestamp(timezone="UTC"))
    if ty.is_null():
        return ibis.null(dt.Timestamp())
    raise SchemaError(f"Column `{table}.{col}` (given in `{param}`) holds {ty}, not timestamps.")


def _micros(value: ir.Value, backend: str) -> ir.IntegerValue:
    """Microseconds since 1970-01-01 UTC of an instant expression."""
    if backend == "duckdb":
        return _duck_epoch_us(value)
    return value.delta(ibis.timestamp("1970-01-01 00:00:00"), unit="microsecond")


def _int(x) -> int:
    """An engine count as int (None/NaN -> 0: SUM over no rows is NULL)."""
    return 0 if x is None or pd.isna(x) else int(x)


def _count_if(cond: ir.BooleanValue) -> ir.IntegerScalar:
    """Number of rows where ``cond`` is true (portable: PostgreSQL cannot cast booleans to integers)."""
    return ibis.ifelse(cond, 1, 0).sum()


def _us(ts: pd.Timestamp) -> int:
    """Microseconds since the epoch of a naive-UTC timestamp."""
    return int((pd.Timestamp(ts) - _EPOCH) // pd.Timedelta(microseconds=1))


def _dimension(t: ir.Table, by: str | None, *, table: str) -> ir.StringValue | None:
    if by is None:
        return None
    if not isinstance(by, str) or not by:
        raise ParameterError(f"`by` must be a column name such as 'source' or 'segment', or None, not `{by!r}`.")
    if by not in t.columns:
        if by in TABLES[table].names:
            return ibis.literal(UNKNOWN)
        raise ParameterError(f"`by` names column `{by}`, which is not in `{table}`; columns: {', '.join(t.columns)}.")
    c = t[by]
    if not c.type().is_string():
        c = c.cast(dt.string)
    return c.fill_null(UNKNOWN)


def _check_stages(stages, *, param: str = "stages") -> tuple[str, ...]:
    if isinstance(stages, str) or not isinstance(stages, Sequence):
        raise ParameterError(f"`{param}` must be a list of at least two stage names, not `{stages!r}`.")
    out = tuple(stages)
    if len(out) < 2 or not all(isinstance(s, str) and s for s in out):
        raise ParameterError(f"`{param}` must be a list of at least two stage names, not `{list(out)!r}`.")
    if len(set(out)) != len(out):
        raise ParameterError(f"`{param}` lists a stage twice: `{list(out)!r}`.")
    return out


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


def _check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"`{name}` must be a whole number >= {minimum}, not `{value!r}`.")
    return int(value)


def _window(period, as_of) -> tuple[Period, pd.Timestamp]:
    p = parse_period(period)
    cut = resolve_as_of(p, as_of)
    return p, cut


def _pairs(stages: Sequence[str]) -> list[tuple[str, str]]:
    return list(zip(stages[:-1], stages[1:]))


# ---------------------------------------------------------------------------
# The lead funnel: one aggregate query for every stage pair
# ---------------------------------------------------------------------------


def _stage_micros(leads: Any, stages: Sequence[str], by: str | None, start: pd.Timestamp | None = None) -> ir.Table:
    """Raw leads -> table of ``g`` (the dimension, when given) and ``a0..an``: stage times in microseconds.

    ``start``: leads whose first-stage time is before it are dropped early by a filter the engine can
    push into the scan (exact for cohorts starting at ``start``: their reach time of the first stage
    is that time).
    """
    t = _raw_table(leads, "leads")
    if start is not None:
        pre = _prefilter(t, _instant(t, stages[0], table="leads", param="stages"), start)
        if pre is not None:
            t = pre
    backend = _backend_name(t)
    g = _dimension(t, by, table="leads")
    # a projection of its own, so no conversion is computed twice
    return t.select(*([g.name("g")] if g is not None else []),
                    **{f"a{i}": _micros(_instant(t, s, table="leads", param="stages"), backend)
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
                 start: pd.Timestamp | None = None) -> ir.Table:
    """Raw leads -> table of ``g`` (the dimension, when given) and ``r0..rn``: reach times in microseconds."""
    a = _stage_micros(leads, stages, by, start)
    return _reach(a, len(stages), _us(as_of), mode, ["g"] if by is not None else [])


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
        r = r.filter((r.r0 >= _us(start)) & (r.r0 < _us(cut)))
    else:  # the cohort index; leads outside every cohort get none (cheaper than a filter, dropped below)
        edges = [_us(b) for b in buckets[1:-1]] + [_us(cut)]
        r = r.mutate(k=ibis.cases((r.r0 < _us(start), ibis.null(dt.int64)),
                                  *[(r.r0 < e, j) for j, e in enumerate(edges)], else_=ibis.null(dt.int64)))
    w_us = None if window_days is None else int(round(window_days * _US_PER_DAY))
    aggs = {}
    n = len(stages)
    for i in range(n - 1):
        a, b = r[f"r{i}"], r[f"r{i + 1}"]
        # (b - a) is NULL when b is: a window condition needs no IS NOT NULL, and the quantile of
        # the differences skips the unconverted leads by itself
        aggs[f"e{i}"] = a.count()
        aggs[f"c{i}"] = b.count() if w_us is None else _count_if((b - a) <= w_us)
        if timing:  # in microseconds: days in pandas
            aggs[f"q{i}"] = ((b - a).quantile([0.5, 0.9]) if w_us is None
                             else (b - a).quantile([0.5, 0.9], where=(b - a) <= w_us))
        if pending and w_us is not None:
            aggs[f"p{i}"] = _count_if(a > _us(as_of) - w_us)
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
    pairs = _pairs(stages)
    rows = []
    for rec in wide.to_dict("records"):
        base = {}
        if by is not None:
            base[by] = rec["g"]
        for kc in key_cols:
            base[kc] = rec[kc]
        cohort = _int(rec.get("e0"))
        for i, (a, b) in enumerate(pairs):
            e = _int(rec.get(f"e{i}"))
            c = _int(rec.get(f"c{i}"))
            row = dict(base, from_stage=a, to_stage=b, entered=e, converted=c, cohort=cohort)
            if timing:
                q = rec.get(f"q{i}")
                q = None if q is None or (not isinstance(q, (list, np.ndarray)) and pd.isna(q)) else list(q)
                row["median_days"] = float(q[0]) / _US_PER_DAY if q and q[0] is not None else math.nan
                row["p90_days"] = float(q[1]) / _US_PER_DAY if q and q[1] is not None else math.nan
            if f"p{i}" in rec:
                row["pending"] = _int(rec[f"p{i}"])
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
    stages = _check_stages(stages)
    mode = _check_mode(funnel_mode)
    window = _check_window(conversion_window_days)
    min_sample = _check_positive_int(min_sample, "min_sample", 0)
    p, cut_as_of = _window(period, as_of)
    cut = min(p.end_naive, cut_as_of)
    wide = _funnel_query(leads, stages=stages, start=p.start_naive, cut=cut, as_of=cut_as_of, mode=mode, by=by,
                         window_days=window, timing=True, buckets=None, include_total=include_total)
    df = _order(_long(wide, stages, by, confidence=confidence, min_sample=min_sample, timing=True), by)
    lead = [by] if by is not None else []
    conversion = df[lead + ["from_stage", "to_stage", "entered", "converted", "rate", "ci_low", "ci_high",
                            "cumulative_rate", "small_sample"]].reset_index(drop=True)
    timing = df[lead + ["from_stage", "to_stage", "converted", "median_days", "p90_days"]].rename(
        columns={"converted": "n"}).reset_index(drop=True)
    conversion.attrs.update(period=p.label, as_of=cut_as_of, funnel_mode=mode, window_days=window, stages=stages)
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


def source_differences(conversion: pd.DataFrame, *, by: str = "source", alpha: float = 0.05) -> pd.DataFrame:
    """Chi-square test of independence (converted vs not, across groups) per stage pair.

    Parameters
    ----------
    conversion : DataFrame
        A :func:`stage_conversion` result (``[by], from_stage, to_stage, entered, converted``); the
        ``all`` rows are left out of the test.
    by : str, default "source"
    alpha : float, default 0.05
        ``differ`` is True when ``p_value < alpha``.

    Returns
    -------
    DataFrame
        ``from_stage, to_stage, groups, chi2, dof, p_value, min_expected, differ, highest, lowest``:
        Pearson's test without continuity correction (``scipy.stats.chi2_contingency``);
        ``min_expected`` below 5 makes the p-value approximate. NaN when fewer than two groups
        have leads or nobody (or everybody) converted. ``highest``/``lowest``: the groups with the
        highest and lowest rate among those with at least 30 entered.

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
    data = conversion[conversion[by] != TOTAL]
    for (a, b), g in data.groupby(["from_stage", "to_stage"], sort=False):
        g = g[g["entered"] > 0]
        table = np.column_stack([g["converted"].to_numpy(), (g["entered"] - g["converted"]).to_numpy()])
        chi2, pval, dof, mexp = _chi2_pvalue(table) if len(g) else (math.nan, math.nan, 0, math.nan)
        big = g[g["entered"] >= 30]
        rate = big["converted"] / big["entered"]
        rows.append(dict(from_stage=a, to_stage=b, groups=int(len(g)), chi2=chi2, dof=dof, p_value=pval,
                         min_expected=mexp, differ=bool(pval < alpha) if not math.isnan(pval) else False,
                         highest=big[by].iloc[int(np.argmax(rate))] if len(big) else None,
                         lowest=big[by].iloc[int(np.argmin(rate))] if len(big) else None))
    return pd.DataFrame(rows, columns=cols)


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
        pvals.append(_chi2_pvalue(table)[1])
    out["p_value"] = pvals
    out["beyond_noise"] = out["p_value"] < alpha
    return out.reset_index()


# ---------------------------------------------------------------------------
# Cohort trend, time-to-convert distribution, activity counts
# ---------------------------------------------------------------------------


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
    stages = _check_stages(stages)
    mode = _check_mode(funnel_mode)
    cohorts = _check_positive_int(cohorts, "cohorts")
    min_sample = _check_positive_int(min_sample, "min_sample", 0)
    p, cut_as_of = _window(period, as_of)
    window = _check_window(window_days if window_days is not None else default_trend_window(p.kind))
    periods = p.trailing(cohorts)
    edges = [q.start_naive for q in periods] + [periods[-1].end_naive]
    cut = min(edges[-1], cut_as_of)
    wide = _funnel_query(leads, stages=stages, start=edges[0], cut=cut, as_of=cut_as_of, mode=mode, by=by,
                         window_days=window, timing=False, buckets=edges, include_total=False, pending=True)
    wide = wide[wide["k"].notna()] if "k" in wide else wide
    df = _long(wide, stages, by, confidence=confidence, min_sample=min_sample, key_cols=["k"])
    labels = {j: q.label for j, q in enumerate(periods)}
    starts = {j: q.start_date for j, q in enumerate(periods)}
    ends = {j: q.end_naive for j, q in enumerate(periods)}
    if len(df):
        k = df["k"].astype(int)
        df["cohort"] = k.map(labels)
        df["cohort_start"] = k.map(starts)
        over = k.map(ends) <= cut_as_of
        if "pending" not in df:
            df["pending"] = 0
        df["pending"] = df["pending"].fillna(0).astype("int64")
        df["mature"] = over & (df["pending"] <= MATURE_PENDING_SHARE * df["entered"])
    else:
        df["cohort"], df["cohort_start"], df["mature"], df["pending"] = [], [], [], []
    df = _order(df, by, key_cols=["k"])
    lead = [by] if by is not None else []
    out = df[["cohort", "cohort_start"] + lead + ["from_stage", "to_stage", "entered", "converted", "rate",
                                                  "ci_low", "ci_high", "small_sample", "pending", "mature"]]
    out = out.reset_index(drop=True)
    out["mature"] = out["mature"].astype(bool)
    out.attrs.update(window_days=window, period=p.label, as_of=cut_as_of, cohorts=[q.label for q in periods])
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
    stages = _check_stages(stages)
    mode = _check_mode(funnel_mode)
    max_days = _check_positive_int(max_days, "max_days")
    p, cut_as_of = _window(period, as_of)
    cut = min(p.end_naive, cut_as_of)
    r = _stage_times(leads, stages, cut_as_of, mode, None, start=p.start_naive)
    r = r.filter((r.r0 >= _us(p.start_naive)) & (r.r0 < _us(cut)))
    parts = []
    for i in range(len(stages) - 1):
        a, b = r[f"r{i}"], r[f"r{i + 1}"]
        d = ((b - a) / _US_PER_DAY).ceil().clip(lower=0)
        s = r.filter(b.notnull()).select(i=ibis.literal(i), day=ibis.least(d, max_days + 1).cast(dt.int64))
        parts.append(s)
    u = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    counts = to_pandas(u.group_by(["i", "day"]).aggregate(leads=u.count()))
    rows = []
    pairs = _pairs(stages)
    for i, (a, b) in enumerate(pairs):
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
                         by: str | None = None, funnel_mode: str = "reached") -> pd.DataFrame:
    """:func:`activity_counts` for several ``(period, as_of)`` windows in one query (the scorecard's history).

    Each window counts exactly as :func:`activity_counts` with that period and ``as_of`` (None: the
    period end): reach times are taken at the window's own cut-off.

    Returns
    -------
    DataFrame
        ``period, [by], stage, leads``: the windows in the order given, every stage (and group)
        with its count, zeros included.
    """
    stages = _check_stages(stages)
    mode = _check_mode(funnel_mode)
    n = len(stages)
    spec = []
    for w in windows:
        period, as_of = w if isinstance(w, tuple) else (w, None)
        p, cut_as_of = _window(period, as_of)
        spec.append((p.label, _us(p.start_naive), _us(min(p.end_naive, cut_as_of)), _us(cut_as_of)))
    cols = ["period"] + ([by] if by is not None else []) + ["stage", "leads"]
    if not spec:
        return pd.DataFrame(columns=cols)
    a = _stage_micros(leads, stages, by)
    keep = ["g"] if by is not None else []
    # A lead counts in a window only through a stage time inside it, so only the windows between
    # its earliest and its latest stage time need pairing with it (a range join, not a cross join).
    times = [a[f"a{i}"] for i in range(n)]
    a = a.mutate(_lo=ibis.least(*times) if n > 1 else times[0], _hi=ibis.greatest(*times) if n > 1 else times[0])
    a = a.filter((a._hi >= min(x[1] for x in spec)) & (a._lo < max(x[2] for x in spec)))
    cal = ibis.memtable(pd.DataFrame({"w": range(len(spec)), "w_lo": [x[1] for x in spec],
                                      "w_hi": [x[2] for x in spec], "w_cut": [x[3] for x in spec]},
                                     dtype="int64"))
    j = a.join(cal, (a._hi >= cal.w_lo) & (a._lo < cal.w_hi))
    r = _reach(j, n, j.w_cut, mode, keep + ["w", "w_lo", "w_hi"])
    aggs = {f"n{i}": _count_if((r[f"r{i}"] >= r.w_lo) & (r[f"r{i}"] < r.w_hi)) for i in range(n)}
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
            for i, st in enumerate(stages):
                rows.append((label, *([g] if by is not None else []), st, _int(rec.get(f"n{i}"))))
    return pd.DataFrame(rows, columns=cols)


def stage_entries(leads, stage: str, *, period, as_of=None, stages: Sequence[str] = DEFAULT_STAGES) -> int:
    """Number of leads that entered one stage in the period (the scorecard's ``mqls``, ``sqls``).

    >>> leads = pd.DataFrame({"lead_id": ["L1"], "source": ["web"],
    ...     "created_at": pd.to_datetime(["2026-09-20"]), "mql_at": pd.to_datetime(["2026-10-03"])})
    >>> stage_entries(leads, "mql_at", period="2026-10", stages=["created_at", "mql_at"])
    1
    """
    stages = _check_stages(stages)
    if stage not in stages:
        raise ParameterError(f"`stage` `{stage}` is not one of the funnel stages: {', '.join(stages)}.")
    counts = activity_counts(leads, period=period, as_of=as_of, stages=stages)
    return int(counts.loc[counts["stage"] == stage, "leads"].iloc[0])


# ---------------------------------------------------------------------------
# Deal stages (opportunity_history)
# ---------------------------------------------------------------------------


def deal_stage_conversion(history, opportunities=None, *, period, as_of=None,
                          stages: Sequence[str] = DEFAULT_DEAL_STAGES, confidence: float = 0.95) -> pd.DataFrame:
    """Deal-stage funnel of the opportunities created in the period.

    Parameters
    ----------
    history : Source, source spec, Ibis table or DataFrame
        ``opportunity_history`` (``opportunity_id, changed_at, stage``); a Source also gives
        ``opportunities``.
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
    stages = _check_stages(stages)
    p, cut_as_of = _window(period, as_of)
    cut = min(p.end_naive, cut_as_of)
    if not isinstance(history, (ir.Table, pd.DataFrame)):
        src = open_source(history)
        if not src.has("opportunity_history"):
            raise SourceError(f"Table `opportunity_history` is absent from {src.description}; "
                              "the deal-stage funnel needs it.")
        h_raw = src.raw("opportunity_history")
        if opportunities is None and src.has("opportunities"):
            opportunities = src.raw("opportunities")
    else:
        h_raw = _raw_table(history, "opportunity_history")
    backend = _backend_name(h_raw)
    h_stage = _dimension(h_raw, "stage", table="opportunity_history")
    h_id = _dimension(h_raw, "opportunity_id", table="opportunity_history")
    h_t = _micros(_instant(h_raw, "changed_at", table="opportunity_history", param="history"), backend)
    idx = ibis.cases(*[(h_stage == s, i) for i, s in enumerate(stages)], else_=ibis.null(dt.int64))
    h = h_raw.select(oid=h_id, t=h_t, idx=idx)
    reach = (h.filter(h.t < _us(cut_as_of)).group_by("oid")
             .aggregate(top=h.idx.max(), first=h.t.min()))
    if opportunities is not None:
        o_raw = _raw_table(opportunities, "opportunities")
        ob = _backend_name(o_raw)
        o = o_raw.select(oid=_dimension(o_raw, "opportunity_id", table="opportunities"),
                         created=_micros(_instant(o_raw, "created_at", table="opportunities",
                                                  param="opportunities"), ob),
                         ostage=_dimension(o_raw, "stage", table="opportunities"))
        o = o.filter((o.created >= _us(p.start_naive)) & (o.created < _us(cut)))
        any_hist = h.select("oid").distinct().mutate(has=ibis.literal(True))
        j = o.left_join(reach, "oid").select(o.oid, o.ostage, reach.top)
        j = j.left_join(any_hist, "oid").select(j.oid, j.ostage, j.top, any_hist.has)
        fallback = ibis.cases(*[(j.ostage == s, i) for i, s in enumerate(stages)], else_=ibis.null(dt.int64))
        top = ibis.ifelse(j.has.isnull(), fallback, j.top)
        cohort = j.select(top=top)
    else:
        first_any = h.group_by("oid").aggregate(created=h.t.min())
        first_any = first_any.filter((first_any.created >= _us(p.start_naive)) & (first_any.created < _us(cut)))
        cohort = first_any.left_join(reach, "oid").select(top=reach.top)
    aggs = {"deals": cohort.count()}
    for i in range(len(stages)):
        aggs[f"n{i}"] = _count_if(cohort.top >= i)
    wide = to_pandas(cohort.aggregate(**aggs)).iloc[0]
    reached = [_int(wide[f"n{i}"]) for i in range(len(stages))]
    deals = _int(wide["deals"])
    rows = [(a, b, reached[i], reached[i + 1]) for i, (a, b) in enumerate(_pairs(stages))]
    df = pd.DataFrame(rows, columns=["from_stage", "to_stage", "entered", "converted"])
    with np.errstate(divide="ignore", invalid="ignore"):
        df["rate"] = np.where(df["entered"] > 0, df["converted"] / df["entered"].replace(0, 1), np.nan)
        df["rate"] = df["rate"].astype("float64")
    low, high = wilson_interval(df["converted"].to_numpy(), df["entered"].to_numpy(), confidence=confidence)
    df["ci_low"], df["ci_high"] = low, high
    df["cumulative_rate"] = df["converted"] / deals if deals else math.nan
    df["entered"] = df["entered"].astype("int64")
    df["converted"] = df["converted"].astype("int64")
    df.attrs.update(deals=deals, reached=dict(zip(stages, reached)), period=p.label)
    return df


# ---------------------------------------------------------------------------
# Sales (opportunities)
# ---------------------------------------------------------------------------


def _opps(data) -> ir.Table:
    return _typed_table(data, "opportunities")


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
                           types: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`closed_deal_stats` for several ``(start, end, as_of)`` windows in one query.

    Returns one row per window, in the order given, with the keys of :func:`closed_deal_stats` as
    columns (``closed, won, lost, won_amount, closed_amount, avg_deal_size, sales_cycle_days``).
    """
    cols = ["closed", "won", "lost", "won_amount", "closed_amount", "avg_deal_size", "sales_cycle_days"]
    return pd.DataFrame(_closed_deal_rows(opportunities, windows, types), columns=cols)


def _closed_deal_rows(opportunities, windows: Sequence[tuple], types) -> list[dict]:
    if not windows:
        return []
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
    agg = to_pandas(j.group_by("w").aggregate(
        closed=j.count(),
        won=_count_if(won),
        won_amount=j.amount.sum(where=won),
        closed_amount=j.amount.sum(),
        avg_deal_size=j.amount.mean(where=won),
        sales_cycle_days=j._cycle.cast(dt.float64).quantile(0.5, where=won),
    ))
    found = {int(rec["w"]): rec for rec in agg.to_dict("records")}

    def num(x):
        return math.nan if x is None or pd.isna(x) else float(x)

    rows = []
    for k in range(len(windows)):
        r = found.get(k, {})
        closed = _int(r.get("closed"))
        won_n = _int(r.get("won")) if closed else 0
        rows.append(dict(closed=closed, won=won_n, lost=closed - won_n,
                         won_amount=num(r.get("won_amount")) if won_n else 0.0,
                         closed_amount=num(r.get("closed_amount")) if closed else 0.0,
                         avg_deal_size=num(r.get("avg_deal_size")), sales_cycle_days=num(r.get("sales_cycle_days"))))
    return rows


def _ratio(a, b) -> float:
    return float(a) / float(b) if b and not (isinstance(b, float) and math.isnan(b)) else math.nan


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
    p, cut = _window(period, as_of)
    s = closed_deal_stats(opportunities, start=p.start_date, end=p.end_date, as_of=cut, types=types)
    return _ratio(s["won"], s["closed"]) if weight == "count" else _ratio(s["won_amount"], s["closed_amount"])


def average_deal_size(opportunities, *, period, as_of=None, types: Sequence[str] | None = None) -> float:
    """Mean ``amount`` of the deals won in the period (NaN when none)."""
    p, cut = _window(period, as_of)
    return closed_deal_stats(opportunities, start=p.start_date, end=p.end_date, as_of=cut,
                             types=types)["avg_deal_size"]


def sales_cycle_days(opportunities, *, period, as_of=None, types: Sequence[str] | None = None) -> float:
    """Median calendar days from the UTC date of ``created_at`` to ``close_date`` of the deals won in the period."""
    p, cut = _window(period, as_of)
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
        rows.append(dict(count=_int(r.get("count")),
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
    lookback_periods = _check_positive_int(lookback_periods, "lookback_periods")
    p, cut = _window(period, as_of)
    start, end = _velocity_window(p, cut, lookback_periods, lookback_kind)
    s = closed_deal_stats(opportunities, start=start, end=end, as_of=cut, types=types)
    op = open_opportunities(opportunities, as_of=min(cut, p.end_naive), types=types)
    return pd.DataFrame([_velocity(s, op, start, end)])


def _velocity_window(p: Period, cut: pd.Timestamp, lookback_periods: int, lookback_kind: str):
    end = min(p.end_date, cut.date())
    return _lookback_start(end, lookback_periods, lookback_kind), end


def _velocity(s: dict, op: dict, start, end) -> dict:
    """Pipeline velocity from the lookback's closed-deal stats and the open deals at the cut-off."""
    wr = _ratio(s["won"], s["closed"])
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
    lookback_periods = _check_positive_int(lookback_periods, "lookback_periods")
    p, cut = _window(period, as_of)
    start, end = _velocity_window(p, cut, lookback_periods, "quarter")
    # the period's closed deals and the velocity lookback's in one query; the open deals once
    s, lb = _closed_deal_rows(opportunities, [(p.start_date, p.end_date, cut), (start, end, cut)], types)
    op = open_opportunities(opportunities, as_of=min(cut, p.end_naive), types=types)
    v = _velocity(lb, op, start, end)
    row = dict(period=p.label, closed=s["closed"], won=s["won"], lost=s["lost"],
               win_rate=_ratio(s["won"], s["closed"]), won_amount=s["won_amount"],
               closed_amount=s["closed_amount"], win_rate_amount=_ratio(s["won_amount"], s["closed_amount"]),
               avg_deal_size=s["avg_deal_size"], sales_cycle_days=s["sales_cycle_days"],
               open_opportunities=op["count"], open_amount=op["amount"],
               velocity_per_day=float(v["velocity_per_day"]), velocity_win_rate=float(v["win_rate"]),
               velocity_avg_deal_size=float(v["avg_deal_size"]), velocity_cycle_days=float(v["sales_cycle_days"]))
    return pd.DataFrame([row])


# ---------------------------------------------------------------------------
# The funnel_conversion report
# ---------------------------------------------------------------------------

_LABELS = {"created_at": "Created", "mql_at": "MQL", "sql_at": "SQL", "opportunity_at": "Opportunity",
           "customer_at": "Customer"}


def stage_label(stage: str) -> str:
    """A reader's name for a stage column: ``mql_at`` -> ``MQL``, ``opportunity_at`` -> ``Opportunity``.

    >>> stage_label("sql_at"), stage_label("closed_won"), stage_label("demo_booked_at")
    ('SQL', 'Closed won', 'Demo booked')
    """
    if stage in _LABELS:
        return _LABELS[stage]
    name = stage[:-3] if stage.endswith("_at") else stage
    name = name.replace("_", " ")
    return name.upper() if len(name) <= 3 else name[:1].upper() + name[1:]


def pair_label(a: str, b: str) -> str:
    """``('mql_at', 'sql_at')`` -> ``'MQL → SQL'``."""
    return f"{stage_label(a)} → {stage_label(b)}"


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


def _pct(x, decimals: int = 1) -> str:
    from revops_lib.plots import fmt_pct

    return fmt_pct(x, decimals) or "—"


def _pval(p) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


@dataclass
class FunnelReport:
    """Everything the ``funnel_conversion`` report shows, computed once by :func:`analyze`."""

    period: Period
    as_of: pd.Timestamp
    previous: Period
    previous_as_of: pd.Timestamp
    stages: tuple[str, ...]
    deal_stages: tuple[str, ...]
    funnel_mode: str
    min_sample: int
    confidence: float
    currency: str
    conversion: pd.DataFrame
    timing: pd.DataFrame
    previous_conversion: pd.DataFrame
    changes: pd.DataFrame
    source_tests: pd.DataFrame
    segments: pd.DataFrame | None
    trend: pd.DataFrame
    distribution: pd.DataFrame
    activity: pd.DataFrame
    previous_activity: pd.DataFrame
    deals: pd.DataFrame | None
    sales: pd.DataFrame | None
    previous_sales: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)
    lookback_periods: int = 4

    # -- numbers ----------------------------------------------------------

    @property
    def cohort_size(self) -> int:
        rows = self.conversion[self.conversion["source"] == TOTAL]
        return int(rows["entered"].iloc[0]) if len(rows) else 0

    @property
    def previous_cohort_size(self) -> int:
        rows = self.previous_conversion
        return int(rows["entered"].iloc[0]) if len(rows) else 0

    def _total(self, df: pd.DataFrame) -> pd.DataFrame:
        return df[df["source"] == TOTAL] if "source" in df.columns else df

    def _lead_to_last(self, df: pd.DataFrame) -> float:
        t = self._total(df)
        if t.empty or t["to_stage"].iloc[-1] != self.stages[-1]:
            return 0.0 if len(t) else math.nan
        return float(t["cumulative_rate"].iloc[-1])

    def small_rows(self) -> pd.DataFrame:
        return self.conversion[self.conversion["entered"] < self.min_sample]

    # -- narrative -------------------------------------------------------------

    def small_sample_note(self) -> str:
        """One sentence (Markdown) when rates rest on fewer than ``min_sample`` leads, else ''."""
        small = self.small_rows()
        if small.empty:
            return ""
        longer = longer_period(self.period)
        hint = (f"run the report for {longer} (a longer period) to read them" if longer
                else "compare them over several quarters in the cohort trend instead")
        tot = small[small["source"] == TOTAL]
        if len(tot):
            pairs = ", ".join(pair_label(a, b) for a, b in zip(tot["from_stage"], tot["to_stage"]))
            return (f"⚠️ **Too few leads to read**: even the totals of {pairs} rest on fewer than "
                    f"{self.min_sample} leads in {self.period}, so their rates are mostly noise — {hint}.")
        n_rows = len(self.conversion[self.conversion["source"] != TOTAL])
        by_pair = small.groupby(["from_stage", "to_stage"], sort=False).size()
        worst = by_pair.sort_values(ascending=False, kind="stable").head(2)
        where = "; ".join(f"{pair_label(a, b)}: {k} source{'s' if k != 1 else ''}" for (a, b), k in worst.items())
        return (f"⚠️ **Small samples**: {len(small)} of {n_rows} source × stage rates rest on fewer than "
                f"{self.min_sample} leads ({where}); they are greyed out and too few to read — {hint}.")

    def findings(self):
        """What moved and whether it is beyond noise, one sentence each (Markdown)."""
        from revops_lib.plots import fmt_money

        b = []
        n, n0 = self.cohort_size, self.previous_cohort_size
        if n == 0:
            b.append(f"**No leads** were created in {self.period} (before the cut-off): there is no cohort to "
                     f"read; pick another period.")
            return md("\n".join(f"- {x}" for x in b + self.notes))
        change = f" ({(n - n0) / n0:+.0%} vs {self.previous})" if n0 else ""
        last, last0 = self._lead_to_last(self.conversion), self._lead_to_last(self.previous_conversion)
        if last or last0:
            reached = (f"; {_pct(last, 2)} of them reached {stage_label(self.stages[-1])} by the cut-off "
                       f"({_pct(last0, 2)} for {self.previous} at the same age)")
        else:
            reached = f"; none has reached {stage_label(self.stages[-1])} yet"
        b.append(f"**{n:,} leads** were created in {self.period}{change}{reached}.")
        moved = self.changes[self.changes["beyond_noise"]]
        if len(moved):
            for r in moved.itertuples():
                verb = "rose" if r.change > 0 else "fell"
                b.append(f"**{pair_label(r.from_stage, r.to_stage)} {verb}** from {_pct(r.prior_rate)} to "
                         f"{_pct(r.rate)} ({_pval(r.p_value)}): beyond noise.")
        elif len(self.changes):
            b.append(f"No stage-to-stage rate moved beyond noise vs {self.previous} at the same age "
                     f"(chi-square p ≥ 0.05 for every stage).")
        differ = self.source_tests[self.source_tests["differ"] & self.source_tests["highest"].notna()]
        for r in differ.head(2).itertuples():
            pair = self.conversion[self.conversion["from_stage"] == r.from_stage]
            hi, lo = pair[pair["source"] == r.highest], pair[pair["source"] == r.lowest]
            b.append(f"Sources differ in {pair_label(r.from_stage, r.to_stage)} ({_pval(r.p_value)}): "
                     f"{r.highest} converts best ({_pct(hi['rate'].iloc[0])}), {r.lowest} worst "
                     f"({_pct(lo['rate'].iloc[0])}).")
        if len(self.source_tests) and not self.source_tests["differ"].any():
            b.append("No stage shows a difference between sources beyond noise (chi-square p ≥ 0.05).")
        age = self.as_of - self.period.start_naive
        if age.days < 120 and len(self.stages) > 2:
            b.append(f"Later-stage rates are not final: leads created in {self.period} had at most {age.days} days "
                     "to progress by the cut-off; the cohort trend compares cohorts at equal age.")
        note = self.small_sample_note()
        if note:
            b.append(note)
        if self.sales is not None and len(self.sales):
            s = self.sales.iloc[0]
            if s["closed"]:
                b.append(f"Win rate {_pct(s['win_rate'])} by count ({s['won']:,} won of {s['closed']:,} deals "
                         f"closed in {self.period}) and {_pct(s['win_rate_amount'])} by amount "
                         f"({fmt_money(s['won_amount'], self.currency)} won of "
                         f"{fmt_money(s['closed_amount'], self.currency)} closed).")
            else:
                b.append(f"No deal closed in {self.period}: win rate, deal size and cycle are undefined.")
        return md("\n".join(f"- {x}" for x in b + self.notes))

    def record_headlines(self) -> None:
        """Headline numbers for ``reports/index.html``."""
        from revops_lib.report import headline

        n, n0 = self.cohort_size, self.previous_cohort_size
        headline("Leads", f"{n:,}" + (f" ({(n - n0) / n0:+.0%})" if n0 else ""))
        t = self._total(self.conversion)
        if len(t):
            headline(pair_label(t["from_stage"].iloc[0], t["to_stage"].iloc[0]), _pct(t["rate"].iloc[0]))
        headline(f"Lead → {stage_label(self.stages[-1])}", _pct(self._lead_to_last(self.conversion), 2))
        if self.sales is not None and len(self.sales):
            headline("Win rate", _pct(self.sales["win_rate"].iloc[0]))

    # -- tables ---------------------------------------------------------------

    def headline_table(self):
        """This period vs the previous one at the same age: cohort, stage rates and sales metrics."""
        from revops_lib.plots import fmt_money, style_table

        rows = []
        n, n0 = self.cohort_size, self.previous_cohort_size
        rows.append(("Leads created (cohort)", f"{n:,}", f"{n0:,}", f"{(n - n0) / n0:+.1%}" if n0 else "—", ""))
        for r in self.changes.itertuples():
            pts = "—" if pd.isna(r.change) else f"{100 * r.change:+.1f} pts"
            verdict = "—" if pd.isna(r.p_value) else ("beyond noise" if r.beyond_noise else "within noise")
            rows.append((pair_label(r.from_stage, r.to_stage), _pct(r.rate), _pct(r.prior_rate), pts,
                         f"{verdict} ({_pval(r.p_value)})" if verdict != "—" else "—"))
        c, c0 = self._lead_to_last(self.conversion), self._lead_to_last(self.previous_conversion)
        rows.append((f"Lead → {stage_label(self.stages[-1])}", _pct(c, 2), _pct(c0, 2),
                     "—" if pd.isna(c) or pd.isna(c0) else f"{100 * (c - c0):+.2f} pts", ""))
        for st in self.stages[1:3]:
            a = self.activity.set_index("stage")["leads"].get(st)
            a0 = self.previous_activity.set_index("stage")["leads"].get(st)
            if a is not None:
                rows.append((f"Leads entering {stage_label(st)} in the period", f"{a:,}", f"{a0:,}",
                             f"{(a - a0) / a0:+.1%}" if a0 else "—", ""))
        if self.sales is not None and self.previous_sales is not None:
            s, s0 = self.sales.iloc[0], self.previous_sales.iloc[0]
            money = lambda x: fmt_money(x, self.currency) or "—"  # noqa: E731
            rel = lambda a, b: "—" if pd.isna(a) or pd.isna(b) or not b else f"{(a - b) / b:+.1%}"  # noqa: E731
            pts = lambda a, b: "—" if pd.isna(a) or pd.isna(b) else f"{100 * (a - b):+.1f} pts"  # noqa: E731
            rows += [
                ("Win rate (won / closed deals)", _pct(s["win_rate"]), _pct(s0["win_rate"]),
                 pts(s["win_rate"], s0["win_rate"]), f"of {s['closed']:,} closed deals"),
                ("Win rate by amount (won / closed amount)", _pct(s["win_rate_amount"]),
                 _pct(s0["win_rate_amount"]), pts(s["win_rate_amount"], s0["win_rate_amount"]),
                 f"of {money(s['closed_amount'])} closed"),
                ("Average deal size (won)", money(s["avg_deal_size"]), money(s0["avg_deal_size"]),
                 rel(s["avg_deal_size"], s0["avg_deal_size"]), ""),
                ("Sales cycle (median days, won)", _days(s["sales_cycle_days"]), _days(s0["sales_cycle_days"]),
                 rel(s["sales_cycle_days"], s0["sales_cycle_days"]), ""),
                ("Pipeline velocity (per day)", money(s["velocity_per_day"]), money(s0["velocity_per_day"]),
                 rel(s["velocity_per_day"], s0["velocity_per_day"]),
                 f"trailing {self.lookback_periods} quarters"),
            ]
        df = pd.DataFrame(rows, columns=["Metric", str(self.period), f"{self.previous} (same age)", "Change",
                                         "Note"])
        return style_table(df)

    def _display(self, df: pd.DataFrame, by: str) -> pd.DataFrame:
        out = pd.DataFrame({
            by.capitalize(): df[by],
            "Stage": [pair_label(a, b) for a, b in zip(df["from_stage"], df["to_stage"])],
            "Entered": df["entered"], "Converted": df["converted"],
            "Rate": [_pct(x) for x in df["rate"]],
            f"{self.confidence:.0%} interval": _intervals(df),
            "Of cohort": [_pct(x, 2) for x in df["cumulative_rate"]],
            "Note": ["too few to read" if s else "" for s in df["small_sample"]],
        })
        return out

    def conversion_table(self):
        """The cohort funnel by source (published as ``stage_conversion.csv``)."""
        from revops_lib.plots import style_table
        from revops_lib.report import publish

        publish(self.conversion[["source", "from_stage", "to_stage", "entered", "converted", "rate", "ci_low",
                                 "ci_high"]], "stage_conversion")
        if self.conversion.empty:
            return md("No leads in this cohort.")
        disp = self._display(self.conversion, "source")
        return style_table(disp, {"Entered": "{:,}", "Converted": "{:,}"}).apply(
            lambda r: ["color: #9a9a9a" if r["Note"] else "" for _ in r], axis=1)

    def segment_table(self):
        """The cohort funnel by segment (published as ``stage_conversion_by_segment.csv``)."""
        from revops_lib.plots import style_table
        from revops_lib.report import publish

        if self.segments is None or self.segments.empty:
            return md("No segment data for this cohort.")
        publish(self.segments[["segment", "from_stage", "to_stage", "entered", "converted", "rate", "ci_low",
                               "ci_high"]], "stage_conversion_by_segment")
        disp = self._display(self.segments, "segment")
        return style_table(disp, {"Entered": "{:,}", "Converted": "{:,}"}).apply(
            lambda r: ["color: #9a9a9a" if r["Note"] else "" for _ in r], axis=1)

    def source_test_table(self):
        """Chi-square test across sources per stage (published as ``source_tests.csv``)."""
        from revops_lib.plots import style_table
        from revops_lib.report import publish

        t = self.source_tests
        publish(t, "source_tests")
        if t.empty:
            return md("Not enough sources with leads to compare.")
        disp = pd.DataFrame({
            "Stage": [pair_label(a, b) for a, b in zip(t["from_stage"], t["to_stage"])],
            "Sources": t["groups"],
            "Chi-square": [f"{x:.1f}" if not pd.isna(x) else "—" for x in t["chi2"]],
            "p-value": [_pval(p) for p in t["p_value"]],
            "Verdict": ["sources differ" if d else ("no difference beyond noise" if not pd.isna(p) else "—")
                        for d, p in zip(t["differ"], t["p_value"])],
            "Best / worst (30+ leads)": [f"{h} / {lo}" if isinstance(h, str) else "—"
                                          for h, lo in zip(t["highest"], t["lowest"])],
            "Note": ["approximate (expected count < 5)" if (not pd.isna(m) and m < 5) else ""
                     for m in t["min_expected"]],
        })
        return style_table(disp)

    def trend_table(self):
        """Rates by cohort (published as ``cohort_trend.csv``); cells not yet mature are marked with *."""
        from revops_lib.plots import style_table
        from revops_lib.report import publish

        tr = self.trend
        publish(tr, "cohort_trend")
        if tr.empty:
            return md("No cohorts to show.")
        tr = tr.assign(stage=[pair_label(a, b) for a, b in zip(tr["from_stage"], tr["to_stage"])],
                       cell=[_pct(r) + ("" if m else "*") for r, m in zip(tr["rate"], tr["mature"])])
        wide = tr.pivot(index="cohort", columns="stage", values="cell")
        wide = wide[[pair_label(a, b) for a, b in _pairs(self.stages) if pair_label(a, b) in wide.columns]]
        wide = wide.reset_index().rename(columns={"cohort": "Cohort"})
        days = self.trend.attrs.get("window_days") or 0
        return style_table(wide.fillna("—")).set_caption(
            f"Conversion within {days:g} days of the previous stage. * not yet mature: the period is not over "
            "or more than 1% of the leads are still within those days.")

    def timing_table(self):
        """Median and 90th-percentile days between stages (published as ``stage_timing.csv``)."""
        from revops_lib.plots import style_table
        from revops_lib.report import publish

        publish(self.timing, "stage_timing")
        t = self.timing[self.timing["source"] == TOTAL]
        if t.empty:
            return md("No conversions in this cohort yet.")
        disp = pd.DataFrame({
            "Stage": [pair_label(a, b) for a, b in zip(t["from_stage"], t["to_stage"])],
            "Leads converted": t["n"],
            "Median days": [_days(x) for x in t["median_days"]],
            "90th percentile days": [_days(x) for x in t["p90_days"]],
        })
        return style_table(disp, {"Leads converted": "{:,}"})

    def deal_table(self):
        """Deal-stage funnel (published as ``deal_stage_conversion.csv``)."""
        from revops_lib.plots import style_table
        from revops_lib.report import publish

        if self.deals is None:
            return md("No `opportunity_history` table in this source: the deal-stage funnel is skipped.")
        publish(self.deals[["from_stage", "to_stage", "entered", "converted", "rate"]], "deal_stage_conversion")
        d = self.deals
        disp = pd.DataFrame({
            "Stage": [pair_label(a, b) for a, b in zip(d["from_stage"], d["to_stage"])],
            "Entered": d["entered"], "Converted": d["converted"], "Rate": [_pct(x) for x in d["rate"]],
            f"{self.confidence:.0%} interval": _intervals(d),
            "Of deals created": [_pct(x) for x in d["cumulative_rate"]],
        })
        return style_table(disp, {"Entered": "{:,}", "Converted": "{:,}"})

    def deal_note(self):
        """One sentence on the deal cohort (Markdown)."""
        if self.deals is None:
            return md("No `opportunity_history` table in this source: the deal-stage funnel is skipped.")
        n = self.deals.attrs.get("deals", 0)
        last = self.deals.iloc[-1] if len(self.deals) else None
        text = f"{n:,} opportunities were created in {self.period}"
        if last is not None and n:
            text += (f"; {_pct(last['cumulative_rate'])} of them reached {stage_label(last['to_stage'])} by the "
                     "cut-off (deals still open count as not yet converted).")
        else:
            text += "."
        if 0 < n < self.min_sample:
            longer = longer_period(self.period)
            text += (f" ⚠️ Fewer than {self.min_sample} deals: too few to read"
                     + (f" — run the report for {longer}." if longer else "."))
        return md(text)

    def sales_table(self):
        """Win rate (count and amount, denominators named), deal size, cycle and velocity.

        Published as ``sales_metrics.csv``.
        """
        from revops_lib.plots import fmt_money, style_table
        from revops_lib.report import publish

        if self.sales is None:
            return md("No `opportunities` table in this source: the sales metrics are skipped.")
        publish(self.sales, "sales_metrics")
        s = self.sales.iloc[0]
        money = lambda x: fmt_money(x, self.currency) or "—"  # noqa: E731
        rows = [
            ("Win rate by count", _pct(s["win_rate"]),
             f"{s['won']:,} won / {s['closed']:,} deals closed in the period"),
            ("Win rate by amount", _pct(s["win_rate_amount"]),
             f"{money(s['won_amount'])} won / {money(s['closed_amount'])} closed in the period"),
            ("Average deal size", money(s["avg_deal_size"]), f"mean amount of the {s['won']:,} deals won"),
            ("Sales cycle length", _days(s["sales_cycle_days"]),
             "median days from creation date to close date, won deals"),
            ("Open opportunities at the cut-off", f"{s['open_opportunities']:,}",
             f"{money(s['open_amount'])} in total"),
            ("Pipeline velocity",
             money(s["velocity_per_day"]) + " per day" if not pd.isna(s["velocity_per_day"]) else "—",
             f"{s['open_opportunities']:,} open deals × {_pct(s['velocity_win_rate'])} win rate × "
             f"{money(s['velocity_avg_deal_size'])} "
             f"÷ {_days(s['velocity_cycle_days'])} (trailing {self.lookback_periods} quarters)"),
        ]
        return style_table(pd.DataFrame(rows, columns=["Metric", "Value", "How it is computed"]))

    def activity_table(self):
        """Leads entering each stage in the period vs the previous one (published as ``activity_counts.csv``)."""
        from revops_lib.plots import style_table
        from revops_lib.report import publish

        publish(self.activity, "activity_counts")
        prev = self.previous_activity.set_index("stage")["leads"]
        disp = pd.DataFrame({
            "Stage": [stage_label(s) for s in self.activity["stage"]],
            f"Leads entering in {self.period}": self.activity["leads"],
            f"in {self.previous}": [prev.get(s, 0) for s in self.activity["stage"]],
        })
        cur, old = disp.iloc[:, 1], disp.iloc[:, 2]
        disp["Change"] = [f"{(a - b) / b:+.1%}" if b else "—" for a, b in zip(cur, old)]
        return style_table(disp, {disp.columns[1]: "{:,}", disp.columns[2]: "{:,}"})


def _intervals(df: pd.DataFrame) -> list[str]:
    return [f"{_pct(lo)} – {_pct(hi)}" for lo, hi in zip(df["ci_low"], df["ci_high"])]


def _days(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x):
        return "—"
    return f"{float(x):,.1f} days"


def analyze(source, *, period, as_of=None, stages: Sequence[str] = DEFAULT_STAGES,
            deal_stages: Sequence[str] = DEFAULT_DEAL_STAGES, funnel_mode: str = "reached",
            conversion_window_days: float | None = None, trend_cohorts: int = 12,
            trend_window_days: float | None = None, min_sample: int = 30, confidence: float = 0.95,
            lookback_periods: int = 4, currency: str = "USD") -> FunnelReport:
    """Compute every part of the ``funnel_conversion`` report for one period.

    The previous period is measured at the same age (:func:`same_age_as_of`), so the comparison is
    fair for a young cohort. Absent optional tables (``opportunities``, ``opportunity_history``)
    leave their sections empty with a note.
    """
    src = open_source(source)
    p, cut = _window(period, as_of)
    stages = _check_stages(stages)
    deal_stages = _check_stages(deal_stages, param="deal_stages")
    prev = p.previous()
    prev_cut = same_age_as_of(p, cut, prev)
    kw = dict(stages=stages, funnel_mode=funnel_mode, conversion_window_days=conversion_window_days,
              confidence=confidence, min_sample=min_sample)
    ft = funnel_tables(src, period=p, as_of=cut, by="source", **kw)
    prev_conv = stage_conversion(src, period=prev, as_of=prev_cut, by=None, **kw)
    segments = None
    if "segment" in src.raw("leads").columns:
        segments = stage_conversion(src, period=p, as_of=cut, by="segment", include_total=False, **kw)
    changes = compare_rates(ft.conversion, prev_conv.assign(source=TOTAL), by="source")
    tests = source_differences(ft.conversion)
    trend = cohort_trend(src, period=p, as_of=cut, cohorts=trend_cohorts,
                         window_days=trend_window_days or None, stages=stages, funnel_mode=funnel_mode,
                         confidence=confidence, min_sample=min_sample)
    dist = time_to_convert(src, period=p, as_of=cut, stages=stages, funnel_mode=funnel_mode)
    both = activity_counts_many(src, [(p, cut), (prev, prev_cut)], stages=stages, funnel_mode=funnel_mode)
    activity, prev_activity = (both[both["period"] == q.label].drop(columns="period").reset_index(drop=True)
                               for q in (p, prev))
    notes = []
    deals = None
    if src.has("opportunity_history"):
        deals = deal_stage_conversion(src, period=p, as_of=cut, stages=deal_stages, confidence=confidence)
    else:
        notes.append("No `opportunity_history` table: the deal-stage funnel is skipped.")
    sales = prev_sales = None
    if src.has("opportunities"):
        sales = sales_metrics(src, period=p, as_of=cut, lookback_periods=lookback_periods)
        prev_sales = sales_metrics(src, period=prev, as_of=prev_cut, lookback_periods=lookback_periods)
    else:
        notes.append("No `opportunities` table: win rate, deal size, cycle and velocity are skipped.")
    return FunnelReport(period=p, as_of=cut, previous=prev, previous_as_of=prev_cut, stages=stages,
                        deal_stages=deal_stages, funnel_mode=funnel_mode, min_sample=min_sample,
                        confidence=confidence, currency=currency, conversion=ft.conversion, timing=ft.timing,
                        previous_conversion=prev_conv, changes=changes, source_tests=tests, segments=segments,
                        trend=trend, distribution=dist, activity=activity, previous_activity=prev_activity,
                        deals=deals, sales=sales, previous_sales=prev_sales, notes=notes,
                        lookback_periods=lookback_periods)
