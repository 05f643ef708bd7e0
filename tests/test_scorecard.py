"""Scorecard KPIs on hand-computed frames; targets, pacing and absent tables."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from revops_lib.metrics import scorecard
from revops_lib.present.sections import scorecard as scorecard_section
from revops_lib.runner.registry import footnotes

from conftest import d, ts, valid_frames

_CACHE = {}


@pytest.fixture(scope="session", autouse=True)
def _fresh_cache_per_session():
    """Every test session computes the cached cards again. mutmut runs one session to collect stats and then
    forks a worker per mutant from that process: a cache filled by the first session would hand every
    worker the unmutated cards, and no mutant could fail a test that reads them."""
    _CACHE.clear()


def card(frames, period="2026-10", **kw):
    return scorecard.scorecard(frames, period=period, **kw).set_index("kpi")


def oct_card():
    if "oct" not in _CACHE:
        _CACHE["oct"] = card(valid_frames())
    return _CACHE["oct"]


EXPECTED_OCT = {
    "sessions": 1400, "leads": 3, "mqls": 2, "sqls": 2,  # L3 skipped SQL: entered at its opportunity time
    "landing_conversion_rate": 32 / 1400, "email_open_rate": 250 / 1000, "email_click_rate": 40 / 1000,
    "contacts_generated": 5, "cost_per_lead": 1120 / 3,
    "opportunities_created": 2, "first_meetings": 1, "proposals": 1,
    "open_pipeline": 80000.0, "revenue_won": 12000.0, "new_customers": 1, "avg_revenue_per_new_customer": 12000.0,
    "win_rate": 0.5, "win_rate_amount": 12000 / 17000, "sales_cycle_days": 16.0, "cac": 1120.0,
    "customers_reached": 300, "new_reviews": 1, "review_rating": 5.0, "csat": 1.0, "ces": 2.0,
    "first_response_hours": 2.0, "logo_retention_12m": 0.0, "nrr_12m": 0.0, "grr_12m": 0.0,
    "expansion_revenue": 0.0,
}


@pytest.mark.parametrize("key,expected", [(k, v) for k, v in EXPECTED_OCT.items() if v is not None])
def test_each_kpi_on_hand_computed_frames(key, expected):
    got = oct_card().loc[key, "value"]
    assert got == pytest.approx(expected), key


# The sample size behind each rate and average of October (``n``) and September (``prior_n``, no rows: 0)
EXPECTED_N_OCT = {
    "landing_conversion_rate": 1400, "email_open_rate": 1000, "email_click_rate": 1000,  # prospects' 1000 of 1300
    "cost_per_lead": 3, "win_rate": 2, "win_rate_amount": 2, "sales_cycle_days": 1,  # 2 closed, 1 won
    "avg_revenue_per_new_customer": 1, "cac": 1, "review_rating": 1,
}


def test_the_card_gives_the_size_of_each_rate_and_average():
    """(Computed here, not from the cached card: mutmut maps a test to the functions it runs, and a cached card
    runs none.)"""
    c = card(valid_frames())
    for key, n in EXPECTED_N_OCT.items():
        assert (c.loc[key, "n"], c.loc[key, "prior_n"]) == (n, 0), key
    sizeless = [k for k in EXPECTED_OCT if k not in EXPECTED_N_OCT and k not in
                ("csat", "ces", "first_response_hours", "logo_retention_12m", "nrr_12m", "grr_12m")]
    assert "leads" in sizeless and "open_pipeline" in sizeless and "revenue_won" in sizeless
    assert c.loc[sizeless, ["n", "prior_n"]].isna().all().all()  # counts, money and stocks have no size
    # spread: cost per lead and CAC from their counts (1,120 over 3 leads, over 1 new customer), revenue per new
    # customer from the new-business total (O1's 12,000 over that customer); September has neither
    assert c.loc["cost_per_lead", "se"] == pytest.approx(1120 / 3 / math.sqrt(3))
    assert c.loc["cac", "se"] == pytest.approx(1120.0)
    assert c.loc["avg_revenue_per_new_customer", "se"] == pytest.approx(12000.0)
    assert c.loc[["cost_per_lead", "cac", "avg_revenue_per_new_customer"], "prior_se"].isna().all()


def test_ticket_kpis_count_the_tickets_each_is_taken_over():
    """CSAT is a share of rated tickets, CES the mean over tickets with a CES, first response the median over
    tickets answered before the cut-off: four tickets, of which 3 rated, 2 with a CES, 1 answered (K5's answer
    comes after the end of October)."""
    f = valid_frames()
    f["support_tickets"] = pd.DataFrame({
        "ticket_id": ["K1", "K2", "K3", "K4", "K5"],
        "created_at": ts("2026-10-22 08:00", "2026-10-23 09:00", "2026-10-24 09:00", "2026-10-25 09:00",
                         "2026-10-31 22:00"),
        "customer_id": ["A1"] * 5,
        "first_response_at": ts("2026-10-22 10:00", None, None, None, "2026-11-01 01:00"),
        "resolved_at": ts("2026-10-23 08:00", None, None, None, None),
        "csat": [5, None, 3, 4, None],
        "ces": [2, None, None, 6, None],
    })
    c = card(f)
    assert c.loc["csat", "value"] == pytest.approx(2 / 3) and c.loc["csat", "n"] == 3
    assert c.loc["ces", "value"] == 4.0 and c.loc["ces", "n"] == 2
    assert c.loc["first_response_hours", "value"] == 2.0 and c.loc["first_response_hours", "n"] == 1
    nov = card(f, period="2026-11").loc[["csat", "ces", "first_response_hours"]]
    assert nov["prior_n"].tolist() == [3, 2, 1] and nov["n"].tolist() == [0, 0, 0]  # October as at its end


def test_breakdowns_use_key_value():
    c = card(valid_frames())
    assert c.loc["leads:organic_search", "value"] == 1
    assert c.loc["sessions:paid_search", "value"] == 400
    assert c.loc["revenue_won:new_business", "value"] == 12000
    assert c.loc["revenue_won:core", "value"] == 12000


def test_breakdowns_say_what_they_split_by_and_come_by_dimension():
    """Revenue won splits by type and by product: each list adds up to the KPI, so the card says which (``by``)
    and keeps each together, types first (alphabetically ``core`` came before ``new_business``)."""
    f = valid_frames()
    c = card(f)
    keys = [k for k in c.index if k.startswith("revenue_won")]
    assert keys == ["revenue_won", "revenue_won:new_business", "revenue_won:core"]
    assert c.loc[keys, "by"].tolist() == ["", "type", "product"]
    assert c.loc["revenue_won:core", "label"] == "Revenue won by product — core"
    assert c.loc["leads:organic_search", "by"] == "source" and c.loc["sessions:paid_search", "by"] == "source"
    assert (c.loc[[k for k in c.index if ":" not in k], "by"] == "").all()


def test_the_bullet_chart_names_a_breakdown_as_the_tables_do(tmp_path, monkeypatch):
    """A breakdown with a target is drawn under the tables' words ("Revenue won by type — New business"), not
    the card's raw label ("Revenue won by type — new_business")."""
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    from revops_lib.periods import parse_period

    monkeypatch.chdir(tmp_path)  # the chart's numbers are recorded beside it
    c = pd.DataFrame({"function": ["sales"] * 2, "kpi": ["revenue_won", "revenue_won:new_business"],
                      "label": ["Revenue won", "Revenue won by type — new_business"], "by": ["", "type"],
                      "unit": ["currency"] * 2, "value": [9.0, 5.0], "target": [10.0, 4.0],
                      "pct_of_target": [0.9, 1.25], "status": ["at risk", "on track"]})
    sc = scorecard_section.Scorecard(period=parse_period("2026-10"), as_of=pd.Timestamp("2026-11-01"), card=c,
                                     history=pd.DataFrame(), pacing_views=[])
    plt.close("all")
    sc.bullets("sales")
    ticks = [t.get_text() for t in plt.gca().get_yticklabels()]
    plt.close("all")
    assert ticks == ["Revenue won by type — New business", "Revenue won"]


def test_every_metrics_md_key_is_present_when_tables_are():
    keys = set(card(valid_frames()).index)
    metrics_keys = {"sessions", "leads", "mqls", "sqls", "landing_conversion_rate", "email_open_rate",
                    "email_click_rate", "cost_per_lead", "opportunities_created", "first_meetings", "proposals",
                    "open_pipeline", "revenue_won", "new_customers", "avg_revenue_per_new_customer", "win_rate",
                    "sales_cycle_days", "cac", "csat", "ces", "first_response_hours", "new_reviews",
                    "review_rating", "customers_reached", "logo_retention_12m", "nrr_12m", "grr_12m"}
    assert metrics_keys <= keys


