"""Segments side by side: win rate and trailing revenue retention per segment, with the statistics of the totals.

Definitions (METRICS.md style):

- **Win rate by segment** — for each value of ``opportunities.segment`` (or another ``by`` column), the
  deals closed in the period before the cut-off (:func:`revops_lib.metrics.deals.closed_deal_stats_by`):
  ``win_rate = won / (won + lost)``, with its Wilson interval (as the funnel's rates), and a row ``all``
  for every closed deal (deals without a segment count in ``all`` only, and in a row ``(none)``).
  ``small_sample`` flags fewer than ``min_sample`` closed deals. The Pearson chi-square test of
  independence of segment × (won, lost) says whether the segments' win rates differ more than chance
  would make them (``attrs["test"]``: ``chi2, p_value, dof, min_expected``; ``min_expected`` < 5: the
  approximation is weak).
- **Retention by segment** — trailing ``lag``-month NRR, GRR and logo retention
  (:func:`revops_lib.metrics.mrr.trailing_retention`) at the last complete month, per customer segment:
  a customer belongs to the segment of its earliest subscription (earliest payment with transactions),
  so the segments partition the customers and their base customers, base MRR and MRR add up to the
  ``all`` row exactly. Logo retention gets a Wilson interval (retained of the base customers) and the
  chi-square test of segment × (retained, not retained); NRR and GRR are ratios of sums of money and get
  no interval (as the totals).
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd

from revops_lib.errors import ParameterError
from revops_lib.metrics.common import UNKNOWN, run
from revops_lib.metrics.deals import closed_deal_stats_by
from revops_lib.metrics.mrr import CustomerMRR, customer_mrr, trailing_retention
from revops_lib.periods import window
from revops_lib.sources import open_source
from revops_lib.stats import chi_square_test, wilson_interval

__all__ = ["win_rate_by", "retention_by", "check_by", "ALL", "NONE"]

#: The row of every record (whatever its segment).
ALL = "all"
#: The row of the records without a value in the ``by`` column.
NONE = "(none)"

WIN_RATE_COLUMNS = ["closed", "won", "lost", "win_rate", "ci_low", "ci_high", "small_sample"]
RETENTION_COLUMNS = ["month", "base_month", "base_customers", "retained_customers", "logo_retention", "ci_low",
                     "ci_high", "base_mrr", "mrr", "capped_mrr", "nrr", "grr"]


def _test(counts) -> dict:
    chi2, p, dof, low = chi_square_test(counts)
    return {"chi2": chi2, "p_value": p, "dof": dof, "min_expected": low}


def check_by(by) -> str:
    """``by`` of a by-segment table or its records: a column name (a non-empty text), else a ParameterError."""
    if not isinstance(by, str) or not by:
        raise ParameterError(f"`by` must be a column name such as 'segment', not {by!r}.")
    return by


def win_rate_by(data, *, period, as_of=None, by: str = "segment", confidence: float = 0.95,
                min_sample: int = 30) -> pd.DataFrame:
    """Win rate per value of ``by`` (see the module docstring), one row per value then ``all``.

    Returns
    -------
    DataFrame
        ``<by>, closed, won, lost, win_rate, ci_low, ci_high, small_sample``; ``attrs["test"]`` holds the
        chi-square test across the values (``(none)`` left out of the test).

    >>> o = pd.DataFrame({"opportunity_id": ["O1", "O2", "O3", "O4"], "segment": ["smb", "smb", "ent", None],
    ...     "created_at": pd.to_datetime(["2026-09-01"] * 4),
    ...     "close_date": pd.to_datetime(["2026-10-05", "2026-10-20", "2026-10-02", "2026-10-03"]).date,
    ...     "is_closed": [True] * 4, "is_won": [True, False, True, False], "amount": [100.0, 300.0, 50.0, 9.0]})
    >>> win_rate_by(o, period="2026-10")[["segment", "closed", "won", "win_rate"]]
      segment  closed  won  win_rate
    0     ent       1    1       1.0
    1     smb       2    1       0.5
    2  (none)       1    0       0.0
    3     all       4    2       0.5
    """
    check_by(by)
    p, cut = window(period, as_of, period_required=True)
    o = data if isinstance(data, pd.DataFrame) else open_source(data).table("opportunities")
    if by not in o.columns:
        raise ParameterError(f"`by` names column `{by}`, which is not in the opportunities table.")
    s = closed_deal_stats_by(o, by, start=p.start_date, end=p.end_date, as_of=cut)
    s = s[[by, "closed", "won", "lost"]].copy()
    named = s[s[by].notna()].copy()
    named[by] = named[by].astype(str)
    named = named.sort_values(by, ignore_index=True)
    none = s[s[by].isna()]
    rows = [named]
    if len(none):
        rows.append(pd.DataFrame({by: [NONE], "closed": [int(none["closed"].sum())], "won": [int(none["won"].sum())],
                                  "lost": [int(none["lost"].sum())]}))
    rows.append(pd.DataFrame({by: [ALL], "closed": [int(s["closed"].sum())], "won": [int(s["won"].sum())],
                              "lost": [int(s["lost"].sum())]}))
    out = pd.concat([r for r in rows if len(r)], ignore_index=True)
    for c in ("closed", "won", "lost"):
        out[c] = out[c].astype("int64")
    n = (out["won"] + out["lost"]).to_numpy()
    out["win_rate"] = [w / k if k else math.nan for w, k in zip(out["won"], n)]
    out["ci_low"], out["ci_high"] = wilson_interval(out["won"].to_numpy(), n, confidence=confidence)
    out["small_sample"] = n < min_sample
    out = out[[by] + WIN_RATE_COLUMNS]
    out.attrs["test"] = _test(named[["won", "lost"]].to_numpy()) if len(named) else _test([[0, 0]])
    return out


def retention_by(data, *, period=None, as_of=None, by: str = "segment", lag: int = 12,
                 confidence: float = 0.95) -> pd.DataFrame:
    """Trailing NRR, GRR and logo retention at the last complete month per customer segment (see the module
    docstring), one row per segment then ``all``.

    Returns
    -------
    DataFrame
        ``<by>`` then :func:`trailing_retention`'s columns with ``ci_low, ci_high`` (Wilson, logo retention)
        after ``logo_retention``; ``attrs["test"]``: the chi-square test of segment × (retained, not retained).
        Customers without a segment form the row ``(none)``.

    >>> cm = pd.DataFrame({"customer_id": ["A", "A", "B", "C"], "mrr": [100.0, 130.0, 50.0, 20.0],
    ...     "segment": ["smb", "smb", "ent", "smb"],
    ...     "month": pd.to_datetime(["2025-01-01", "2026-01-01", "2025-01-01", "2025-01-01"])})
    >>> retention_by(cm, period="2026-01")[["segment", "base_customers", "retained_customers", "nrr"]]
      segment  base_customers  retained_customers       nrr
    0     ent               1                   0  0.000000
    1     smb               2                   1  1.083333
    2     all               3                   1  0.764706
    """
    check_by(by)
    given = isinstance(data, CustomerMRR)
    if given and data.by != by:
        raise ParameterError(f"`by`={by!r} differs from the CustomerMRR's `by`={data.by!r}: compute it with "
                             "customer_mrr(..., by=...) first.")
    cm = data if given else customer_mrr(data, period=period, as_of=as_of, by=by, cache=True)
    try:
        groups = sorted((str(g) for g in run(cm.changes.select("group").distinct())["group"]),
                        key=lambda g: (g == UNKNOWN, g))  # named segments, then the customers without one
        rows = []
        for g in groups:
            part = dataclasses.replace(cm, changes=cm.changes.filter(cm.changes.group == g), _months=None,
                                       _temp=None)
            r = trailing_retention(part, months=1, lag=lag).iloc[[-1]].copy()
            r.insert(0, by, g)
            rows.append(r)
        total = trailing_retention(cm, months=1, lag=lag).iloc[[-1]].copy()
    finally:
        if not given:  # a CustomerMRR handed in is its owner's to release
            cm.release()
    total.insert(0, by, ALL)
    out = pd.concat(rows + [total], ignore_index=True)
    out[by] = out[by].replace({UNKNOWN: NONE})
    low, high = wilson_interval(out["retained_customers"].to_numpy(), out["base_customers"].to_numpy(),
                                confidence=confidence)
    out.insert(out.columns.get_loc("logo_retention") + 1, "ci_low", low)
    out.insert(out.columns.get_loc("ci_low") + 1, "ci_high", high)
    named = out[~out[by].isin([ALL, NONE])]
    counts = list(zip(named["retained_customers"], named["base_customers"] - named["retained_customers"]))
    out.attrs["test"] = _test(counts) if counts else _test([[0, 0]])
    return out[[by] + RETENTION_COLUMNS]
