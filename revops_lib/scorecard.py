"""The RevOps scorecard: leading and lagging KPIs of marketing, sales and customer success against targets.

Every KPI key of METRICS.md ("Scorecard") is computed for any period (week,
month, quarter) with its target, percentage of target, prior-period value and
change; breakdowns use ``key:value`` (``leads:organic_search``,
``revenue_won:expansion``). Sales, funnel and retention figures are not
re-implemented here: they come from :mod:`revops_lib.funnel` (MQLs, SQLs, win
rate, sales cycle, open pipeline), :mod:`revops_lib.retention` (new customers,
CAC spend, trailing-12-month retention) and :mod:`revops_lib.forecast`
(coverage).

Conventions (where METRICS.md is silent):

- ``change`` = value − prior value, in the KPI's unit (percentage points for rates).
- A KPI whose source table is absent is left out (see :attr:`Scorecard.notes`);
  a KPI whose denominator is zero is NaN (shown "—"), never zero or infinite.
- Targets are the ``targets`` rows for the period label and the KPI key with
  no ``segment`` (company level). A missing target is blank; a zero target
  gives a blank ``pct_of_target``. When a period has no target of its own but
  every ISO week overlapping it has one (additive KPIs), the period target is
  the sum of the weekly targets weighted by the days of each week in the period.
- ``email_*`` rates use prospect sends (``audience`` = ``prospects`` or missing);
  ``customers_reached`` the customer sends.
- ``ces``: higher is better (CES 2.0: 7 = "very easy").
- Statuses compare the value with the target: for additive KPIs (counts and
  money) with the target pro-rated by the elapsed days of the period (pacing);
  for rates and averages with the full target. ``ratio`` = value / target
  (target / value when lower is better); ``on track`` when ratio ≥
  ``on_track`` (0.95), ``at risk`` when ≥ ``at_risk`` (0.85), else ``off track``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from revops_lib.periods import Period, parse_period, resolve_as_of
from revops_lib.sources import Source, open_source, to_pandas
from revops_lib.text import md

__all__ = ["KPI", "KPIS", "kpi_values", "kpi_history", "scorecard", "pacing", "analyze", "Scorecard", "FOOTNOTES"]


@dataclass(frozen=True)
class KPI:
    key: str
    function: str  # marketing | sales | customer_success | revenue
    indicator: str  # leading | lagging
    unit: str  # count | currency | rate | days | hours | score
    label: str
    tables: tuple[str, ...]
    definition: str
    higher_is_better: bool = True
    additive: bool = False  # sums over time (pro-rated for pacing)
    breakdown: bool = False


def _k(key, function, indicator, unit, label, tables, definition, **kw):
    return KPI(key, function, indicator, unit, label, tuple(tables), definition, **kw)


#: Every KPI, in display order within its function (leading first).
KPIS: list[KPI] = [
    _k("sessions", "marketing", "leading", "count", "Website sessions", ["web_traffic"],
       "Σ web_traffic.sessions in the period (by source: sessions:<source>)", additive=True, breakdown=True),
    _k("leads", "marketing", "leading", "count", "Leads", ["leads"],
       "leads created in the period (by source: leads:<source>)", additive=True, breakdown=True),
    _k("mqls", "marketing", "leading", "count", "MQLs", ["leads"],
       "leads entering MQL in the period (a skipped stage is entered at the next stage reached)", additive=True),
    _k("sqls", "marketing", "leading", "count", "SQLs", ["leads"],
       "leads entering SQL in the period (a skipped stage is entered at the next stage reached)", additive=True),
    _k("landing_conversion_rate", "marketing", "leading", "rate", "Landing-page conversion", ["web_traffic"],
       "Σ conversions / Σ sessions"),
    _k("email_open_rate", "marketing", "leading", "rate", "Email open rate", ["email_campaigns"],
       "Σ opens / Σ delivered of prospect sends"),
    _k("email_click_rate", "marketing", "leading", "rate", "Email click rate", ["email_campaigns"],
       "Σ clicks / Σ delivered of prospect sends"),
    _k("contacts_generated", "marketing", "leading", "count", "Contacts from email", ["email_campaigns"],
       "Σ leads_generated of prospect sends", additive=True),
    _k("cost_per_lead", "marketing", "lagging", "currency", "Cost per lead", ["marketing_spend", "leads"],
       "Σ marketing_spend.spend (all channels) / leads created", higher_is_better=False),
    _k("opportunities_created", "sales", "leading", "count", "Opportunities created", ["opportunities"],
       "opportunities created in the period", additive=True),
    _k("first_meetings", "sales", "leading", "count", "First meetings", ["activities"],
       "activities of type first_meeting in the period", additive=True),
    _k("proposals", "sales", "leading", "count", "Proposals", ["activities"],
       "activities of type proposal in the period", additive=True),
    _k("open_pipeline", "sales", "leading", "currency", "Open pipeline", ["opportunities"],
       "Σ amount of deals created before the period end (or as of) and not closed before it"),
    _k("pipeline_coverage", "sales", "leading", "rate", "Next-period coverage", ["opportunities", "targets"],
       "open pipeline with close date in the next period / target revenue of that period"),
    _k("revenue_won", "sales", "lagging", "currency", "Revenue won", ["opportunities"],
       "Σ amount of opportunities won with close date in the period (by type and product: revenue_won:<value>)",
       additive=True, breakdown=True),
    _k("new_customers", "sales", "lagging", "count", "New customers", ["opportunities"],
       "distinct accounts with a first won new_business opportunity in the period", additive=True),
    _k("avg_revenue_per_new_customer", "sales", "lagging", "currency", "Revenue per new customer", ["opportunities"],
       "new-business revenue won / new customers"),
    _k("win_rate", "sales", "lagging", "rate", "Win rate (count)", ["opportunities"],
       "won / (won + lost), opportunities closed in the period"),
    _k("win_rate_amount", "sales", "lagging", "rate", "Win rate (amount)", ["opportunities"],
       "won amount / closed amount, opportunities closed in the period"),
    _k("sales_cycle_days", "sales", "lagging", "days", "Sales cycle", ["opportunities"],
       "median days from created (UTC date) to close date, opportunities won in the period",
       higher_is_better=False),
    _k("cac", "revenue", "lagging", "currency", "CAC", ["marketing_spend", "opportunities"],
       "Σ marketing_spend.spend (sales costs included as their own channel) / new customers",
       higher_is_better=False),
    _k("customers_reached", "customer_success", "leading", "count", "Customers reached by email", ["email_campaigns"],
       "Σ delivered of customer-audience sends", additive=True),
    _k("new_reviews", "customer_success", "leading", "count", "New reviews", ["reviews"],
       "reviews posted in the period", additive=True),
    _k("review_rating", "customer_success", "leading", "score", "Review rating", ["reviews"],
       "mean rating (1–5) of reviews posted in the period"),
    _k("csat", "customer_success", "lagging", "rate", "CSAT", ["support_tickets"],
       "share of rated tickets created in the period with csat 4–5"),
    _k("ces", "customer_success", "lagging", "score", "CES", ["support_tickets"],
       "mean ces (1–7) of tickets created in the period"),
    _k("first_response_hours", "customer_success", "lagging", "hours", "First response time", ["support_tickets"],
       "median hours from created to first response, tickets created in the period", higher_is_better=False),
    _k("logo_retention_12m", "customer_success", "lagging", "rate", "Logo retention (12 m)", ["subscriptions"],
       "customers with MRR > 0 twelve months before the period's last complete month still paying in it"),
    _k("nrr_12m", "customer_success", "lagging", "rate", "NRR (12 m)", ["subscriptions"],
       "their MRR in the month / their MRR twelve months earlier"),
    _k("grr_12m", "customer_success", "lagging", "rate", "GRR (12 m)", ["subscriptions"],
       "as NRR with each customer capped at its MRR twelve months earlier"),
    _k("expansion_revenue", "customer_success", "lagging", "currency", "Expansion revenue", ["opportunities"],
       "Σ amount of expansion opportunities won in the period", additive=True),
]
KPI_BY_KEY = {k.key: k for k in KPIS}
FUNCTIONS = ("marketing", "sales", "customer_success", "revenue")

FOOTNOTES = [(k.label + f" (`{k.key}`)", k.definition) for k in KPIS] + [
    ("Target, % of target", "targets rows for the period label and KPI key (company level); % of target = value / target; blank without a target or with a zero target."),
    ("Change", "value − prior-period value, in the KPI's unit (percentage points for rates)."),
    ("Pacing", "actual to date vs the target pro-rated by elapsed days; weekly run-rate needed = (target − actual to date) / weeks left."),
]


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def _num(x) -> float:
    if x is None:
        return math.nan
    try:
        f = float(x)
    except (TypeError, ValueError):
        return math.nan
    return f


def _ratio(a, b) -> float:
    a, b = _num(a), _num(b)
    return a / b if b and not math.isnan(b) and not math.isnan(a) else math.nan


def _ts(x: pd.Timestamp):
    return ibis.timestamp(pd.Timestamp(x).to_pydatetime())


def _d(x):
    return ibis.date(pd.Timestamp(x).date())


@dataclass(frozen=True)
class _Window:
    period: Period
    cut: pd.Timestamp  # exclusive cut-off, naive UTC: min(period end, as_of)

    @property
    def start(self) -> pd.Timestamp:
        return self.period.start_naive

    @property
    def cut_date(self):
        return self.cut.date()


def _windows(period: Period, cut: pd.Timestamp, n: int) -> list[_Window]:
    """The last ``n`` periods ending with ``period``; each cut at min(its end, cut)."""
    return [_Window(p, min(p.end_naive, cut)) for p in period.trailing(n)]


def _calendar(wins: Sequence[_Window]):
    return ibis.memtable(pd.DataFrame({
        "label": [w.period.label for w in wins],
        "c_start": [w.start for w in wins],
        "c_stop": [w.cut for w in wins],
        "c_start_d": [w.start.date() for w in wins],
        "c_stop_d": [w.cut.date() for w in wins],
    }))


def _by_period(t, time_col: str, kind: str, wins, aggs: Callable, group: str | None = None) -> pd.DataFrame:
    """Aggregate a table per report window with one range join; returns label, [group], aggregates."""
    cal = _calendar(wins)
    col = t[time_col]
    lo, hi = (cal.c_start, cal.c_stop) if kind == "timestamp" else (cal.c_start_d, cal.c_stop_d)
    first = min(w.start for w in wins)
    last = max(w.cut for w in wins)
    if kind == "timestamp":
        t = t.filter((col >= _ts(first)) & (col < _ts(last)))
    else:
        t = t.filter((col >= _d(first)) & (col < _d(last)))
    j = t.join(cal, (t[time_col] >= lo) & (t[time_col] < hi))
    keys = ["label"] + ([group] if isinstance(group, str) else list(group or []))
    out = to_pandas(j.group_by(keys).aggregate(**aggs(j)))
    return out


def _totals(grouped: pd.DataFrame) -> pd.DataFrame:
    """Per-label sums of a :func:`_by_period` result grouped further (counts and sums only)."""
    values = [c for c in grouped.columns if c != "label" and pd.api.types.is_numeric_dtype(grouped[c])]
    return grouped.groupby("label", as_index=False)[values].sum(min_count=1)


def _series(df: pd.DataFrame, wins, col: str, fill: float | None = 0.0) -> dict[str, float]:
    vals = dict(zip(df["label"], df[col])) if len(df) else {}
    return {w.period.label: _num(vals.get(w.period.label, fill if fill is not None else math.nan))
            for w in wins}


# ---------------------------------------------------------------------------
# KPI values for a list of windows
# ---------------------------------------------------------------------------

def _compute(src: Source, wins: list[_Window], *, breakdowns: bool = True,
             only: set[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Long frame ``kpi, label, value`` for every available KPI and window; notes about absent tables.

    ``only``: compute just these KPI keys (and what they need).
    """
    rows: list[tuple[str, str, float]] = []
    notes: list[str] = []
    labels = [w.period.label for w in wins]

    def put(key: str, series: dict[str, float]):
        for lab in labels:
            rows.append((key, lab, series.get(lab, math.nan)))

    def has(*tables, keys=None) -> bool:
        if only is not None and keys is not None and not (set(keys) & only):
            return False
        missing = [t for t in tables if not src.has(t)]
        return not missing

    skipped: dict[str, list[str]] = {}
    for k in KPIS:
        missing = [t for t in k.tables if not src.has(t)]
        if missing:
            skipped.setdefault(", ".join(missing), []).append(k.key)

    # --- marketing -----------------------------------------------------------
    if has("web_traffic", keys=["sessions", "landing_conversion_rate"]):
        w = src.table("web_traffic")
        # one query by source; the totals are the sums over the sources (a missing source included)
        gs = _by_period(w, "date", "date", wins, lambda j: dict(s=j.sessions.sum(), c=j.conversions.sum()),
                        group="source")
        g = _totals(gs)
        sessions = _series(g, wins, "s")
        put("sessions", sessions)
        put("landing_conversion_rate", {lab: _ratio(_series(g, wins, "c")[lab], sessions[lab]) if sessions[lab] else math.nan
                                        for lab in labels})
        if breakdowns:
            for s in sorted(gs["source"].dropna().unique()):
                put(f"sessions:{s}", _series(gs[gs["source"] == s], wins, "s"))
    leads_n: dict[str, float] = {}
    if has("leads", keys=["leads", "mqls", "sqls", "cost_per_lead"]):
        from revops_lib.funnel import activity_counts_many

        ld = src.table("leads")
        gs = _by_period(ld, "created_at", "timestamp", wins, lambda j: dict(n=j.count()), group="source")
        leads_n = _series(_totals(gs), wins, "n")
        put("leads", leads_n)
        if breakdowns:
            for s in sorted(gs["source"].dropna().unique()):
                put(f"leads:{s}", _series(gs[gs["source"] == s], wins, "n"))
        ac = activity_counts_many(ld, [(win.period, win.cut) for win in wins])
        for key, stage in (("mqls", "mql_at"), ("sqls", "sql_at")):
            got = ac[ac["stage"] == stage]
            put(key, {lab: _num(v) for lab, v in zip(got["period"], got["leads"])})
    if has("email_campaigns", keys=["email_open_rate", "email_click_rate", "contacts_generated", "customers_reached"]):
        e = src.table("email_campaigns")
        prospects = e.audience.isnull() | (e.audience == "prospects")
        e = e.mutate(_p=prospects)
        g = _by_period(e, "sent_date", "date", wins, lambda j: dict(
            d=ibis.ifelse(j._p, j.delivered, 0).sum(), o=ibis.ifelse(j._p, j.opens, 0).sum(),
            c=ibis.ifelse(j._p, j.clicks, 0).sum(), lg=ibis.ifelse(j._p, j.leads_generated.fill_null(0), 0).sum(),
            cd=ibis.ifelse(~j._p, j.delivered, 0).sum()))
        d_, o_, c_ = _series(g, wins, "d"), _series(g, wins, "o"), _series(g, wins, "c")
        put("email_open_rate", {lab: _ratio(o_[lab], d_[lab]) for lab in labels})
        put("email_click_rate", {lab: _ratio(c_[lab], d_[lab]) for lab in labels})
        put("contacts_generated", _series(g, wins, "lg"))
        put("customers_reached", _series(g, wins, "cd"))
    spend: dict[str, float] = {}
    if has("marketing_spend", keys=["cost_per_lead", "cac"]):
        from revops_lib.retention import marketing_spend_many

        got = marketing_spend_many(src.table("marketing_spend"), [(w.period, w.cut) for w in wins])
        spend = {lab: _num(v) for lab, v in got.items()}
        if leads_n:
            put("cost_per_lead", {lab: _ratio(spend[lab], leads_n[lab]) for lab in labels})

    # --- sales -----------------------------------------------------------------
    new_cust: dict[str, float] = {}
    if has("opportunities", keys=["opportunities_created", "revenue_won", "expansion_revenue", "win_rate", "win_rate_amount",
                                  "sales_cycle_days", "open_pipeline", "new_customers", "avg_revenue_per_new_customer",
                                  "cac", "pipeline_coverage"]):
        from revops_lib.funnel import closed_deal_stats_many, open_opportunities_many
        from revops_lib.retention import new_customers_many

        o = src.table("opportunities")
        g = _by_period(o, "created_at", "timestamp", wins, lambda j: dict(n=j.count()))
        put("opportunities_created", _series(g, wins, "n"))
        won = o.filter(o.is_won.fill_null(False))
        gs = _by_period(won, "close_date", "date", wins, lambda j: dict(a=j.amount.sum()), group=["type", "product"])
        g = _totals(gs)
        put("revenue_won", _series(g, wins, "a"))
        nb = _series(_totals(gs[gs["type"] == "new_business"]), wins, "a")
        put("expansion_revenue", _series(_totals(gs[gs["type"] == "expansion"]), wins, "a"))
        if breakdowns:
            for dim in ("type", "product"):
                for v in sorted(gs[dim].dropna().unique()):
                    put(f"revenue_won:{v}", _series(_totals(gs[gs[dim] == v]), wins, "a"))
        wr, wra, cyc, op = {}, {}, {}, {}
        stats = closed_deal_stats_many(o, [(w.period.start_date, w.period.end_date, w.cut) for w in wins])
        opened = open_opportunities_many(o, [w.cut for w in wins])
        newc = new_customers_many(o, [(w.period, w.cut) for w in wins])
        for k, win in enumerate(wins):
            s = stats.iloc[k]
            lab = win.period.label
            wr[lab] = _ratio(s["won"], s["closed"])
            wra[lab] = _ratio(s["won_amount"], s["closed_amount"])
            cyc[lab] = _num(s["sales_cycle_days"])
            op[lab] = _num(opened["amount"].iloc[k])
            new_cust[lab] = float(newc.iloc[k])
        put("win_rate", wr)
        put("win_rate_amount", wra)
        put("sales_cycle_days", cyc)
        put("open_pipeline", op)
        put("new_customers", new_cust)
        put("avg_revenue_per_new_customer", {lab: _ratio(nb[lab], new_cust[lab]) for lab in labels})
        if spend:
            put("cac", {lab: _ratio(spend[lab], new_cust[lab]) for lab in labels})
        if has("targets", keys=["pipeline_coverage"]):
            from revops_lib.forecast import coverage

            cov = {}
            for win in wins[-1:]:  # the report period only: point-in-time pipeline is costly
                c = coverage(src, period=win.period, as_of=win.cut, lookback_periods=1,
                             fiscal_year_start_month=win.period.fiscal_year_start_month)
                nxt = c[c["period"] == win.period.next().label]
                cov[win.period.label] = _num(nxt["coverage"].iloc[0]) if len(nxt) else math.nan
            put("pipeline_coverage", cov)

    if has("activities", keys=["first_meetings", "proposals"]):
        a = src.table("activities")
        g = _by_period(a, "occurred_at", "timestamp", wins, lambda j: dict(
            fm=(j.type == "first_meeting").sum(), pr=(j.type == "proposal").sum()))
        put("first_meetings", _series(g, wins, "fm"))
        put("proposals", _series(g, wins, "pr"))

    # --- customer success --------------------------------------------------------
    if has("reviews", keys=["new_reviews", "review_rating"]):
        r = src.table("reviews")
        g = _by_period(r, "posted_at", "timestamp", wins, lambda j: dict(n=j.count(), m=j.rating.mean()))
        put("new_reviews", _series(g, wins, "n"))
        put("review_rating", _series(g, wins, "m", fill=None))
    if has("support_tickets", keys=["csat", "ces", "first_response_hours"]):
        tk = src.table("support_tickets")
        # responses at or after the window's cut-off are not known yet
        g = _by_period(tk, "created_at", "timestamp", wins, lambda j: dict(
            rated=j.csat.notnull().sum(), sat=(j.csat >= 4).sum(),
            ces=j.ces.mean(),
            frh=ibis.ifelse(j.first_response_at.notnull() & (j.first_response_at < j.c_stop),
                            (j.first_response_at.epoch_seconds() - j.created_at.epoch_seconds()) / 3600.0,
                            ibis.null(dt.float64)).median()))
        rated, sat = _series(g, wins, "rated"), _series(g, wins, "sat")
        put("csat", {lab: _ratio(sat[lab], rated[lab]) for lab in labels})
        put("ces", _series(g, wins, "ces", fill=None))
        put("first_response_hours", _series(g, wins, "frh", fill=None))
    if has("subscriptions", keys=["logo_retention_12m", "nrr_12m", "grr_12m"]):
        from revops_lib.retention import customer_mrr, last_complete_month, trailing_retention

        cm = customer_mrr(src, as_of=wins[-1].cut, cache=True)
        months_needed = 13 + 3 * len(wins)
        tr = trailing_retention(cm, as_of=wins[-1].cut, months=min(months_needed, 120))
        tr = tr.set_index("month")
        lr, nr, gr = {}, {}, {}
        for win in wins:
            m = last_complete_month(as_of=win.cut)
            lab = win.period.label
            row = tr.loc[m] if m is not None and m in tr.index else None
            lr[lab] = _num(row["logo_retention"]) if row is not None else math.nan
            nr[lab] = _num(row["nrr"]) if row is not None else math.nan
            gr[lab] = _num(row["grr"]) if row is not None else math.nan
        put("logo_retention_12m", lr)
        put("nrr_12m", nr)
        put("grr_12m", gr)

    for tables, keys in skipped.items():
        notes.append(f"Left out (table {tables} absent): {', '.join(keys)}.")
    return pd.DataFrame(rows, columns=["kpi", "label", "value"]), notes


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