def test_published_columns_and_functions():
    df = scorecard.kpi_values(valid_frames(), period="2026-10")
    assert list(df.columns) == ["function", "indicator", "kpi", "period", "value", "target", "pct_of_target",
                                "prior_value", "change", "unit", "last_year_value", "ytd_value", "ytd_target"]
    assert set(df.function) <= {"marketing", "sales", "customer_success", "revenue"}
    assert set(df.indicator) == {"leading", "lagging"}
    assert df.loc[df.kpi == "cac", "function"].item() == "revenue"


def test_activity_kpis_count_activity_types():
    c = card(valid_frames())
    assert c.loc["first_meetings", "value"] == 1 and c.loc["proposals", "value"] == 1


def test_target_pct_and_missing_target_blank():
    c = card(valid_frames())
    assert c.loc["revenue_won", "target"] == 15000
    assert c.loc["revenue_won", "pct_of_target"] == pytest.approx(0.8)
    assert math.isnan(c.loc["sessions", "target"]) and math.isnan(c.loc["sessions", "pct_of_target"])
    assert c.loc["sessions", "status"] == "no target"


def test_zero_target_gives_blank_pct():
    f = valid_frames()
    f["targets"].loc[0, "target"] = 0.0
    c = card(f)
    assert c.loc["revenue_won", "target"] == 0 and math.isnan(c.loc["revenue_won", "pct_of_target"])


def test_target_for_another_cadence_is_not_used():
    f = valid_frames()  # 2026-W44 has a leads target, the month has none
    c = card(f)
    assert math.isnan(c.loc["leads", "target"])
    w = card(f, period="2026-W44")
    assert w.loc["leads", "target"] == 10


def test_weekly_targets_add_up_to_a_period_target():
    f = valid_frames()
    weeks = ["2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44"]  # overlapping October
    f["targets"] = pd.DataFrame({"period": weeks, "metric": ["leads"] * 5, "target": [7.0] * 5, "segment": [None] * 5})
    c = card(f)
    # W40: Sep 28-Oct 4 (4 days in October) ... W44: Oct 26-Nov 1 (6 days): 31 days × 1/day
    assert c.loc["leads", "target"] == pytest.approx(31.0)


def test_prior_value_and_change():
    c = card(valid_frames())
    assert c.loc["opportunities_created", "prior_value"] == 1  # O2 created in September
    assert c.loc["opportunities_created", "change"] == 1


def test_zero_denominators_are_blank_not_infinite():
    f = valid_frames()
    f["leads"] = f["leads"].iloc[0:0]
    c = card(f)
    assert c.loc["leads", "value"] == 0
    assert math.isnan(c.loc["cost_per_lead", "value"])


def test_absent_optional_tables_leave_kpis_out_with_a_note():
    f = valid_frames()
    del f["reviews"], f["web_traffic"]
    result = scorecard_section.analyze(f, period="2026-10")
    keys = set(result.card.kpi)
    assert "new_reviews" not in keys and "sessions" not in keys and "landing_conversion_rate" not in keys
    assert "Left out for lack of table `reviews`: New reviews, Review rating." in result.notes


def test_a_source_without_leads_leaves_the_lead_kpis_out_and_computes_the_rest():
    f = valid_frames()
    del f["leads"]
    c = card(f)
    assert not {"leads", "mqls", "sqls", "cost_per_lead"} & set(c.index)
    assert c.loc["sessions", "value"] == 1400 and c.loc["revenue_won", "value"] == 12000


def test_pipeline_coverage_is_the_next_periods_open_pipeline_over_its_target():
    f = valid_frames()
    o, h = f["opportunities"], f["opportunity_history"]
    # O4: open, 20 000, created 2026-10-10 with close date 2026-11-20; November's target 40 000.
    # At November's start the open pipeline closing in November is O4 alone: 20 000 / 40 000 = 0.5
    # (O3 closes in December).
    f["opportunities"] = pd.concat([o, o.iloc[[2]].assign(
        opportunity_id="O4", created_at=pd.Timestamp("2026-10-10", tz="UTC"), amount=20000.0,
        close_date=dt.date(2026, 11, 20))], ignore_index=True)
    f["opportunity_history"] = pd.concat([h, h.iloc[[3]].assign(
        opportunity_id="O4", changed_at=pd.Timestamp("2026-10-10", tz="UTC"), amount=20000.0,
        close_date=dt.date(2026, 11, 20))], ignore_index=True)
    f["targets"] = pd.concat([f["targets"], pd.DataFrame(
        {"period": ["2026-11"], "metric": ["revenue_won"], "target": [40000.0], "segment": [None]})],
        ignore_index=True)
    c = card(f)
    assert c.loc["pipeline_coverage", "value"] == pytest.approx(0.5)
    # the prior value is what the KPI read at September's end: October's open pipeline at its start (O2, 5 000,
    # due 10-10; O1 did not exist yet) over October's target (15 000)
    assert c.loc["pipeline_coverage", "prior_value"] == pytest.approx(5000 / 15000)
    assert c.loc["pipeline_coverage", "change"] == pytest.approx(0.5 - 5000 / 15000)
    assert math.isnan(card(f, prior=False).loc["pipeline_coverage", "prior_value"])


def test_breakdown_label_keeps_a_value_with_a_colon():
    f = valid_frames()
    f["leads"].loc[2, "source"] = "partner:acme"  # L3
    c = card(f, only={"leads"}, prior=False)
    assert c.loc["leads:partner:acme", "value"] == 1
    assert c.loc["leads:partner:acme", "label"] == "Leads by source — partner:acme"


def test_a_row_on_the_first_day_of_a_period_counts_in_that_period_only():
    f = valid_frames()
    first = f["leads"].iloc[[0]].assign(lead_id="L0", created_at=ts("2026-10-01 00:00"))
    f["leads"] = pd.concat([f["leads"], first], ignore_index=True)
    c = card(f, only={"leads", "sessions"}, breakdowns=False)
    # October: L0 (10-01 00:00) + L1..L3 = 4 leads; September (the prior window, cut at 10-01 00:00): none
    assert (c.loc["leads", "value"], c.loc["leads", "prior_value"]) == (4, 0)
    # both web_traffic rows are dated 2026-10-01: October's, not September's
    assert (c.loc["sessions", "value"], c.loc["sessions", "prior_value"]) == (1400, 0)


def test_as_of_within_a_day_counts_times_before_it_and_days_before_its_date():
    f = valid_frames()
    day = f["web_traffic"].iloc[[0]].assign(date=d("2026-10-03"), sessions=50)
    f["web_traffic"] = pd.concat([f["web_traffic"], day], ignore_index=True)
    c = card(f, as_of="2026-10-03 12:00", only={"leads", "sessions"}, breakdowns=False, prior=False)
    assert c.loc["leads", "value"] == 3  # L3 at 10-03 11:00 is before 12:00
    assert c.loc["sessions", "value"] == 1400  # the 10-03 row is not before 10-03: 1000 + 400


def test_kpi_history_without_breakdowns_has_base_keys_only():
    f = {k: v for k, v in valid_frames().items() if k in ("leads", "web_traffic", "opportunities")}  # the split ones
    plain = scorecard.kpi_history(f, period="2026-10", periods=1, breakdowns=False)
    assert not plain["kpi"].str.contains(":").any()  # with breakdowns: leads:organic_search, ...
    assert set(plain["period"]) == {"2026-10"}
    assert plain.set_index("kpi").loc["leads", "value"] == 3


def test_only_computes_nothing_from_unrelated_tables():
    c = card(valid_frames(), only={"leads"}, breakdowns=False, prior=False)
    assert "leads" in c.index
    assert {scorecard.kpi(k).tables for k in c.index} == {("leads",)}  # no reviews, tickets, deals, ...


@pytest.mark.parametrize("as_of,elapsed,status", [
    ("2026-10-01", 0.0, "not started"),
    ("2026-10-02", 1.0, None),
    ("2026-11-01", 31.0, None),
])
def test_pacing_at_first_and_last_day(as_of, elapsed, status):
    f = valid_frames()
    p = scorecard.pacing(f, period="2026-10", as_of=as_of).set_index("kpi")
    row = p.loc["revenue_won"]
    assert row["elapsed_days"] == pytest.approx(elapsed)
    assert row["prorated_target"] == pytest.approx(15000 * elapsed / 31)
    if status:
        assert row["status"] == status
    if elapsed == 31.0:
        assert row["weeks_left"] == 0 and math.isnan(row["weekly_run_rate_needed"])
        assert math.isnan(row["still_needed"])  # the period is over: nothing left to bring
        assert row["status"] == "off track"  # 12000 / 15000 = 0.8 < 0.85
    if elapsed == 1.0:
        assert row["weekly_run_rate_needed"] == pytest.approx((15000 - 0) / (30 / 7))


