"""The RevOps scorecard: leading and lagging KPIs of marketing, sales and customer success against targets.

Every KPI key of METRICS.md ("Scorecard") is computed for any period (week,
month, quarter) with its target, percentage of target, prior-period value and
change; breakdowns use ``key:value`` (``leads:organic_search``,
``revenue_won:expansion``). Sales, funnel and retention figures are not
re-implemented here: they come from :mod:`~revops_lib.metrics.lead_funnel` (MQLs, SQLs),
:mod:`~revops_lib.metrics.deals` (win rate, sales cycle), :mod:`~revops_lib.metrics.economics` (new
customers, CAC spend), :mod:`~revops_lib.metrics.mrr` (trailing-12-month retention) and
:mod:`~revops_lib.metrics.pipeline` (open pipeline, coverage).

Conventions (where METRICS.md is silent):

- ``change`` = value − prior value, in the KPI's unit (percentage points for rates).
- ``last_year_value``, ``ytd_value``, ``ytd_target``: the same period last year and the year to date, computed
  by the same query as the period's values (see :func:`scorecard`).
- A KPI whose source table is absent is left out (see :attr:`Scorecard.notes`);
  a KPI whose denominator is zero is NaN (shown "—"), never zero or infinite.
- Targets come from :mod:`revops_lib.metrics.targets` (the company's row for the period label;
  for additive KPIs, else the sum of its segment rows or of its weeks). A missing target is blank; a
  zero or negative target gives a blank ``pct_of_target``.
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
from dataclasses import dataclass
from typing import Callable, Sequence

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from revops_lib.metrics.common import ratio
from revops_lib.metrics.deals import closed_deal_stats_many, open_opportunities_many
from revops_lib.metrics.economics import marketing_spend_many, new_customers_many
from revops_lib.metrics.kpis import FUNCTIONS, KPI, KPI_BY_KEY, KPIS, is_additive, kpi
from revops_lib.metrics.lead_funnel import activity_counts_many
from revops_lib.metrics.mrr import customer_mrr, last_complete_month, trailing_retention
from revops_lib.metrics.pipeline import coverage
from revops_lib.metrics.targets import targets, targets_many
from revops_lib.periods import (
    Period,
    Span,
    parse_period,
    periods_to_date,
    resolve_as_of,
    same_period_last_year,
    year_to_date,
)
from revops_lib.sources import Source, open_source, to_pandas


def _num(x) -> float:
    if x is None:
        return math.nan
    try:
        f = float(x)
    except (TypeError, ValueError):
        return math.nan
    return f


def _ts(x: pd.Timestamp):
    return ibis.timestamp(pd.Timestamp(x).to_pydatetime())


def _d(x):
    return ibis.date(pd.Timestamp(x).date())


@dataclass(frozen=True)
class _Window:
    period: Period | Span  # a reporting period, or a span (the same period last year at the same age, the YTD)
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


def comparison_windows(period: Period, cut: pd.Timestamp) -> tuple[_Window, _Window]:
    """The same period last year at the same age, and the year to date (METRICS.md, "Same period last year").

    Last year: :func:`~revops_lib.periods.same_period_last_year` (12 months, 4 quarters or 52 ISO weeks back),
    cut as far into it as ``cut`` is into ``period`` (a period in progress compares with the same days of
    last year's); labelled ``<label> last year``. Year to date: :func:`~revops_lib.periods.year_to_date`, cut
    at ``min(period end, cut)``; labelled ``<label> YTD``.
    """
    ly = same_period_last_year(period)
    age = min(cut, period.end_naive) - period.start_naive
    ly_span = Span(f"{period.label} last year", ly.start, ly.end, ly.fiscal_year_start_month)
    return (_Window(ly_span, min(ly.end_naive, ly.start_naive + max(age, pd.Timedelta(0)))),
            _Window(year_to_date(period), min(period.end_naive, cut)))


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


def _compute(src: Source, wins: list[_Window], *, breakdowns: bool = True,
             only: set[str] | None = None, deals=None) -> tuple[pd.DataFrame, list[str]]:
    """Long frame ``kpi, label, value, n, by, se`` for every available KPI and window; notes about absent tables.

    ``n``: the KPI's sample size where it has one — the items a rate is a share of (sessions, emails delivered,
    deals closed, rated tickets, the retention base's customers) or an average or median is taken over (new
    customers, deals won, reviews, tickets with a CES or a first response) — else NaN. ``by``: the column a
    breakdown splits its KPI by (``source``, ``type``, ``product``; empty for a KPI as a whole). A KPI's
    breakdowns come in that order, each dimension's values sorted. ``se``: the standard error of a sum of deal
    amounts (revenue won, expansion revenue), √Σ amount² — the total's spread if deals close as a Poisson stream
    with these amounts (a compound Poisson total) — and of what is made of such sums and counts: the win rate by
    amount (:func:`_ratio_se`), revenue per new customer (√Σ new-business amount² / new customers), cost per lead
    and CAC (:func:`_per_count_se`); else NaN.

    ``only``: compute just these KPI keys (and what they need). ``deals``: a prepared
    :class:`~revops_lib.metrics.deal_history.DealHistory` of ``src`` for pipeline coverage (else built here).
    """
    rows: list[tuple[str, str, float, float, str, float]] = []
    notes: list[str] = []
    labels = [w.period.label for w in wins]

    def put(key: str, series: dict[str, float], n: dict[str, float] | None = None, by: str = "",
            se: dict[str, float] | None = None):
        for lab in labels:
            rows.append((key, lab, series.get(lab, math.nan), math.nan if n is None else n.get(lab, math.nan), by,
                         math.nan if se is None else se.get(lab, math.nan)))

    def has(*tables, keys=None) -> bool:
        if only is not None and keys is not None and not (set(keys) & only):
            return False
        missing = [t for t in tables if not src.has(t)]
        return not missing

    skipped: dict[str, list[str]] = {}
    for k in KPIS:
        missing = [t for t in k.tables if not src.has(t)]
        if missing:
            skipped.setdefault(" and ".join(f"`{t}`" for t in missing), []).append(k.label)

    # --- marketing -----------------------------------------------------------
    if has("web_traffic", keys=["sessions", "landing_conversion_rate"]):
        w = src.table("web_traffic")
        # one query by source; the totals are the sums over the sources (a missing source included)
        gs = _by_period(w, "date", "date", wins, lambda j: dict(s=j.sessions.sum(), c=j.conversions.sum()),
                        group="source")
        g = _totals(gs)
        sessions = _series(g, wins, "s")
        put("sessions", sessions)
        put("landing_conversion_rate", {lab: ratio(_series(g, wins, "c")[lab], sessions[lab]) if sessions[lab]
                                        else math.nan for lab in labels}, n=sessions)
        if breakdowns:
            for s in sorted(gs["source"].dropna().unique()):
                put(f"sessions:{s}", _series(gs[gs["source"] == s], wins, "s"), by="source")
    leads_n: dict[str, float] = {}
    if has("leads", keys=["leads", "mqls", "sqls", "cost_per_lead"]):

        ld = src.table("leads")
        gs = _by_period(ld, "created_at", "timestamp", wins, lambda j: dict(n=j.count()), group="source")
        leads_n = _series(_totals(gs), wins, "n")
        put("leads", leads_n)
        if breakdowns:
            for s in sorted(gs["source"].dropna().unique()):
                put(f"leads:{s}", _series(gs[gs["source"] == s], wins, "n"), by="source")
        ac = activity_counts_many(ld, [(win.period, win.cut) for win in wins], count=["mql_at", "sql_at"])
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
        put("email_open_rate", {lab: ratio(o_[lab], d_[lab]) for lab in labels}, n=d_)
        put("email_click_rate", {lab: ratio(c_[lab], d_[lab]) for lab in labels}, n=d_)
        put("contacts_generated", _series(g, wins, "lg"))
        put("customers_reached", _series(g, wins, "cd"))
    spend: dict[str, float] = {}
    if has("marketing_spend", keys=["cost_per_lead", "cac"]):

        got = marketing_spend_many(src.table("marketing_spend"), [(w.period, w.cut) for w in wins])
        spend = {lab: _num(v) for lab, v in got.items()}
        if leads_n:
            cpl = {lab: ratio(spend[lab], leads_n[lab]) for lab in labels}
            put("cost_per_lead", cpl, n=leads_n, se=_per_count_se(cpl, leads_n))

    # --- sales -----------------------------------------------------------------
    new_cust: dict[str, float] = {}
    if has("opportunities", keys=["opportunities_created", "revenue_won", "expansion_revenue", "win_rate",
                                  "win_rate_amount", "sales_cycle_days", "open_pipeline", "new_customers",
                                  "avg_revenue_per_new_customer", "cac", "pipeline_coverage"]):

        o = src.table("opportunities")
        g = _by_period(o, "created_at", "timestamp", wins, lambda j: dict(n=j.count()))
        put("opportunities_created", _series(g, wins, "n"))
        won = o.filter(o.is_won.fill_null(False))
        gs = _by_period(won, "close_date", "date", wins,
                        lambda j: dict(a=j.amount.sum(), a2=(j.amount * j.amount).sum()), group=["type", "product"])

        def root_sq(g):  # √Σ amount² of each window (0 for a window without deals)
            return {lab: math.sqrt(v) for lab, v in _series(g, wins, "a2").items()}

        g = _totals(gs)
        put("revenue_won", _series(g, wins, "a"), se=root_sq(g))
        nb_g = _totals(gs[gs["type"] == "new_business"])
        nb, nb_se = _series(nb_g, wins, "a"), root_sq(nb_g)
        g = _totals(gs[gs["type"] == "expansion"])
        put("expansion_revenue", _series(g, wins, "a"), se=root_sq(g))
        if breakdowns:
            for dim in ("type", "product"):
                for v in sorted(gs[dim].dropna().unique()):
                    put(f"revenue_won:{v}", _series(_totals(gs[gs[dim] == v]), wins, "a"), by=dim)
        wr, wra, cyc, op, closed, won_n, wra_se = {}, {}, {}, {}, {}, {}, {}
        stats = closed_deal_stats_many(o, [(w.period.start_date, w.period.end_date, w.cut) for w in wins],
                                       squares=True)
        opened = open_opportunities_many(o, [w.cut for w in wins])
        newc = new_customers_many(o, [(w.period, w.cut) for w in wins])
        for k, win in enumerate(wins):
            s = stats.iloc[k]
            lab = win.period.label
            wr[lab] = ratio(s["won"], s["closed"])
            wra[lab] = ratio(s["won_amount"], s["closed_amount"])
            cyc[lab] = _num(s["sales_cycle_days"])
            closed[lab], won_n[lab] = _num(s["closed"]), _num(s["won"])
            wra_se[lab] = _ratio_se(s["won_amount"], s["closed_amount"] - s["won_amount"], s["won_amount_sq"],
                                    s["lost_amount_sq"])
            op[lab] = _num(opened["amount"].iloc[k])
            new_cust[lab] = float(newc.iloc[k])
        put("win_rate", wr, n=closed)
        put("win_rate_amount", wra, n=closed, se=wra_se)
        put("sales_cycle_days", cyc, n=won_n)
        put("open_pipeline", op)
        put("new_customers", new_cust)
        put("avg_revenue_per_new_customer", {lab: ratio(nb[lab], new_cust[lab]) for lab in labels}, n=new_cust,
            se={lab: ratio(nb_se[lab], new_cust[lab]) for lab in labels})
        if spend:
            cac = {lab: ratio(spend[lab], new_cust[lab]) for lab in labels}
            put("cac", cac, n=new_cust, se=_per_count_se(cac, new_cust))
        if has("targets", keys=["pipeline_coverage"]):

            cov = {}
            win = wins[-1]  # the report period only: point-in-time pipeline is costly
            c = coverage(src if deals is None else deals, period=win.period, as_of=win.cut, lookback_periods=1,
                         fiscal_year_start_month=win.period.fiscal_year_start_month)
            nxt = c[c["period"] == win.period.next().label]
            cov[win.period.label] = _num(nxt["coverage"].iloc[0]) if len(nxt) else math.nan
            # ... and the prior period's value from the same call: what this KPI read at the prior period's end
            # (the report period's own coverage, measured at its start)
            before = wins[-2] if len(wins) >= 2 else None
            if (before is not None and before.period == win.period.previous()
                    and before.cut == before.period.end_naive):
                own = c[(c["period"] == win.period.label) & (c["measured_at"] == win.period.start_naive)]
                cov[before.period.label] = _num(own["coverage"].iloc[0]) if len(own) else math.nan
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
        reviews = _series(g, wins, "n")
        put("new_reviews", reviews)
        put("review_rating", _series(g, wins, "m", fill=None), n=reviews)
    if has("support_tickets", keys=["csat", "ces", "first_response_hours"]):
        tk = src.table("support_tickets")

        def tickets(j):
            responded = j.first_response_at.notnull() & (j.first_response_at < j.c_stop)  # later: not known yet
            hours = (j.first_response_at.epoch_seconds() - j.created_at.epoch_seconds()) / 3600.0
            return dict(rated=j.csat.notnull().sum(), sat=(j.csat >= 4).sum(), ces=j.ces.mean(),
                        ces_n=j.ces.notnull().sum(), frh=ibis.ifelse(responded, hours, ibis.null(dt.float64)).median(),
                        frh_n=responded.sum())

        g = _by_period(tk, "created_at", "timestamp", wins, tickets)
        rated, sat = _series(g, wins, "rated"), _series(g, wins, "sat")
        put("csat", {lab: ratio(sat[lab], rated[lab]) for lab in labels}, n=rated)
        put("ces", _series(g, wins, "ces", fill=None), n=_series(g, wins, "ces_n"))
        put("first_response_hours", _series(g, wins, "frh", fill=None), n=_series(g, wins, "frh_n"))
    if has("subscriptions", keys=["logo_retention_12m", "nrr_12m", "grr_12m"]):

        cm = customer_mrr(src, as_of=wins[-1].cut, cache=True)
        months_needed = 13 + 3 * len(wins)
        tr = trailing_retention(cm, as_of=wins[-1].cut, months=min(months_needed, 120))
        tr = tr.set_index("month")
        lr, nr, gr, base = {}, {}, {}, {}
        for win in wins:
            m = last_complete_month(as_of=win.cut)
            lab = win.period.label
            row = tr.loc[m] if m is not None and m in tr.index else None
            lr[lab] = _num(row["logo_retention"]) if row is not None else math.nan
            nr[lab] = _num(row["nrr"]) if row is not None else math.nan
            gr[lab] = _num(row["grr"]) if row is not None else math.nan
            base[lab] = _num(row["base_customers"]) if row is not None else math.nan
        put("logo_retention_12m", lr, n=base)
        put("nrr_12m", nr, n=base)
        put("grr_12m", gr, n=base)

    for tables, keys in skipped.items():
        many = " and " in tables
        notes.append(f"Left out for lack of table{'s' if many else ''} {tables}: {', '.join(keys)}.")
    return pd.DataFrame(rows, columns=["kpi", "label", "value", "n", "by", "se"]), notes


def _ratio_se(won: float, lost: float, won_sq: float, lost_sq: float) -> float:
    """Standard error of won / (won + lost), two sums of amounts each a compound Poisson total (variance Σ
    amount²), by the delta method: √(lost² Σwon² + won² Σlost²) / (won + lost)²; NaN when nothing closed.

    >>> round(_ratio_se(100.0, 100.0, 100.0 ** 2, 100.0 ** 2), 4)  # one deal won and one lost, alike: ±35 points
    0.3536
    >>> round(_ratio_se(0.5, 0.25, 0.5 ** 2, 0.25 ** 2), 4), _ratio_se(0.0, 0.0, 0.0, 0.0)  # cents; nothing closed
    (0.3143, nan)
    """
    total = float(won) + float(lost)
    if not total > 0:
        return math.nan
    return math.sqrt(float(lost) ** 2 * float(won_sq) + float(won) ** 2 * float(lost_sq)) / total ** 2


def _per_count_se(values: dict[str, float], counts: dict[str, float]) -> dict[str, float]:
    """Standard error of an amount per counted item (cost per lead, CAC) from the count's Poisson noise alone,
    the amount taken as fixed: value / √count (delta method); NaN without items."""
    return {lab: v / math.sqrt(counts[lab]) if counts[lab] > 0 else math.nan for lab, v in values.items()}


def _order_key(key: str) -> tuple:
    """Function, then the KPI list's order (leading first within a function); a KPI before its breakdowns."""
    k = kpi(key)
    return (FUNCTIONS.index(k.function), KPIS.index(k), ":" in key)