def _meta(key: str) -> KPI:
    base = key.split(":", 1)[0]
    return KPI_BY_KEY[base]


def _order_key(key: str) -> tuple:
    base, _, sub = key.partition(":")
    k = KPI_BY_KEY[base]
    return (FUNCTIONS.index(k.function), 0 if k.indicator == "leading" else 1, KPIS.index(k), sub)


def kpi_history(source, *, period, as_of=None, periods: int = 12, breakdowns: bool = True) -> pd.DataFrame:
    """Every KPI for the last ``periods`` periods of the report's kind (for sparklines).

    Returns ``kpi, period, value`` (oldest first), the last period cut at ``as_of``.
    """
    src = open_source(source)
    p = parse_period(period)
    cut = resolve_as_of(p, as_of)
    long, _ = _compute(src, _windows(p, cut, periods), breakdowns=breakdowns)
    return long.rename(columns={"label": "period"})


def _targets(src: Source, p: Period) -> dict[str, float]:
    """Company-level targets for the period label; additive KPIs may be summed from weekly targets."""
    if not src.has("targets"):
        return {}
    t = src.table("targets")
    weeks = p.weeks() if p.kind != "week" else []
    labels = [p.label] + [w.label for w in weeks]
    t = t.filter(t.period.isin(labels) & t.segment.isnull())
    df = to_pandas(t.select("period", "metric", "target"))
    own = {m: _num(v) for m, v in zip(df.loc[df.period == p.label, "metric"], df.loc[df.period == p.label, "target"])}
    if weeks:
        wk = df[df.period != p.label]
        for metric, grp in wk.groupby("metric"):
            base = metric.split(":", 1)[0]
            if metric in own or base not in KPI_BY_KEY or not KPI_BY_KEY[base].additive:
                continue
            tmap = dict(zip(grp.period, grp.target))
            if all(w.label in tmap for w in weeks):
                total = 0.0
                for w in weeks:
                    overlap = (min(w.end_naive, p.end_naive) - max(w.start_naive, p.start_naive)).days
                    total += _num(tmap[w.label]) * overlap / 7.0
                own[metric] = total
    return own


