"""The one lookup of ``targets`` rows: the scorecard, its pacing and the forecast's coverage all read here.

A target is found for a period label, a metric key and a scope (the company by default, or one
segment, owner or team) by these rules, in order:

1. **The period's own row**: ``targets.period`` = the label, ``metric`` = the key, and the scope's
   columns (``segment``, ``owner``, ``team``) equal to the scope — all null for the company (an
   absent column counts as null).
2. **Parts of the period's scope** (additive KPIs only, :func:`revops_lib.metrics.kpis.is_additive`):
   for the company, the sum of the period's segment rows (no owner, no team) when there is at least
   one.
3. **Weeks** (additive KPIs only, months and quarters): when every ISO week that overlaps the period
   has a row for the scope, the sum of the weekly targets weighted by the days of each week that
   fall in the period.

Otherwise there is no target (the KPI shows none, coverage is blank). Rates and averages (win rate,
CSAT, …) never add up: only rule 1 applies to them.

Quotas (rows with an ``owner``, or a ``team`` and no owner) are read by :func:`quotas`: they are never
company targets (rule 1 needs every scope column null, rule 2 sums segment rows without owner or team).
"""

from __future__ import annotations

import math
import weakref
from typing import Iterable

import pandas as pd

from revops_lib.errors import ParameterError
from revops_lib.metrics.common import run
from revops_lib.metrics.kpis import is_additive
from revops_lib.periods import Period, parse_period
from revops_lib.sources import Source, open_source

__all__ = ["targets", "targets_many", "target", "quotas", "quota_table", "target_conflicts", "SCOPE_COLUMNS"]

#: The columns of ``targets`` that name a scope below the company (a null means "all").
SCOPE_COLUMNS = ("segment", "owner", "team")


def _num(x) -> float:
    try:
        return math.nan if x is None else float(x)
    except (TypeError, ValueError):
        return math.nan


def targets(source, period: str | Period, *, metrics: Iterable[str] | None = None, segment: str | None = None,
            owner: str | None = None, team: str | None = None) -> dict[str, float]:
    """Targets of one period and scope, by metric key (see the module docstring for the rules).

    Parameters
    ----------
    source : Source or source spec
    period : str or Period
    metrics : iterable of str, optional
        Only these metric keys (default: every key with a target).
    segment, owner, team : str, optional
        The scope (default: the company).

    Returns
    -------
    dict
        ``{metric key: target}``; a key without a target is absent.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"period": ["2026-10", "2026-10", "2026-10"], "metric": ["leads", "revenue_won",
    ...                   "revenue_won"], "target": [900.0, 60_000.0, 40_000.0],
    ...                   "segment": [None, "smb", "enterprise"]})
    >>> targets({"targets": t}, "2026-10")
    {'leads': 900.0, 'revenue_won': 100000.0}
    """
    p = parse_period(period)
    return targets_many(source, [p], metrics=metrics, segment=segment, owner=owner, team=team)[p.label]


def _rows(src: Source, periods: list[Period], metrics) -> pd.DataFrame | None:
    """The ``targets`` rows of the periods' labels and of the ISO weeks overlapping them (one query)."""
    if not src.has("targets"):
        return None
    labels = list(dict.fromkeys([p.label for p in periods] + [w.label for p in periods if p.kind != "week"
                                                               for w in p.weeks()]))
    df = _all_rows(src)
    df = df[df["period"].isin(labels)]
    if metrics is not None:
        wanted = list(dict.fromkeys(metrics))
        if not wanted:
            return None
        df = df[df["metric"].isin(wanted)]
    return df.reset_index(drop=True)


#: Every source's ``targets`` rows, read once: a report asks for targets a dozen times (scorecard, pacing,
#: coverage, projection, quotas), and the table is small (a row per period, metric and scope).
_ROWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _all_rows(src: Source) -> pd.DataFrame:
    """``period, metric, target, segment, owner, team`` of every ``targets`` row of ``src`` (one query per
    source; the scope columns the table lacks are null)."""
    df = _ROWS.get(src)
    if df is None:
        t = src.table("targets")
        cols = [c for c in SCOPE_COLUMNS if c in t.columns]
        df = run(t.select("period", "metric", "target", *cols))
        for c in SCOPE_COLUMNS:
            if c not in df.columns:
                df[c] = None
        _ROWS[src] = df
    return df


