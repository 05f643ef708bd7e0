"""Sales forecasts in the demo company: every Monday each team submits ``commit`` and ``best_case`` for the
current month and quarter, biased per team and converging to the amount it eventually wins
(``forecast_snapshots``; see the package docstring for the formula).
"""

from __future__ import annotations

import math

import numpy as np

from revops_lib.demo.calendar import _month_label, _month_of_day, _month_start, _quarter_label, _weekday
from revops_lib.demo.draws import _rng
from revops_lib.demo.truth import BEST_CASE_UPLIFT, FORECAST_BIAS, FORECAST_NOISE, TEAMS
from revops_lib.demo.writer import _dates, _schema


def write_forecast_snapshots(co) -> None:
    """Write ``forecast_snapshots`` from the amounts each team wins per month (``co.won_month_team``, deals
    won after ``end`` included), starting with the first calendar quarter at least 6 months into the data."""
    rng = _rng(co.seed, 5)
    # forecasting starts with the first calendar quarter beginning >= 6 months into the data
    m = co.m0 + 6
    m += (-m) % 3
    fc_start = int(_month_start(m))
    first_monday = fc_start + (-int(_weekday(fc_start))) % 7
    mondays = np.arange(first_monday, co.end_day, 7, dtype=np.int64)
    if len(mondays) == 0:
        co.w.write("forecast_snapshots", {k: [] for k in _schema("forecast_snapshots").names})
        return
    z_period: dict = {}
    rows = []
    wmt = co.won_month_team
    for day in mondays:
        mi = int(_month_of_day(day))
        qi = mi - mi % 3
        for kind, p_lo, p_hi, label in (
            ("month", mi, mi + 1, _month_label(mi)), ("quarter", qi, qi + 3, _quarter_label(mi))):
            start = int(_month_start(p_lo))
            stop = int(_month_start(p_hi))
            remaining = (stop - day) / (stop - start)
            f = math.sqrt(max(remaining, 0.0))
            team_commit, team_best = [], []
            for ti, team in enumerate(TEAMS):
                actual = float(wmt[p_lo - co.m0: p_hi - co.m0, ti].sum())
                key = (label, ti)
                if key not in z_period:
                    z_period[key] = rng.standard_normal(2)
                zc, zb = z_period[key]
                zw = rng.standard_normal(2)
                b = FORECAST_BIAS[team]
                commit = actual * max(0.0, 1 + (b + FORECAST_NOISE * zc + 0.03 * zw[0]) * f)
                best = actual * max(0.0, 1 + (b + BEST_CASE_UPLIFT + FORECAST_NOISE * zb + 0.03 * zw[1]) * f)
                best = max(best, commit)
                team_commit.append(commit)
                team_best.append(best)
                rows.append((day, label, team, "commit", commit))
                rows.append((day, label, team, "best_case", best))
            adj = 1 + 0.02 * rng.standard_normal(2) * f
            cc = sum(team_commit) * adj[0]
            cb = max(sum(team_best) * adj[1], cc)
            rows.append((day, label, "company", "commit", cc))
            rows.append((day, label, "company", "best_case", cb))
    rows.sort(key=lambda r: (r[0], len(r[1]), r[1], r[2] != "company", r[2], r[3]))
    co.w.write("forecast_snapshots", {
        "snapshot_date": _dates([r[0] for r in rows]),
        "forecast_period": [r[1] for r in rows],
        "scope": [r[2] for r in rows],
        "category": [r[3] for r in rows],
        "amount": np.round(np.array([r[4] for r in rows]), -2),
    })