def kpi_history(source, *, period, as_of=None, periods: int = 12, breakdowns: bool = True,
                comparisons: bool = False, also: Sequence[tuple] = (), deals=None) -> pd.DataFrame:
    """Every KPI for the last ``periods`` periods of the report's kind (for sparklines).

    Returns ``kpi, period, value, n, by, se`` (oldest first; ``n``: the sample size of a rate or an average, ``by``:
    the column a breakdown splits by, ``se``: the standard error of a value made of deal amounts or counts, see
    :func:`_compute`), the last period cut at ``as_of``; ``attrs["notes"]`` says which KPIs were left out
    because their tables are absent. With ``comparisons`` the same query also computes the same period last year and
    the year to date (:func:`comparison_windows`): their rows come first, labelled ``attrs["last_year"]`` and
    ``attrs["ytd"]`` (``attrs["periods"]``: the history's labels). ``also``: more ``(period, as_of)`` windows
    computed in the same query (a pacing view's period to date, e.g. the quarter of a month report), labelled by
    their period; every KPI of a window is computed as it would be alone, except pipeline coverage, which only the
    report period and the one before it get (from one point-in-time query: the report period's coverage at its start
    is what the KPI read at the prior period's end). ``deals``: a prepared
    :class:`~revops_lib.metrics.deal_history.DealHistory` of the source that pipeline coverage reads (shared with
    the caller's other point-in-time queries).
    """
    src = open_source(source)
    p = parse_period(period)
    cut = resolve_as_of(p, as_of)
    wins = _windows(p, cut, periods)
    extra = list(comparison_windows(p, cut)) if comparisons else []
    more = []
    for q, q_as_of in also:
        q = parse_period(q) if not isinstance(q, Period) else q
        more.append(_Window(q, min(q.end_naive, resolve_as_of(q, q_as_of))))
    long, notes = _compute(src, more + extra + wins, breakdowns=breakdowns, deals=deals)  # report period last
    out = long.rename(columns={"label": "period"})
    out.attrs["notes"] = notes
    out.attrs["periods"] = [w.period.label for w in wins]
    if extra:
        out.attrs.update(last_year=extra[0].period.label, ytd=extra[1].period.label)
    return out