def targets_many(source, periods: Iterable[str | Period], *, metrics: Iterable[str] | None = None,
                 segment: str | None = None, owner: str | None = None,
                 team: str | None = None) -> dict[str, dict[str, float]]:
    """:func:`targets` of several periods in one query: ``{period label: {metric key: target}}``.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"period": ["2026-09", "2026-10"], "metric": ["leads", "leads"], "target": [8.0, 9.0]})
    >>> targets_many({"targets": t}, ["2026-09", "2026-10", "2026-11"])
    {'2026-09': {'leads': 8.0}, '2026-10': {'leads': 9.0}, '2026-11': {}}
    """
    src = open_source(source) if not isinstance(source, Source) else source
    ps = [parse_period(p) for p in periods]
    df = _rows(src, ps, metrics)
    if df is None:
        return {p.label: {} for p in ps}
    return {p.label: _lookup(df, p, {"segment": segment, "owner": owner, "team": team}) for p in ps}


def _lookup(df: pd.DataFrame, p: Period, scope: dict) -> dict[str, float]:
    """The module docstring's rules for one period and scope, on the rows read by :func:`_rows`."""
    weeks = p.weeks() if p.kind != "week" else []

    def in_scope(frame: pd.DataFrame, below: str | None = None) -> pd.DataFrame:
        mask = pd.Series(True, index=frame.index)
        for c, v in scope.items():
            if c == below:
                mask &= frame[c].notna()
            elif v is None:
                mask &= frame[c].isna()
            else:
                mask &= frame[c] == v
        return frame[mask]

    own_rows = in_scope(df[df.period == p.label])
    out = {m: _num(v) for m, v in zip(own_rows.metric, own_rows.target)}
    if all(v is None for v in scope.values()):  # rule 2: the company from its segments
        parts = in_scope(df[df.period == p.label], below="segment")
        for metric, grp in parts.groupby("metric"):
            if metric not in out and is_additive(metric):
                vals = grp.target.dropna()
                if len(vals):
                    out[metric] = float(vals.sum())
    if weeks:  # rule 3: a month or quarter from its weeks
        week_labels = {w.label for w in weeks}
        wk = in_scope(df[df.period.isin(week_labels)])
        for metric, grp in wk.groupby("metric"):
            if metric in out or not is_additive(metric):
                continue
            tmap = dict(zip(grp.period, grp.target))
            if all(w.label in tmap for w in weeks):
                total = 0.0
                for w in weeks:
                    overlap = (min(w.end_naive, p.end_naive) - max(w.start_naive, p.start_naive)).days
                    total += _num(tmap[w.label]) * overlap / 7.0
                out[metric] = total
    return out


def quotas(source, period: str | Period, *, metric: str = "revenue_won", by: str = "owner") -> dict[str, float]:
    """Quotas of one period: the ``targets`` rows with an ``owner`` (``by="owner"``) or a ``team`` and no owner
    (``by="team"``), by that owner or team.

    An owner's quota is the sum of its rows for the period label and ``metric`` (one row, or one per segment or
    team it is split by); a team's quota the sum of its rows without an owner. For an additive metric without
    such a row, a month's or quarter's quota is the sum of the ISO weeks' rows weighted by their days in the
    period (as :func:`targets`' rule 3), when every week has one. Company rows (no owner, no team) are never
    a quota, and quota rows never count as company targets.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"period": ["2026-10"] * 4, "metric": ["revenue_won"] * 4,
    ...                   "target": [100.0, 60.0, 30.0, 50.0], "owner": [None, "ana", "bo", None],
    ...                   "team": [None, "smb", "smb", "smb"]})
    >>> quotas({"targets": t}, "2026-10"), quotas({"targets": t}, "2026-10", by="team")
    ({'ana': 60.0, 'bo': 30.0}, {'smb': 50.0})
    """
    if by not in ("owner", "team"):
        raise ParameterError(f"`by` must be 'owner' or 'team', not `{by!r}`.")
    p = parse_period(period)
    return quota_table(source, [p], metric=metric)[p.label][by]