def scorecard(source, *, period, as_of=None, breakdowns: bool = True, history: pd.DataFrame | None = None,
              on_track: float = 0.95, at_risk: float = 0.85, only: set[str] | None = None,
              prior: bool = True) -> pd.DataFrame:
    """One row per KPI key (and breakdown) for the period: the published ``kpis`` table and more.

    Returns
    -------
    DataFrame
        ``function, indicator, kpi, period, value, target, pct_of_target, prior_value, change, unit``
        (the published columns), then ``label, higher_is_better, status``. With ``prior=False``
        the previous period is not computed (``prior_value`` and ``change`` are NaN).
    """
    src = open_source(source)
    p = parse_period(period)
    cut = resolve_as_of(p, as_of)
    if history is None:
        long, _ = _compute(src, _windows(p, cut, 2 if prior else 1), breakdowns=breakdowns, only=only)
    else:
        long = history.rename(columns={"period": "label"})
    cur = long[long.label == p.label].set_index("kpi")["value"]
    prev = long[long.label == p.previous().label].set_index("kpi")["value"]
    targets = _targets(src, p)
    pace = _elapsed(p, cut)
    rows = []
    for key in sorted(cur.index, key=_order_key):
        k = _meta(key)
        value = _num(cur.get(key))
        prior = _num(prev.get(key)) if key in prev.index else math.nan
        target = targets.get(key, math.nan)
        pct = _ratio(value, target) if target else math.nan
        rows.append(dict(function=k.function, indicator=k.indicator, kpi=key, period=p.label, value=value,
                         target=target, pct_of_target=pct, prior_value=prior,
                         change=value - prior if not (math.isnan(value) or math.isnan(prior)) else math.nan,
                         unit=k.unit, label=k.label + (f" — {key.split(':', 1)[1]}" if ":" in key else ""),
                         higher_is_better=k.higher_is_better,
                         status=_status(k, value, target, pace, on_track, at_risk)))
    return pd.DataFrame(rows)