def scorecard(source, *, period, as_of=None, breakdowns: bool = True, history: pd.DataFrame | None = None,
              on_track: float = 0.95, at_risk: float = 0.85, only: set[str] | None = None,
              prior: bool = True, comparisons: bool = True) -> pd.DataFrame:
    """One row per KPI key (and breakdown) for the period: the published ``kpis`` table and more.

    Returns
    -------
    DataFrame
        ``function, indicator, kpi, period, value, target, pct_of_target, prior_value, change, unit,
        last_year_value, ytd_value, ytd_target`` (the published columns), then ``label, higher_is_better,
        status, share_of_goal`` (what the status judges: the share of its goal, pro-rated for additive KPIs,
        reached; 1 = met, lower = worse, also where lower is better), ``by`` (the column a breakdown splits its
        KPI by: ``source``, ``type`` or ``product``; empty for a KPI as a whole), ``n, prior_n`` (the sample size
        of a rate or an average in the period and the prior one: the items it is a share of or taken over) and
        ``se, prior_se`` (the standard error of a value made of deal amounts or counts), NaN where a KPI has
        none, read by :func:`big_moves` (see :func:`_compute`). Rows in the order of :data:`KPIS`, a
        KPI's breakdowns after it, by dimension, each dimension's values sorted. With ``prior=False`` the
        previous period is not computed (``prior_value`` and ``change`` are NaN); with ``comparisons=False``
        neither are last year and the year to date. A ``history`` (from :func:`kpi_history`) gives the values
        instead of a query; its ``comparisons`` rows, when it has them, the last-year and YTD values.

    Notes
    -----
    - ``last_year_value``: the KPI over the same period last year, at the same age (:func:`comparison_windows`).
    - ``ytd_value``: the KPI over the year to date — additive KPIs are the sum over it, rates and averages are
      recomputed from its numerators and denominators (the KPI's own definition over the longer window).
      Blank for stocks measured at one instant (open pipeline, coverage, trailing-12-month retention):
      their year to date is their value.
    - ``ytd_target``: from the targets of the year's periods of the report's kind up to this one
      (:func:`~revops_lib.periods.periods_to_date`), the current period's pro-rated by its elapsed days: for
      an additive KPI their sum (blank unless every one has a target); for a rate or an average their mean
      weighted by their (elapsed) days, over those that have one — the year's target of a rate.
    """
    src = open_source(source)
    p = parse_period(period)
    cut = resolve_as_of(p, as_of)
    ly_lab = ytd_lab = None
    if history is None:
        extra = list(comparison_windows(p, cut)) if comparisons else []
        long, _ = _compute(src, extra + _windows(p, cut, 2 if prior else 1), breakdowns=breakdowns, only=only)
        if extra:
            ly_lab, ytd_lab = extra[0].period.label, extra[1].period.label
    else:
        long = history.rename(columns={"period": "label"})
        ly_lab, ytd_lab = history.attrs.get("last_year"), history.attrs.get("ytd")
    if "n" not in long:  # a history made by hand
        long = long.assign(n=math.nan)
    if "by" not in long:
        long = long.assign(by="")
    if "se" not in long:
        long = long.assign(se=math.nan)
    dims = dict(zip(long["kpi"], long["by"]))
    now, before = (long[long.label == lab].set_index("kpi") for lab in (p.label, p.previous().label))
    cur, prev = now["value"], before["value"]
    ly = long[long.label == ly_lab].set_index("kpi")["value"] if ly_lab else pd.Series(dtype="float64")
    ytd = long[long.label == ytd_lab].set_index("kpi")["value"] if ytd_lab else pd.Series(dtype="float64")
    to_date = periods_to_date(p)
    goals_by = targets_many(src, to_date)
    goals = goals_by[p.label]
    pace = _elapsed(p, cut)
    rows = []
    for key in sorted(cur.index, key=_order_key):
        k = kpi(key)
        value = _num(cur.get(key))
        prior = _num(prev.get(key)) if key in prev.index else math.nan
        target = goals.get(key, math.nan)
        pct = ratio(value, target) if target else math.nan
        rows.append(dict(function=k.function, indicator=k.indicator, kpi=key, period=p.label, value=value,
                         target=target, pct_of_target=pct, prior_value=prior,
                         change=value - prior if not (math.isnan(value) or math.isnan(prior)) else math.nan,
                         unit=k.unit, last_year_value=_num(ly.get(key)) if key in ly.index else math.nan,
                         ytd_value=_num(ytd.get(key)) if key in ytd.index and k.ytd else math.nan,
                         ytd_target=(ytd_target(key, to_date, goals_by, pace) if ytd_lab and k.ytd else math.nan),
                         label=k.label + (f" by {dims[key]}" if dims[key] else "")
                         + (f" — {key.split(':', 1)[1]}" if ":" in key else ""),
                         higher_is_better=k.higher_is_better,
                         status=_status(k, value, target, pace, on_track, at_risk),
                         share_of_goal=_share(k, value, target, pace), by=dims[key],
                         **{f"{when}{c}": _num(f[c].get(key)) if key in f.index else math.nan
                            for c in ("n", "se") for when, f in (("", now), ("prior_", before))}))
    return pd.DataFrame(rows)


