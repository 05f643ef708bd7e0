"""revops_lib.metrics.pipeline and .forecast: hand-computed cases, reference cross-checks, properties and a PostgreSQL run."""

from __future__ import annotations

import datetime as dt
import doctest

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sklearn.metrics import mean_absolute_percentage_error

from revops_lib.errors import ParameterError, SchemaError
from revops_lib.metrics import deal_history, pipeline
from revops_lib.metrics import forecast as fc
from revops_lib.metrics.common import run
from revops_lib.present.sections import forecast as forecast_section

from conftest import naive_utc

D = dt.date.fromisoformat
STAGES = ["qualification", "discovery", "proposal", "negotiation"]


# ---------------------------------------------------------------------------
# Small builders
# ---------------------------------------------------------------------------

def opps_frame(rows):
    """rows: (id, created_at, close_date, is_closed, is_won, amount, team, owner, stage)."""
    cols = ["opportunity_id", "created_at", "close_date", "is_closed", "is_won", "amount", "team", "owner", "stage"]
    df = pd.DataFrame(rows, columns=cols)
    df["created_at"] = pd.to_datetime(df["created_at"])
    df["close_date"] = [D(x) for x in df["close_date"]]
    return df


def hist_frame(rows):
    """rows: (id, changed_at, stage, amount, close_date)."""
    df = pd.DataFrame(rows, columns=["opportunity_id", "changed_at", "stage", "amount", "close_date"])
    df["changed_at"] = pd.to_datetime(df["changed_at"])
    df["close_date"] = [D(x) for x in df["close_date"]]
    return df


def snaps_frame(rows):
    """rows: (snapshot_date, forecast_period, scope, category, amount)."""
    df = pd.DataFrame(rows, columns=["snapshot_date", "forecast_period", "scope", "category", "amount"])
    df["snapshot_date"] = [D(x) for x in df["snapshot_date"]]
    return df


def waterfall_case():
    """Deals around October 2026 (see test_waterfall_hand_computed for the expected steps)."""
    o = opps_frame([
        ("A", "2026-09-01 10:00", "2026-10-15", True, True, 130.0, "t1", "ann", "closed_won"),
        ("B", "2026-09-05 10:00", "2026-10-30", False, False, 50.0, "t1", "bob", "proposal"),
        ("C", "2026-10-03 10:00", "2026-10-20", True, False, 60.0, "t2", "cy", "closed_lost"),
        ("D", "2026-09-10 10:00", "2026-10-26", True, True, 200.0, "t2", "cy", "closed_won"),
        ("E", "2026-09-01 10:00", "2026-09-30", False, False, 75.0, "t1", "ann", "discovery"),
        ("F", "2026-08-01 10:00", "2026-10-29", True, False, 80.0, "t1", "bob", "closed_lost"),
        ("G", "2026-09-15 10:00", "2026-11-07", False, False, 40.0, "t2", "dee", "negotiation"),
        ("H", "2026-10-02 10:00", "2026-10-18", True, True, 30.0, "t2", "dee", "closed_won"),  # no history
    ])
    h = hist_frame([
        ("A", "2026-09-01 10:00", "qualification", 100.0, "2026-10-15"),
        ("A", "2026-10-10 00:00", "proposal", 120.0, "2026-10-15"),      # at midnight: known from 10-11 on
        ("A", "2026-10-15 12:00", "closed_won", 130.0, "2026-10-15"),
        ("B", "2026-09-05 10:00", "proposal", 50.0, "2026-10-20"),
        ("B", "2026-10-05 10:00", "proposal", 50.0, "2026-11-10"),       # pushed out
        ("B", "2026-10-25 10:00", "proposal", 50.0, "2026-10-30"),       # pulled back in
        ("C", "2026-10-03 10:00", "qualification", 70.0, "2026-10-28"),
        ("C", "2026-10-12 10:00", "qualification", 60.0, "2026-10-28"),
        ("C", "2026-10-20 10:00", "closed_lost", 60.0, "2026-10-20"),
        ("D", "2026-09-10 10:00", "discovery", 200.0, "2026-11-20"),
        ("D", "2026-10-08 10:00", "negotiation", 200.0, "2026-10-25"),   # pulled in
        ("D", "2026-10-26 10:00", "closed_won", 200.0, "2026-10-26"),
        ("E", "2026-09-01 10:00", "discovery", 75.0, "2026-09-30"),      # stale: due before October
        ("F", "2026-08-01 10:00", "qualification", 80.0, "2026-09-20"),
        ("F", "2026-09-20 10:00", "closed_won", 80.0, "2026-09-20"),
        ("F", "2026-10-05 10:00", "negotiation", 80.0, "2026-10-31"),    # reopened
        ("F", "2026-10-29 10:00", "closed_lost", 80.0, "2026-10-29"),
        ("G", "2026-09-15 10:00", "negotiation", 40.0, "2026-10-10"),
        ("G", "2026-10-09 10:00", "negotiation", 40.0, "2026-10-24"),    # pushed, still in October
        ("G", "2026-10-23 10:00", "negotiation", 40.0, "2026-11-07"),    # pushed again, out
    ])
    return {"opportunities": o, "opportunity_history": h}


# ---------------------------------------------------------------------------
# Actuals, scoring, summary
# ---------------------------------------------------------------------------

def test_actuals_sum_won_deals_per_period_and_scope_with_owner_fallback_and_missing_scope():
    o = opps_frame([
        ("a", "2026-01-01", "2026-10-01", True, True, 100.0, "t1", "ann", "closed_won"),    # first day: in
        ("b", "2026-01-01", "2026-10-31", True, True, 50.0, "t2", "bob", "closed_won"),
        ("c", "2026-01-01", "2026-11-01", True, True, 7.0, "t1", "ann", "closed_won"),      # next month
        ("d", "2026-01-01", "2026-10-15", True, False, 999.0, "t1", "ann", "closed_lost"),  # lost
        ("e", "2026-01-01", "2026-10-15", False, False, 999.0, "t1", "ann", "proposal"),    # open
    ])
    result = pipeline.actuals(o, periods=["2026-10", "2026-Q4"], scopes=["company", "t1", "bob", "nobody"])
    expected = pd.DataFrame({
        "forecast_period": ["2026-10"] * 4 + ["2026-Q4"] * 4,
        "scope": ["company", "t1", "bob", "nobody"] * 2,
        "actual": [150.0, 100.0, 50.0, 0.0, 157.0, 107.0, 50.0, 0.0],
    })
    pd.testing.assert_frame_equal(result, expected)


def test_actuals_do_not_count_a_deal_whose_win_is_unknown():
    """A closed deal with no ``is_won`` (an export that leaves it blank) is not revenue won: counting it would
    inflate the actual every forecast is scored against."""
    o = opps_frame([("a", "2026-01-01", "2026-10-05", True, True, 100.0, "t1", "ann", "closed_won"),
                    ("b", "2026-01-01", "2026-10-06", True, None, 40.0, "t1", "ann", "closed")])
    assert pipeline.actuals(o, periods=["2026-10"])["actual"].tolist() == [100.0]


def test_actuals_honour_fiscal_quarters():
    o = opps_frame([("a", "2026-01-01", "2026-01-31", True, True, 10.0, "t1", "ann", "closed_won"),
                    ("b", "2026-01-01", "2026-02-01", True, True, 1.0, "t1", "ann", "closed_won")])
    # fiscal year starting in February: 2026-Q4 is Nov 2025 - Jan 2026
    result = pipeline.actuals(o, periods=["2026-Q4", "2027-Q1"], fiscal_year_start_month=2)
    assert result["actual"].tolist() == [10.0, 1.0]


def test_zero_actual_gives_undefined_percentage_error_not_infinity():
    f = pd.DataFrame({"forecast_period": ["2026-10", "2026-10"], "scope": ["company", "ghost"],
                      "category": ["commit", "commit"], "snapshot_date": [D("2026-10-05")] * 2,
                      "forecast": [90.0, 25.0]})
    a = pd.DataFrame({"forecast_period": ["2026-10", "2026-10"], "scope": ["company", "ghost"],
                      "actual": [100.0, 0.0]})
    result = fc.score_forecasts(f, a)
    assert result.columns.tolist() == fc.ACCURACY_COLUMNS
    assert result["error"].tolist() == [-10.0, 25.0]
    assert result["abs_pct_error"].iloc[0] == pytest.approx(0.1)
    assert np.isnan(result["abs_pct_error"].iloc[1]) and np.isnan(result["accuracy"].iloc[1])
    assert np.isfinite(result["error"]).all()
    s = fc.accuracy_summary(result)
    # n counts both; MAPE and hit rate only the defined one; WAPE and bias use all errors over Σ actual
    assert s.iloc[0].to_dict() == {"category": "commit", "n": 2, "mape": pytest.approx(0.1),
                                   "wape": pytest.approx(35 / 100), "bias": pytest.approx(15 / 100),
                                   "hit_rate_10": 1.0}


def test_scoring_no_forecasts_gives_the_published_columns_and_types():
    empty = pd.DataFrame(columns=["forecast_period", "scope", "category", "snapshot_date", "forecast"])
    r = fc.score_forecasts(empty, pd.DataFrame(columns=["forecast_period", "scope", "actual"]))
    assert r.empty
    assert r.dtypes.astype(str).to_dict() == {
        "forecast_period": "object", "scope": "object", "category": "object", "snapshot_date": "object",
        "week_of_period": "int64", "forecast": "float64", "actual": "float64", "error": "float64",
        "abs_pct_error": "float64", "accuracy": "float64"}


@pytest.mark.parametrize("call, hit", [(110.0, True), (90.0, True), (100.0, True), (110.5, False),
                                           (89.5, False), (111.0, False)])
def test_forecast_exactly_10_percent_off_is_a_hit(call, hit):
    """METRICS.md: a hit is APE <= 0.10. With an actual of 100, |f − a| / a is exactly 0.1 for 110 and 90."""
    f = pd.DataFrame({"forecast_period": ["2026-10"], "scope": ["company"], "category": ["commit"],
                      "snapshot_date": [D("2026-10-05")], "forecast": [call]})
    a = pd.DataFrame({"forecast_period": ["2026-10"], "scope": ["company"], "actual": [100.0]})
    acc = fc.score_forecasts(f, a)
    assert acc["abs_pct_error"].iloc[0] == abs(call - 100.0) / 100.0
    assert fc.accuracy_summary(acc)["hit_rate_10"].iloc[0] == (1.0 if hit else 0.0)