def test_footnotes_define_every_kpi():
    names = " ".join(n for n, _ in footnotes("revops_scorecard"))
    for k in scorecard.KPIS:
        assert f"`{k.key}`" in names


def test_kpi_registry_entries_keep_every_field():
    from revops_lib.metrics import kpis

    got = kpis._k("x", "sales", "leading", "count", "X", ["opportunities", "targets"], "how x is counted",
                  additive=True)
    assert got == scorecard.KPI("x", "sales", "leading", "count", "X", ("opportunities", "targets"),
                                "how x is counted", additive=True)
    assert all(k.function in scorecard.FUNCTIONS and k.definition and isinstance(k.tables, tuple)
               for k in scorecard.KPIS)
    # the card's order is the list's within a function, so the list keeps leading KPIs before lagging ones
    for f in scorecard.FUNCTIONS:
        kinds = [k.indicator for k in scorecard.KPIS if k.function == f]
        assert kinds == sorted(kinds, key=["leading", "lagging"].index), f


def test_a_history_made_by_hand_gives_the_card_without_sizes_and_keeps_a_kpi_before_its_breakdowns():
    """A ``history`` without the ``n``, ``by`` and ``se`` columns (made by hand, or from an older kit) still
    gives a card: blank sizes and spreads, no dimension; rows in the KPI list's order, a KPI before its
    breakdowns even when the history lists them first."""
    hist = pd.DataFrame({"kpi": ["leads:web", "leads", "revenue_won", "sessions", "leads", "leads:web"],
                         "period": ["2026-10", "2026-10", "2026-10", "2026-10", "2026-09", "2026-09"],
                         "value": [3.0, 10.0, 500.0, 80.0, 8.0, 2.0]})
    c = scorecard.scorecard(valid_frames(), period="2026-10", history=hist, comparisons=False)
    assert c["kpi"].tolist() == ["sessions", "leads", "leads:web", "revenue_won"]
    assert c[["n", "prior_n", "se", "prior_se"]].isna().all().all() and (c["by"] == "").all()
    assert c.set_index("kpi").loc["leads:web", ["value", "prior_value", "label"]].tolist() == [3.0, 2.0,
                                                                                               "Leads — web"]


# ---------------------------------------------------------------------------
# Trailing retention and expansion on a ledger with churn, contraction and expansion
# ---------------------------------------------------------------------------

def retention_frames():
    """valid_frames() with a subscription ledger in which logo retention, NRR and GRR all differ.

    Month-end MRR (last day of the month):
      R1  100 from 2025-06-01, + 100 add-on from 2026-09-10 (expansion)
      R2  200 from 2025-06-01 to 2026-10-05, then 120 from 2026-10-05 (contraction in October 2026)
      R3  100 from 2025-06-01 to 2026-09-15 (churned: 0 at the end of September 2026)
      R4  100 from 2025-10-10 (in the October 2025 base, not in September's)
      R5   50 from 2025-11-05 (in neither base: a lag of 11 months would count it)
      A1 1000 + 200 from 2026-10-20 / 2026-10-25 (new, in no base)
    plus an expansion deal won in October 2026 (O4, 3000).
    """
    f = valid_frames()
    f["subscriptions"] = pd.DataFrame({
        "customer_id": ["R1", "R1", "R2", "R2", "R3", "R4", "R5", "A1", "A1"],
        "start_date": d("2025-06-01", "2026-09-10", "2025-06-01", "2026-10-05", "2025-06-01", "2025-10-10",
                        "2025-11-05", "2026-10-20", "2026-10-25"),
        "mrr": [100.0, 100.0, 200.0, 120.0, 100.0, 100.0, 50.0, 1000.0, 200.0],
        "end_date": d(None, None, "2026-10-05", None, "2026-09-15", None, None, None, None),
        "subscription_id": [f"S{i}" for i in range(9)],
        "product": ["core"] * 9,
        "segment": ["smb"] * 9,
    })
    o4 = pd.DataFrame({
        "opportunity_id": ["O4"], "created_at": ts("2026-09-20"), "close_date": d("2026-10-12"),
        "is_closed": [True], "is_won": [True], "amount": [3000.0], "account_id": ["R1"], "owner": ["bo"],
        "team": ["smb"], "segment": ["smb"], "source": ["organic_search"], "type": ["expansion"],
        "stage": ["closed_won"], "forecast_category": ["closed"], "product": ["addon"]})
    f["opportunities"] = pd.concat([f["opportunities"], o4], ignore_index=True)
    return f


def retention_card():
    if "retention" not in _CACHE:
        _CACHE["retention"] = card(retention_frames())
    return _CACHE["retention"]


# October 2026, base October 2025 = R1 100, R2 200, R3 100, R4 100 (4 customers, 500):
#   logo = 3 still paying / 4 = 0.75
#   NRR  = (R1 200 + R2 120 + R3 0 + R4 100) / 500 = 420 / 500 = 0.84
#   GRR  = (min(200, 100) + min(120, 200) + 0 + min(100, 100)) / 500 = 320 / 500 = 0.64
# September 2026 (the prior period), base September 2025 = R1 100, R2 200, R3 100 (3 customers, 400):
#   logo = 2 / 3;  NRR = (200 + 200 + 0) / 400 = 1.0;  GRR = (100 + 200 + 0) / 400 = 0.75
TRAILING_OCT = {"logo_retention_12m": (0.75, 2 / 3), "nrr_12m": (0.84, 1.0), "grr_12m": (0.64, 0.75)}


@pytest.mark.parametrize("key", sorted(TRAILING_OCT))
def test_trailing_retention_kpis_on_a_ledger_with_churn_contraction_and_expansion(key):
    value, prior = TRAILING_OCT[key]
    row = retention_card().loc[key]
    assert row["value"] == pytest.approx(value, abs=1e-12)
    assert row["prior_value"] == pytest.approx(prior, abs=1e-12)
    assert row["change"] == pytest.approx(value - prior, abs=1e-12)


def test_trailing_retention_kpis_are_sized_by_their_base_customers():
    c = card(retention_frames())  # not the cached card: see test_the_card_gives_the_size_of_each_rate_and_average
    assert c.loc[["logo_retention_12m", "nrr_12m", "grr_12m"], "n"].tolist() == [4, 4, 4]  # October 2025's base
    assert c.loc[["logo_retention_12m", "nrr_12m", "grr_12m"], "prior_n"].tolist() == [3, 3, 3]  # September 2025's
    # the sums of deal amounts and the win rate by amount: see the next test; O4 (expansion) is no new business
    assert c.loc["avg_revenue_per_new_customer", "se"] == pytest.approx(12000.0)


def test_sums_of_deal_amounts_carry_their_standard_error():
    """√Σ amount² of the deals won in the window: October holds O1 (new business, 12,000) and O4 (expansion,
    3,000); September none. The win rate by amount, won / (won + lost) with 15,000 won and O2's 5,000 lost, by
    the delta method: √(lost² Σwon² + won² Σlost²) / closed² = √(5,000² × 153M + 15,000² × 25M) / 20,000²."""
    c = card(retention_frames())
    assert c.loc["revenue_won", "se"] == pytest.approx(math.sqrt(12000 ** 2 + 3000 ** 2))
    assert c.loc["expansion_revenue", "se"] == 3000.0
    assert c.loc[["revenue_won", "expansion_revenue"], "prior_se"].tolist() == [0.0, 0.0]
    assert c.loc["win_rate_amount", "value"] == pytest.approx(15000 / 20000)
    assert c.loc["win_rate_amount", "se"] == pytest.approx(
        math.sqrt(5000 ** 2 * (12000 ** 2 + 3000 ** 2) + 15000 ** 2 * 5000 ** 2) / 20000 ** 2)
    assert math.isnan(c.loc["win_rate_amount", "prior_se"])  # nothing closed in September
    assert c.loc[["leads", "open_pipeline", "win_rate", "revenue_won:core"], "se"].isna().all()


def test_logo_retention_nrr_and_grr_are_three_different_numbers():
    c = retention_card()
    values = [c.loc[k, "value"] for k in ("logo_retention_12m", "nrr_12m", "grr_12m")]
    assert len({round(v, 9) for v in values}) == 3


def test_expansion_revenue_counts_won_expansion_deals_only():
    c = retention_card()
    assert c.loc["expansion_revenue", "value"] == 3000.0  # O4
    assert c.loc["expansion_revenue", "prior_value"] == 0.0
    assert c.loc["revenue_won", "value"] == 15000.0  # O1 12000 + O4 3000
    assert c.loc["revenue_won:expansion", "value"] == 3000.0
    assert c.loc["avg_revenue_per_new_customer", "value"] == 12000.0  # new business only: O1 / 1 new customer
    assert c.loc["new_customers", "value"] == 1  # an expansion deal makes no new customer
    assert c.loc["win_rate", "value"] == pytest.approx(2 / 3)  # O1, O4 won; O2 lost