def ytd_target(key: str, to_date: Sequence[Period], goals: dict, elapsed: float) -> float:
    """The year-to-date target of a KPI (see :func:`scorecard`'s notes) from ``goals`` = ``{period label:
    {kpi: target}}`` of the periods ``to_date`` (the last one pro-rated by ``elapsed``, a fraction).

    >>> months = [parse_period(m) for m in ("2026-01", "2026-02", "2026-03")]
    >>> goals = {"2026-01": {"leads": 10.0, "win_rate": 0.4}, "2026-02": {"leads": 20.0, "win_rate": 0.5},
    ...          "2026-03": {"leads": 30.0}}
    >>> ytd_target("leads", months, goals, 0.5), round(ytd_target("win_rate", months, goals, 1.0), 4)  # 31 and 28 days
    (45.0, 0.4475)
    """
    weights = [float(q.days) for q in to_date]
    weights[-1] *= elapsed
    vals = [goals.get(q.label, {}).get(key, math.nan) for q in to_date]
    if is_additive(key):
        if any(math.isnan(v) for v in vals):
            return math.nan
        return float(sum(vals[:-1]) + vals[-1] * elapsed)
    have = [(v, w) for v, w in zip(vals, weights) if not math.isnan(v) and w > 0]
    if not have:
        return math.nan
    return float(sum(v * w for v, w in have) / sum(w for _, w in have))