def test_hit_rate_counts_ties_at_10_percent_among_several_forecasts():
    f = pd.DataFrame({"forecast_period": "2026-10", "scope": ["a", "b", "c", "d", "e"], "category": "commit",
                      "snapshot_date": D("2026-10-05"), "forecast": [110.0, 45.0, 1100.0, 72.0, 5.0]})
    a = pd.DataFrame({"forecast_period": "2026-10", "scope": ["a", "b", "c", "d", "e"],
                      "actual": [100.0, 50.0, 1000.0, 80.0, 0.0]})
    s = fc.accuracy_summary(fc.score_forecasts(f, a)).iloc[0]
    # APE: 0.1, 0.1, 0.1 (ties: hits), 0.1 (8 / 80: a tie too), e undefined (actual 0: out of the hit rate)
    assert s["hit_rate_10"] == 1.0
    f.loc[3, "forecast"] = 71.0  # 9 / 80 = 0.1125: a miss
    assert fc.accuracy_summary(fc.score_forecasts(f, a)).iloc[0]["hit_rate_10"] == 0.75


def test_summary_of_only_zero_actuals_is_undefined_not_a_crash():
    acc = pd.DataFrame({"category": ["commit"], "forecast": [5.0], "actual": [0.0], "error": [5.0],
                        "abs_pct_error": [np.nan]})
    s = fc.accuracy_summary(acc).iloc[0]
    assert s["n"] == 1 and all(np.isnan(s[c]) for c in ("mape", "wape", "bias", "hit_rate_10"))


@pytest.mark.parametrize("accuracy_value, expected", [(0.5, 0.5), (1.7, 0.0)])
def test_accuracy_is_one_minus_ape_floored_at_zero(accuracy_value, expected):
    f = pd.DataFrame({"forecast_period": ["2026-10"], "scope": ["company"], "category": ["commit"],
                      "snapshot_date": [D("2026-10-05")], "forecast": [100.0 * (1 + accuracy_value)]})
    a = pd.DataFrame({"forecast_period": ["2026-10"], "scope": ["company"], "actual": [100.0]})
    assert fc.score_forecasts(f, a)["accuracy"].iloc[0] == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.floats(0, 1e7), st.one_of(st.just(0.0), st.floats(1, 1e7))),
    # forecasts exactly 10 % off (APE = 0.1 to the last bit: |f − a| and a are whole numbers) and just beyond
    st.integers(1, 10**6).flatmap(lambda a: st.sampled_from([(11.0 * a, 10.0 * a), (9.0 * a, 10.0 * a),
                                                            (11.0 * a + 1, 10.0 * a)]))),
    min_size=1, max_size=30))
@example([(110.0, 100.0), (90.0, 100.0), (111.0, 100.0), (100.0, 100.0)])
def test_mape_and_wape_agree_with_sklearn_and_an_independent_wape(pairs):
    forecast = np.array([p[0] for p in pairs])
    actual = np.array([p[1] for p in pairs])
    acc = fc.score_forecasts(
        pd.DataFrame({"forecast_period": "2026-10", "scope": [f"s{i}" for i in range(len(pairs))],
                      "category": "commit", "snapshot_date": D("2026-10-05"), "forecast": forecast}),
        pd.DataFrame({"forecast_period": "2026-10", "scope": [f"s{i}" for i in range(len(pairs))],
                      "actual": actual}))
    s = fc.accuracy_summary(acc).iloc[0]
    pos = actual > 0
    if pos.any():
        assert s["mape"] == pytest.approx(mean_absolute_percentage_error(actual[pos], forecast[pos]), rel=1e-9)
        ape = np.abs(forecast[pos] - actual[pos]) / actual[pos]  # METRICS.md: APE = |f − a| / a; a hit is APE <= 0.10
        assert s["hit_rate_10"] == pytest.approx((ape <= 0.10).mean(), abs=1e-12)
    else:
        assert np.isnan(s["mape"])
    total = sum(p[1] for p in pairs)
    if total > 0:
        wape = sum(abs(f - a) for f, a in pairs) / total
        bias = sum(f - a for f, a in pairs) / total
        assert s["wape"] == pytest.approx(wape, rel=1e-9, abs=1e-12)
        assert s["bias"] == pytest.approx(bias, rel=1e-9, abs=1e-9)
    else:
        assert np.isnan(s["wape"]) and np.isnan(s["bias"])
    assert s["n"] == len(pairs)


@pytest.mark.parametrize("snapshot, week", [
    ("2026-10-01", 1), ("2026-10-07", 1), ("2026-10-08", 2), ("2026-10-29", 5), ("2026-09-28", 0)])
def test_week_of_period_counts_whole_weeks_from_the_first_day(snapshot, week):
    f = pd.DataFrame({"forecast_period": ["2026-10"], "scope": ["company"], "category": ["commit"],
                      "snapshot_date": [D(snapshot)], "forecast": [1.0]})
    a = pd.DataFrame({"forecast_period": ["2026-10"], "scope": ["company"], "actual": [1.0]})
    assert fc.score_forecasts(f, a)["week_of_period"].iloc[0] == week


def test_periods_in_view_ended_by_as_of_and_latest_per_kind():
    labels = ["2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-Q2", "2026-Q3", "2026-Q4",
              "2026-W43", "2026-W44"]
    view = fc.periods_in_view(labels, as_of="2026-11-01", lookback_periods=2)
    # October ends exactly at the cut-off: in view; November and Q4 have not ended; W44 ends 2026-11-02
    assert [p.label for p in view] == ["2026-Q2", "2026-Q3", "2026-09", "2026-10", "2026-W43"]  # by start


def test_periods_in_view_rejects_bad_labels_and_lookback():
    with pytest.raises(SchemaError, match="forecast_period"):
        fc.periods_in_view(["2026-13"], as_of="2026-11-01")
    with pytest.raises(ParameterError, match="`lookback_periods`"):
        fc.periods_in_view(["2026-10"], as_of="2026-11-01", lookback_periods=0)


def test_periods_in_view_reads_quarters_in_the_fiscal_year():
    # fiscal year from February: 2026-Q4 is 2025-11-01 .. 2026-01-31, ended by 2026-02-01 (the calendar
    # 2026-Q4 would end on 2027-01-01, not in view)
    view = fc.periods_in_view(["2026-Q4"], as_of="2026-02-01", fiscal_year_start_month=2)
    assert [(p.label, p.start_date) for p in view] == [("2026-Q4", D("2025-11-01"))]


# ---------------------------------------------------------------------------
# Point-in-time state
# ---------------------------------------------------------------------------

def test_state_at_a_snapshot_date_holds_only_changes_strictly_before_that_day():
    s = deal_history.deal_states(waterfall_case(), at=["2026-10-10", "2026-10-11", "2026-10-15", "2026-10-16"])
    a = s[s["opportunity_id"] == "A"].set_index("at")
    # the change at 2026-10-10 00:00 is unknown at the start of 10-10, known at 10-11
    assert a["amount"].tolist() == [100.0, 120.0, 120.0, 130.0]
    assert a["is_won"].tolist() == [False, False, False, True]  # won at 10-15 12:00: known from 10-16 on
    assert "C" not in set(s.loc[s["at"] == pd.Timestamp("2026-10-03"), "opportunity_id"])


def test_deal_without_history_falls_back_to_opportunities_and_closes_at_the_end_of_its_close_date():
    s = deal_history.deal_states(waterfall_case(), at=["2026-10-02", "2026-10-03", "2026-10-18", "2026-10-19"])
    hh = s[s["opportunity_id"] == "H"]
    assert hh["at"].tolist() == [pd.Timestamp("2026-10-03"), pd.Timestamp("2026-10-18"), pd.Timestamp("2026-10-19")]
    assert hh["is_closed"].tolist() == [False, False, True] and hh["is_won"].tolist() == [False, False, True]
    assert hh["close_date"].tolist() == [D("2026-10-18")] * 3


def test_reopened_deal_is_open_again_between_its_closes():
    s = deal_history.deal_states(waterfall_case(), at=["2026-10-01", "2026-10-06", "2026-10-30"])
    f = s[s["opportunity_id"] == "F"]
    assert f["stage"].tolist() == ["closed_won", "negotiation", "closed_lost"]
    assert f["is_closed"].tolist() == [True, False, True]


def test_null_history_fields_carry_the_previous_value_forward():
    o = opps_frame([("a", "2026-01-01", "2026-03-31", False, False, 999.0, "t1", "ann", "proposal")])
    h = hist_frame([("a", "2026-01-01", "qualification", 100.0, "2026-02-28"),
                    ("a", "2026-01-10", "proposal", None, "2026-03-31")])
    h.loc[1, "amount"] = None
    s = deal_history.deal_states({"opportunities": o, "opportunity_history": h}, at="2026-02-01")
    assert s["amount"].tolist() == [100.0] and s["stage"].tolist() == ["proposal"]


def test_pipeline_snapshots_sum_open_deals_by_stage():
    r = pipeline.pipeline_snapshots(waterfall_case(), dates=["2026-10-01", "2026-10-09"], by="stage")
    got = {(str(x.snapshot_date.date()), None if pd.isna(x.stage) else x.stage): (x.deals, x.amount)
           for x in r.itertuples()}
    assert got == {
        ("2026-10-01", "discovery"): (2, 275.0), ("2026-10-01", "proposal"): (1, 50.0),
        ("2026-10-01", "qualification"): (1, 100.0), ("2026-10-01", "negotiation"): (1, 40.0),
        ("2026-10-09", "discovery"): (1, 75.0), ("2026-10-09", "negotiation"): (3, 320.0),
        ("2026-10-09", "proposal"): (1, 50.0), ("2026-10-09", "qualification"): (2, 170.0),
        ("2026-10-09", None): (1, 30.0),  # H has no history: stage unknown while open
    }


def test_a_deal_history_without_scopes_refuses_team_splits():
    deals = deal_history.prepare(waterfall_case(), scopes=False, materialize=False)
    with pytest.raises(ParameterError, match="`scopes`"):
        pipeline.pipeline_snapshots(deals, dates=["2026-10-01"], by="team")
    assert pipeline.pipeline_snapshots(deals, dates=["2026-10-01"])["amount"].tolist() == [465.0]


def test_closed_stages_are_inferred_from_opportunities_but_never_an_open_stage():
    o = opps_frame([("a", "2026-01-01", "2026-02-01", True, True, 1.0, "t", "x", "Won"),
                    ("b", "2026-01-01", "2026-02-01", True, False, 1.0, "t", "x", "Lost"),
                    ("c", "2026-01-01", "2026-02-01", True, False, 1.0, "t", "x", "Proposal"),
                    ("d", "2026-01-01", "2026-02-01", False, False, 1.0, "t", "x", "Proposal")])
    assert deal_history.closed_stages(o) == (("Won", "closed_won"), ("Lost", "closed_lost"))


# ---------------------------------------------------------------------------
# Stage win rates and the baseline
# ---------------------------------------------------------------------------