# ---------------------------------------------------------------------------
# Statuses: higher- and lower-is-better, additive (pro-rated) and not, thresholds, MTD / QTD views
# ---------------------------------------------------------------------------

#: Company targets for October 2026 and Q4 2026; the values they are compared with are EXPECTED_OCT's.
STATUS_TARGETS = {
    "2026-10": {"sessions": 2000.0, "leads": 3.1, "opportunities_created": 2.2, "revenue_won": 12900.0,
                "email_open_rate": 0.27, "win_rate": 0.52, "ces": 2.5, "cac": 2000.0, "cost_per_lead": 350.0,
                "first_response_hours": 1.5, "sales_cycle_days": 20.0},
    "2026-Q4": {"revenue_won": 38000.0, "win_rate": 0.45},
}


def status_frames():
    f = valid_frames()
    rows = [(p, m, t) for p, targets in STATUS_TARGETS.items() for m, t in targets.items()]
    f["targets"] = pd.DataFrame({"period": [r[0] for r in rows], "metric": [r[1] for r in rows],
                                 "target": [r[2] for r in rows], "segment": [None] * len(rows)})
    return f


def status_card(as_of=None):
    key = ("status", as_of)
    if key not in _CACHE:
        _CACHE[key] = card(status_frames(), as_of=as_of, prior=False)
    return _CACHE[key]


# Whole October (as_of = the period end, nothing pro-rated away). ratio = value / target, or target / value
# when lower is better; on track >= 0.95, at risk >= 0.85, else off track.
FULL_MONTH_STATUS = {
    "sessions": "off track",               # 1400 / 2000 = 0.70
    "leads": "on track",                   # 3 / 3.1 = 0.968
    "opportunities_created": "at risk",    # 2 / 2.2 = 0.909 (on track if the threshold were 0.90)
    "revenue_won": "at risk",              # 12000 / 12900 = 0.930
    "email_open_rate": "at risk",          # 0.25 / 0.27 = 0.926 (a rate: never pro-rated)
    "win_rate": "on track",                # 0.5 / 0.52 = 0.962
    "ces": "off track",                    # 2 / 2.5 = 0.80 (higher is better: CES 2.0)
    "cac": "on track",                     # lower is better: 2000 / 1120 = 1.79 (1120 / 2000 = 0.56 if not inverted)
    "cost_per_lead": "at risk",            # lower is better: 350 / (1120 / 3) = 0.9375 (1.067 if not inverted)
    "first_response_hours": "off track",   # lower is better: 1.5 / 2 = 0.75 (1.33 if not inverted)
    "sales_cycle_days": "on track",        # lower is better: 20 / 16 = 1.25 (0.80 if not inverted)
    "csat": "no target",
}


@pytest.mark.parametrize("key,status", sorted(FULL_MONTH_STATUS.items()))
def test_status_of_each_kpi_kind_over_the_whole_month(key, status):
    assert status_card().loc[key, "status"] == status


def test_share_of_goal_is_what_the_status_judges():
    """``share_of_goal``: 1 = goal met, lower = worse, inverted where lower is better, pro-rated for additive KPIs
    in mid-month; the status is its band (>= 0.95 on track, >= 0.85 at risk, else off track)."""
    for as_of in (None, "2026-10-21"):
        c = status_card(as_of) if as_of else status_card()
        judged = c[c["status"].isin(["on track", "at risk", "off track"])]
        assert len(judged) >= 6
        band = judged["share_of_goal"].map(lambda x: "on track" if x >= 0.95 else "at risk" if x >= 0.85
                                           else "off track")
        assert (band == judged["status"]).all(), judged[["status", "share_of_goal"]]
        assert c.loc[~c["status"].isin(["on track", "at risk", "off track"]), "share_of_goal"].isna().all()
    c = status_card()
    assert c.loc["first_response_hours", "share_of_goal"] == pytest.approx(0.75)  # 1.5 h target / 2 h
    # the card says which way is better, for an analyst's own ordering
    assert c["higher_is_better"].map(type).eq(bool).all()
    assert not c.loc["cac", "higher_is_better"] and not c.loc["first_response_hours", "higher_is_better"]
    assert c.loc["leads", "higher_is_better"] and c.loc["win_rate", "higher_is_better"]
    assert status_card("2026-10-21").loc["revenue_won", "share_of_goal"] == pytest.approx(12000 / (12900 * 20 / 31))


def test_what_needs_attention_lists_the_worst_first_within_each_status():
    """The Q3 demo page listed Website sessions (93.6% of target) before Revenue won (90.5%): the card's order,
    marketing first, under a heading that says worst first."""
    from revops_lib.periods import parse_period

    card = pd.DataFrame({
        "kpi": ["sessions", "opportunities_created", "revenue_won", "cac", "leads"],
        "value": [93.6, 93.1, 90.5, 118.0, 50.0], "target": [100.0, 100.0, 100.0, 100.0, 100.0],
        "unit": ["count", "count", "currency", "currency", "count"],
        "pct_of_target": [0.936, 0.931, 0.905, 1.18, 0.5],
        "status": ["at risk", "at risk", "at risk", "off track", "off track"],
        "share_of_goal": [0.936, 0.931, 0.905, 100 / 118, 0.5]})
    sc = scorecard_section.Scorecard(period=parse_period("2026-Q3"), as_of=pd.Timestamp("2026-10-01"), card=card,
                                     history=pd.DataFrame(), pacing_views=[])
    text = sc.attention().text
    order = [text.index(f"**{name}**") for name in ("Leads", "CAC", "Revenue won", "Opportunities created",
                                                      "Website sessions")]
    assert order == sorted(order), text


def test_cac_below_target_is_on_track():
    c = status_card()
    assert c.loc["cac", "value"] == 1120.0 and c.loc["cac", "target"] == 2000.0
    assert c.loc["cac", "status"] == "on track"
    assert c.loc["cac", "pct_of_target"] == pytest.approx(1120 / 2000)  # pct_of_target itself is value / target


def test_first_response_slower_than_target_is_off_track():
    assert status_card().loc["first_response_hours", "status"] == "off track"  # 2 h vs 1.5 h


# As of 2026-10-21 (20 of 31 days elapsed): additive KPIs against target × 20/31, rates against the full target.
MID_MONTH_STATUS = {
    "revenue_won": "on track",             # 12000 (O1 closed 10-20) / (12900 × 20/31 = 8322.6) = 1.44
    "sessions": "on track",                # 1400 / (2000 × 20/31 = 1290.3) = 1.085 (0.70 if not pro-rated)
    "opportunities_created": "on track",   # 2 / (2.2 × 20/31 = 1.419) = 1.41
    "email_open_rate": "at risk",          # 0.25 / 0.27 = 0.926: a rate is not pro-rated (1.44 if it were)
    "win_rate": "on track",                # O1 won, O2 lost by 10-21: 0.5 / 0.52
    "cac": "on track",                     # 1120 / 1 new customer (O1) vs 2000, lower is better
    "first_response_hours": "no data",     # the tickets are created on 10-22 and 10-23
    "ces": "no data",
}


@pytest.mark.parametrize("key,status", sorted(MID_MONTH_STATUS.items()))
def test_status_in_mid_month_pro_rates_additive_kpis_only(key, status):
    assert status_card("2026-10-21").loc[key, "status"] == status


def test_pacing_in_mid_month_pro_rates_counts_and_money_but_not_rates():
    p = scorecard.pacing(status_frames(), period="2026-10", as_of="2026-10-21").set_index("kpi")
    assert set(p.index) == set(STATUS_TARGETS["2026-10"])
    rev = p.loc["revenue_won"]
    assert (rev["elapsed_days"], rev["total_days"], rev["actual_to_date"]) == (20.0, 31, 12000.0)
    assert rev["prorated_target"] == pytest.approx(12900 * 20 / 31)
    assert rev["pct_of_prorated"] == pytest.approx(12000 / (12900 * 20 / 31))  # 1.4419
    assert rev["weeks_left"] == pytest.approx(1.57)  # 11 days / 7, rounded to 2 decimals
    assert rev["weekly_run_rate_needed"] == pytest.approx((12900 - 12000) / (11 / 7))  # 572.73
    assert rev["still_needed"] == pytest.approx(900.0)
    assert rev["status"] == "on track"
    rate = p.loc["email_open_rate"]
    assert rate["prorated_target"] == 0.27 and rate["pct_of_prorated"] == pytest.approx(0.25 / 0.27)
    assert math.isnan(rate["weekly_run_rate_needed"]) and rate["status"] == "at risk"
    assert math.isnan(rate["still_needed"])  # a rate has no gap to add up
    cac = p.loc["cac"]
    assert cac["prorated_target"] == 2000.0 and cac["pct_of_prorated"] == pytest.approx(1120 / 2000)
    assert cac["status"] == "on track"
    assert p.loc["first_response_hours", "status"] == "no data"