def _elapsed(p: Period, cut: pd.Timestamp) -> float:
    total = (p.end_naive - p.start_naive).total_seconds()
    done = (min(max(cut, p.start_naive), p.end_naive) - p.start_naive).total_seconds()
    return done / total if total else 1.0


def _status(k: KPI, value: float, target: float, elapsed: float, on_track: float, at_risk: float) -> str:
    if target is None or math.isnan(target) or target == 0:
        return "no target"
    if math.isnan(value):
        return "no data"
    goal = target * elapsed if k.additive else target
    if k.additive and elapsed == 0:
        return "not started"
    ratio = _ratio(value, goal) if k.higher_is_better else _ratio(goal, value)
    if math.isnan(ratio):
        return "no data"
    if ratio >= on_track:
        return "on track"
    if ratio >= at_risk:
        return "at risk"
    return "off track"


def pacing(source, *, period, as_of=None, on_track: float = 0.95, at_risk: float = 0.85,
           card: pd.DataFrame | None = None) -> pd.DataFrame:
    """Actual to date vs the pro-rated target, and the weekly run-rate still needed, per KPI with a target.

    Returns
    -------
    DataFrame
        ``kpi, label, unit, period, as_of, elapsed_days, total_days, actual_to_date, target,
        prorated_target, pct_of_prorated, weeks_left, weekly_run_rate_needed, status``.
        Additive KPIs (counts, money) are pro-rated by elapsed days; rates and averages compare
        with the full target and have no run-rate.
    """
    src = open_source(source)
    p = parse_period(period)
    cut = resolve_as_of(p, as_of)
    if card is None:
        wanted = {m for m in _targets(src, p) if m in KPI_BY_KEY}
        card = scorecard(src, period=p, as_of=cut, breakdowns=False, on_track=on_track, at_risk=at_risk,
                         only=wanted, prior=False)  # pacing compares with targets only
    frac = _elapsed(p, cut)
    total_days = p.days
    elapsed_days = frac * total_days
    weeks_left = (total_days - elapsed_days) / 7.0
    rows = []
    for r in card[card.target.notna()].itertuples(index=False):
        k = _meta(r.kpi)
        prorated = r.target * frac if k.additive else r.target
        need = ((r.target - r.value) / weeks_left if k.additive and weeks_left > 0 and not math.isnan(r.value)
                else math.nan)
        rows.append(dict(kpi=r.kpi, label=r.label, unit=r.unit, period=p.label, as_of=cut,
                         elapsed_days=round(elapsed_days, 2), total_days=total_days, actual_to_date=r.value,
                         target=r.target, prorated_target=prorated,
                         pct_of_prorated=_ratio(r.value, prorated) if prorated else math.nan,
                         weeks_left=round(weeks_left, 2), weekly_run_rate_needed=max(need, 0.0) if not math.isnan(need) else math.nan,
                         status=_status(k, r.value, r.target, frac, on_track, at_risk)))
    cols = ["kpi", "label", "unit", "period", "as_of", "elapsed_days", "total_days", "actual_to_date", "target",
            "prorated_target", "pct_of_prorated", "weeks_left", "weekly_run_rate_needed", "status"]
    return pd.DataFrame(rows, columns=cols)