def baseline_case():
    """Snapshot 2026-10-12 for 2026-10: rates from X, Y, Z, W, V (closed before it); Q closes after it."""
    o = opps_frame([
        ("X", "2026-09-01 09:00", "2026-10-05", True, True, 300.0, "t1", "ann", "closed_won"),
        ("Y", "2026-08-01 09:00", "2026-09-01", True, False, 10.0, "t1", "ann", "closed_lost"),
        ("Z", "2026-08-01 09:00", "2026-09-10", True, False, 10.0, "t2", "bob", "closed_lost"),
        ("W", "2026-08-01 09:00", "2026-09-15", True, True, 10.0, "t2", "bob", "closed_won"),
        ("V", "2026-08-01 09:00", "2026-09-20", True, False, 10.0, "t2", "bob", "closed_lost"),
        ("P1", "2026-09-20 09:00", "2026-10-20", False, False, 100.0, "t1", "ann", "proposal"),
        ("P2", "2026-09-20 09:00", "2026-10-25", False, False, 200.0, "t2", "bob", "negotiation"),
        ("P3", "2026-09-20 09:00", "2026-10-30", False, False, 10.0, "t1", "cy", "discovery"),
        ("P4", "2026-09-20 09:00", "2026-11-30", False, False, 500.0, "t1", "cy", "qualification"),
        ("Q", "2026-09-20 09:00", "2026-10-13", True, False, 40.0, "t1", "ann", "closed_lost"),
    ])
    h = hist_frame([
        ("X", "2026-09-01 09:00", "qualification", 300.0, "2026-10-20"),
        ("X", "2026-09-10 09:00", "proposal", 300.0, "2026-10-20"),
        ("X", "2026-10-05 09:00", "closed_won", 300.0, "2026-10-05"),
        ("Y", "2026-08-01 09:00", "qualification", 10.0, "2026-09-01"),
        ("Y", "2026-09-01 09:00", "closed_lost", 10.0, "2026-09-01"),
        ("Z", "2026-08-01 09:00", "qualification", 10.0, "2026-09-10"),
        ("Z", "2026-08-20 09:00", "proposal", 10.0, "2026-09-10"),
        ("Z", "2026-09-10 09:00", "closed_lost", 10.0, "2026-09-10"),
        ("W", "2026-08-01 09:00", "qualification", 10.0, "2026-09-15"),
        ("W", "2026-08-20 09:00", "discovery", 10.0, "2026-09-15"),
        ("W", "2026-09-15 09:00", "closed_won", 10.0, "2026-09-15"),
        ("V", "2026-08-01 09:00", "qualification", 10.0, "2026-09-20"),
        ("V", "2026-09-20 09:00", "closed_lost", 10.0, "2026-09-20"),
        ("P1", "2026-09-20 09:00", "proposal", 100.0, "2026-10-20"),
        ("P2", "2026-09-20 09:00", "negotiation", 200.0, "2026-10-25"),
        ("P3", "2026-09-20 09:00", "discovery", 10.0, "2026-10-30"),
        ("P4", "2026-09-20 09:00", "qualification", 500.0, "2026-11-30"),
        ("Q", "2026-09-20 09:00", "proposal", 40.0, "2026-10-13"),
        ("Q", "2026-10-12 10:00", "closed_lost", 40.0, "2026-10-12"),  # on the snapshot day: not known yet
    ])
    return {"opportunities": o, "opportunity_history": h}


def test_stage_win_rates_use_deals_closed_before_the_date_that_were_ever_in_the_stage():
    r = fc.stage_win_rates(baseline_case(), dates=["2026-10-12"])
    got = {x.stage: (x.closed, x.won) for x in r.itertuples()}
    assert got == {"qualification": (5, 2), "proposal": (2, 1), "discovery": (1, 1), None: (5, 2)}


@pytest.mark.parametrize("case", [baseline_case, waterfall_case])
def test_stage_mask_and_the_join_fallback_give_the_same_rates(case):
    """More than 62 open stages cannot share a bit mask; the (deal, stage) join then gives the same answer."""
    dates = ["2026-09-02", "2026-10-01", "2026-10-12", "2026-10-13", "2026-11-01 12:00"]
    with_mask = deal_history.prepare(case(), materialize=False)
    without = deal_history.prepare(case(), materialize=False)
    without.stage_bits = None
    assert with_mask.stage_bits
    pd.testing.assert_frame_equal(fc.stage_win_rates(with_mask, dates=dates), fc.stage_win_rates(without, dates=dates))
    # prepared without the mask (as the scorecard does): no mask, the same rates, the other columns unchanged
    unmasked = deal_history.prepare(case(), materialize=False, stage_mask=False)
    assert unmasked.stage_bits is None
    pd.testing.assert_frame_equal(fc.stage_win_rates(unmasked, dates=dates), fc.stage_win_rates(with_mask, dates=dates))
    cols = [c for c in with_mask.rows.columns if c != "seen"]
    key = ["opportunity_id", "seq", "changed_at"]
    pd.testing.assert_frame_equal(run(unmasked.rows.select(cols)).sort_values(key, ignore_index=True),
                                  run(with_mask.rows.select(cols)).sort_values(key, ignore_index=True))


def test_deals_closed_at_the_same_instant_each_count_in_the_win_rates():
    """Two deals lost at the very same time, from the same stage, are two closed deals, not one."""
    o = opps_frame([
        ("a", "2026-08-01 09:00", "2026-09-10", True, False, 10.0, "t1", "ann", "closed_lost"),
        ("b", "2026-08-01 09:00", "2026-09-10", True, False, 10.0, "t1", "ann", "closed_lost"),
        ("c", "2026-08-01 09:00", "2026-09-15", True, True, 10.0, "t1", "ann", "closed_won"),
    ])
    h = hist_frame([
        ("a", "2026-08-01 09:00", "proposal", 10.0, "2026-09-10"),
        ("a", "2026-09-10 09:00", "closed_lost", 10.0, "2026-09-10"),
        ("b", "2026-08-01 09:00", "proposal", 10.0, "2026-09-10"),
        ("b", "2026-09-10 09:00", "closed_lost", 10.0, "2026-09-10"),  # same time, stage and amount as a
        ("c", "2026-08-01 09:00", "proposal", 10.0, "2026-09-15"),
        ("c", "2026-09-15 09:00", "closed_won", 10.0, "2026-09-15"),
    ])
    case = {"opportunities": o, "opportunity_history": h}
    for stage_bits in (True, False):  # the stage bit mask and the (deal, stage) join
        deals = deal_history.prepare(case, materialize=False)
        if not stage_bits:
            deals.stage_bits = None
        r = fc.stage_win_rates(deals, dates=["2026-10-01"])
        # a, b lost and c won, all three in proposal before: 1 won of 3 closed
        assert {x.stage: (x.closed, x.won) for x in r.itertuples()} == {"proposal": (3, 1), None: (3, 1)}


def test_baseline_is_won_to_date_plus_stage_weighted_pipeline():
    snaps = pd.DataFrame({"snapshot_date": [D("2026-10-12")], "forecast_period": ["2026-10"]})
    b = fc.baseline_forecast(baseline_case(), snapshots=snaps, scopes=["company", "t1", "cy"])
    got = b.set_index("scope")[["won_to_date", "open_pipeline", "weighted_pipeline", "forecast"]]
    # proposal 0.5, discovery 1.0, negotiation has no closed deal: overall 2/5
    assert got.loc["company"].tolist() == pytest.approx([300.0, 350.0, 50 + 80 + 10 + 20, 460.0])
    assert got.loc["t1"].tolist() == pytest.approx([300.0, 150.0, 50 + 10 + 20, 380.0])
    assert got.loc["cy"].tolist() == pytest.approx([0.0, 10.0, 10.0, 10.0])


def test_baseline_before_any_close_is_the_won_to_date_only():
    case = baseline_case()
    snaps = pd.DataFrame({"snapshot_date": [D("2026-08-15")], "forecast_period": ["2026-09"]})
    b = fc.baseline_forecast(case, snapshots=snaps)
    assert b[["won_to_date", "weighted_pipeline", "forecast"]].iloc[0].tolist() == [0.0, 0.0, 0.0]
    assert b["open_pipeline"].iloc[0] == 40.0  # Y, Z, W, V due in September, no rate known yet


def test_baseline_forecast_rejects_snapshots_without_their_columns():
    with pytest.raises(ParameterError, match="`snapshots` must be a DataFrame with columns snapshot_date and "
                                             "forecast_period"):
        fc.baseline_forecast(baseline_case(), snapshots=pd.DataFrame({"snapshot_date": [D("2026-10-12")]}))


def test_forecast_accuracy_scores_submissions_and_baseline_in_the_published_shape():
    case = baseline_case()
    case["forecast_snapshots"] = snaps_frame([
        ("2026-10-12", "2026-10", "company", "commit", 330.0),
        ("2026-10-12", "2026-10", "t1", "commit", 300.0),
        ("2026-10-05", "2026-10", "ghost", "commit", 10.0),   # a scope that matches no deal
        ("2026-10-12", "2026-11", "company", "commit", 1.0),  # November not ended: out of view
        ("2026-11-02", "2026-10", "company", "commit", 1.0),  # dated after the cut-off
    ])
    acc = fc.forecast_accuracy(case, period="2026-10")
    assert acc.columns.tolist() == fc.ACCURACY_COLUMNS
    # actual October: X 300 (won 10-05); P1-P3 still open, Q lost
    rows = {(r.scope, r.category, str(r.snapshot_date)): r for r in acc.itertuples()}
    assert set(rows) == {("company", "commit", "2026-10-12"), ("company", "baseline", "2026-10-12"),
                         ("t1", "commit", "2026-10-12"), ("t1", "baseline", "2026-10-12"),
                         ("ghost", "commit", "2026-10-05"), ("ghost", "baseline", "2026-10-05")}
    assert acc["scope"].tolist()[:2] == ["company", "company"]  # company first
    c = rows[("company", "commit", "2026-10-12")]
    assert (c.week_of_period, c.actual, c.error) == (2, 300.0, 30.0)
    assert c.abs_pct_error == pytest.approx(0.1) and c.accuracy == pytest.approx(0.9)
    assert rows[("company", "baseline", "2026-10-12")].forecast == pytest.approx(460.0)
    g = rows[("ghost", "commit", "2026-10-05")]
    assert g.actual == 0.0 and np.isnan(g.abs_pct_error) and g.error == 10.0


def test_forecast_accuracy_needs_its_tables():
    with pytest.raises(SchemaError, match="forecast_snapshots"):
        fc.forecast_accuracy(waterfall_case(), period="2026-10")
    with pytest.raises(ParameterError, match="`period`"):
        fc.forecast_accuracy(baseline_case())