def _boundary_card(value, target, kpi):
    k = scorecard.KPI_BY_KEY[kpi]
    return pd.DataFrame({"kpi": [kpi], "label": [k.label], "unit": [k.unit], "value": [float(value)],
                         "target": [float(target)]})


@pytest.mark.parametrize("kpi,value,target,status", [
    ("leads", 19, 20, "on track"),            # 19 / 20 = 0.95 exactly: on track
    ("leads", 18.9, 20, "at risk"),           # 0.945
    ("leads", 17, 20, "at risk"),             # 0.85 exactly: at risk
    ("leads", 16.9, 20, "off track"),         # 0.845
    ("win_rate", 0.475, 0.5, "on track"),     # a rate: 0.95 (ratios chosen to be exact in binary floats)
    ("win_rate", 0.45, 0.5, "at risk"),       # 0.90: at risk, not on track
    ("win_rate", 0.425, 0.5, "at risk"),      # 0.85
    ("cac", 20, 19, "on track"),              # lower is better: 19 / 20 = 0.95
    ("cac", 20, 18, "at risk"),               # 18 / 20 = 0.90
    ("cac", 18, 20, "on track"),              # below target: 20 / 18 = 1.11
    ("cac", 20, 16.9, "off track"),           # 0.845
    ("cost_per_lead", 20, 17, "at risk"),     # 0.85 exactly
    ("first_response_hours", 4, 2, "off track"),  # twice the target: 0.5
    ("first_response_hours", 1, 2, "on track"),
])
def test_status_thresholds_at_95_and_85_percent(kpi, value, target, status):
    p = scorecard.pacing(status_frames(), period="2026-10", card=_boundary_card(value, target, kpi))
    assert p["status"].item() == status

@pytest.mark.parametrize("kpi,value,target,status", [
    ("leads", 5, 0, "no target"),               # a zero target is no target
    ("new_customers", 1, 1, "on track"),        # a target of 1 is a target: 1 / 1
    ("csat", 0.9, 1.0, "at risk"),              # 0.9 / 1.0
])
def test_status_needs_a_nonzero_target(kpi, value, target, status):
    p = scorecard.pacing(status_frames(), period="2026-10", card=_boundary_card(value, target, kpi))
    assert p["status"].item() == status


#: Whole October, each KPI the only one with a target: pacing computes just it (and what it needs).
ALONE = dict(EXPECTED_OCT)


@pytest.mark.parametrize("key", sorted(ALONE))
def test_pacing_computes_a_kpi_that_is_the_only_one_with_a_target(key):
    f = valid_frames()
    f["targets"] = pd.DataFrame({"period": ["2026-10"], "metric": [key], "target": [1000.0], "segment": [None]})
    p = scorecard.pacing(f, period="2026-10")
    assert p["kpi"].tolist() == [key]
    row = p.iloc[0]
    assert row["actual_to_date"] == pytest.approx(ALONE[key])
    assert (row["label"], row["unit"]) == (scorecard.KPI_BY_KEY[key].label, scorecard.KPI_BY_KEY[key].unit)


def monthly_report():
    if "analyze_month" not in _CACHE:
        _CACHE["analyze_month"] = scorecard_section.analyze(status_frames(), period="2026-10", history_periods=2)
    return _CACHE["analyze_month"]


def test_quarter_to_date_view_of_a_monthly_report_pro_rates_the_quarter_target():
    views = dict(monthly_report().pacing_views)
    assert list(views) == ["Month 2026-10", "Quarter 2026-Q4 to date"]
    qtd = views["Quarter 2026-Q4 to date"].set_index("kpi")
    assert set(qtd.index) == {"revenue_won", "win_rate"}
    rev = qtd.loc["revenue_won"]
    # Q4: 92 days, 31 elapsed at 2026-11-01; 12000 won to date (O1)
    assert (rev["elapsed_days"], rev["total_days"], rev["actual_to_date"]) == (31.0, 92, 12000.0)
    assert rev["prorated_target"] == pytest.approx(38000 * 31 / 92)  # 12804.35
    assert rev["pct_of_prorated"] == pytest.approx(12000 / (38000 * 31 / 92))  # 0.937
    assert rev["status"] == "at risk"  # 0.937 < 0.95 (on track at 0.90; off track against the whole 38000)
    assert rev["weeks_left"] == pytest.approx(8.71)  # 61 / 7
    assert rev["weekly_run_rate_needed"] == pytest.approx((38000 - 12000) / (61 / 7))  # 2983.6
    wr = qtd.loc["win_rate"]  # a rate: the full quarter target
    assert wr["actual_to_date"] == 0.5 and wr["prorated_target"] == 0.45 and wr["status"] == "on track"
    month = views["Month 2026-10"].set_index("kpi")
    assert month.loc["revenue_won", "prorated_target"] == 12900.0
    assert month.loc["revenue_won", "pct_of_prorated"] == pytest.approx(12000 / 12900)
    assert month.loc["revenue_won", "status"] == "at risk"


def test_month_to_date_view_of_a_weekly_report_runs_to_the_end_of_the_week():
    result = scorecard_section.analyze(status_frames(), period="2026-W43", history_periods=2)
    ((title, mtd),) = result.pacing_views
    assert title == "Month 2026-10 to date"
    mtd = mtd.set_index("kpi")
    rev = mtd.loc["revenue_won"]
    # W43 = 2026-10-19 .. 10-25: as of 2026-10-26, 25 of 31 days; O1 (closed 10-20) is in
    assert rev["as_of"] == pd.Timestamp("2026-10-26") and rev["elapsed_days"] == 25.0
    assert rev["actual_to_date"] == 12000.0
    assert rev["prorated_target"] == pytest.approx(12900 * 25 / 31)  # 10403.2
    assert rev["pct_of_prorated"] == pytest.approx(12000 / (12900 * 25 / 31))  # 1.153
    assert rev["status"] == "on track"  # at risk against the whole month's 12900
    assert rev["weekly_run_rate_needed"] == pytest.approx((12900 - 12000) / (6 / 7))  # 1050
    assert rev["still_needed"] == pytest.approx(900.0)
    # the tickets of 10-22 and 10-23 are before 10-26: first response 2 h vs 1.5 h, lower is better
    assert mtd.loc["first_response_hours", "actual_to_date"] == 2.0
    assert mtd.loc["first_response_hours", "status"] == "off track"  # 1.5 / 2 = 0.75
    assert mtd.loc["cac", "status"] == "on track"  # 2000 / 1120
    assert mtd.loc["sessions", "prorated_target"] == pytest.approx(2000 * 25 / 31)
    assert mtd.loc["sessions", "status"] == "at risk"  # 1400 / 1612.9 = 0.868


def test_big_moves_list_moves_beyond_noise_with_or_without_a_target():
    """Hand-made card: thresholds ±25 % (relative) and ±5 pp (rates); counts also need an exact Poisson
    difference (p computed here from binomial coefficients, not by the library)."""
    from math import comb

    from revops_lib.metrics.scorecard import big_moves

    card = pd.DataFrame({
        "kpi": ["cac", "leads", "mqls", "win_rate", "csat", "expansion_revenue", "revenue_won:expansion", "sqls"],
        "unit": ["currency", "count", "count", "rate", "rate", "currency", "currency", "count"],
        "value": [159.0, 13.0, 145.0, 0.40, 0.93, 60.0, 1.0, 5.0],
        "prior_value": [100.0, 9.0, 100.0, 0.485, 0.90, 100.0, 100.0, 0.0],
        "target": [float("nan"), float("nan"), 120.0, 0.5] + [float("nan")] * 4})
    card["change"] = card["value"] - card["prior_value"]
    moves = big_moves(card)
    assert moves["kpi"].tolist() == ["cac", "mqls", "expansion_revenue", "win_rate"]
    # leads 9 → 13 (+44 %) is within noise: exact two-sided p of 13 in 22 at ½ is large
    p_leads = sum(comb(22, k) for k in range(22 + 1) if comb(22, k) <= comb(22, 13)) / 2 ** 22
    assert p_leads > 0.05
    p_mqls = sum(comb(245, k) for k in range(246) if comb(245, k) <= comb(245, 145)) / 2 ** 245
    assert moves.set_index("kpi").loc["mqls", "p_value"] == pytest.approx(p_mqls, rel=1e-6) and p_mqls < 0.05
    assert moves.set_index("kpi").loc["cac", "relative_change"] == pytest.approx(0.59)
    assert big_moves(card, change=0.6, points=0.1)["kpi"].tolist() == []  # the thresholds are parameters