def _elapsed(p: Period, cut: pd.Timestamp) -> float:
    total = (p.end_naive - p.start_naive).total_seconds()
    done = (min(max(cut, p.start_naive), p.end_naive) - p.start_naive).total_seconds()
    return done / total if total else 1.0


def _share(k: KPI, value: float, target: float, elapsed: float) -> float:
    """The share of its goal a KPI reached, 1 when met and lower when worse: value / goal, or goal / value where
    lower is better; an additive KPI's goal is its target pro-rated by the elapsed share of the period. NaN
    without a target, a value or (additive) elapsed time."""
    if target is None or math.isnan(target) or target == 0 or math.isnan(value) or (k.additive and elapsed == 0):
        return math.nan
    goal = target * elapsed if k.additive else target
    return ratio(value, goal) if k.higher_is_better else ratio(goal, value)


def _status(k: KPI, value: float, target: float, elapsed: float, on_track: float, at_risk: float) -> str:
    if target is None or math.isnan(target) or target == 0:
        return "no target"
    if math.isnan(value):
        return "no data"
    if k.additive and elapsed == 0:
        return "not started"
    share = _share(k, value, target, elapsed)
    if math.isnan(share):
        return "no data"
    if share >= on_track:
        return "on track"
    if share >= at_risk:
        return "at risk"
    return "off track"


