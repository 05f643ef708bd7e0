"""Acquisition economics: marketing spend, new customers, CAC, LTV and payback (METRICS.md).

- **New customers** in a period: distinct accounts whose first won ``new_business`` opportunity closed
  in it. **Spend**: Σ ``marketing_spend.spend`` dated in the period (and before ``as_of``).
- **CAC** = spend / new customers. **LTV** = ARPA × gross margin / monthly revenue churn rate.
  **CAC payback** (months) = CAC / (ARPA of new customers × gross margin).
"""

from __future__ import annotations

import math
from typing import Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from revops_lib.errors import ParameterError, SourceError
from revops_lib.metrics.common import check_fraction
from revops_lib.metrics.mrr import (
    CustomerMRR,
    last_month,
    month_label,
    month_labels,
    mrr_movements,
    period_months,
)
from revops_lib.periods import window
from revops_lib.sources import as_table, date_windows, open_source, to_pandas


def _table(data, name: str) -> ir.Table:
    if isinstance(data, (ir.Table, pd.DataFrame)):
        return as_table(data, name)
    src = open_source(data)
    if not src.has(name):
        raise SourceError(f"Table `{name}` is absent from {src.description}.")
    return src.table(name)


def new_customers(opportunities, *, period, as_of=None) -> int:
    """KPI ``new_customers``: distinct accounts whose first won ``new_business`` opportunity closed in the period.

    An account counts in the period of the ``close_date`` of its first won
    new-business deal (closed before ``as_of``'s date); later wins of the same
    account do not count again. Deals without ``account_id`` are ignored.

    Parameters
    ----------
    opportunities : Source, Ibis table or pandas DataFrame
    period : str or Period
    as_of : str or Timestamp, optional

    Returns
    -------
    int

    >>> import pandas as pd, datetime as dt
    >>> o = pd.DataFrame({"opportunity_id": ["1", "2", "3"], "account_id": ["A", "A", "B"],
    ...                   "created_at": pd.to_datetime(["2026-08-01"] * 3), "is_closed": [True] * 3,
    ...                   "is_won": [True, True, True], "amount": [1.0] * 3, "type": ["new_business"] * 3,
    ...                   "close_date": [dt.date(2026, 9, 3), dt.date(2026, 10, 2), dt.date(2026, 10, 9)]})
    >>> new_customers(o, period="2026-10")
    1
    """
    if period is None:
        raise ParameterError("`period` is required for new_customers.")
    return int(new_customers_many(opportunities, [(period, as_of)]).iloc[0])


def _date_spans(windows: Sequence, what: str) -> list[tuple]:
    """``(period, as_of)`` windows (or bare periods) -> ``(label, first day, end day exclusive)``,
    the end at ``min(period end, as_of's date)``."""
    spans = []
    for w in windows:
        period, as_of = w if isinstance(w, tuple) else (w, None)
        p, cut = window(period, as_of)
        if p is None:
            raise ParameterError(f"`period` is required for {what}.")
        spans.append((p.label, p.start_date, min(p.end_date, cut.date())))
    return spans


def new_customers_many(opportunities, windows: Sequence[tuple]) -> pd.Series:
    """:func:`new_customers` for several ``(period, as_of)`` windows in one query.

    An account's first win is the same whatever the cut-off, once it is before the cut-off: so it
    counts in a window when that first ``close_date`` falls in ``[start, min(end, as_of's date))``.

    Returns
    -------
    Series of int, indexed by period label, in the order given.
    """
    spans = _date_spans(windows, "new_customers")
    if not spans:
        return pd.Series([], dtype="int64", name="new_customers")
    o = _table(opportunities, "opportunities")
    last = max(hi for _, _, hi in spans)
    won = o.filter(o.is_won.fill_null(False) & (o.type == "new_business") & o.account_id.notnull()
                   & o.close_date.notnull() & (o.close_date < ibis.date(last)))
    first = won.group_by("account_id").aggregate(first=won.close_date.min())
    cal = date_windows([lo for _, lo, _ in spans], [hi for _, _, hi in spans])
    j = first.join(cal, (first.first >= cal.w_lo) & (first.first < cal.w_hi))
    got = to_pandas(j.group_by("w").aggregate(n=j.count()))
    found = dict(zip(got["w"].astype(int), got["n"]))
    return pd.Series([int(found.get(k, 0)) for k in range(len(spans))], index=[lab for lab, _, _ in spans],
                     dtype="int64", name="new_customers")