def quota_table(source, periods: Iterable[str | Period], *, metric: str = "revenue_won") -> dict[str, dict]:
    """Every quota and the company target of several periods in one query:
    ``{period label: {"owner": {owner: quota}, "team": {team: quota}, "company": target or NaN,
    "owner_team": {owner: team}}}`` (the rules of :func:`quotas` and :func:`targets`). ``owner_team``: the
    team an owner's quota rows of the period (or of its weeks) name, for owners whose rows name exactly one."""
    src = open_source(source) if not isinstance(source, Source) else source
    ps = [parse_period(p) for p in periods]
    df = _rows(src, ps, [metric])
    out = {}
    for p in ps:
        if df is None:
            out[p.label] = {"owner": {}, "team": {}, "company": math.nan, "owner_team": {}}
            continue
        out[p.label] = {by: _quotas(df, p, metric, by) for by in ("owner", "team")}
        out[p.label]["company"] = _lookup(df, p, {"segment": None, "owner": None, "team": None}).get(metric, math.nan)
        out[p.label]["owner_team"] = _owner_teams(df, p, metric)
    return out


def _owner_teams(df: pd.DataFrame, p: Period, metric: str) -> dict[str, str]:
    """``{owner: team}`` for owners whose quota rows of ``p`` (its own label, else its weeks) name one team."""
    rows = df[df["owner"].notna() & df["target"].notna() & (df["metric"] == metric)]
    rows = rows[rows.period.isin({p.label} | {w.label for w in p.weeks()})]  # a week's weeks are itself
    if rows.empty:
        return {}
    own = (rows["period"] == p.label).to_numpy()
    has_own = pd.Series(own, index=rows.index).groupby(rows["owner"]).transform("any").to_numpy()
    named = rows[(own | ~has_own) & rows["team"].notna()]  # the period's own rows, else its weeks' rows
    teams = named["team"].astype(str).groupby(named["owner"].astype(str))
    n, first = teams.nunique(), teams.first()
    return {str(o): str(first[o]) for o in n.index[n.to_numpy() == 1]}


def _quotas(df: pd.DataFrame, p: Period, metric: str, by: str) -> dict[str, float]:
    rows = df[df["owner"].notna()] if by == "owner" else df[df["owner"].isna() & df["team"].notna()]
    rows = rows[rows["target"].notna() & (rows["metric"] == metric)]
    own = rows[rows.period == p.label]
    out = {str(k): float(v) for k, v in own.groupby(by)["target"].sum().items()}
    weeks = p.weeks() if p.kind != "week" else []
    if weeks and is_additive(metric):
        wk = rows[rows.period.isin({w.label for w in weeks})]
        for key, grp in wk.groupby(by):
            if str(key) in out:
                continue
            tmap = grp.groupby("period")["target"].sum()
            if all(w.label in tmap.index for w in weeks):
                out[str(key)] = float(sum(tmap[w.label] * (min(w.end_naive, p.end_naive)
                                                           - max(w.start_naive, p.start_naive)).days / 7.0
                                          for w in weeks))
    return out


def target(source, period: str | Period, metric: str, **scope) -> float:
    """One target (NaN when there is none); see :func:`targets`."""
    return targets(source, period, metrics=[metric], **scope).get(metric, math.nan)