def pacing(source, *, period, as_of=None, on_track: float = 0.95, at_risk: float = 0.85,
           card: pd.DataFrame | None = None) -> pd.DataFrame:
    """Actual to date vs the pro-rated target, and the weekly run-rate still needed, per KPI with a target.

    Returns
    -------
    DataFrame
        ``kpi, label, unit, period, as_of, elapsed_days, total_days, actual_to_date, target,
        prorated_target, pct_of_prorated, weeks_left, still_needed, weekly_run_rate_needed, status``.
        Additive KPIs (counts, money) are pro-rated by elapsed days; ``still_needed`` = target − actual to
        date (0 once reached) and the run-rate = that / weeks left, while the period runs. Rates and
        averages compare with the full target and have neither.
    """
    src = open_source(source)
    p = parse_period(period)
    cut = resolve_as_of(p, as_of)
    if card is None:
        wanted = {m for m in targets(src, p) if m in KPI_BY_KEY}
        card = scorecard(src, period=p, as_of=cut, breakdowns=False, on_track=on_track, at_risk=at_risk,
                         only=wanted, prior=False, comparisons=False)  # pacing compares with targets only
    frac = _elapsed(p, cut)
    total_days = p.days
    elapsed_days = frac * total_days
    weeks_left = (total_days - elapsed_days) / 7.0
    rows = []
    with_target = card[card.target.notna()] if "target" in card.columns else card.iloc[0:0]  # none wanted: no columns
    for r in with_target.itertuples(index=False):
        k = kpi(r.kpi)
        prorated = r.target * frac if k.additive else r.target
        gap = (max(r.target - r.value, 0.0) if k.additive and weeks_left > 0 and not math.isnan(r.value)
               else math.nan)
        rows.append(dict(kpi=r.kpi, label=r.label, unit=r.unit, period=p.label, as_of=cut,
                         elapsed_days=round(elapsed_days, 2), total_days=total_days, actual_to_date=r.value,
                         target=r.target, prorated_target=prorated,
                         pct_of_prorated=ratio(r.value, prorated) if prorated else math.nan,
                         weeks_left=round(weeks_left, 2), still_needed=gap,
                         weekly_run_rate_needed=gap / weeks_left if not math.isnan(gap) else math.nan,
                         status=_status(k, r.value, r.target, frac, on_track, at_risk)))
    cols = ["kpi", "label", "unit", "period", "as_of", "elapsed_days", "total_days", "actual_to_date", "target",
            "prorated_target", "pct_of_prorated", "weeks_left", "still_needed", "weekly_run_rate_needed", "status"]
    return pd.DataFrame(rows, columns=cols)