def test_forecast_accuracy_honours_fiscal_quarters():
    o = opps_frame([("a", "2025-10-01", "2026-01-20", True, True, 100.0, "t1", "ann", "closed_won"),
                    ("b", "2025-10-01", "2026-02-03", True, True, 7.0, "t1", "ann", "closed_won")])
    snaps = snaps_frame([("2025-11-10", "2026-Q4", "company", "commit", 90.0)])
    acc = fc.forecast_accuracy({"opportunities": o, "forecast_snapshots": snaps}, period="2026-Q4",
                               fiscal_year_start_month=2, baseline=False)
    # fiscal year from February: 2026-Q4 is 2025-11-01 .. 2026-01-31, in view at its end; actual a = 100 (b is in
    # February); 2025-11-10 is 9 days in: week 2; error 90 - 100 = -10, APE 0.1
    assert acc[["forecast_period", "week_of_period", "actual", "error"]].values.tolist() == [
        ["2026-Q4", 2, 100.0, -10.0]]
    assert acc["abs_pct_error"].iloc[0] == pytest.approx(0.1)


def renamed_stages_case():
    """The history names the closes Signed / Dropped; the opportunities table Closed Won / Closed Lost."""
    o = opps_frame([
        ("a", "2026-09-01 09:00", "2026-10-05", True, True, 100.0, "t1", "ann", "Closed Won"),
        ("c", "2026-09-01 09:00", "2026-10-08", True, False, 40.0, "t1", "ann", "Closed Lost"),
        ("b", "2026-09-20 09:00", "2026-10-20", False, False, 50.0, "t1", "ann", "Proposal"),
    ])
    h = hist_frame([
        ("a", "2026-09-01 09:00", "Proposal", 100.0, "2026-10-05"),
        ("a", "2026-10-05 09:00", "Signed", 100.0, "2026-10-05"),
        ("c", "2026-09-01 09:00", "Proposal", 40.0, "2026-10-08"),
        ("c", "2026-10-08 09:00", "Dropped", 40.0, "2026-10-08"),
        ("b", "2026-09-20 09:00", "Proposal", 50.0, "2026-10-20"),
    ])
    return {"opportunities": o, "opportunity_history": h}


STAGE_NAMES = {"won_stages": ["Signed", "Closed Won"], "lost_stages": ["Dropped", "Closed Lost"]}


def test_projection_and_accuracy_baseline_use_the_given_won_and_lost_stages():
    case = renamed_stages_case()
    # at 2026-10-13: a won (Signed, 100), c lost (Dropped); both were in Proposal: rate 1/2;
    # b (Proposal, 50, due 10-20) weighs 25: baseline 100 + 25 = 125
    p = fc.projection(case, period="2026-10", as_of="2026-10-13", kinds=["month"], **STAGE_NAMES)
    assert p[["category", "won_to_date", "forecast"]].values.tolist() == [["baseline", 100.0, 125.0]]
    case["forecast_snapshots"] = snaps_frame([("2026-10-13", "2026-10", "company", "commit", 120.0)])
    acc = fc.forecast_accuracy(case, period="2026-10", **STAGE_NAMES)
    base = acc[acc["category"] == "baseline"].iloc[0]
    assert (base["forecast"], base["actual"], base["error"]) == (125.0, 100.0, 25.0)


# ---------------------------------------------------------------------------
# Waterfall, slippage, coverage, projection
# ---------------------------------------------------------------------------

def test_waterfall_hand_computed():
    wf = pipeline.pipeline_waterfall(waterfall_case(), period="2026-10")
    assert wf["step"].tolist() == pipeline.WATERFALL_STEPS
    expected = {"starting": 190.0, "new": 100.0, "pulled_in": 330.0, "increased": 30.0, "won": 360.0,
                "lost": 140.0, "decreased": 10.0, "pushed_out": 90.0, "ending": 50.0}
    assert wf.set_index("step")["amount"].to_dict() == expected
    # deals behind each step: starting A, B, G; new C, H; pulled in B, D, F; increased A; won A, D, H;
    # lost C, F; decreased C; pushed out B, G
    assert wf.attrs["deals"] == {"starting": 3, "new": 2, "pulled_in": 3, "increased": 1, "won": 3, "lost": 2,
                                 "decreased": 1, "pushed_out": 2}


def test_waterfall_stops_at_as_of():
    wf = pipeline.pipeline_waterfall(waterfall_case(), period="2026-10", as_of="2026-10-11").set_index("step")["amount"]
    # by 10-11: B pushed out, C new, D pulled in, F reopened, A increased (10-10 00:00), G pushed within October
    assert wf.to_dict() == {"starting": 190.0, "new": 100.0, "pulled_in": 280.0, "increased": 20.0, "won": 0.0,
                            "lost": 0.0, "decreased": 0.0, "pushed_out": 50.0, "ending": 540.0}


# An independent per-deal waterfall: each deal's states written out in pandas / plain Python, each change
# classified on its own, then summed. The library works on whole tables with window functions.

STEPS = ["new", "pulled_in", "increased", "won", "lost", "decreased", "pushed_out"]


def reference_deal_rows(case) -> dict:
    """opportunity_id -> its states in order: (changed_at, closed, won, cents, close_date).

    From ``opportunity_history`` (won = ``closed_won``, lost = ``closed_lost``; same-time rows open before closed);
    a deal without history is open from ``created_at`` and, when closed, closed from the end of its close date.
    History fields are assumed non-null (true of the demo and of the random histories).
    """
    o = case["opportunities"]
    h = case.get("opportunity_history")
    out: dict = {}
    if h is not None and len(h):
        h = h.assign(changed_at=naive_utc(h["changed_at"]).to_numpy(),
                     closed=h["stage"].isin(["closed_won", "closed_lost"]))
        h = h.sort_values(["opportunity_id", "changed_at", "closed", "stage", "amount", "close_date"])
        cols = zip(h["opportunity_id"], h["changed_at"], h["closed"], h["stage"] == "closed_won",
                   (h["amount"] * 100).round().astype("int64"), pd.to_datetime(h["close_date"]).dt.date)
        for oid, t, closed, won, cents, close in cols:
            out.setdefault(oid, []).append((t, bool(closed), bool(won), int(cents), close))
    cols = zip(o["opportunity_id"], naive_utc(o["created_at"]), o["is_closed"], o["is_won"],
               (o["amount"] * 100).round().astype("int64"), pd.to_datetime(o["close_date"]).dt.date)
    for oid, t0, closed, won, cents, close in cols:
        if oid in out:
            continue
        rows = [(t0, False, False, int(cents), close)]
        if closed:
            end_of_day = pd.Timestamp(close) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
            rows.append((max(t0, end_of_day), True, bool(won), int(cents), close))
        out[oid] = rows
    return out


def reference_waterfall(case, start: dt.date, end: dt.date, cut: pd.Timestamp, deal_rows: dict | None = None):
    """(steps in cents, deals per step, per-deal steps) of the period [start, end) over the changes before ``cut``.

    In the set = open with a close date in the period. Each change of a deal, from its previous state:
    first state of a deal (born in the window): in the set -> new; closed with a close date in the period -> new
    and won/lost. In the set before: the amount change -> increased / decreased; leaving the set closed -> won /
    lost (its new amount), open -> pushed_out. Not in the set before: entering -> pulled_in; closing with a close
    date in the period from open -> pulled_in and won/lost. ``ending`` is the set at the cut-off, counted
    directly (not from the identity).
    """
    t_start = pd.Timestamp(start)

    def due(s):
        return start <= s[4] < end

    def inside(s):
        return s is not None and not s[1] and due(s)

    per_deal, starting, ending = {}, {}, {}
    for oid, rows in (deal_rows if deal_rows is not None else reference_deal_rows(case)).items():
        before = [r for r in rows if r[0] < t_start]
        prev = before[-1] if before else None
        if inside(prev):
            starting[oid] = prev[3]
        steps = dict.fromkeys(STEPS, 0)
        for cur in [r for r in rows if t_start <= r[0] < cut]:
            close_step = "won" if cur[2] else "lost"
            if prev is None:
                if inside(cur):
                    steps["new"] += cur[3]
                elif cur[1] and due(cur):
                    steps["new"] += cur[3]
                    steps[close_step] += cur[3]
            elif inside(prev):
                delta = cur[3] - prev[3]
                steps["increased" if delta > 0 else "decreased"] += abs(delta)
                if not inside(cur):
                    steps[close_step if cur[1] else "pushed_out"] += cur[3]
            elif inside(cur):
                steps["pulled_in"] += cur[3]
            elif cur[1] and due(cur) and not prev[1]:
                steps["pulled_in"] += cur[3]
                steps[close_step] += cur[3]
            prev = cur
        if inside(prev):
            ending[oid] = prev[3]
        per_deal[oid] = steps
    cents = {"starting": sum(starting.values()), **{k: sum(v[k] for v in per_deal.values()) for k in STEPS},
             "ending": sum(ending.values())}
    deals = {"starting": len(starting), **{k: sum(1 for v in per_deal.values() if v[k]) for k in STEPS}}
    return cents, deals, {oid: {k: v for k, v in st_.items() if v} for oid, st_ in per_deal.items()}


def assert_waterfall_matches_reference(wf: pd.DataFrame, case, start, end, cut, deal_rows=None):
    cents, deals, _ = reference_waterfall(case, start, end, cut, deal_rows)
    assert wf.attrs["cents"] == cents
    assert wf.attrs["deals"] == deals
    assert wf.set_index("step")["amount"].drop("ending").mul(100).round().astype("int64").to_dict() == {
        k: v for k, v in cents.items() if k != "ending"}


def test_waterfall_reference_classifies_each_hand_made_deal():
    """The reference itself, on the hand-made deals (October 2026)."""
    _, deals, per_deal = reference_waterfall(waterfall_case(), D("2026-10-01"), D("2026-11-01"),
                                             pd.Timestamp("2026-11-01"))
    assert per_deal == {
        "A": {"increased": 3000, "won": 13000},                 # 100 -> 120 -> won at 130
        "B": {"pushed_out": 5000, "pulled_in": 5000},           # out to 11-10, back to 10-30
        "C": {"new": 7000, "decreased": 1000, "lost": 6000},    # created 10-03 at 70, cut to 60, lost
        "D": {"pulled_in": 20000, "won": 20000},                # close date moved in from 11-20, won
        "E": {},                                                # due in September: never in the set
        "F": {"pulled_in": 8000, "lost": 8000},                 # won in September, reopened, lost
        "G": {"pushed_out": 4000},                              # pushed within October (no step), then out
        "H": {"new": 3000, "won": 3000},                        # no history: created 10-02, won on 10-18
    }
    assert deals == {"starting": 3, "new": 2, "pulled_in": 3, "increased": 1, "won": 3, "lost": 2,
                     "decreased": 1, "pushed_out": 2}


