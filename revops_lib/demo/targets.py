"""Targets in the demo company: one goal per period and KPI (months, quarters, ISO weeks), set near the
eventual actuals for complete periods and extending the recent trend for periods not complete at ``end``;
month and quarter targets are made consistent with their weeks and months (``targets``).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from revops_lib.demo.calendar import _month_label, _month_of_day, _month_start, _quarter_label, _week_label, _weekday
from revops_lib.demo.draws import _rng
from revops_lib.demo.truth import TEAMS
from revops_lib.periods import parse_period


def write_targets(co) -> None:
    """Write ``targets`` from the company's daily aggregates (``co.agg``, ``co.sessions_day``) and its
    monthly NRR (``co.nrr_num`` / ``co.nrr_den``), then the team and rep revenue quotas (:func:`_quotas`,
    from ``co.won_month_team``)."""
    rng = _rng(co.seed, 6)
    a = co.agg
    daily = {
        "revenue_won": a["won_amount"], "new_customers": a["new_customers"], "leads": a["leads"],
        "mqls": a["mqls"], "sqls": a["sqls"], "opportunities_created": a["opps"],
        "sessions": co.sessions_day, "first_meetings": a["first_meetings"], "proposals": a["proposals"],
    }
    ratios = {"win_rate": (a["won_count"], a["won_count"] + a["lost_count"]),
              "csat": (a["csat_pos"], a["csat_rated"])}
    weekly = ("leads", "mqls", "sqls", "opportunities_created", "first_meetings")
    # periods: (label, kind, start_day, end_day)
    periods = []
    m_next = co.m_last + 1 if co.end_day > int(_month_start(co.m_last)) else co.m_last
    # months of the data plus the month after `end`
    for mi in range(co.m0, m_next + 1):
        periods.append((_month_label(mi), "month", int(_month_start(mi)), int(_month_start(mi + 1))))
    q_first = co.m0 - co.m0 % 3
    q_last = m_next - m_next % 3
    q_after = int(_month_of_day(co.end_day)) - int(_month_of_day(co.end_day)) % 3
    q_after = q_after + 3 if int(_month_start(q_after)) < co.end_day else q_after
    for qi in range(q_first, max(q_last, q_after) + 1, 3):
        periods.append((_quarter_label(qi), "quarter", int(_month_start(qi)), int(_month_start(qi + 3))))
    first_monday = co.start_day + (-int(_weekday(co.start_day))) % 7
    last_day = int(_month_start(m_next + 1))
    for mon in range(first_monday, last_day, 7):
        periods.append((_week_label(mon), "week", mon, mon + 7))
    sd = co.start_day
    rows = []
    history: dict = {}
    for label, kind, p0, p1 in periods:
        complete = p1 <= co.end_day and p0 >= sd
        metrics = list(daily) + ["win_rate", "csat", "nrr_12m"] if kind != "week" else list(weekly)
        for metric in metrics:
            hist = history.setdefault((kind, metric), [])
            if complete:
                if metric in daily:
                    actual = float(daily[metric][p0 - sd:p1 - sd].sum())
                elif metric in ratios:
                    num, den = ratios[metric]
                    dn = float(den[p0 - sd:p1 - sd].sum())
                    actual = float(num[p0 - sd:p1 - sd].sum()) / dn if dn > 0 else float("nan")
                else:  # nrr_12m at the period's last month
                    k = int(_month_of_day(p1 - 1)) - co.m0
                    actual = co.nrr_num[k] / co.nrr_den[k] if k >= 12 and co.nrr_den[k] > 0 else float("nan")
                if math.isfinite(actual):
                    hist.append(actual)
                base = actual
            elif p1 > co.end_day:
                # a plan for a period not yet complete: the recent trend
                recent = [x for x in hist[-3:] if math.isfinite(x)]
                base = float(np.mean(recent)) * (1.05 if metric in daily or metric in weekly else 1.0) \
                    if recent else float("nan")
            else:
                continue
            if not math.isfinite(base) or base <= 0:
                continue
            sd_ = 0.10 if complete else 0.03  # plans for the future are deliberate
            if metric in ratios or metric == "nrr_12m":
                target = round(min(base + rng.normal(0.02, 0.3 * sd_), 1.5 if metric == "nrr_12m" else 0.99), 2)
            else:
                target = base * float(np.exp(rng.normal(0.03, sd_)))
                target = float(max(1.0, round(target))) if metric != "revenue_won" else _sig3(target)
            rows.append((label, metric, target))
    rows = _consistent_quarters(_consistent_weeks(rows, weekly=set(weekly)), additive=set(daily))
    quota = _quotas(co, rows)
    rows = [(lab, metric, target, None, None) for lab, metric, target in rows] + quota
    co.w.write("targets", {
        "period": [r[0] for r in rows],
        "metric": [r[1] for r in rows],
        "target": np.array([r[2] for r in rows], dtype=float),
        "segment": pa.nulls(len(rows), pa.string()),
        "owner": [r[3] for r in rows],
        "team": [r[4] for r in rows],
    })


def _quotas(co, rows: list[tuple]) -> list[tuple]:
    """Revenue quotas of each team and rep, months and quarters: ``(period, metric, target, owner, team)``.

    A month's company ``revenue_won`` target is split among the teams in proportion to what each team won
    in the three months before (by rep count in the first month), and a team's quota evenly among its reps;
    both are rounded to 100 with the last team (rep) taking the rounding, so the teams add up to the
    company target and the reps to their team's quota exactly. A quarter's quota is the sum of its months'.
    """
    wmt = co.won_month_team
    month_target = {lab: t for lab, metric, t in rows if metric == "revenue_won" and "-" in lab
                    and "Q" not in lab and "W" not in lab}
    out = []
    for mi in range(co.m0, co.m0 + len(wmt)):
        lab = _month_label(mi)
        if lab not in month_target:
            continue
        total = month_target[lab]
        k = mi - co.m0
        won = wmt[max(0, k - 3):k].sum(axis=0)  # the plan: each team's share of the last three months' wins
        share = won / won.sum() if won.sum() > 0 else co.rep_count / co.rep_count.sum()
        team_t = _split(total, share)
        for ti, team in enumerate(TEAMS):
            out.append((lab, "revenue_won", team_t[ti], None, team))
            n = int(co.rep_count[ti])
            reps = _split(team_t[ti], np.full(n, 1.0 / n))
            for j in range(n):
                out.append((lab, "revenue_won", reps[j], co.rep_names[int(co.rep_offset[ti]) + j], team))
    quarters = sorted({_quarter_label(mi) for mi in range(co.m0, co.m0 + len(wmt))
                       if _month_label(mi) in month_target})
    by_key: dict = {}
    for lab, _metric, t, owner, team in out:
        by_key.setdefault((owner, team), {})[lab] = t
    for q in quarters:
        months = [m.label for m in parse_period(q).months()]
        for (owner, team), vals in by_key.items():
            if all(m in vals for m in months):
                out.append((q, "revenue_won", float(round(sum(vals[m] for m in months), 2)), owner, team))
    return out


# --------------------------------------------------------------------------- consistency and rounding

def _split(total: float, share) -> list[float]:
    """``total`` split by ``share`` (fractions adding up to 1), each part rounded to 100 but the last, which takes
    what is left: the parts add up to ``total`` exactly (up to float rounding of cents)."""
    parts = [float(round(total * float(x), -2)) for x in share[:-1]]
    return parts + [float(round(total - sum(parts), 2))]


def _consistent_weeks(rows: list[tuple], *, weekly: set) -> list[tuple]:
    """Month targets of the KPIs also planned by week that agree with their weeks' (what data_quality checks):
    the weekly targets weighted by their days in the month, when every week overlapping the month has one."""
    from revops_lib.periods import parse_period

    value = {(label, metric): target for label, metric, target in rows}
    out = []
    for label, metric, target in rows:
        if metric in weekly and "-W" not in label and "-Q" not in label:
            p = parse_period(label)
            weeks = p.weeks()
            if all((w.label, metric) in value for w in weeks):
                target = round(sum(value[(w.label, metric)] * (min(w.end_naive, p.end_naive)
                                                               - max(w.start_naive, p.start_naive)).days / 7.0
                                   for w in weeks), 2)
        out.append((label, metric, target))
    return out


def _consistent_quarters(rows: list[tuple], *, additive: set) -> list[tuple]:
    """Quarter targets that agree with their months' (what data_quality checks, METRICS.md): an additive KPI's
    quarter is the sum of its three months when all have one; a rate's quarter the mean of its months' targets
    (NRR, measured at the quarter's last month: that month's target)."""
    from revops_lib.periods import parse_period

    value = {(label, metric): target for label, metric, target in rows}
    out = []
    for label, metric, target in rows:
        if "-Q" in label:
            months = [m.label for m in parse_period(label).months()]
            have = [value[(m, metric)] for m in months if (m, metric) in value]
            if metric in additive and len(have) == 3:
                target = float(sum(have))
            elif metric not in additive and have:
                last = value.get((months[-1], metric))
                target = last if metric == "nrr_12m" and last is not None else round(float(np.mean(have)), 2)
        out.append((label, metric, target))
    return out


def _sig3(x: float) -> float:
    if x <= 0 or not math.isfinite(x):
        return float(x)
    digits = 2 - int(math.floor(math.log10(x)))
    return float(round(x, digits))