def pacing_from_history(source, history: pd.DataFrame, *, period, as_of=None, on_track: float = 0.95,
                        at_risk: float = 0.85) -> pd.DataFrame:
    """:func:`pacing` of ``period`` from the rows a :func:`kpi_history` computed for it (its ``also``), without
    another query of the KPIs: the same table as ``pacing(source, period=period, as_of=as_of)``. Falls back to
    that call when the history has no row of the period or a target asks for pipeline coverage (which
    :func:`kpi_history` computes for the report period only)."""
    src = open_source(source)
    p = parse_period(period) if not isinstance(period, Period) else period
    cut = resolve_as_of(p, as_of)
    wanted = {m for m in targets(src, p) if m in KPI_BY_KEY}
    rows = history[(history["period"] == p.label) & history["kpi"].isin(wanted)]
    if "pipeline_coverage" in wanted or not len(rows):
        return pacing(src, period=p, as_of=cut, on_track=on_track, at_risk=at_risk)
    rows = rows.copy()
    rows.attrs = {}  # no last year or YTD: pacing compares with targets only
    card = scorecard(src, period=p, as_of=cut, history=rows, on_track=on_track, at_risk=at_risk,
                     prior=False, comparisons=False)
    return pacing(src, period=p, as_of=cut, card=card, on_track=on_track, at_risk=at_risk)


PUBLISHED_COLUMNS = ["function", "indicator", "kpi", "period", "value", "target", "pct_of_target",
                     "prior_value", "change", "unit", "last_year_value", "ytd_value", "ytd_target"]


def kpi_values(source, *, period, as_of=None, breakdowns: bool = True) -> pd.DataFrame:
    """The published ``kpis`` table: ``function, indicator, kpi, period, value, target, pct_of_target,
    prior_value, change, unit, last_year_value, ytd_value, ytd_target`` — one row per KPI key (and
    breakdown) whose tables are present (see :func:`scorecard`)."""
    return scorecard(source, period=period, as_of=as_of, breakdowns=breakdowns)[PUBLISHED_COLUMNS]


def _moves_in_points(key) -> bool:
    """Whether a move of rate KPI ``key`` is judged in points (a key the registry does not know: yes)."""
    k = KPI_BY_KEY.get(str(key))
    return True if k is None else k.moves_in_points