def waterfall_edge_case():
    """Paths waterfall_case leaves out: exits that also change the amount, closing straight from outside the set,
    deals born closed, a change at the period's first instant, changes after a close, deals without history."""
    o = opps_frame([
        ("P", "2026-09-01 10:00", "2026-11-15", False, False, 150.0, "t1", "ann", "proposal"),
        ("Q", "2026-09-02 10:00", "2026-10-12", True, False, 80.0, "t1", "ann", "closed_lost"),
        ("R", "2026-09-03 10:00", "2026-10-14", True, True, 90.0, "t1", "bob", "closed_won"),
        ("S", "2026-10-05 10:00", "2026-10-05", True, True, 40.0, "t2", "bob", "closed_won"),
        ("T", "2026-10-01 00:00", "2026-10-30", False, False, 60.0, "t2", "cy", "qualification"),
        ("U", "2026-08-01 10:00", "2026-10-27", True, True, 75.0, "t2", "cy", "closed_won"),
        ("V", "2026-09-05 10:00", "2026-10-31", False, False, 45.0, "t1", "dee", "proposal"),
        ("X", "2026-09-06 10:00", "2026-10-10", True, True, 95.0, "t1", "dee", "closed_won"),
        ("Y", "2026-10-06 10:00", "2026-10-08", True, False, 30.0, "t2", "ann", "closed_lost"),
        ("Z1", "2026-10-02 10:00", "2026-10-29", False, False, 20.0, "t2", "bob", "proposal"),    # no history
        ("Z2", "2026-09-01 10:00", "2026-10-10", True, False, 25.0, "t2", "bob", "closed_lost"),  # no history
    ])
    h = hist_frame([
        ("P", "2026-09-01 10:00", "proposal", 100.0, "2026-10-20"),
        ("P", "2026-10-10 10:00", "proposal", 150.0, "2026-11-15"),      # pushed out at a higher amount
        ("Q", "2026-09-02 10:00", "proposal", 100.0, "2026-10-25"),
        ("Q", "2026-10-12 10:00", "closed_lost", 80.0, "2026-10-12"),    # lost at a lower amount
        ("R", "2026-09-03 10:00", "discovery", 90.0, "2026-11-30"),
        ("R", "2026-10-14 10:00", "closed_won", 90.0, "2026-10-14"),     # won straight from outside the set
        ("S", "2026-10-05 10:00", "closed_won", 40.0, "2026-10-05"),     # born won
        ("T", "2026-10-01 00:00", "qualification", 60.0, "2026-10-30"),  # at the period's first instant: new
        ("U", "2026-08-01 10:00", "proposal", 70.0, "2026-09-20"),
        ("U", "2026-09-20 10:00", "closed_won", 70.0, "2026-09-20"),
        ("U", "2026-10-03 10:00", "negotiation", 70.0, "2026-11-10"),    # reopened, due after October
        ("U", "2026-10-20 10:00", "negotiation", 70.0, "2026-10-28"),    # pulled in
        ("U", "2026-10-27 10:00", "closed_won", 75.0, "2026-10-27"),     # won at a higher amount
        ("V", "2026-09-05 10:00", "proposal", 50.0, "2026-10-31"),
        ("V", "2026-10-09 10:00", "proposal", 55.0, "2026-10-31"),
        ("V", "2026-10-16 10:00", "proposal", 45.0, "2026-10-31"),
        ("X", "2026-09-06 10:00", "negotiation", 100.0, "2026-10-10"),
        ("X", "2026-10-10 10:00", "closed_won", 100.0, "2026-10-10"),
        ("X", "2026-10-12 10:00", "closed_won", 95.0, "2026-10-10"),     # edited after the close: no step
        ("Y", "2026-10-06 10:00", "qualification", 30.0, "2026-11-20"),
        ("Y", "2026-10-08 10:00", "closed_lost", 30.0, "2026-10-08"),    # born outside, lost inside
    ])
    return {"opportunities": o, "opportunity_history": h}


def test_waterfall_edge_cases_hand_computed():
    wf = pipeline.pipeline_waterfall(waterfall_edge_case(), period="2026-10")
    # starting P 100 + Q 100 + V 50 + X 100 + Z2 25 (no history: open until the end of its close date 10-10)
    # new S 40 + T 60 + Z1 20; pulled in R 90 + U 70 + Y 30; increased P 50 + U 5 + V 5;
    # won R 90 + S 40 + U 75 + X 100; lost Q 80 + Y 30 + Z2 25; decreased Q 20 + V 10; pushed out P 150;
    # ending T 60 + V 45 + Z1 20 = 125 = 375 + 120 + 190 + 60 - 305 - 135 - 30 - 150
    assert wf.set_index("step")["amount"].to_dict() == {
        "starting": 375.0, "new": 120.0, "pulled_in": 190.0, "increased": 60.0, "won": 305.0, "lost": 135.0,
        "decreased": 30.0, "pushed_out": 150.0, "ending": 125.0}
    assert wf.attrs["deals"] == {"starting": 5, "new": 3, "pulled_in": 3, "increased": 3, "won": 4, "lost": 3,
                                 "decreased": 2, "pushed_out": 1}
    _, _, per_deal = reference_waterfall(waterfall_edge_case(), D("2026-10-01"), D("2026-11-01"),
                                         pd.Timestamp("2026-11-01"))
    assert per_deal == {
        "P": {"increased": 5000, "pushed_out": 15000}, "Q": {"decreased": 2000, "lost": 8000},
        "R": {"pulled_in": 9000, "won": 9000}, "S": {"new": 4000, "won": 4000}, "T": {"new": 6000},
        "U": {"pulled_in": 7000, "increased": 500, "won": 7500}, "V": {"increased": 500, "decreased": 1000},
        "X": {"won": 10000}, "Y": {"pulled_in": 3000, "lost": 3000}, "Z1": {"new": 2000}, "Z2": {"lost": 2500}}


@pytest.mark.parametrize("as_of", [None, "2026-10-11", "2026-10-12T10:00", "2026-10-20T10:00",
                                   "2026-10-26T10:00:00.000001"])
@pytest.mark.parametrize("make_case", [waterfall_case, waterfall_edge_case])
def test_waterfall_matches_the_per_deal_reference_on_the_hand_made_deals(make_case, as_of):
    wf = pipeline.pipeline_waterfall(make_case(), period="2026-10", as_of=as_of)
    cut = pd.Timestamp(as_of) if as_of else pd.Timestamp("2026-11-01")
    assert_waterfall_matches_reference(wf, make_case(), D("2026-10-01"), D("2026-11-01"), cut)


@pytest.mark.slow
def test_waterfall_matches_the_per_deal_reference_on_demo_data(demo_dir):
    from revops_lib.sources import open_source

    src = open_source(demo_dir)
    case = {t: src.to_pandas(t) for t in ("opportunities", "opportunity_history")}
    rows = reference_deal_rows(case)
    with deal_history.prepare(src, scopes=False) as deals:
        for period, start, end, as_of in [("2026-10", "2026-10-01", "2026-11-01", None),
                                          ("2026-Q3", "2026-07-01", "2026-10-01", "2026-08-20T12:00"),
                                          ("2026-W40", "2026-09-28", "2026-10-05", None)]:
            wf = pipeline.pipeline_waterfall(deals, period=period, as_of=as_of)
            cut = pd.Timestamp(as_of) if as_of else pd.Timestamp(end)
            cents, _, _ = reference_waterfall(case, D(start), D(end), cut, rows)
            assert sum(cents[k] for k in STEPS) > 0, period  # something moved: the comparison means something
            assert_waterfall_matches_reference(wf, case, D(start), D(end), cut, rows)


def test_slippage_lists_deals_due_at_the_start_still_open_with_their_pushes():
    s = pipeline.slippage(waterfall_case(), period="2026-10")
    assert s[["opportunity_id", "amount", "status", "pushes", "total_pushes"]].values.tolist() == [
        ["B", 50.0, "overdue", 1, 1], ["G", 40.0, "pushed out", 2, 2]]
    assert s["close_date_at_start"].tolist() == [D("2026-10-20"), D("2026-10-10")]
    assert s.attrs["starting_count"] == 3 and s.attrs["starting_amount"] == 190.0
    assert s.attrs["rate"] == pytest.approx(90 / 190)


def test_coverage_divides_pipeline_due_by_the_target_and_handles_missing_targets():
    case = waterfall_case()
    case["targets"] = pd.DataFrame({"period": ["2026-10", "2026-11", "2026-11"],
                                    "metric": ["revenue_won"] * 3, "target": [380.0, 30.0, 10.0],
                                    "segment": [None, "smb", "ent"]})
    c = pipeline.coverage(case, period="2026-10", lookback_periods=2)
    assert c["period"].tolist() == ["2026-09", "2026-10", "2026-11"]
    sept, octo, nov = (c.iloc[i] for i in range(3))
    assert np.isnan(sept["target"]) and np.isnan(sept["coverage"])
    assert octo["open_pipeline"] == 190.0 and octo["coverage"] == pytest.approx(0.5)
    assert octo["won"] == 360.0 and octo["attainment"] == pytest.approx(360 / 380) and octo["complete"]
    # next period at the cut-off: G (40, due 11-07); target = sum of the segment rows
    assert nov["measured_at"] == pd.Timestamp("2026-11-01") and nov["open_pipeline"] == 40.0
    assert nov["coverage"] == pytest.approx(1.0) and np.isnan(nov["won"]) and not nov["complete"]
    for bad in (0, 2.5, "6"):
        with pytest.raises(ParameterError, match="`lookback_periods` must be a whole number >= 1"):
            pipeline.coverage(case, period="2026-10", lookback_periods=bad)


def test_projection_shows_latest_calls_and_baseline_of_periods_in_progress():
    case = baseline_case()
    case["forecast_snapshots"] = snaps_frame([
        ("2026-10-05", "2026-10", "company", "commit", 300.0),
        ("2026-10-12", "2026-10", "company", "commit", 350.0),
        ("2026-10-12", "2026-10", "t1", "commit", 999.0),
        ("2026-10-12", "2026-10", "company", "best_case", 500.0),
    ])
    case["targets"] = pd.DataFrame({"period": ["2026-10"], "metric": ["revenue_won"], "target": [400.0],
                                    "segment": [None]})
    p = fc.projection(case, period="2026-10", as_of="2026-10-13", kinds=["month"])
    assert p["category"].tolist() == ["commit", "best_case", "baseline"]
    assert p["forecast"].tolist()[:2] == [350.0, 500.0]
    assert p["submitted"].tolist()[0] == D("2026-10-12")
    # at 2026-10-13 00:00 Q's loss (10-12 10:00) is known: proposal 1/3, overall 2/6, Q out of the pipeline
    assert p["forecast"].iloc[2] == pytest.approx(300 + 100 / 3 + 200 / 3 + 10)
    assert p["pct_of_target"].tolist() == pytest.approx([350 / 400, 500 / 400, 410 / 400])