def test_a_coverage_ratio_moves_relatively_not_in_points():
    """Next-period coverage is shown as a percentage but is not a share: 116 % → 124 % is a 7 % move, below the
    ±25 % threshold (it was listed as "+8.0 pp, beyond the ±5.0 pp threshold"); 246 % → 178 % is -28 %."""
    from revops_lib.metrics.scorecard import big_moves
    from revops_lib.periods import parse_period

    card = pd.DataFrame({"kpi": ["pipeline_coverage", "nrr_12m"], "unit": ["rate", "rate"],
                         "value": [1.242, 0.963], "prior_value": [1.162, 0.90], "target": [float("nan")] * 2})
    card["change"] = card["value"] - card["prior_value"]
    assert big_moves(card)["kpi"].tolist() == ["nrr_12m"]  # NRR, a rate read in points: +6.3 pp
    card.loc[0, ["value", "prior_value"]] = [1.776, 2.461]
    card["change"] = card["value"] - card["prior_value"]
    moves = big_moves(card).set_index("kpi")
    assert moves.loc["pipeline_coverage", "relative_change"] == pytest.approx(1.776 / 2.461 - 1)
    assert math.isnan(moves.loc["nrr_12m", "relative_change"])
    card["status"], card["pct_of_target"] = "no target", float("nan")
    sc = scorecard_section.Scorecard(period=parse_period("2026-10"), as_of=pd.Timestamp("2026-11-01"), card=card,
                                     history=pd.DataFrame(), pacing_views=[], moves=big_moves(card))
    text = sc.attention().text
    assert ("**Next-period coverage** moved -28% (246.1% → 177.6%), beyond the ±25% threshold; it has no target."
            in text)
    assert "**NRR (12 m)** moved +6.3 pp (90.0% → 96.3%), beyond the ±5.0 pp threshold" in text
    # a rate the registry does not know (a card built by hand) is read in points: +6 pp listed, +4 pp not
    own = pd.DataFrame({"kpi": ["my_rate", "other_rate"], "unit": ["rate", "rate"], "value": [0.46, 0.44],
                        "prior_value": [0.40, 0.40]}).assign(change=lambda d: d["value"] - d["prior_value"])
    assert big_moves(own)["kpi"].tolist() == ["my_rate"]


def test_an_average_over_too_few_items_is_no_move():
    """The 2026-W48 page listed "Review rating moved -25% (5.00 → 3.75), beyond the ±25% threshold": one review
    against four. A value that is not a count or a share, whose size the card gives (``n``, ``prior_n``), is
    listed only when both periods' sizes reach ``min_base`` (30)."""
    from revops_lib.metrics.scorecard import big_moves

    def card(reviews, customers, cycle=(40, 40)):
        c = pd.DataFrame({"kpi": ["review_rating", "avg_revenue_per_new_customer", "sales_cycle_days"],
                          "unit": ["score", "currency", "days"], "value": [3.75, 31800.0, 60.0],
                          "prior_value": [5.0, 16300.0, 40.0], "n": [reviews[0], customers[0], cycle[0]],
                          "prior_n": [reviews[1], customers[1], cycle[1]]})
        return c.assign(change=c["value"] - c["prior_value"])

    assert big_moves(card((4, 1), (26, 29), (29, 40)))["kpi"].tolist() == []
    assert big_moves(card((40, 31), (30, 30)))["kpi"].tolist() == ["avg_revenue_per_new_customer",
                                                                   "sales_cycle_days", "review_rating"]
    assert big_moves(card((40, 29), (29, 30), (40, 29)))["kpi"].tolist() == []  # one period below is enough
    assert big_moves(card((4, 1), (26, 29)), min_base=0)["kpi"].tolist() == ["avg_revenue_per_new_customer",
                                                                             "sales_cycle_days", "review_rating"]
    # one period's size unknown counts as too few; both unknown (a card built by hand) leaves the threshold
    assert big_moves(card((float("nan"), 40), (40, 40)))["kpi"].tolist() == ["avg_revenue_per_new_customer",
                                                                             "sales_cycle_days"]
    assert big_moves(card((float("nan"), float("nan")), (26, 29)))["kpi"].tolist() == ["sales_cycle_days",
                                                                                        "review_rating"]
    assert big_moves(card((4, 1), (26, 29)).drop(columns=["n", "prior_n"]))["kpi"].tolist() == [
        "avg_revenue_per_new_customer", "sales_cycle_days", "review_rating"]


def _fisher_two_sided(a, n, b, m):
    """Fisher's exact test of a of n against b of m, by hand: the hypergeometric probability of every table
    with the same margins, summed over those no more likely than the one seen."""
    from math import comb

    k = a + b
    prob = {x: comb(n, x) * comb(m, k - x) / comb(n + m, k) for x in range(max(0, k - m), min(n, k) + 1)}
    return sum(q for q in prob.values() if q <= prob[a] * (1 + 1e-7))


def test_a_share_moves_only_when_fishers_exact_test_says_so():
    """The 2026-W47 page listed "Win rate (count) moved +13.2 pp (41.2% → 54.4%)": 37 won of 68 closed against
    28 of 68, within noise. A share whose size the card gives is listed when it moves at least the threshold and
    the two shares differ by Fisher's exact test (p below ``alpha``); the p-value is computed here by hand."""
    from revops_lib.metrics.scorecard import big_moves

    def card(rows):
        c = pd.DataFrame(rows, columns=["kpi", "value", "n", "prior_value", "prior_n"]).assign(unit="rate")
        return c.assign(change=c["value"] - c["prior_value"])

    wins = card([("win_rate", 37 / 68, 68, 28 / 68, 68)])
    assert big_moves(wins).empty and _fisher_two_sided(37, 68, 28, 68) > 0.05
    assert big_moves(wins.drop(columns=["n", "prior_n"]))["kpi"].tolist() == ["win_rate"]  # size unknown
    csat = card([("csat", 45 / 58, 58, 55 / 59, 59), ("email_open_rate", 2100 / 10000, 10000, 2600 / 10000, 10000),
                 ("landing_conversion_rate", 0.08, 50, 0.02, 50)])
    moves = big_moves(csat).set_index("kpi")
    assert list(moves.index) == ["csat", "email_open_rate"]  # 4 of 50 against 1 of 50: within noise
    assert moves.loc["csat", "p_value"] == pytest.approx(_fisher_two_sided(45, 58, 55, 59), rel=1e-9)
    assert moves.loc["csat", "p_value"] < 0.05 and math.isnan(moves.loc["csat", "relative_change"])
    assert _fisher_two_sided(4, 50, 1, 50) > 0.05
    assert big_moves(csat, alpha=0.01).index.size == 1  # CSAT's p (0.019) is above 1 %
    assert big_moves(card([("csat", 1.0, 40, 0.5, float("nan"))])).empty  # one size unknown: no test can tell
    # one rated ticket is a size too: 1 of 1 satisfied against 0 of 100 is beyond chance (p = 1/101)
    one = big_moves(card([("csat", 1.0, 1, 0.0, 100)]))
    assert one["p_value"].tolist() == [pytest.approx(_fisher_two_sided(1, 1, 0, 100))] and 1 / 101 < 0.05
    # a rate the registry does not call a share (a hand-made key, NRR) is not tested: its sizes only need min_base
    assert big_moves(card([("my_rate", 0.46, 20, 0.40, 40), ("nrr_12m", 0.90, 29, 1.0, 40)])).empty
    assert big_moves(card([("my_rate", 0.46, 30, 0.40, 30), ("nrr_12m", 0.90, 30, 1.0, 40)]))["kpi"].tolist() == [
        "nrr_12m", "my_rate"]