def target_conflicts(source, *, tolerance: float = 0.005, rate_tolerance: float = 0.01) -> pd.DataFrame:
    """Targets that contradict each other (company rows, the ones the lookup reads first).

    - an **additive** KPI's quarter target that differs from the sum of its three months' targets by more than
      ``tolerance`` (relative), when all three months have one;
    - a **rate or average** (win rate, CSAT, …) whose quarter target lies outside the range of its months'
      targets by more than ``rate_tolerance`` (absolute: 0.01 = 1 point), when at least one month has one;
    - the same two checks for a month's or a quarter's target against the ISO weeks that overlap it (an additive
      KPI's weekly targets weighted by their days in the period, as the lookup's rule 3 adds them).

    Returns ``period, metric, target, parts, parts_value, difference, problem`` (``parts_value``: the months'
    sum, or for a rate the nearest month target), one row per conflict, by period then metric.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"period": ["2026-Q4", "2026-10", "2026-11", "2026-12", "2026-Q4", "2026-10"],
    ...                   "metric": ["leads"] * 4 + ["csat"] * 2, "target": [100.0, 30, 30, 30, 0.83, 0.93]})
    >>> target_conflicts({"targets": t})[["period", "metric", "parts_value", "difference"]].values.tolist()
    [['2026-Q4', 'csat', 0.93, -0.1], ['2026-Q4', 'leads', 90.0, 10.0]]
    """
    from revops_lib.periods import PeriodError

    src = open_source(source) if not isinstance(source, Source) else source
    cols = ["period", "metric", "target", "parts", "parts_value", "difference", "problem"]
    if not src.has("targets"):
        return pd.DataFrame(columns=cols)
    t = src.table("targets")
    scope = [c for c in SCOPE_COLUMNS if c in t.columns]
    df = run(t.select("period", "metric", "target", *scope))
    for c in scope:
        df = df[df[c].isna()]
    df = df.dropna(subset=["target"]).drop_duplicates(["period", "metric"])
    value = {(p, m): float(v) for p, m, v in zip(df["period"], df["metric"], df["target"])}
    out = []
    for (label, metric), target_value in sorted(value.items()):
        try:
            p = parse_period(label)
        except PeriodError:
            continue
        if p.kind in ("month", "quarter"):
            out += _week_conflicts(p, metric, target_value, value, tolerance, rate_tolerance)
        if p.kind != "quarter":
            continue
        months = [m.label for m in p.months()]
        have = [m for m in months if (m, metric) in value]
        if is_additive(metric):
            if len(have) < len(months):
                continue
            total = sum(value[(m, metric)] for m in months)
            diff = target_value - total
            if abs(diff) > tolerance * max(abs(total), 1e-9):
                out.append((label, metric, target_value, ", ".join(months), total, diff,
                            f"the quarter's target is not the sum of its months' ({', '.join(months)})"))
        elif have:
            parts = [value[(m, metric)] for m in have]
            lo, hi = min(parts), max(parts)
            nearest = lo if target_value < lo else hi
            if target_value < lo - rate_tolerance or target_value > hi + rate_tolerance:
                out.append((label, metric, target_value, ", ".join(have), nearest, target_value - nearest,
                            f"the quarter's target is outside its months' targets ({', '.join(have)})"))
    res = pd.DataFrame(out, columns=cols)
    res["difference"] = res["difference"].astype(float).round(12)
    return res.sort_values(["period", "metric", "parts"], kind="stable").reset_index(drop=True)


def _week_conflicts(p: Period, metric: str, target_value: float, value: dict, tolerance: float,
                    rate_tolerance: float) -> list[tuple]:
    """A month's or quarter's target against the targets of the ISO weeks that overlap it (the lookup's rule 3:
    an additive KPI's weeks weighted by their days in the period, when every week has one; a rate's range)."""
    weeks = p.weeks()
    have = [w for w in weeks if (w.label, metric) in value]
    if not have:
        return []
    kind = "month" if p.kind == "month" else "quarter"
    span = f"{have[0].label} to {have[-1].label}" if len(have) > 1 else have[0].label
    if is_additive(metric):
        if len(have) < len(weeks):
            return []
        total = sum(value[(w.label, metric)] * (min(w.end_naive, p.end_naive) - max(w.start_naive, p.start_naive)).days
                    / 7.0 for w in weeks)
        diff = target_value - total
        if abs(diff) > tolerance * max(abs(total), 1e-9):
            return [(p.label, metric, target_value, span, total, diff,
                     f"the {kind}'s target is not the sum of its weeks' (weighted by their days in the {kind})")]
        return []
    parts = [value[(w.label, metric)] for w in have]
    lo, hi = min(parts), max(parts)
    if target_value < lo - rate_tolerance or target_value > hi + rate_tolerance:
        nearest = lo if target_value < lo else hi
        return [(p.label, metric, target_value, span, nearest, target_value - nearest,
                 f"the {kind}'s target is outside its weeks' targets")]
    return []