PUBLISHED_COLUMNS = ["function", "indicator", "kpi", "period", "value", "target", "pct_of_target",
                     "prior_value", "change", "unit"]


def kpi_values(source, *, period, as_of=None, breakdowns: bool = True) -> pd.DataFrame:
    """The published ``kpis`` table: ``function, indicator, kpi, period, value, target, pct_of_target,
    prior_value, change, unit`` — one row per KPI key (and breakdown) whose tables are present."""
    return scorecard(source, period=period, as_of=as_of, breakdowns=breakdowns)[PUBLISHED_COLUMNS]


# ---------------------------------------------------------------------------
# The revops_scorecard report
# ---------------------------------------------------------------------------

def fmt_value(value, unit: str, currency: str = "USD") -> str:
    """A KPI value for people: money, percent, counts, days, hours; blank when missing."""
    from revops_lib.plots import fmt_int, fmt_money, fmt_pct

    v = _num(value)
    if math.isnan(v):
        return "—"
    if unit == "currency":
        return fmt_money(v, currency)
    if unit == "rate":
        return fmt_pct(v)
    if unit == "count":
        return fmt_int(v)
    if unit == "days":
        return f"{v:,.1f} d"
    if unit == "hours":
        return f"{v:,.1f} h"
    return f"{v:,.2f}"