def test_a_sum_of_deal_amounts_moves_only_beyond_its_compound_poisson_noise():
    """The 2026-W47 page listed "Revenue won moved +71% ($965.2k → $1.65M)": a week's revenue rests on a few
    dozen deals of very different sizes. A total with its standard error (√Σ amount²) is listed when the z-test
    of the difference says so; p computed here with the error function, not by the library."""
    from revops_lib.metrics.scorecard import big_moves

    def card(value, se, prior, prior_se):
        c = pd.DataFrame({"kpi": ["revenue_won"], "unit": ["currency"], "value": [value], "prior_value": [prior],
                          "se": [se], "prior_se": [prior_se]})
        return c.assign(change=c["value"] - c["prior_value"])

    def p_by_hand(value, se, prior, prior_se):
        return math.erfc(abs(value - prior) / math.sqrt(se ** 2 + prior_se ** 2) / math.sqrt(2))

    week = (1.65e6, 420e3, 965.2e3, 300e3)  # about 20 deals a week, a few large ones
    assert big_moves(card(*week)).empty and p_by_hand(*week) > 0.05  # z = 1.33
    month = (5.81e6, 800e3, 3.76e6, 600e3)
    moves = big_moves(card(*month))
    assert moves["kpi"].tolist() == ["revenue_won"]
    assert moves.loc[0, "p_value"] == pytest.approx(p_by_hand(*month), rel=1e-9) and p_by_hand(*month) < 0.05
    assert moves.loc[0, "relative_change"] == pytest.approx(5.81 / 3.76 - 1)
    assert big_moves(card(*month), alpha=0.01).empty  # p = 0.040
    assert big_moves(card(*week).drop(columns=["se", "prior_se"]))["kpi"].tolist() == ["revenue_won"]  # not given
    # the win rate by amount moves in points, its standard error from its sums: +10.2 pp on ±5.7 and ±5.5 is chance
    wra = card(0.549, 0.057, 0.447, 0.055).assign(kpi="win_rate_amount", unit="rate")
    assert big_moves(wra).empty and p_by_hand(0.549, 0.057, 0.447, 0.055) > 0.05
    assert big_moves(wra.assign(se=0.02, prior_se=0.02))["p_value"].iloc[0] == pytest.approx(
        p_by_hand(0.549, 0.02, 0.447, 0.02), rel=1e-9)


@pytest.mark.parametrize("kwargs", [dict(change=0.0), dict(points=0.0), dict(alpha=0.0), dict(alpha=1.0),
                                    dict(min_base=-1)])
def test_big_moves_reject_thresholds_that_are_not_positive(kwargs):
    from revops_lib.errors import ParameterError
    from revops_lib.metrics.scorecard import big_moves

    card = pd.DataFrame({"kpi": ["cac"], "unit": ["currency"], "value": [159.0], "prior_value": [100.0],
                         "change": [59.0]})
    with pytest.raises(ParameterError, match=r"^`change` and `points` must be positive, `alpha` between 0 and 1 and "
                                             r"`min_base` not negative\.$"):
        big_moves(card, **kwargs)


# ---------------------------------------------------------------------------
# Same period last year and year to date
# ---------------------------------------------------------------------------

def ytd_frames() -> dict[str, pd.DataFrame]:
    """March 2026 against March 2025 and the year to date (January to March 2026)."""
    leads = pd.DataFrame({"lead_id": [f"L{i}" for i in range(7)], "source": ["web"] * 7,
                          "created_at": ts("2025-03-10", "2025-03-20", "2025-12-31", "2026-01-05", "2026-02-10",
                                           "2026-02-11", "2026-03-03")})
    opps = pd.DataFrame({
        "opportunity_id": [f"O{i}" for i in range(7)],
        "created_at": ts("2025-02-01", "2025-12-01", "2026-01-10", "2026-02-01", "2026-02-20", "2026-03-01",
                         "2026-03-02"),
        "close_date": d("2025-03-15", "2026-01-20", "2026-02-15", "2026-03-10", "2026-03-12", "2026-03-20",
                        "2026-04-30"),
        "is_closed": [True, True, True, True, True, True, False], "is_won": [True, True, False, True, False, False,
                                                                                 False],
        "amount": [50.0, 100.0, 70.0, 300.0, 20.0, 30.0, 500.0], "type": ["new_business"] * 7,
        "account_id": [f"A{i}" for i in range(7)]})
    targets = pd.DataFrame({
        "period": ["2026-01", "2026-02", "2026-03", "2026-01", "2026-03", "2026-01", "2026-03", "2026-03"],
        "metric": ["leads", "leads", "leads", "win_rate", "win_rate", "revenue_won", "revenue_won", "leads"],
        "target": [2.0, 2.0, 3.0, 0.5, 0.4, 100.0, 200.0, 99.0],
        "owner": [None] * 7 + ["ana"]})  # a quota row: never part of the company's year to date
    return {"leads": leads, "opportunities": opps, "targets": targets}


def test_last_year_and_year_to_date_by_hand():
    c = card(ytd_frames(), period="2026-03", breakdowns=False)
    assert c.loc["leads", ["value", "last_year_value", "ytd_value", "ytd_target"]].tolist() == [1, 2, 4, 7]
    # a rate over the year to date is recomputed from its numerator and denominator: 2 won of 5 closed (the
    # mean of the monthly rates, 1, 0 and 1/3, would be 0.44); its target is the days-weighted mean of the
    # months that have one (January 0.5 and March 0.4, 31 days each)
    assert c.loc["win_rate", "value"] == pytest.approx(1 / 3) and c.loc["win_rate", "last_year_value"] == 1.0
    assert c.loc["win_rate", "ytd_value"] == pytest.approx(0.4) and c.loc["win_rate", "ytd_target"] == pytest.approx(0.45)
    assert c.loc["revenue_won", ["ytd_value", "last_year_value"]].tolist() == [400.0, 50.0]
    assert math.isnan(c.loc["revenue_won", "ytd_target"])  # February has no revenue target: no sum to compare with
    # a stock measured at one instant has no year to date
    assert c.loc["open_pipeline", "value"] == 500.0 and math.isnan(c.loc["open_pipeline", "ytd_value"])
    assert c.loc["open_pipeline", "last_year_value"] == 0.0  # at 2025-04-01 the one deal of 2025 had closed
    assert math.isnan(card(ytd_frames(), period="2026-03", comparisons=False).loc["leads", "ytd_value"])


def test_a_period_in_progress_compares_with_last_years_same_days_and_a_pro_rated_ytd_target():
    c = card(ytd_frames(), period="2026-03", as_of="2026-03-16", breakdowns=False)
    # 15 of March's 31 days: last year's March until the 16th holds one lead (the 20th's comes later)
    assert c.loc["leads", ["value", "last_year_value", "ytd_value"]].tolist() == [1, 1, 4]
    assert c.loc["leads", "ytd_target"] == pytest.approx(2 + 2 + 3 * 15 / 31)
    assert c.loc["revenue_won", "ytd_value"] == 400.0  # won on 03-10, before the cut-off


def test_the_scorecard_report_shows_last_year_and_ytd_and_keeps_its_sparklines_to_the_history():
    sc = scorecard_section.analyze(ytd_frames(), period="2026-03", history_periods=3)
    assert list(sc.published().columns[-3:]) == ["last_year_value", "ytd_value", "ytd_target"]
    assert list(dict.fromkeys(sc.history["period"])) == ["2026-01", "2026-02", "2026-03"]
    s = sc.summary().set_index("kpi")
    assert s.loc["leads", ["last_year_value", "ytd_value", "ytd_target"]].tolist() == [2, 4, 7]
    styled = sc.function_table("marketing")
    html = styled.to_html()
    assert "YTD target" in html and "Last year" in html
    status = list(styled.data.columns).index("status")
    css = {(r, c): dict(p) for (r, c), p in styled._compute().ctx.items()}
    assert all(css[(r, status)].get("white-space") == "nowrap" for r in range(len(styled.data)))  # one line
    names = [n for n, _ in footnotes("revops_scorecard")]
    assert {"Same period last year", "Year to date (YTD)", "YTD target"} <= set(names)


def test_the_index_summary_shows_last_year_and_the_year_to_date(tmp_path):
    """The executive summary of ``reports/index.html``: last year, YTD and its target beside each KPI, status last;
    a summary CSV written before these columns existed still renders (blank)."""
    import json

    from revops_lib.periods import parse_period
    from revops_lib.runner.index import executive_summary

    d = tmp_path / "2026-03"
    (d / "tables" / "revops_scorecard").mkdir(parents=True)
    (d / "revops_scorecard.html").write_text("<html></html>")
    (d / "manifest.json").write_text(json.dumps({"revops_scorecard": {"status": "ok"}}))
    csv = d / "tables" / "revops_scorecard" / "executive_summary.csv"
    sc = scorecard_section.analyze(ytd_frames(), period="2026-03", history_periods=3)
    sc.summary().to_csv(csv, index=False)
    html = executive_summary([(parse_period("2026-03"), d)])
    assert "<th>Change</th><th>Last year</th><th>Year to date</th><th>YTD target</th><th>Status</th>" in html
    assert "<td>Leads</td><td class=num><b>1</b></td><td class=num>3</td><td class=num>-1</td>" \
           "<td class=num>2</td><td class=num>4</td><td class=num>7</td>" in html
    sc.summary().drop(columns=["last_year_value", "ytd_value", "ytd_target"]).to_csv(csv, index=False)
    assert "<td class=num>—</td><td class=num>—</td><td class=num>—</td>" in executive_summary(
        [(parse_period("2026-03"), d)])