def marketing_spend_total(spend, *, period, as_of=None) -> float:
    """Σ ``marketing_spend.spend`` dated in the period and before ``as_of``'s date (all channels).

    >>> import pandas as pd, datetime as dt
    >>> s = pd.DataFrame({"date": [dt.date(2026, 10, 1), dt.date(2026, 11, 1)], "channel": ["sales", "sales"],
    ...                   "spend": [100.0, 50.0]})
    >>> marketing_spend_total(s, period="2026-10")
    100.0
    """
    if period is None:
        raise ParameterError("`period` is required for marketing_spend_total.")
    return float(marketing_spend_many(spend, [(period, as_of)]).iloc[0])


def marketing_spend_many(spend, windows: Sequence[tuple]) -> pd.Series:
    """:func:`marketing_spend_total` for several ``(period, as_of)`` windows in one query.

    Returns a Series of floats indexed by period label, in the order given.
    """
    spans = _date_spans(windows, "marketing_spend_total")
    if not spans:
        return pd.Series([], dtype="float64", name="marketing_spend")
    t = _table(spend, "marketing_spend")
    t = t.filter((t.date >= ibis.date(min(lo for _, lo, _ in spans)))
                 & (t.date < ibis.date(max(hi for _, _, hi in spans))))
    cal = date_windows([lo for _, lo, _ in spans], [hi for _, _, hi in spans])
    j = t.join(cal, (t.date >= cal.w_lo) & (t.date < cal.w_hi))
    got = to_pandas(j.group_by("w").aggregate(s=j.spend.sum()))
    found = {int(w): v for w, v in zip(got["w"], got["s"])}
    vals = [found.get(k) for k in range(len(spans))]
    return pd.Series([0.0 if v is None or pd.isna(v) else float(v) for v in vals],
                     index=[lab for lab, _, _ in spans], dtype="float64", name="marketing_spend")