def fmt_change(change, unit: str, currency: str = "USD") -> str:
    v = _num(change)
    if math.isnan(v):
        return "—"
    if unit == "rate":
        return f"{100 * v:+.1f} pp"
    sign = "+" if v > 0 else ("−" if v < 0 else "±")
    return sign + fmt_value(abs(v), unit, currency).lstrip("-")


FUNCTION_TITLES = {"marketing": "Marketing", "sales": "Sales", "customer_success": "Customer success",
                   "revenue": "Revenue efficiency"}


@dataclass
class Scorecard:
    """Everything the scorecard report shows (see :func:`analyze`)."""

    period: Period
    as_of: pd.Timestamp
    card: pd.DataFrame
    history: pd.DataFrame
    pacing_views: list = field(default_factory=list)  # (title, pacing frame)
    notes: list = field(default_factory=list)
    currency: str = "USD"

    def published(self) -> pd.DataFrame:
        return self.card[PUBLISHED_COLUMNS]

    def attention(self):
        """What needs attention: off-track then at-risk KPIs, with the gap (Markdown)."""

        lines = []
        for status in ("off track", "at risk"):
            rows = self.card[self.card.status == status]
            for r in rows.itertuples(index=False):
                lines.append(f"- **{r.label}** is *{status}*: {fmt_value(r.value, r.unit, self.currency)} "
                             f"vs target {fmt_value(r.target, r.unit, self.currency)}"
                             + (f" ({fmt_value(r.pct_of_target, 'rate')} of target)" if not math.isnan(_num(r.pct_of_target)) else ""))
        for title, pv in self.pacing_views:
            behind = pv[pv.status.isin(["off track", "at risk"]) & pv.weekly_run_rate_needed.notna()]
            for r in behind.itertuples(index=False):
                lines.append(f"- {title}: **{r.label}** needs {fmt_value(r.weekly_run_rate_needed, r.unit, self.currency)} "
                             f"per week for the remaining {r.weeks_left:.1f} weeks to reach "
                             f"{fmt_value(r.target, r.unit, self.currency)}.")
        if not lines:
            with_target = int(self.card.target.notna().sum())
            lines.append(f"- Every KPI with a target ({with_target}) is on track for {self.period}."
                         if with_target else "- No KPI has a target for this period: add rows to `targets`.")
        lines += [f"- {n}" for n in self.notes]
        return md("\n".join(lines))

    def function_table(self, function: str):
        """The KPIs of one function, leading first, formatted for reading, with each KPI's trend
        over the history periods (an inline sparkline; the dot is this period)."""
        from revops_lib.plots import sparkline_svg, style_table

        rows = self.card[self.card.function == function]
        if rows.empty:
            return md("No KPI of this function: its tables are absent.")
        periods = list(dict.fromkeys(self.history["period"]))
        series = {k: g.set_index("period")["value"] for k, g in self.history.groupby("kpi", sort=False)}
        trend_col = f"trend, last {len(periods)} ({periods[0]} to {periods[-1]})" if periods else "trend"

        def trend(key, unit, label):
            vals = series.get(key, pd.Series(dtype=float)).reindex(periods)
            shown = [fmt_value(v, unit, self.currency) for v in vals]
            tip = f"{label}: {shown[0]} in {periods[0]} → {shown[-1]} in {periods[-1]}" if periods else label
            return sparkline_svg(vals.to_numpy(dtype=float), label=tip)

        out = pd.DataFrame({
            "KPI": rows.label, "indicator": rows.indicator,
            "value": [fmt_value(v, u, self.currency) for v, u in zip(rows.value, rows.unit)],
            "target": [fmt_value(v, u, self.currency) for v, u in zip(rows.target, rows.unit)],
            "% of target": [fmt_value(v, "rate") for v in rows.pct_of_target],
            "prior": [fmt_value(v, u, self.currency) for v, u in zip(rows.prior_value, rows.unit)],
            "change": [fmt_change(v, u, self.currency) for v, u in zip(rows.change, rows.unit)],
            trend_col: [trend(k, u, lab) for k, u, lab in zip(rows.kpi, rows.unit, rows.label)],
            "status": rows.status,
        })
        colors = {"on track": "color: #1e6b3a", "at risk": "color: #b07d00; font-weight: bold",
                  "off track": "color: #a1281b; font-weight: bold"}
        return (style_table(out, html=[trend_col]).map(lambda s: colors.get(s, "color: #777"), subset=["status"])
                .set_properties(subset=[trend_col], **{"padding": "0 6px", "line-height": "0"}))

    def pacing_table(self, index: int = 0):
        """Pacing toward a period target (actual to date, pro-rated target, run-rate needed)."""
        from revops_lib.plots import style_table

        if index >= len(self.pacing_views):
            return md("No pacing view for this period.")
        title, pv = self.pacing_views[index]
        if pv.empty:
            return md(f"{title}: no KPI has a target.")
        out = pd.DataFrame({
            "KPI": pv.label,
            "actual to date": [fmt_value(v, u, self.currency) for v, u in zip(pv.actual_to_date, pv.unit)],
            "pro-rated target": [fmt_value(v, u, self.currency) for v, u in zip(pv.prorated_target, pv.unit)],
            "period target": [fmt_value(v, u, self.currency) for v, u in zip(pv.target, pv.unit)],
            "needed per week": [fmt_value(v, u, self.currency) for v, u in zip(pv.weekly_run_rate_needed, pv.unit)],
            "status": pv.status,
        })
        return style_table(out)

    def pacing_title(self, index: int = 0):
        if index >= len(self.pacing_views):
            return md("")
        title, pv = self.pacing_views[index]
        days = f"{pv.elapsed_days.iloc[0]:.0f} of {pv.total_days.iloc[0]} days elapsed" if len(pv) else ""
        return md(f"**{title}** — {days}")

    def record_headlines(self) -> None:
        from revops_lib.report import headline

        c = self.card.set_index("kpi")
        for key, label in (("revenue_won", "Revenue won"), ("new_customers", "New customers"), ("leads", "Leads")):
            if key in c.index:
                headline(label, fmt_value(c.loc[key, "value"], c.loc[key, "unit"], self.currency))
        off = int((self.card.status == "off track").sum())
        headline("Off track", off)


