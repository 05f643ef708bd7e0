"""The scorecard notebook runs for a week, a month and a quarter on the demo data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_notebooks import assert_stakeholder_html
from test_retention import _reference_months

from conftest import naive_utc, period_bounds

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


@pytest.mark.parametrize("period", ["2026-W43", "2026-10", "2026-Q3"])
def test_scorecard_runs_for_every_cadence(demo_dir, demo_reports, period):
    d = demo_reports / period
    html = (d / "revops_scorecard.html").read_text()
    assert_stakeholder_html(html)
    assert "What needs attention" in html and "Pacing" in html
    kpis = pd.read_csv(d / "tables" / "revops_scorecard" / "kpis.csv")
    assert list(kpis.columns) == ["function", "indicator", "kpi", "period", "value", "target", "pct_of_target",
                                  "prior_value", "change", "unit", "last_year_value", "ytd_value", "ytd_target"]
    assert (kpis.period == period).all()
    assert {"revenue_won", "leads", "mqls", "win_rate", "nrr_12m", "csat", "cac"} <= set(kpis.kpi)
    assert kpis.kpi.is_unique
    if period.startswith("2026-W"):
        assert "Month 2026-10 to date" in html
    check_kpis_against_pandas(demo_dir, period, kpis.set_index("kpi"))


PRIOR = {"2026-W43": "2026-W42", "2026-10": "2026-09", "2026-Q3": "2026-Q2"}
#: the last month complete before each period's end (the week 2026-10-19..25 ends before October does)
LAST_MONTH = {"2026-W43": "2026-09", "2026-10": "2026-10", "2026-Q3": "2026-09"}


def _read_demo(data_dir) -> dict[str, pd.DataFrame]:
    return {t: pd.read_parquet(data_dir / f"{t}.parquet") for t in (
        "leads", "opportunities", "web_traffic", "marketing_spend", "support_tickets", "subscriptions", "targets",
        "reviews")}


def _between(values, label):
    s, e = period_bounds(label)
    v = naive_utc(values)
    return ((v >= s) & (v < e)).to_numpy()


def _pandas_kpis(read, label) -> tuple[dict, dict]:
    """Some KPIs of a complete period, and the sizes behind its rates and averages, with pandas."""
    o, between = read["opportunities"], _between
    closed_in = between(o["close_date"], label) & o["is_closed"].to_numpy()
    won = closed_in & o["is_won"].to_numpy()
    nb = o[o["is_won"] & (o["type"] == "new_business")]
    first_win = nb.groupby("account_id")["close_date"].min()
    new_customers = int(between(first_win, label).sum())
    spend = read["marketing_spend"].loc[between(read["marketing_spend"]["date"], label), "spend"].sum()
    t = read["support_tickets"]
    t = t[between(t["created_at"], label)]
    rated = t["csat"].dropna()
    _, end = period_bounds(label)
    responded = naive_utc(t["first_response_at"]) < end
    hours = (naive_utc(t["first_response_at"]) - naive_utc(t["created_at"])).dt.total_seconds() / 3600
    sessions = read["web_traffic"].loc[between(read["web_traffic"]["date"], label), "sessions"].sum()
    leads = between(read["leads"]["created_at"], label).sum()
    sizes = {"landing_conversion_rate": sessions, "win_rate": closed_in.sum(), "win_rate_amount": closed_in.sum(),
             "sales_cycle_days": won.sum(), "avg_revenue_per_new_customer": new_customers, "cac": new_customers,
             "csat": len(rated), "ces": t["ces"].notna().sum(), "first_response_hours": responded.sum(),
             "review_rating": between(read["reviews"]["posted_at"], label).sum(), "cost_per_lead": leads}
    return {
        "leads": leads,
        "sessions": sessions,
        "opportunities_created": between(o["created_at"], label).sum(),
        "revenue_won": o.loc[won, "amount"].sum(),
        "win_rate": won.sum() / closed_in.sum(),
        "new_customers": new_customers,
        "cac": spend / new_customers,
        "csat": (rated >= 4).mean(),
        "first_response_hours": hours[responded.to_numpy()].median(),
    }, sizes


def check_kpis_against_pandas(data_dir, period, k):
    """KPIs of the published table recomputed with pandas from the demo files (METRICS.md's definitions)."""
    read = _read_demo(data_dir)
    (now, _), (before, _) = _pandas_kpis(read, period), _pandas_kpis(read, PRIOR[period])
    for key, v in now.items():
        # money is published to the cent (publish.normalised): a KPI in currency within half a cent (and the
        # float representation of that half: 20601.305 is stored a hair below and rounds down)
        cent = 0.0051 if k.loc[key, "unit"] == "currency" else 1e-9
        assert k.loc[key, "value"] == pytest.approx(v, rel=1e-9, abs=cent), key
        assert k.loc[key, "prior_value"] == pytest.approx(before[key], rel=1e-9, abs=cent), key
        assert k.loc[key, "change"] == pytest.approx(v - before[key], rel=1e-9, abs=2 * cent), key
    t = read["targets"]
    own = t[(t["period"] == period) & t["segment"].isna()].set_index("metric")["target"]
    assert k.loc["leads", "target"] == own["leads"]
    assert k.loc["leads", "pct_of_target"] == pytest.approx(now["leads"] / own["leads"], rel=1e-9)

    # trailing 12 months at the last complete month, from month-end MRR of the subscriptions
    m = pd.Period(LAST_MONTH[period], freq="M")
    levels = _reference_months(read["subscriptions"], m, first_month=str(m - 12))
    grid = levels.pivot_table(index="customer_id", columns="month", values="c", aggfunc="sum", fill_value=0)
    base = grid[(m - 12).start_time]
    cur = grid[m.start_time] if m.start_time in grid else base * 0
    kept = base > 0
    assert k.loc["logo_retention_12m", "value"] == pytest.approx((cur[kept] > 0).mean(), rel=1e-9)
    assert k.loc["nrr_12m", "value"] == pytest.approx(cur[kept].sum() / base[kept].sum(), rel=1e-9)
    assert k.loc["grr_12m", "value"] == pytest.approx(np.minimum(cur[kept], base[kept]).sum() / base[kept].sum(),
                                                      rel=1e-9)


@pytest.mark.parametrize("period", ["2026-10", "2026-Q3"])
def test_the_sizes_behind_rates_and_averages_match_pandas(demo_dir, period):
    """The card's ``n`` and ``prior_n`` (what "What needs attention" judges noise on) against pandas counts of
    the demo files: deals closed and won, new customers, rated tickets, tickets with a CES or a first response,
    reviews, sessions, leads; and the trailing retention's base customers."""
    from revops_lib.metrics.scorecard import scorecard

    card = scorecard(demo_dir, period=period, comparisons=False).set_index("kpi")
    read = _read_demo(demo_dir)
    (_, now), (_, before) = _pandas_kpis(read, period), _pandas_kpis(read, PRIOR[period])
    for key, n in now.items():
        assert (card.loc[key, "n"], card.loc[key, "prior_n"]) == (n, before[key]), key
    assert min(v for k, v in now.items() if k != "review_rating") > 0  # (the small demo has months without a review)
    assert now["csat"] != now["ces"] != now["first_response_hours"]
    m = pd.Period(LAST_MONTH[period], freq="M")
    levels = _reference_months(read["subscriptions"], m, first_month=str(m - 12))
    base = levels[levels["month"] == (m - 12).start_time].groupby("customer_id")["c"].sum()
    assert card.loc[["logo_retention_12m", "nrr_12m", "grr_12m"], "n"].tolist() == [(base > 0).sum()] * 3


def test_breakdowns_name_the_column_they_split_by(demo_reports):
    """Revenue won by type and by product are two lists, each adding up to revenue won: the page names which
    (it read "Revenue won — Analytics … — Expansion … — New business …", six rows adding up to twice the total)."""
    html = (demo_reports / "2026-10" / "revops_scorecard.html").read_text()
    for text in ("Revenue won by type — New business", "Revenue won by product — ", "Leads by source — Organic search",
                 "Website sessions by source — Paid search"):
        assert text in html, text
    assert html.index("Revenue won by type — Renewal") < html.index("Revenue won by product — ")