def test_projection_lists_each_period_in_progress_once_for_a_quarterly_report():
    case = baseline_case()
    case["forecast_snapshots"] = snaps_frame([
        ("2026-10-05", "2026-Q4", "company", "commit", 700.0),
        ("2026-10-12", "2026-10", "company", "commit", 350.0),
    ])
    p = fc.projection(case, period="2026-Q4", as_of="2026-10-13")  # kinds: the report's (quarter), month, quarter
    # at 2026-10-13 00:00: won X 300; rates proposal 1/3, discovery 1, qualification 2/5, negotiation overall 2/6.
    # October: 300 + 100/3 (P1) + 200/3 (P2) + 10 (P3) = 410; Q4 adds P4 (qualification 500, due 11-30): + 200 = 610
    assert p["forecast_period"].tolist() == ["2026-Q4", "2026-Q4", "2026-10", "2026-10"]
    assert p["category"].tolist() == ["commit", "baseline", "commit", "baseline"]
    assert p["forecast"].tolist() == pytest.approx([700.0, 610.0, 350.0, 410.0])


def accuracy_rows_for_calls():
    """A hand-made accuracy table: calls before and inside each period, three categories, another scope."""
    rows = [  # (period, scope, category, snapshot_date, week_of_period, forecast, actual)
        ("2026-09", "company", "commit", "2026-08-31", 0, 50.0, 100.0),    # before the period: never the first call
        ("2026-09", "company", "commit", "2026-09-07", 1, 80.0, 100.0),
        ("2026-09", "company", "commit", "2026-09-21", 3, 95.0, 100.0),
        ("2026-09", "company", "baseline", "2026-09-07", 1, 70.0, 100.0),
        ("2026-09", "company", "best_case", "2026-09-14", 2, 120.0, 100.0),
        ("2026-09", "t1", "commit", "2026-09-14", 2, 999.0, 40.0),          # another scope
        ("2026-10", "company", "commit", "2026-09-28", 0, 60.0, 0.0),       # only a call before the period
        ("2026-Q3", "company", "commit", "2026-07-06", 1, 300.0, 250.0),
    ]
    acc = pd.DataFrame(rows, columns=["forecast_period", "scope", "category", "snapshot_date", "week_of_period",
                                      "forecast", "actual"])
    acc["snapshot_date"] = [D(x) for x in acc["snapshot_date"]]
    acc["error"] = acc["forecast"] - acc["actual"]
    acc["abs_pct_error"] = (acc["error"].abs() / acc["actual"]).where(acc["actual"] > 0)
    return acc


def test_forecast_vs_actual_takes_the_first_call_from_week_1_and_the_last_call_of_each_period():
    got = fc.forecast_vs_actual(accuracy_rows_for_calls())
    # periods in the order of the table; categories commit, best_case, then the others, baseline last;
    # first before last. APE: |80 - 100| / 100 = 0.2, |95 - 100| / 100 = 0.05, |120 - 100| / 100 = 0.2,
    # |70 - 100| / 100 = 0.3; October's actual is 0 (APE undefined) and its only call is in week 0: no first call
    expected = pd.DataFrame([
        ("2026-09", "month", "commit", "first", "2026-09-07", 1, 80.0, 100.0, 0.2),
        ("2026-09", "month", "commit", "last", "2026-09-21", 3, 95.0, 100.0, 0.05),
        ("2026-09", "month", "best_case", "first", "2026-09-14", 2, 120.0, 100.0, 0.2),
        ("2026-09", "month", "best_case", "last", "2026-09-14", 2, 120.0, 100.0, 0.2),
        ("2026-09", "month", "baseline", "first", "2026-09-07", 1, 70.0, 100.0, 0.3),
        ("2026-09", "month", "baseline", "last", "2026-09-07", 1, 70.0, 100.0, 0.3),
        ("2026-10", "month", "commit", "last", "2026-09-28", 0, 60.0, 0.0, np.nan),
        ("2026-Q3", "quarter", "commit", "first", "2026-07-06", 1, 300.0, 250.0, 0.2),
        ("2026-Q3", "quarter", "commit", "last", "2026-07-06", 1, 300.0, 250.0, 0.2),
    ], columns=["forecast_period", "kind", "category", "call", "snapshot_date", "week_of_period", "forecast", "actual",
                "abs_pct_error"])
    expected["snapshot_date"] = [D(x) for x in expected["snapshot_date"]]
    pd.testing.assert_frame_equal(got, expected)
    quarters = fc.forecast_vs_actual(accuracy_rows_for_calls(), kind="quarter")
    pd.testing.assert_frame_equal(quarters, expected.iloc[7:].reset_index(drop=True))
    t1 = fc.forecast_vs_actual(accuracy_rows_for_calls(), scope="t1")
    assert t1[["call", "forecast"]].values.tolist() == [["first", 999.0], ["last", 999.0]]


# ---------------------------------------------------------------------------
# Properties on random histories
# ---------------------------------------------------------------------------

@st.composite
def histories(draw, every_deal_has_history: bool = False):
    """Random deals around October 2026: stage moves, pushes, pull-ins, amount changes, closes, reopens.

    Some deals have no history (they fall back to ``opportunities``) unless ``every_deal_has_history``.
    """
    base = pd.Timestamp("2026-08-01")
    n = draw(st.integers(1, 6))
    o_rows, h_rows = [], []
    for i in range(n):
        oid = f"o{i}"
        t = base + pd.Timedelta(days=draw(st.integers(0, 100)), hours=draw(st.sampled_from([0, 9, 15, 23])))
        close = (t + pd.Timedelta(days=draw(st.integers(1, 60)))).date()
        amount = float(draw(st.integers(1, 500))) + draw(st.sampled_from([0.0, 0.25, 0.1]))
        stage = draw(st.sampled_from(STAGES))
        rows = [(oid, t, stage, amount, close)]
        for _ in range(draw(st.integers(0, 5))):
            t = t + pd.Timedelta(days=draw(st.integers(0, 20)), hours=draw(st.integers(1, 30)))
            kind = draw(st.sampled_from(["stage", "push", "pull", "amount", "won", "lost", "reopen"]))
            closed = stage in ("closed_won", "closed_lost")
            if kind == "reopen" and closed:
                stage = draw(st.sampled_from(STAGES))
                close = (t + pd.Timedelta(days=draw(st.integers(1, 40)))).date()
            elif kind in ("won", "lost") and not closed:
                stage, close = f"closed_{kind}", t.date()
            elif kind == "stage" and not closed:
                stage = draw(st.sampled_from(STAGES))
            elif kind == "push" and not closed:
                close = close + dt.timedelta(days=draw(st.integers(1, 40)))
            elif kind == "pull" and not closed:
                close = max(t.date(), close - dt.timedelta(days=draw(st.integers(1, 40))))
            elif kind == "amount":
                amount = float(draw(st.integers(1, 500))) + 0.5
            else:
                continue
            if kind != "amount" and draw(st.booleans()):  # the same change also moves the amount
                amount = float(draw(st.integers(1, 500))) + 0.75
            rows.append((oid, t, stage, amount, close))
        last = rows[-1]
        is_closed = last[2].startswith("closed")
        o_rows.append((oid, rows[0][1], last[4], is_closed, last[2] == "closed_won", last[3],
                       draw(st.sampled_from(["t1", "t2"])), "x", last[2]))
        if every_deal_has_history or draw(st.integers(0, 4)) > 0:  # some deals have no history
            h_rows += rows
    o = pd.DataFrame(o_rows, columns=["opportunity_id", "created_at", "close_date", "is_closed", "is_won", "amount",
                                      "team", "owner", "stage"])
    h = pd.DataFrame(h_rows, columns=["opportunity_id", "changed_at", "stage", "amount", "close_date"])
    return {"opportunities": o, "opportunity_history": h}


PROPERTY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@PROPERTY
@given(histories(), st.sampled_from(["2026-09", "2026-10", "2026-Q4", "2026-W41"]),
       st.sampled_from([None, "2026-10-17", "2026-10-17T13:30"]))
def test_waterfall_identity_holds_exactly_and_matches_point_in_time_pipelines(case, period, as_of):
    from revops_lib.periods import parse_period

    wf = pipeline.pipeline_waterfall(case, period=period, as_of=as_of)
    a = wf.set_index("step")["amount"]
    assert a["ending"] == (a["starting"] + a["new"] + a["pulled_in"] + a["increased"] - a["won"] - a["lost"]
                           - a["decreased"] - a["pushed_out"])
    c = wf.attrs["cents"]
    assert c["ending"] == (c["starting"] + c["new"] + c["pulled_in"] + c["increased"] - c["won"] - c["lost"]
                           - c["decreased"] - c["pushed_out"])
    assert (wf["amount"].iloc[1:-1] >= 0).all()
    p = parse_period(period)
    cut = wf.attrs["cut"]
    states = deal_history.deal_states(case, at=[p.start_naive, cut])

    def due(at):
        s = states[(states["at"] == at) & ~states["is_closed"].astype(bool)]
        s = s[(s["close_date"] >= p.start_date) & (s["close_date"] < p.end_date)]
        return int(round(s["amount"].mul(100).round().sum()))

    assert c["starting"] == due(p.start_naive)
    assert c["ending"] == due(cut)
    # every step and its deal count equal an independent per-deal classification (bounds written by hand)
    start, end = {"2026-09": ("2026-09-01", "2026-10-01"), "2026-10": ("2026-10-01", "2026-11-01"),
                  "2026-Q4": ("2026-10-01", "2027-01-01"), "2026-W41": ("2026-10-05", "2026-10-12")}[period]
    ref_cut = min(max(pd.Timestamp(as_of or end), pd.Timestamp(start)), pd.Timestamp(end))
    assert cut == ref_cut
    assert_waterfall_matches_reference(wf, case, D(start), D(end), ref_cut)