def analyze(source, *, period, as_of=None, currency: str = "USD", history_periods: int = 12,
            on_track: float = 0.95, at_risk: float = 0.85) -> Scorecard:
    """Compute the scorecard report: KPIs, 12-period history, pacing views (cadence-aware).

    Weekly runs add the pacing of the month containing the week; monthly runs the
    quarter to date; quarterly runs the quarter itself.
    """
    from revops_lib.periods import period_of

    src = open_source(source)
    p = parse_period(period)
    cut = resolve_as_of(p, as_of)
    long, notes = _compute(src, _windows(p, cut, history_periods))
    card = scorecard(src, period=p, as_of=cut, history=long.rename(columns={"label": "period"}),
                     on_track=on_track, at_risk=at_risk)
    views = []
    last_instant = min(cut, p.end_naive) - pd.Timedelta(microseconds=1)
    if p.kind == "week":
        month = period_of(last_instant, "month")
        views.append((f"Month {month} to date", pacing(src, period=month, as_of=min(cut, p.end_naive),
                                                        on_track=on_track, at_risk=at_risk)))
    elif p.kind == "month":
        views.append((f"Month {p}", pacing(src, period=p, as_of=cut, card=card, on_track=on_track, at_risk=at_risk)))
        q = period_of(last_instant, "quarter", fiscal_year_start_month=p.fiscal_year_start_month)
        views.append((f"Quarter {q} to date", pacing(src, period=q, as_of=min(cut, p.end_naive),
                                                      on_track=on_track, at_risk=at_risk)))
    else:
        views.append((f"Quarter {p}", pacing(src, period=p, as_of=cut, card=card, on_track=on_track, at_risk=at_risk)))
    hist = long.rename(columns={"label": "period"})
    return Scorecard(period=p, as_of=cut, card=card, history=hist, pacing_views=views, notes=notes,
                     currency=currency)