@pytest.mark.parametrize("period, to_date, as_of", [("2026-10", "2026-Q4", None), ("2026-W42", "2026-10", None),
                                                    ("2026-10", "2026-Q4", "2026-10-20")])
def test_pacing_from_the_history_query_equals_pacing_on_its_own(demo_dir, period, to_date, as_of):
    """The report's period-to-date pacing view comes from the KPI history's query (its ``also`` window): the
    same table as pacing computed on its own; and the shared DealHistory gives the same coverage."""
    from revops_lib.metrics.deal_history import prepare
    from revops_lib.periods import parse_period, resolve_as_of
    from revops_lib.sources import open_source

    src = open_source(demo_dir)
    p = parse_period(period)
    cut = min(resolve_as_of(p, as_of), p.end_naive)
    with prepare(src, scopes=False) as deals:
        h = scorecard.kpi_history(src, period=p, as_of=cut, periods=2, also=[(to_date, cut)], deals=deals)
    alone = scorecard.kpi_history(src, period=p, as_of=cut, periods=2)
    pd.testing.assert_frame_equal(h[h["period"] != to_date].reset_index(drop=True), alone, check_like=True)
    got = scorecard.pacing_from_history(src, h, period=to_date, as_of=cut)
    pd.testing.assert_frame_equal(got, scorecard.pacing(src, period=to_date, as_of=cut))
    assert len(got) > 3


def test_pacing_from_history_falls_back_when_coverage_has_a_target():
    f = valid_frames()
    f["targets"] = pd.concat([f["targets"], pd.DataFrame(
        {"period": ["2026-Q4"], "metric": ["pipeline_coverage"], "target": [3.0], "segment": [None]})],
        ignore_index=True)
    cut = pd.Timestamp("2026-11-01")
    h = scorecard.kpi_history(f, period="2026-10", periods=1, also=[("2026-Q4", cut)])
    q4 = h[(h["period"] == "2026-Q4") & (h["kpi"] == "pipeline_coverage")]
    assert q4["value"].isna().all()  # coverage: the report period's only, so pacing computes it on its own
    got = scorecard.pacing_from_history(f, h, period="2026-Q4", as_of=cut)
    pd.testing.assert_frame_equal(got, scorecard.pacing(f, period="2026-Q4", as_of=cut))
    assert "pipeline_coverage" in set(got["kpi"])


def test_what_needs_attention_on_the_last_day_names_the_gap_not_a_weekly_rate():
    """A week report on a month's last day read "Leads needs 1,969 per week for the remaining 0.1 weeks": seven
    times the 281 leads actually missing. Under a week left, the finding names what is missing and the days."""
    from revops_lib.periods import parse_period

    card = pd.DataFrame({"kpi": ["leads"], "value": [100.0], "unit": ["count"], "target": [120.0],
                         "pct_of_target": [100 / 120], "status": ["on track"]})

    def view(elapsed, actual, target):
        weeks = (30 - elapsed) / 7
        return pd.DataFrame({"kpi": ["leads", "revenue_won"], "unit": ["count", "currency"],
                             "elapsed_days": [elapsed] * 2, "total_days": [30] * 2,
                             "actual_to_date": actual, "target": target, "weeks_left": [round(weeks, 2)] * 2,
                             "still_needed": [t - a for a, t in zip(actual, target)],
                             "weekly_run_rate_needed": [(t - a) / weeks for a, t in zip(actual, target)],
                             "status": ["at risk"] * 2})

    sc = scorecard_section.Scorecard(period=parse_period("2026-W48"), as_of=pd.Timestamp("2026-11-30"), card=card,
                                     history=pd.DataFrame(), pacing_views=[
                                         ("Month 2026-11 to date", view(29.0, [1860.0, 5.61e6], [2141.0, 6.58e6])),
                                         ("Quarter 2026-Q4 to date", view(16.0, [1000.0, 3e6], [1700.0, 6.5e6]))])
    text = sc.attention().text
    assert "Month 2026-11 to date: **Leads** needs 281 more in the remaining 1 day to reach 2,141." in text
    assert "**Revenue won** needs $970.0k more in the remaining 1 day to reach $6.58M." in text
    # two weeks left: a weekly run-rate, as METRICS.md defines it (700 in 2 weeks: 350 per week)
    assert "Quarter 2026-Q4 to date: **Leads** needs 350 per week for the remaining 2.0 weeks to reach 1,700." in text
    assert "per week for the remaining 0.1 weeks" not in text


def test_the_pacing_table_shows_what_is_still_needed_and_explains_a_part_week():
    """On 2026-11-30, one day before the month's end, "needed per week" read 1,969 leads for a gap of 281: the
    pace a full week would need. The table now shows the gap itself (still needed) beside it and, with less than a
    week left, a caption saying which is which; rates have neither."""
    from revops_lib.periods import parse_period

    def view(elapsed, actual, target):
        weeks = (30 - elapsed) / 7 or float("nan")  # over: no pace (pacing() gives NaN)
        return pd.DataFrame({"kpi": ["leads", "revenue_won", "win_rate"], "unit": ["count", "currency", "rate"],
                             "elapsed_days": [elapsed] * 3, "total_days": [30] * 3,
                             "actual_to_date": actual, "target": target, "prorated_target": target,
                             "weeks_left": [round(weeks, 2)] * 3,
                             "still_needed": [target[0] - actual[0], max(target[1] - actual[1], 0), float("nan")],
                             "weekly_run_rate_needed": [(target[0] - actual[0]) / weeks,
                                                        max(target[1] - actual[1], 0) / weeks, float("nan")],
                             "status": ["at risk", "on track", "on track"]})

    def table(elapsed, actual, target):
        sc = scorecard_section.Scorecard(period=parse_period("2026-11"), as_of=pd.Timestamp("2026-11-30"),
                                         card=pd.DataFrame(), history=pd.DataFrame(),
                                         pacing_views=[("Month 2026-11 to date", view(elapsed, actual, target))])
        styled = sc.pacing_table()
        return styled.data, styled.to_html()

    data, html = table(29.0, [1860.0, 7e6, 0.5], [2141.0, 6.58e6, 0.55])
    assert data["still needed"].tolist() == ["281", "$0", "—"]
    assert data["needed per week"].tolist() == ["1,967", "$0", "—"]
    assert list(data.columns).index("still needed") == list(data.columns).index("needed per week") - 1
    assert ("<caption>Less than a week is left (1 day): still needed is what it must bring; needed per week is the "
            "pace a full week would need to bring it.</caption>") in html
    assert "(less than a day)" in table(29.5, [1860.0, 7e6, 0.5], [2141.0, 6.58e6, 0.55])[1]
    data, html = table(16.0, [1000.0, 3e6, 0.5], [1700.0, 6.5e6, 0.55])  # two weeks left: no caption
    assert data["still needed"].tolist() == ["700", "$3.50M", "—"] and "<caption>" not in html
    # a period that is over (the month view of a month report) has no pro-rated target, gap or pace to show:
    # three columns of dashes and a copy of the target were left out
    data, html = table(30.0, [1860.0, 7e6, 0.5], [2141.0, 6.58e6, 0.55])
    assert list(data.columns) == ["KPI", "actual", "target", "status"]
    assert data["target"].tolist() == ["2,141", "$6.58M", "55.0%"] and data["actual"].tolist()[0] == "1,860"
    assert "<caption>The period is over: each KPI against its full target.</caption>" in html


def test_share_of_goal_by_hand_is_nan_without_a_goal():
    """``_share`` directly: NaN for no target, a zero target (either direction: a lower-is-better KPI with target
    0 would read 0, "off track", not "no target"), no value, or an additive KPI before its period starts."""
    from revops_lib.metrics.kpis import KPI_BY_KEY
    from revops_lib.metrics.scorecard import _share

    leads, cac, rate = KPI_BY_KEY["leads"], KPI_BY_KEY["cac"], KPI_BY_KEY["win_rate"]
    for k in (leads, cac, rate):
        for target in (None, math.nan, 0.0):
            assert math.isnan(_share(k, 50.0, target, 0.5)), (k.key, target)
        assert math.isnan(_share(k, math.nan, 100.0, 0.5)), k.key
    assert math.isnan(_share(leads, 50.0, 100.0, 0.0))  # additive, nothing elapsed
    assert _share(rate, 0.5, 0.55, 0.0) == pytest.approx(0.5 / 0.55)  # a rate does not pro-rate
    assert _share(leads, 50.0, 100.0, 0.5) == pytest.approx(1.0)  # 50 of a pro-rated 50
    assert _share(cac, 120.0, 100.0, 0.5) == pytest.approx(100 / 120)  # lower is better: goal / value
