"""Rep and team performance: quota attainment, win rate, deal size, cycle, pipeline, activity and forecast per owner.

Definitions (METRICS.md, "Channels, reps and stages"; the sales figures exactly as in "Sales")
-----------------------------------------------------------------------------------------------
One row per owner and team as they stand on the deals (``opportunities.owner`` and ``.team``; an owner
who sold for two teams has a row in each), then one row per team (``owner`` = ``all``) and one for the
company (``owner`` = ``team`` = ``all``). Deals without an owner or a team count under ``unassigned``.

- **revenue_won, won, lost** — over the row's deals closed in the period (``close_date`` in the period,
  before ``as_of``'s date): Σ amount won, deals won, deals lost.
- **win_rate** = won / (won + lost), by count, with its Wilson interval ``ci_low``, ``ci_high``
  (:func:`revops_lib.stats.wilson_interval`, 95 % by default); ``small_sample`` when fewer than
  ``min_sample`` deals closed (the rate is then too noisy to read, as in the funnel).
- **avg_deal_size** = mean amount of the deals won; **cycle_days** = median calendar days from the UTC date
  of ``created_at`` to ``close_date`` of the deals won (linear interpolation).
- **quota** — the ``targets`` row of the period with metric ``target_metric`` (``revenue_won``) and that
  owner (:func:`revops_lib.metrics.targets.quotas`), on the owner's row of its main team (the team of most of
  its deals; an owner without deals is on the one team its quota rows name, else ``unassigned``); a team's
  own quota row (``team`` set, no ``owner``); the company's target
  (:func:`revops_lib.metrics.targets.targets`). **attainment** = revenue won / quota.
- **pipeline_created**, **opportunities_created** — Σ amount and count of the row's opportunities created in
  the period.
- **open_pipeline_next** — the point-in-time open pipeline at the cut-off with close date in the next period
  (:mod:`revops_lib.metrics.deal_history`'s state of each deal, its current owner and team);
  **next_quota** the next period's quota; **coverage** = open_pipeline_next / next_quota.
- **first_meetings**, **proposals** — ``activities`` of that type in the period by the owner; an activity's
  team is its opportunity's, else the owner's main team.
- **forecast_accuracy**, **forecast_bias** — from the submitted forecasts of the period whose scope is the
  owner, the team or ``company`` (category ``call_category``, every snapshot of the period in view):
  mean accuracy (max(0, 1 − APE)) and Σ(forecast − actual) / Σ actual (positive = over-forecast), as in
  "Forecast accuracy"; blank where no such forecast exists (or the period has not ended by ``as_of``).

Counts and amounts add up: the owner rows of a team sum to its team row, the team rows to the company row
(quotas and the ratios do not: an owner's quota is its own).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from revops_lib.metrics.common import (
    check_fraction,
    check_int,
    count_if,
    date_lit,
    ratio,
    run,
    source_of,
    ts_lit,
)
from revops_lib.metrics.deal_history import COMPANY, Calendar, DealHistory, deal_rows
from revops_lib.metrics.deals import closed_deal_stats, closed_deal_stats_by
from revops_lib.metrics.lead_funnel import TOTAL
from revops_lib.metrics.targets import quota_table
from revops_lib.periods import window
from revops_lib.stats import wilson_interval

__all__ = ["rep_performance", "REP_COLUMNS", "UNASSIGNED"]

#: The owner or team of deals that have none.
UNASSIGNED = "unassigned"

#: The published columns of ``rep_performance.csv`` (DESIGN.md, "Published tables").
REP_COLUMNS = ["owner", "team", "quota", "revenue_won", "attainment", "won", "lost", "win_rate", "ci_low", "ci_high",
               "avg_deal_size", "cycle_days", "pipeline_created"]

#: The further columns of :func:`rep_performance` (shown in the report, published as ``rep_activity.csv``).
MORE_COLUMNS = ["closed", "small_sample", "opportunities_created", "open_pipeline_next", "next_quota", "coverage",
                "first_meetings", "proposals", "forecast_accuracy", "forecast_bias"]

_ADDITIVE = ["revenue_won", "won", "lost", "closed", "pipeline_created", "opportunities_created",
             "open_pipeline_next", "first_meetings", "proposals"]


def _label(col):
    return col.fill_null(UNASSIGNED)


def rep_performance(data, *, period, as_of=None, confidence: float = 0.95, min_sample: int = 30,
                    target_metric: str = "revenue_won", accuracy: pd.DataFrame | None = None,
                    call_category: str = "commit", won_stages=None, lost_stages=None) -> pd.DataFrame:
    """Per owner, team and company: quota and attainment, win rate with its interval, deal size, cycle,
    pipeline created and next-period coverage, first meetings and proposals, forecast accuracy and bias.

    Parameters
    ----------
    data : Source, source spec or DealHistory
        ``opportunities`` (required); ``targets`` (quotas), ``activities``, ``opportunity_history`` (point-in-time
        coverage) and ``forecast_snapshots`` when present. A prepared :class:`DealHistory` is reused.
    period : str or Period
    as_of : date or time, optional
    confidence : float, default 0.95
        Level of the Wilson interval of the win rate.
    min_sample : int, default 30
        Fewer closed deals than this: ``small_sample`` (the rate is too few to read).
    target_metric : str, default ``"revenue_won"``
    accuracy : DataFrame, optional
        :func:`revops_lib.metrics.forecast.forecast_accuracy` output to read the forecasts from (computed,
        without the baseline, when absent and the source has ``forecast_snapshots``).
    call_category : str, default ``"commit"``

    Returns
    -------
    DataFrame
        :data:`REP_COLUMNS` then :data:`MORE_COLUMNS`; owner rows by team and owner, each team's row
        (``owner`` = ``all``) after its owners, the company row (``all``, ``all``) last.

    Examples
    --------
    >>> import datetime as dt
    >>> o = pd.DataFrame({"opportunity_id": ["O1", "O2", "O3"], "owner": ["ana", "ana", "bo"],
    ...     "team": ["smb", "smb", "smb"], "created_at": pd.to_datetime(["2026-09-01", "2026-10-03", "2026-09-10"]),
    ...     "close_date": [dt.date(2026, 10, 5), dt.date(2026, 10, 20), dt.date(2026, 10, 2)],
    ...     "is_closed": [True, True, True], "is_won": [True, False, True], "amount": [100.0, 300.0, 50.0]})
    >>> t = pd.DataFrame({"period": ["2026-10"] * 2, "metric": ["revenue_won"] * 2, "target": [200.0, 100.0],
    ...                   "owner": ["ana", "bo"], "team": ["smb", "smb"]})
    >>> r = rep_performance({"opportunities": o, "targets": t}, period="2026-10")
    >>> r[["owner", "team", "quota", "revenue_won", "attainment", "won", "lost", "pipeline_created"]]
      owner team  quota  revenue_won  attainment  won  lost  pipeline_created
    0   ana  smb  200.0        100.0         0.5    1     1             300.0
    1    bo  smb  100.0         50.0         0.5    1     0               0.0
    2   all  smb    NaN        150.0         NaN    2     1             300.0
    3   all  all    NaN        150.0         NaN    2     1             300.0
    """
    check_fraction(confidence, "confidence")
    min_sample = check_int(min_sample, "min_sample", 0)
    p, cut_as_of = window(period, as_of, period_required=True)
    cut = min(p.end_naive, cut_as_of)
    src = source_of(data, "opportunities")
    o = src.table("opportunities")
    keys = ["owner", "team"]
    ot = o.mutate(owner=_label(o.owner), team=_label(o.team))

    # closed deals: per owner x team, per team, the company (medians do not add up: three groupings)
    closed_cols = ["closed", "won", "lost", "won_amount", "sales_cycle_days"]
    by_owner = closed_deal_stats_by(ot, keys, start=p.start_date, end=p.end_date, as_of=cut_as_of)[keys + closed_cols]
    by_team = closed_deal_stats_by(ot, "team", start=p.start_date, end=p.end_date, as_of=cut_as_of)
    company = closed_deal_stats(ot, start=p.start_date, end=p.end_date, as_of=cut_as_of)

    # created in the period; the owners' main teams (most deals created before the cut-off)
    before = ot.filter(ot.created_at < ts_lit(cut))
    created = before.created_at >= ts_lit(p.start_naive)
    g = run(before.group_by(keys).aggregate(n=before.count(), opportunities_created=count_if(created),
                                            pipeline_created=before.amount.sum(where=created)))
    main = _main_teams(g)
    owner_rows = by_owner.rename(columns={"won_amount": "revenue_won"}).merge(g.drop(columns="n"), on=keys,
                                                                              how="outer")
    if src.has("activities"):
        owner_rows = owner_rows.merge(_activities(src, o, p, cut, main), on=keys, how="outer")
    owner_rows = owner_rows.merge(
        _open_next(data if isinstance(data, DealHistory) else src, p, cut, won_stages, lost_stages), on=keys,
        how="outer")

    # quotas (this period's and the next's): an owner's on the row of its main team, teams', the company's
    nxt = p.next()
    qt = quota_table(src, [p, nxt], metric=target_metric)
    q_owner, q_team, n_owner, n_team = qt[p.label]["owner"], qt[p.label]["team"], qt[nxt.label]["owner"], \
        qt[nxt.label]["team"]
    missing = sorted((set(q_owner) | set(n_owner)) - set(owner_rows["owner"]))
    if missing:  # an owner with a quota and nothing else still has a row: on the team its quota rows name
        named = {**qt[nxt.label]["owner_team"], **qt[p.label]["owner_team"]}
        owner_rows = pd.concat([owner_rows, pd.DataFrame({"owner": missing,
                                                          "team": [named.get(x, UNASSIGNED) for x in missing]})],
                               ignore_index=True)
    owner_rows = _fill(owner_rows)
    on_main = owner_rows["team"].eq(owner_rows["owner"].map(main).fillna(owner_rows["team"]))
    owner_rows["quota"] = owner_rows["owner"].map(q_owner).where(on_main)
    owner_rows["next_quota"] = owner_rows["owner"].map(n_owner).where(on_main)

    team_rows = owner_rows.groupby("team", as_index=False)[_ADDITIVE].sum()
    team_rows = team_rows.merge(by_team[["team", "sales_cycle_days"]], on="team", how="left").assign(owner=TOTAL)
    team_rows["quota"] = team_rows["team"].map(q_team)
    team_rows["next_quota"] = team_rows["team"].map(n_team)
    total = owner_rows[_ADDITIVE].sum().to_frame().T.assign(owner=TOTAL, team=TOTAL)
    total["sales_cycle_days"] = company["sales_cycle_days"]
    total["quota"] = qt[p.label]["company"]
    total["next_quota"] = qt[nxt.label]["company"]

    ordered = []
    for team in sorted(team_rows["team"], key=lambda x: (x == UNASSIGNED, str(x))):
        ordered.append(owner_rows[owner_rows["team"] == team].sort_values("owner", key=lambda s: s.astype(str)))
        ordered.append(team_rows[team_rows["team"] == team])
    ordered.append(total)
    out = pd.concat([f for f in ordered if len(f)], ignore_index=True)
    out = _derive(out, confidence, min_sample)
    acc = _forecasts(src, p, cut_as_of, accuracy, call_category, data)
    out["forecast_accuracy"] = [acc.get(_scope(o_, t_), (math.nan, math.nan))[0]
                                for o_, t_ in zip(out["owner"], out["team"])]
    out["forecast_bias"] = [acc.get(_scope(o_, t_), (math.nan, math.nan))[1]
                            for o_, t_ in zip(out["owner"], out["team"])]
    out = out[REP_COLUMNS + MORE_COLUMNS]
    out.attrs.update(period=p.label, as_of=cut_as_of, next_period=nxt.label, confidence=confidence,
                     min_sample=min_sample, call_category=call_category)
    return out


def _scope(owner: str, team: str) -> str:
    """The forecast scope of a row: the owner, the team (owner ``all``) or the company."""
    if owner == TOTAL:
        return COMPANY if team == TOTAL else team
    return owner


def _main_teams(g: pd.DataFrame) -> dict:
    """Each owner's main team: the team of most of its deals (ties: the first alphabetically, unassigned last)."""
    if g.empty:
        return {}
    s = g.assign(_u=g["team"].eq(UNASSIGNED), _t=g["team"].astype(str))
    s = s.sort_values(["owner", "n", "_u", "_t"], ascending=[True, False, True, True], kind="stable")
    return dict(zip(s.drop_duplicates("owner")["owner"], s.drop_duplicates("owner")["team"]))


