"""Scorecard KPIs on hand-computed frames; targets, pacing and absent tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from conftest import valid_frames
from revops_lib import scorecard as sc
from revops_lib.report import footnotes


_CACHE = {}


def card(frames, period="2026-10", **kw):
    return sc.scorecard(frames, period=period, **kw).set_index("kpi")


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


def test_breakdowns_use_key_value():
    c = card(valid_frames())
    assert c.loc["leads:organic_search", "value"] == 1
    assert c.loc["sessions:paid_search", "value"] == 400
    assert c.loc["revenue_won:new_business", "value"] == 12000
    assert c.loc["revenue_won:core", "value"] == 12000


def test_every_metrics_md_key_is_present_when_tables_are():
    keys = set(card(valid_frames()).index)
    metrics_keys = {"sessions", "leads", "mqls", "sqls", "landing_conversion_rate", "email_open_rate",
                    "email_click_rate", "cost_per_lead", "opportunities_created", "first_meetings", "proposals",
                    "open_pipeline", "revenue_won", "new_customers", "avg_revenue_per_new_customer", "win_rate",
                    "sales_cycle_days", "cac", "csat", "ces", "first_response_hours", "new_reviews",
                    "review_rating", "customers_reached", "logo_retention_12m", "nrr_12m", "grr_12m"}
    assert metrics_keys <= keys


def test_published_columns_and_functions():
    df = sc.kpi_values(valid_frames(), period="2026-10")
    assert list(df.columns) == ["function", "indicator", "kpi", "period", "value", "target", "pct_of_target",
                                "prior_value", "change", "unit"]
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
    result = sc.analyze(f, period="2026-10")
    keys = set(result.card.kpi)
    assert "new_reviews" not in keys and "sessions" not in keys and "landing_conversion_rate" not in keys
    assert any("reviews" in n and "new_reviews" in n for n in result.notes)


@pytest.mark.parametrize("as_of,elapsed,status", [
    ("2026-10-01", 0.0, "not started"),
    ("2026-10-02", 1.0, None),
    ("2026-11-01", 31.0, None),
])
def test_pacing_at_first_and_last_day(as_of, elapsed, status):
    f = valid_frames()
    p = sc.pacing(f, period="2026-10", as_of=as_of).set_index("kpi")
    row = p.loc["revenue_won"]
    assert row["elapsed_days"] == pytest.approx(elapsed)
    assert row["prorated_target"] == pytest.approx(15000 * elapsed / 31)
    if status:
        assert row["status"] == status
    if elapsed == 31.0:
        assert row["weeks_left"] == 0 and math.isnan(row["weekly_run_rate_needed"])
        assert row["status"] == "off track"  # 12000 / 15000 = 0.8 < 0.85
    if elapsed == 1.0:
        assert row["weekly_run_rate_needed"] == pytest.approx((15000 - 0) / (30 / 7))


def test_footnotes_define_every_kpi():
    names = " ".join(n for n, _ in footnotes("revops_scorecard"))
    for k in sc.KPIS:
        assert f"`{k.key}`" in names