def _mutate_after(case, cut: pd.Timestamp, draw):
    """Change or add only what happens from ``cut`` on (history rows, new deals, final states)."""
    o, h = case["opportunities"].copy(), case["opportunity_history"].copy()
    late = h["changed_at"] >= cut
    h.loc[late, "amount"] = h.loc[late, "amount"] * 3 + 1
    h.loc[late, "stage"] = [draw(st.sampled_from(STAGES + ["closed_won", "closed_lost"])) for _ in range(late.sum())]
    extra = []
    for oid in o["opportunity_id"]:
        if draw(st.booleans()):
            extra.append((oid, cut + pd.Timedelta(hours=draw(st.integers(0, 500))), "closed_won", 1234.0,
                          (cut + pd.Timedelta(days=3)).date()))
    new_t = cut + pd.Timedelta(hours=draw(st.integers(0, 48)))
    extra.append(("late", new_t, "closed_won", 777.0, cut.date()))
    h = pd.concat([h, pd.DataFrame(extra, columns=h.columns)], ignore_index=True)
    h = h.drop_duplicates(["opportunity_id", "changed_at"], keep="last")
    last = h.sort_values("changed_at").groupby("opportunity_id").tail(1).set_index("opportunity_id")
    o = pd.concat([o, pd.DataFrame([("late", new_t, cut.date(), True, True, 777.0, "t1", "x", "closed_won")],
                                   columns=o.columns)], ignore_index=True)
    has = o["opportunity_id"].isin(last.index)
    o.loc[has, "stage"] = o.loc[has, "opportunity_id"].map(last["stage"])
    o.loc[has, "amount"] = o.loc[has, "opportunity_id"].map(last["amount"])
    o.loc[has, "close_date"] = o.loc[has, "opportunity_id"].map(last["close_date"])
    o.loc[has, "is_closed"] = o.loc[has, "stage"].str.startswith("closed")
    o.loc[has, "is_won"] = o.loc[has, "stage"] == "closed_won"
    return {"opportunities": o, "opportunity_history": h}


@pytest.mark.slow
@PROPERTY
@given(histories(every_deal_has_history=True),
       st.sampled_from(["2026-09-14", "2026-10-01", "2026-10-12", "2026-11-02"]), st.data())
def test_baseline_has_no_look_ahead(case, snapshot, data):
    """Changing or adding data from a snapshot date on never changes that snapshot's baseline.

    Deals without history fall back to their current state (look-ahead by design): every deal has history here.
    """
    snaps = pd.DataFrame({"snapshot_date": [D(snapshot)] * 2, "forecast_period": ["2026-10", "2026-Q4"]})
    kw = dict(snapshots=snaps, scopes=["company", "t1"], won_stages=["closed_won"], lost_stages=["closed_lost"])
    assert len(case["opportunities"]) >= 1
    assert set(case["opportunities"]["opportunity_id"]) == set(case["opportunity_history"]["opportunity_id"])
    before = fc.baseline_forecast(case, **kw)
    after = fc.baseline_forecast(_mutate_after(case, pd.Timestamp(snapshot), data.draw), **kw)
    pd.testing.assert_frame_equal(before, after)
    rates_before = fc.stage_win_rates(case, dates=[snapshot], won_stages=["closed_won"], lost_stages=["closed_lost"])
    rates_after = fc.stage_win_rates(_mutate_after(case, pd.Timestamp(snapshot), data.draw), dates=[snapshot],
                                    won_stages=["closed_won"], lost_stages=["closed_lost"])
    pd.testing.assert_frame_equal(rates_before, rates_after)


# ---------------------------------------------------------------------------
# Cross-check against a straightforward pandas implementation (demo data)
# ---------------------------------------------------------------------------

def reference_baseline(h: pd.DataFrame, o: pd.DataFrame, t: pd.Timestamp, start: dt.date, end: dt.date):
    """Written the obvious way: the last history row before t per deal."""
    h = h.assign(close_date=pd.to_datetime(h["close_date"])).sort_values(["opportunity_id", "changed_at"])
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    past = h[h["changed_at"] < t]
    state = past.groupby("opportunity_id").tail(1)
    closed = state[state["stage"].isin(["closed_won", "closed_lost"])]
    won = closed["stage"] == "closed_won"
    ever = past[past["opportunity_id"].isin(closed["opportunity_id"]) & ~past["stage"].str.startswith("closed")]
    ever = ever[["opportunity_id", "stage"]].drop_duplicates().merge(
        closed[["opportunity_id"]].assign(w=won.to_numpy()), on="opportunity_id")
    rates = ever.groupby("stage")["w"].mean()
    overall = won.mean() if len(closed) else 0.0
    due = state[(state["close_date"] >= start) & (state["close_date"] < end)]
    opn = due[~due["stage"].str.startswith("closed")]
    won_to_date = due.loc[due["stage"] == "closed_won", "amount"].sum()
    return won_to_date + (opn["amount"] * opn["stage"].map(rates).fillna(overall)).sum(), opn["amount"].sum()


@pytest.mark.slow
def test_baseline_and_pipeline_match_a_pandas_reference_on_demo_data(demo_dir):
    from revops_lib.periods import period_of
    from revops_lib.sources import open_source

    src = open_source(demo_dir)
    h, o = src.to_pandas("opportunity_history"), src.to_pandas("opportunities")
    dates = list(pd.date_range("2025-01-06", "2026-10-26", freq="4W-MON")) + [pd.Timestamp("2026-03-04 13:00")]
    rows = [(d, period_of(d, k)) for d in dates for k in ("month", "quarter")]
    snaps = pd.DataFrame({"snapshot_date": [d for d, _ in rows], "forecast_period": [p.label for _, p in rows]})
    with deal_history.prepare(src) as deals:
        got = fc.baseline_forecast(deals, snapshots=snaps)
        pipe = pipeline.pipeline_snapshots(deals, dates=dates).set_index("snapshot_date")["amount"]
    assert len(got) == len(rows)
    periods = {p.label: p for _, p in rows}
    for _, g in got.iterrows():
        p = periods[g["forecast_period"]]
        ref_forecast, ref_open = reference_baseline(h, o, pd.Timestamp(g["snapshot_date"]), p.start_date, p.end_date)
        assert g["forecast"] == pytest.approx(ref_forecast, abs=1e-4)
        assert g["open_pipeline"] == pytest.approx(ref_open, abs=1e-4)
    for d in dates:
        past = h[h["changed_at"] < d].sort_values(["opportunity_id", "changed_at"]).groupby("opportunity_id").tail(1)
        assert pipe[d] == pytest.approx(past.loc[~past["stage"].str.startswith("closed"), "amount"].sum(), abs=1e-4)


# ---------------------------------------------------------------------------
# The report object, documentation, PostgreSQL
# ---------------------------------------------------------------------------

def test_assess_on_a_source_without_forecasts_still_reports_the_pipeline():
    fa = forecast_section.assess(waterfall_case(), period="2026-10")
    assert fa.accuracy.empty and fa.left_out == {"accuracy": "table `forecast_snapshots`",
                                                 "segments": "column `opportunities.segment`"}  # no segment here
    assert fa.scope_sentence() == ("Left out for lack of data: forecast accuracy (needs table `forecast_snapshots`); "
                                   "win rate by segment (needs column `opportunities.segment`).")
    assert fa.waterfall.set_index("step")["amount"]["ending"] == 50.0
    assert "2026-10 pipeline due in the period went from $190 to $50" in fa.findings().data
    assert fa.summary.columns.tolist() == fc.SUMMARY_COLUMNS


def test_assess_without_history_or_targets_falls_back_to_opportunities():
    case = baseline_case()
    del case["opportunity_history"]
    case["forecast_snapshots"] = snaps_frame([("2026-10-12", "2026-10", "company", "commit", 330.0)])
    fa = forecast_section.assess(case, period="2026-10")
    # without history only the overall win rate is known: 2 won of 5 closed by 10-12 (Q closes at the end of 10-13)
    base = fa.accuracy[fa.accuracy["category"] == "baseline"].iloc[0]
    assert base["forecast"] == pytest.approx(300 + (100 + 200 + 10 + 40) * 2 / 5)
    text = fa.findings().data
    assert "in view (1 commit call across" in text and "no target" in text
    assert fa.coverage["coverage"].isna().all()


def test_the_rep_finding_writes_counts_with_thousands_separators():
    """A sales floor of 2,400 reps: the finding reads "1,100 of 2,400 reps", not "1100 of 2400"."""
    from revops_lib.periods import parse_period

    n = 2400
    reps = pd.DataFrame({"owner": [f"r{i}" for i in range(n)] + ["all"], "team": ["t1"] * n + ["all"],
                         "quota": 100.0, "attainment": [1.2] * 1100 + [0.5] * (n - 1100) + [0.9],
                         "small_sample": [True] * 1500 + [False] * (n - 1500) + [False]})
    fa = forecast_section.ForecastReport(period=parse_period("2026-10"), as_of=pd.Timestamp("2026-11-01"),
                                         reps=reps, min_sample=1000)
    text = fa._reps_finding()
    assert "1,100 of 2,400 reps with a quota reached it in 2026-10" in text
    assert "1,500 owner win rates rest on fewer than 1,000 closed deals (too few to read; compare over a quarter)" \
        in text
    # a quarter's report does not advise comparing over a quarter
    fa.period = parse_period("2026-Q3")
    assert fa._reps_finding().endswith("(too few to read; compare over several quarters).")


def test_the_projection_finding_says_what_each_percentage_is_of():
    """A period with only a baseline read "baseline $6.93M (133.3%)": 133.3 % of what? Of the target."""
    from revops_lib.periods import parse_period

    proj = pd.DataFrame({"forecast_period": ["2026-11", "2026-Q4", "2026-Q4"],
                         "category": ["baseline", "commit", "baseline"], "forecast": [6.93e6, 17.63e6, 18.53e6],
                         "won_to_date": [0.0, 9.57e6, 9.57e6], "target": [5.2e6, 16.07e6, 16.07e6],
                         "pct_of_target": [6.93 / 5.2, 17.63 / 16.07, 18.53 / 16.07]})
    fa = forecast_section.ForecastReport(period=parse_period("2026-10"), as_of=pd.Timestamp("2026-11-01"),
                                         projection=proj)
    assert fa._projection_finding() == (
        "Periods in progress — 2026-11: $0 won so far, baseline $6.93M (133.3% of target); 2026-Q4: $9.57M won so "
        "far, latest commit $17.63M (109.7% of target), baseline $18.53M (115.3%).")
    # the 2026-W48 page read "2026-11: $5.61M won so far, latest commit $5.22M": a call below what is won already
    # contradicts the line unless it says the call is older than the wins
    proj = pd.DataFrame({"forecast_period": ["2026-11", "2026-11"], "category": ["commit", "baseline"],
                         "submitted": [pd.Timestamp("2026-11-23"), pd.Timestamp("2026-11-30")],
                         "forecast": [5.22e6, 6.47e6], "won_to_date": [5.61e6] * 2, "target": [6.58e6] * 2,
                         "pct_of_target": [5.22 / 6.58, 6.47 / 6.58]})
    fa.projection = proj
    assert fa._projection_finding() == (
        "Periods in progress — 2026-11: $5.61M won so far, latest commit $5.22M (79.3% of target; below what is "
        "won already: it dates from 2026-11-23), baseline $6.47M (98.3%).")
    fa.projection = proj.assign(target=np.nan, pct_of_target=np.nan)
    assert fa._projection_finding() == (
        "Periods in progress — 2026-11: $5.61M won so far, latest commit $5.22M (below what is won already: it "
        "dates from 2026-11-23), baseline $6.47M, no target.")