def _activities(src, o, p, cut, main: dict) -> pd.DataFrame:
    """``owner, team, first_meetings, proposals`` of the period (one query)."""
    a = src.table("activities")
    a = a.filter((a.occurred_at >= ts_lit(p.start_naive)) & (a.occurred_at < ts_lit(cut))
                 & a.type.isin(["first_meeting", "proposal"]))
    ot = o.select(oid=o.opportunity_id, oteam=o.team)
    j = a.left_join(ot, a.opportunity_id == ot.oid).select(a.owner, a.type, ot.oteam)
    g = run(j.group_by(owner=_label(j.owner), oteam=j.oteam).aggregate(
        first_meetings=count_if(j.type == "first_meeting"), proposals=count_if(j.type == "proposal")))
    g["team"] = g["oteam"].where(g["oteam"].notna(), g["owner"].map(main)).fillna(UNASSIGNED)
    return g.groupby(["owner", "team"], as_index=False)[["first_meetings", "proposals"]].sum()


def _open_next(data, p, cut, won_stages, lost_stages) -> pd.DataFrame:
    """``owner, team, open_pipeline_next``: point-in-time open pipeline at ``cut`` due in the next period."""
    nxt = p.next()
    deals = deal_rows(data, won_stages=won_stages, lost_stages=lost_stages, scopes=True)
    cal = Calendar([cut])
    r = deals.rows
    c = cal.covering(r.filter(~r.is_closed), ["amount", "close_date", "owner", "team"])
    c = c.filter(c.close_date.notnull() & (c.close_date >= date_lit(nxt.start_date))
                 & (c.close_date < date_lit(nxt.end_date)))
    return run(c.group_by(owner=_label(c.owner), team=_label(c.team)).aggregate(
        open_pipeline_next=c.amount.fill_null(0.0).sum()))


