"""The scorecard's KPIs: key, function, leading or lagging, unit, label, tables and definition.

One registry (:data:`KPIS`, :data:`KPI_BY_KEY`) read by the scorecard, the targets lookup (which
KPIs add up over time) and the reports' labels and glossaries. Definitions follow METRICS.md
("Scorecard").
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KPI", "KPIS", "KPI_BY_KEY", "FUNCTIONS", "kpi", "is_additive"]


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
    ytd: bool = True  # False for a stock measured at one instant (its year to date is its value)
    moves_in_points: bool = True  # a rate whose move is judged in points; False: relatively (a ratio such as coverage)
    proportion: bool = False  # a share of items counted in the period (successes / n): its move is tested exactly


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
       "Σ conversions / Σ sessions", proportion=True),
    _k("email_open_rate", "marketing", "leading", "rate", "Email open rate", ["email_campaigns"],
       "Σ opens / Σ delivered of prospect sends", proportion=True),
    _k("email_click_rate", "marketing", "leading", "rate", "Email click rate", ["email_campaigns"],
       "Σ clicks / Σ delivered of prospect sends", proportion=True),
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
       "Σ amount of deals created before the period end (or as of) and not closed before it", ytd=False),
    _k("pipeline_coverage", "sales", "leading", "rate", "Next-period coverage", ["opportunities", "targets"],
       "open pipeline with close date in the next period / target revenue of that period", ytd=False,
       moves_in_points=False),
    _k("revenue_won", "sales", "lagging", "currency", "Revenue won", ["opportunities"],
       "Σ amount of opportunities won with close date in the period (by type and product: revenue_won:<value>)",
       additive=True, breakdown=True),
    _k("new_customers", "sales", "lagging", "count", "New customers", ["opportunities"],
       "distinct accounts with a first won new_business opportunity in the period", additive=True),
    _k("avg_revenue_per_new_customer", "sales", "lagging", "currency", "Revenue per new customer", ["opportunities"],
       "new-business revenue won / new customers"),
    _k("win_rate", "sales", "lagging", "rate", "Win rate (count)", ["opportunities"],
       "won / (won + lost), opportunities closed in the period", proportion=True),
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
       "share of rated tickets created in the period with csat 4–5", proportion=True),
    _k("ces", "customer_success", "lagging", "score", "CES", ["support_tickets"],
       "mean ces (1–7) of tickets created in the period"),
    _k("first_response_hours", "customer_success", "lagging", "hours", "First response time", ["support_tickets"],
       "median hours from created to first response, tickets created in the period", higher_is_better=False),
    _k("logo_retention_12m", "customer_success", "lagging", "rate", "Logo retention, trailing 12 m", ["subscriptions"],
       "customers with MRR > 0 twelve months before the period's last complete month still paying in it",
       ytd=False),
    _k("nrr_12m", "customer_success", "lagging", "rate", "NRR (12 m)", ["subscriptions"],
       "their MRR in the month / their MRR twelve months earlier", ytd=False),
    _k("grr_12m", "customer_success", "lagging", "rate", "GRR (12 m)", ["subscriptions"],
       "as NRR with each customer capped at its MRR twelve months earlier", ytd=False),
    _k("expansion_revenue", "customer_success", "lagging", "currency", "Expansion revenue", ["opportunities"],
       "Σ amount of expansion opportunities won in the period", additive=True),
]
KPI_BY_KEY = {k.key: k for k in KPIS}
FUNCTIONS = ("marketing", "sales", "customer_success", "revenue")



def kpi(key: str) -> KPI:
    """The KPI of a key or a breakdown key (``revenue_won:expansion`` → ``revenue_won``)."""
    return KPI_BY_KEY[key.split(":", 1)[0]]


def is_additive(key: str) -> bool:
    """Whether a KPI (or breakdown) key sums over time: counts and money flows (pro-rated in pacing,
    summed from weeks or segments for a period target)."""
    base = key.split(":", 1)[0]
    return base in KPI_BY_KEY and KPI_BY_KEY[base].additive