def unit_economics(data, *, period, as_of=None, gross_margin: float = 0.8, movements: pd.DataFrame | None = None,
                   opportunities=None, marketing_spend=None, ltv_max_months: float = 60) -> pd.DataFrame:
    """ARPA, revenue churn, LTV, CAC, CAC payback and LTV:CAC for the period.

    Parameters
    ----------
    data : Source, Ibis table, pandas DataFrame or CustomerMRR
        The MRR data (see :func:`customer_mrr`); when it is a Source (or its
        CustomerMRR came from one), ``opportunities`` and ``marketing_spend``
        default to its tables.
    period : str or Period
    as_of : str or Timestamp, optional
    gross_margin : float, default 0.8
    movements : DataFrame, optional
        :func:`mrr_movements` output covering the period's months (computed when absent).
    opportunities, marketing_spend : optional
        Tables for CAC; CAC and payback are NaN when either is missing.
    ltv_max_months : float, default 60
        The cap on the implied customer lifetime 1 / churn (METRICS.md "LTV is capped"): a low churn
        rate does not make a customer last 17 years. With no churn at all the lifetime is the cap.

    Returns
    -------
    DataFrame
        One row: ``period``, ``months`` (the complete months used, ``first..last``),
        ``customers``, ``mrr``, ``arpa``, ``revenue_churn_rate``, ``gross_margin``,
        ``lifetime_months`` (1 / churn, capped), ``lifetime_capped`` (whether the cap applied),
        ``ltv`` (capped), ``ltv_uncapped`` (NaN with no churn), ``spend``, ``new_customers`` (opportunities KPI),
        ``cac``, ``new_logos`` (first paid month in the period), ``new_mrr``,
        ``new_customer_arpa``, ``cac_payback_months``, ``ltv_to_cac``; for context
        ``revenue_churn_rate_12m`` (the same rate over the 12 months up to the
        last one, as many as ``movements`` holds), ``ltv_12m`` and ``ltv_12m_to_cac`` (capped alike).

    Examples
    --------
    >>> import pandas as pd
    >>> mv = pd.DataFrame({"month": ["2026-10"], "starting_mrr": [1000.0], "new": [100.0], "expansion": [0.0],
    ...                    "reactivation": [0.0], "contraction": [10.0], "churned": [40.0], "ending_mrr": [1050.0],
    ...                    "starting_customers": [10], "new_logos": [1], "churned_logos": [1],
    ...                    "ending_customers": [10]})
    >>> u = unit_economics(None, period="2026-10", movements=mv)
    >>> float(u.loc[0, "ltv"]), float(u.loc[0, "revenue_churn_rate"]), float(u.loc[0, "lifetime_months"])
    (1680.0, 0.05, 20.0)
    >>> float(unit_economics(None, period="2026-10", movements=mv, ltv_max_months=12).loc[0, "ltv"])  # ARPA 105 × 0.8 × 12 months
    1008.0
    """
    gross_margin = check_fraction(gross_margin, "gross_margin")
    if not (isinstance(ltv_max_months, (int, float)) and not isinstance(ltv_max_months, bool)
            and 0 < ltv_max_months < math.inf):
        raise ParameterError(f"`ltv_max_months` must be a positive number of months, not {ltv_max_months!r}.")
    p, cut = window(period, as_of)
    if p is None:
        raise ParameterError("`period` is required for unit_economics.")
    src = None
    if data is not None:
        if isinstance(data, CustomerMRR):
            src = data.source
        elif not isinstance(data, (ir.Table, pd.DataFrame)):
            src = open_source(data)
    last = last_month(p, cut) if not isinstance(data, CustomerMRR) else data.last_month
    months = period_months(p, last)
    if movements is None:
        movements = mrr_movements(data, period=p, as_of=cut, months=max(12, last - months[0] + 1))
    labels = set(month_labels(months))
    mv = movements[movements["month"].isin(labels)]
    if mv.empty:
        raise ParameterError(f"`movements` must cover the period's months {', '.join(sorted(labels))}.")
    end = mv.iloc[-1]

    def churn_rate(rows: pd.DataFrame) -> float:
        loss = float(rows["churned"].sum() + rows["contraction"].sum())
        start = float(rows["starting_mrr"].sum())
        return loss / start if start > 0 else math.nan

    def lifetime(rate: float) -> float:
        """1 / churn in months, capped at ``ltv_max_months`` (the cap when nothing churned)."""
        if math.isnan(rate) or rate < 0:
            return math.nan
        return ltv_max_months if rate == 0 else min(1.0 / rate, float(ltv_max_months))

    def lifetime_value(rate: float) -> float:
        return arpa * gross_margin * lifetime(rate) if not math.isnan(arpa) else math.nan

    rate = churn_rate(mv)
    arpa = float(end["ending_mrr"]) / end["ending_customers"] if end["ending_customers"] > 0 else math.nan
    ltv = lifetime_value(rate)
    ltv_uncapped = arpa * gross_margin / rate if rate > 0 and not math.isnan(arpa) else math.nan
    last12 = movements[movements["month"] <= end["month"]].tail(12)
    rate12 = churn_rate(last12)
    opps = opportunities if opportunities is not None else (
        src if src is not None and src.has("opportunities") else None)
    spend_data = marketing_spend if marketing_spend is not None else (
        src if src is not None and src.has("marketing_spend") else None)
    n_new = new_customers(opps, period=p, as_of=cut) if opps is not None else None
    spend = marketing_spend_total(spend_data, period=p, as_of=cut) if spend_data is not None else math.nan
    cac = spend / n_new if n_new else math.nan
    new_logos = int(mv["new_logos"].sum())
    new_mrr = float(mv["new"].sum())
    new_arpa = new_mrr / new_logos if new_logos else math.nan
    payback = cac / (new_arpa * gross_margin) if new_arpa and not math.isnan(new_arpa) and new_arpa > 0 else math.nan
    return pd.DataFrame([{
        "period": p.label,
        "months": f"{month_label(months[0])}..{month_label(months[-1])}" if len(months) > 1 else month_label(months[0]),
        "customers": int(end["ending_customers"]), "mrr": float(end["ending_mrr"]), "arpa": arpa,
        "revenue_churn_rate": rate, "gross_margin": gross_margin, "lifetime_months": lifetime(rate),
        "lifetime_capped": bool(rate == 0 or (rate > 0 and 1.0 / rate > ltv_max_months)),
        "ltv": ltv, "ltv_uncapped": ltv_uncapped, "spend": spend,
        "new_customers": n_new, "cac": cac, "new_logos": new_logos, "new_mrr": new_mrr,
        "new_customer_arpa": new_arpa, "cac_payback_months": payback,
        "ltv_to_cac": ltv / cac if cac and not math.isnan(cac) and cac > 0 else math.nan,
        "revenue_churn_rate_12m": rate12, "ltv_12m": lifetime_value(rate12),
        "ltv_12m_to_cac": lifetime_value(rate12) / cac if cac and not math.isnan(cac) and cac > 0 else math.nan,
    }])