def big_moves(card: pd.DataFrame, *, change: float = 0.25, points: float = 0.05, alpha: float = 0.05,
              min_base: int = 30) -> pd.DataFrame:
    """KPIs whose change from the prior period is beyond noise, whether or not they have a target.

    A KPI (breakdowns left out) is listed when its move is at least the threshold — ``points`` (a fraction:
    0.05 = 5 percentage points) for a rate, ``change`` (relative: 0.25 = 25 %) for any other unit and for a
    ratio shown as a percentage whose level is not a share (next-period coverage, 116 % → 124 % is +7 %, not
    "8 points": ``KPI.moves_in_points`` False) — and beyond noise, where the card says what a value stands on
    (its ``n, prior_n`` and ``se, prior_se`` columns, as :func:`scorecard` gives them):

    - a count: the two counts differ beyond Poisson noise — the exact conditional test (value ~ Binomial(value +
      prior, ½)), two-sided p-value below ``alpha``;
    - a value with a standard error (``se`` and ``prior_se``): a sum of deal amounts (revenue won, expansion
      revenue: √Σ amount², the spread of deals closing as a Poisson stream with those amounts), the win rate by
      amount and revenue per new customer (from those sums), cost per lead and CAC (from their counts' Poisson
      noise) — the z-test of (value − prior) / √(se² + prior_se²), two-sided p-value below ``alpha`` (a few
      large deals make big moves by chance);
    - a share of items (``KPI.proportion``: win rate of deals closed, CSAT of rated tickets, conversion of
      sessions, email rates of emails delivered): the two shares differ by Fisher's exact test on the 2×2 table
      of successes and failures (successes: the share × ``n``, rounded), two-sided p-value below ``alpha``;
    - any other value with a size (an average, a median or a ratio: the review rating over reviews, the sales
      cycle over deals won, CES, first response, revenue per new customer and CAC over new customers, win rate
      by amount over deals closed, retention over its base): both periods' sizes at least ``min_base`` — a
      rating of 5.00 on one review against 3.75 on four is no move.

    A size the card does not give (a card built by hand) leaves the threshold alone to judge; one period's size
    unknown while the other's is known counts as too few.  Largest relative moves first.

    Returns the card's rows with ``relative_change`` (NaN for rates read in points) and ``p_value`` (where
    tested).

    >>> card = pd.DataFrame({"kpi": ["cac", "leads", "win_rate", "mqls", "leads:web"], "unit": ["currency", "count",
    ...     "rate", "count", "count"], "value": [159.0, 13.0, 0.40, 1300.0, 1.0], "prior_value": [100.0, 9.0, 0.485,
    ...     1000.0, 9.0], "change": [59.0, 4.0, -0.085, 300.0, -8.0]})
    >>> big_moves(card)["kpi"].tolist()  # leads +44 % on 9 → 13 is within noise; a breakdown never counts
    ['cac', 'mqls', 'win_rate']
    >>> card["n"], card["prior_n"] = [40.0, None, 50.0, None, None], [35.0, None, 66.0, None, None]
    >>> big_moves(card)["kpi"].tolist()  # 20 won of 50 against 32 of 66: within noise
    ['cac', 'mqls']
    """
    from scipy.stats import binomtest, fisher_exact, norm

    if not (0 < change and 0 < points and 0 < alpha < 1 and min_base >= 0):
        from revops_lib.errors import ParameterError

        raise ParameterError("`change` and `points` must be positive, `alpha` between 0 and 1 and `min_base` not "
                             "negative.")
    rows = card[~card["kpi"].astype(str).str.contains(":") & card["value"].notna() & card["prior_value"].notna()]
    out = []
    for r in rows.to_dict("records"):
        value, prior = float(r["value"]), float(r["prior_value"])
        k = KPI_BY_KEY.get(str(r["kpi"]))
        sizes = [_num(r.get("n")), _num(r.get("prior_n"))]
        sized = not all(math.isnan(x) for x in sizes)
        exact = sized and k is not None and k.proportion
        if sized and not exact and not all(x >= min_base for x in sizes):
            continue  # an average over too few (or unknown) items: its move is mostly noise
        rel, p = math.nan, math.nan
        if r["unit"] == "rate" and _moves_in_points(r["kpi"]):
            if abs(value - prior) < points:
                continue
            if exact:
                n, m = sizes
                if not (n > 0 and m > 0):  # an unknown size: no test can tell
                    continue
                a, b = round(value * n), round(prior * m)
                p = float(fisher_exact([[a, round(n) - a], [b, round(m) - b]]).pvalue)
        else:
            if prior == 0:
                continue
            rel = (value - prior) / abs(prior)
            if abs(rel) < change:
                continue
            if r["unit"] == "count":
                n = int(round(value)) + int(round(prior))
                p = float(binomtest(int(round(value)), n, 0.5).pvalue) if n > 0 else 1.0
        spread = math.hypot(_num(r.get("se")), _num(r.get("prior_se")))
        if math.isnan(p) and spread > 0:  # a value with a standard error (NaN, none given, is not > 0)
            p = float(2 * norm.sf(abs(value - prior) / spread))
        if p >= alpha:  # (NaN: not tested, the threshold alone judged it)
            continue
        out.append({**r, "relative_change": rel, "p_value": p})
    result = pd.DataFrame(out, columns=list(card.columns) + ["relative_change", "p_value"])
    order = result["relative_change"].abs().fillna(result["value"].sub(result["prior_value"]).abs())
    return result.loc[order.sort_values(ascending=False, kind="stable").index].reset_index(drop=True)