def test_the_coverage_finding_names_a_missing_target_by_its_label():
    """It read "(no revenue_won target to compare it with)": a key where the CRO expects a name."""
    from revops_lib.periods import parse_period

    cov = pd.DataFrame({"period": ["2026-W49"], "measured_at": [pd.Timestamp("2026-11-30")],
                        "open_pipeline": [2.1e6], "target": [np.nan], "coverage": [np.nan], "won": [np.nan],
                        "attainment": [np.nan], "complete": [False]})
    fa = forecast_section.ForecastReport(period=parse_period("2026-W48"), as_of=pd.Timestamp("2026-11-30"),
                                         coverage=cov)
    assert fa._coverage_finding().startswith(
        "Open pipeline due in 2026-W49 is $2.10M at the cut-off (no Revenue won target to compare it with)")


def test_the_waterfall_finding_adds_up_as_the_chart_does():
    """The 2026-Q3 finding read "went from $21.40M to $1.49M: $16.67M won, $13.18M lost, $3.15M pushed out,
    $13.55M added", which adds up to $1.95M: the net amount changes of open deals were missing."""
    from revops_lib.periods import parse_period

    steps = ["starting", "new", "pulled_in", "increased", "won", "lost", "decreased", "pushed_out", "ending"]

    def finding(amounts):
        wf = pd.DataFrame({"step": steps, "amount": amounts})
        return forecast_section.ForecastReport(period=parse_period("2026-Q3"), as_of=pd.Timestamp("2026-10-01"),
                                               waterfall=wf)._waterfall_finding()

    text = finding([21.40e6, 10.0e6, 3.55e6, 0.10e6, 16.67e6, 13.18e6, 0.56e6, 3.15e6, 1.49e6])
    assert text == ("2026-Q3 pipeline due in the period went from $21.40M to $1.49M: $16.67M won, $13.18M lost, "
                    "$3.15M pushed out, $13.55M added (new or pulled in), $460.0k net less on deals whose amount "
                    "changed.")
    assert "net more" in finding([100.0, 10.0, 0.0, 30.0, 20.0, 0.0, 5.0, 0.0, 115.0])
    assert finding([100.0, 10.0, 0.0, 5.0, 20.0, 0.0, 5.0, 0.0, 90.0]).endswith("added (new or pulled in).")


def test_docstring_examples_run():
    attempted = 0
    for mod in (deal_history, pipeline, fc):
        result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0
        attempted += result.attempted
    assert attempted >= 20


@pytest.mark.postgres
def test_accuracy_with_baseline_is_the_same_on_postgresql(pg_url):
    from conftest import load_postgres

    case = baseline_case()
    case["forecast_snapshots"] = snaps_frame([("2026-10-12", "2026-10", "company", "commit", 330.0),
                                              ("2026-10-05", "2026-10", "t1", "commit", 300.0),
                                              ("2026-10-05", "2026-Q3", "company", "commit", 25.0)])
    url = load_postgres(pg_url, case, "forecast_test")
    on_pg = fc.forecast_accuracy(url, period="2026-10")
    on_duckdb = fc.forecast_accuracy(case, period="2026-10")
    pd.testing.assert_frame_equal(on_pg, on_duckdb)
    assert len(on_pg) == 6
    pd.testing.assert_frame_equal(pipeline.coverage(url, period="2026-10", lookback_periods=2),
                                  pipeline.coverage(case, period="2026-10", lookback_periods=2))
    at = ["2026-10-01", "2026-10-10 12:00", "2026-11-01"]
    pd.testing.assert_frame_equal(pipeline.open_pipeline_by_period(url, periods=["2026-10", "2026-11", "2026-Q4"], at=at),
                                  pipeline.open_pipeline_by_period(case, periods=["2026-10", "2026-11", "2026-Q4"], at=at))


def test_the_forecast_vs_actual_chart_names_categories_as_the_tables_do_beside_the_plot():
    """Its legend read ``best_case (first call)`` across the top of the plot, over the highest calls."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from revops_lib.present.charts.forecast import plot_forecast_vs_actual

    calls = pd.DataFrame({"forecast_period": ["2026-09", "2026-09", "2026-10", "2026-10"],
                          "category": ["commit", "best_case"] * 2, "call": ["first"] * 4,
                          "forecast": [90.0, 120.0, 100.0, 130.0], "actual": [95.0, 95.0, 110.0, 110.0]})
    ax = plot_forecast_vs_actual(calls)
    fig = ax.figure
    fig.canvas.draw()
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["Commit (first call)", "Best case (first call)", "actual"]
    r = fig.canvas.get_renderer()
    assert legend.get_window_extent(r).x0 >= ax.get_window_extent(r).x1
    plt.close(fig)


def test_accuracy_by_week_by_hand_and_when_empty():
    """Median accuracy per kind of period, category and week (as the convergence chart reads it); an empty
    accuracy table (or a scope with no forecast) still has every column."""
    acc = pd.DataFrame({
        "forecast_period": ["2026-09", "2026-10", "2026-10", "2026-Q3", "2026-09"],
        "scope": ["company", "company", "company", "company", "smb"],
        "category": ["commit"] * 5, "week_of_period": [1, 1, 2, 1, 1],
        "forecast": [90.0, 120.0, 100.0, 300.0, 50.0], "actual": [100.0, 100.0, 100.0, 300.0, 100.0]})
    acc["error"] = acc["forecast"] - acc["actual"]
    acc["abs_pct_error"] = acc["error"].abs() / acc["actual"]
    acc["accuracy"] = np.maximum(0, 1 - acc["abs_pct_error"])
    got = fc.accuracy_by_week(acc, scope="company")
    assert got[["kind", "category", "week_of_period", "n"]].values.tolist() == [
        ["month", "commit", 1, 2], ["month", "commit", 2, 1], ["quarter", "commit", 1, 1]]
    np.testing.assert_allclose(got["median_accuracy"], [(0.9 + 0.8) / 2, 1.0, 1.0])
    np.testing.assert_allclose(got["wape"], [30 / 200, 0.0, 0.0])
    cols = ["kind", "category", "week_of_period", "n", "mape", "wape", "bias", "hit_rate_10", "median_accuracy"]
    for empty in (fc.accuracy_by_week(acc, scope="enterprise"), fc.accuracy_by_week(acc.iloc[:0])):
        assert empty.empty and list(empty.columns) == cols
        assert empty["median_accuracy"].dtype == "float64"


def test_the_waterfall_chart_names_its_steps_as_its_table_does():
    """Its ticks read "pulled / in" and "pushed / out" in lower case beside "Starting", "Won" and the table's
    "Pulled in"; a step that came in is drawn with "+", one that went out with "-"."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from revops_lib.present.charts.base import sanitize_figure
    from revops_lib.present.charts.forecast import plot_pipeline_waterfall

    steps = ["starting", "new", "pulled_in", "increased", "won", "lost", "decreased", "pushed_out", "ending"]
    wf = pd.DataFrame({"step": steps, "amount": [100.0, 10.0, 5.0, 1.0, 40.0, 20.0, 1.0, 5.0, 50.0]})
    ax = plot_pipeline_waterfall(wf)
    sanitize_figure(ax.figure)
    ax.figure.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "Starting", "New", "Pulled\nin", "Increased", "Won", "Lost", "Decreased", "Pushed\nout", "Ending"]
    assert [t.get_text() for t in ax.texts] == ["$100", "+$10", "+$5", "+$1", "-$40", "-$20", "-$1", "-$5", "$50"]
    plt.close(ax.figure)


def test_rep_tables_leave_out_quota_columns_no_rep_has_and_say_why():
    """A weekly report when quotas are set by month: the quota, attainment and coverage columns held only dashes.
    Without a quota for the period (or the next one), or a forecast of any rep or team, those columns are left out
    and a caption says why; with them, the columns stay. The caption is escaped (it carries parameters)."""
    from revops_lib.metrics.reps import MORE_COLUMNS, REP_COLUMNS
    from revops_lib.periods import parse_period

    def reps(quota, next_quota, accuracy):
        r = pd.DataFrame({c: [1.0, 2.0, 3.0] for c in REP_COLUMNS + MORE_COLUMNS})
        r["owner"], r["team"] = ["ana", "all", "all"], ["t1", "t1", "all"]
        r["small_sample"] = False
        r["quota"], r["attainment"] = quota, (None if quota is None else 0.5)
        r["next_quota"], r["coverage"] = next_quota, (None if next_quota is None else 2.0)
        r["forecast_accuracy"], r["forecast_bias"] = accuracy, accuracy
        return r.astype({c: float for c in ["quota", "attainment", "next_quota", "coverage", "forecast_accuracy",
                                            "forecast_bias"]}).assign(owner=lambda d: d["owner"].astype(str))

    def report(r, metric="revenue_won"):
        r.attrs["next_period"] = "2026-W49"
        return forecast_section.ForecastReport(period=parse_period("2026-W48"), as_of=pd.Timestamp("2026-11-30"),
                                               reps=r, target_metric=metric, call_category="commit")

    bare = report(reps(None, None, None), metric="<b>won</b>")
    html = bare.rep_table().to_html()
    assert ">Quota<" not in html and ">Attainment<" not in html and ">Revenue won<" in html
    assert "No quota for 2026-W48 in targets (&lt;b&gt;won&lt;/b&gt; rows with an owner or team): quota and " \
           "attainment are left out." in html
    act = bare.rep_activity_table().to_html()
    assert "Quota 2026-W49" not in act and ">Coverage<" not in act and "Forecast bias" not in act
    assert ("No quota for 2026-W49 in targets (&lt;b&gt;won&lt;/b&gt; rows with an owner or team): quota and coverage "
            "are left out. No commit forecast of 2026-W48 was submitted by a rep or team: accuracy and bias are left "
            "out.") in act
    assert "no quota for 2026-W48 in targets, so no attainment" in bare._reps_finding()
    full = report(reps(100.0, 50.0, 0.9))
    html, act = full.rep_table().to_html(), full.rep_activity_table().to_html()
    assert ">Quota<" in html and ">Attainment<" in html and "<caption>" not in html
    assert "Quota 2026-W49" in act and ">Coverage<" in act and "Forecast bias" in act and "<caption>" not in act
    assert "no quota" not in full._reps_finding()