def _forecasts(src, p, cut_as_of, accuracy, call_category, data) -> dict:
    """``{scope: (mean accuracy, bias)}`` of the period's forecasts of ``call_category``."""
    if accuracy is None:
        if not src.has("forecast_snapshots") or p.end_naive > cut_as_of:
            return {}
        from revops_lib.metrics.forecast import forecast_accuracy

        accuracy = forecast_accuracy(data if isinstance(data, DealHistory) else src, period=p, as_of=cut_as_of,
                                     lookback_periods=1, baseline=False,
                                     fiscal_year_start_month=p.fiscal_year_start_month)
    a = accuracy[(accuracy["forecast_period"] == p.label) & (accuracy["category"] == call_category)]
    out = {}
    for scope, g in a.groupby("scope"):
        g = g[g["forecast"].notna()]
        total = float(g["actual"].sum())
        out[scope] = (float(g["accuracy"].mean()) if g["accuracy"].notna().any() else math.nan,
                      float(g["error"].sum() / total) if total > 0 else math.nan)
    return out


def _fill(df: pd.DataFrame) -> pd.DataFrame:
    """Zeros for the additive figures a row lacks (an owner without closed deals closed none)."""
    for c in _ADDITIVE:
        df[c] = (df[c] if c in df.columns else pd.Series(np.nan, index=df.index)).astype("float64").fillna(0.0)
    if "sales_cycle_days" not in df.columns:
        df["sales_cycle_days"] = np.nan
    return df


def _derive(out: pd.DataFrame, confidence: float, min_sample: int) -> pd.DataFrame:
    out = out.rename(columns={"sales_cycle_days": "cycle_days"})
    for c in ("won", "lost", "closed", "opportunities_created"):
        out[c] = out[c].fillna(0).astype("int64")
    for c in ("first_meetings", "proposals"):
        out[c] = out[c].astype("float64")
    closed = out["won"] + out["lost"]
    out["win_rate"] = ratio(out["won"].to_numpy(), closed.to_numpy())
    out["ci_low"], out["ci_high"] = wilson_interval(out["won"].to_numpy(), closed.to_numpy(), confidence=confidence)
    out["avg_deal_size"] = ratio(out["revenue_won"].to_numpy(), out["won"].to_numpy())
    out["attainment"] = ratio(out["revenue_won"].to_numpy(), out["quota"].astype("float64").to_numpy())
    out["coverage"] = ratio(out["open_pipeline_next"].to_numpy(), out["next_quota"].astype("float64").to_numpy())
    out["small_sample"] = closed < min_sample
    out["quota"] = out["quota"].astype("float64")
    out["next_quota"] = out["next_quota"].astype("float64")
    return out
