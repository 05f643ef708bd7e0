"""revops_lib.metrics.deal_history and the pipeline built on it: conventions the forecast tests leave unpinned.

Small hand-made deals; every expected value is worked out by hand in the comments.
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_forecast import D, hist_frame, opps_frame

from revops_lib.errors import ParameterError
from revops_lib.metrics import deal_history, pipeline

# ---------------------------------------------------------------------------
# Closed stages, teams, the DealHistory object
# ---------------------------------------------------------------------------

def closed_stage_opps():
    o = opps_frame([("a", "2026-01-01", "2026-02-01", True, True, 1.0, "t1", "x", "Won"),
                    ("b", "2026-01-01", "2026-02-01", True, False, 1.0, "t1", "x", "Dropped"),
                    ("c", "2026-01-01", "2026-02-01", False, False, 1.0, "t2", "y", "Proposal")])
    o["is_won"] = pd.Series([True, None, False], dtype="boolean")  # b: closed, outcome unknown
    return o


def test_a_closed_deal_with_unknown_outcome_makes_its_stage_lost_not_won():
    # b is closed with is_won null: not won, so "Dropped" is a lost stage
    assert deal_history.closed_stages(closed_stage_opps()) == (("Won", "closed_won"), ("Dropped", "closed_lost"))


def test_closed_stages_keep_a_given_set_and_infer_only_the_missing_one():
    o = closed_stage_opps()
    assert deal_history.closed_stages(o, won_stages=["Signed"]) == (("Signed",), ("Dropped", "closed_lost"))
    assert deal_history.closed_stages(o, lost_stages=["Gone"]) == (("Won", "closed_won"), ("Gone",))
    assert deal_history.closed_stages(o, won_stages=["S"], lost_stages=["G"]) == (("S",), ("G",))


def test_deal_history_knows_the_teams_only_when_built_with_scopes():
    o = closed_stage_opps()
    o.loc[2, "team"] = None  # a deal without a team adds no team
    assert deal_history.deal_rows(o).teams == frozenset({"t1"})
    assert deal_history.deal_rows(o, scopes=False).teams == frozenset()
    assert deal_history.teams_of(deal_history.deal_rows(o).source) == frozenset({"t1"})


def test_deal_history_repr_says_materialized_only_while_cached():
    o = closed_stage_opps()
    plain = deal_history.prepare(o, materialize=False)
    assert repr(plain).endswith("lost stages ['Dropped', 'closed_lost']>")
    assert "materialized" not in repr(plain)
    with deal_history.prepare(o) as cached:
        assert cached.materialized and repr(cached).endswith(", materialized>")
    assert not cached.materialized and "materialized" not in repr(cached)


# ---------------------------------------------------------------------------
# Deals without history
# ---------------------------------------------------------------------------

def test_deal_without_history_has_an_unknown_stage_while_open_and_a_closed_stage_from_its_close():
    o = opps_frame([("n1", "2026-03-01 10:00", "2026-03-10", True, True, 10.0, "t1", "ann", None),
                    ("n2", "2026-03-01 10:00", "2026-03-12", True, False, 20.0, "t1", "ann", None),
                    ("n3", "2026-03-01 10:00", "2026-03-11", True, True, 30.0, "t1", "ann", "Signed"),
                    ("n4", "2026-03-01 10:00", "2026-03-31", False, False, 40.0, "t1", "ann", "proposal")])
    s = deal_history.deal_states(o, at=["2026-03-05", "2026-03-20"])
    early = s[s["at"] == pd.Timestamp("2026-03-05")].set_index("opportunity_id")
    late = s[s["at"] == pd.Timestamp("2026-03-20")].set_index("opportunity_id")
    # open until the end of the close date, stage unknown (the current stage is the closing one)
    assert early["stage"].isna().tolist() == [True, True, True, False] and early.loc["n4", "stage"] == "proposal"
    assert not early["is_closed"].any()
    # closed: a null stage becomes closed_won / closed_lost by is_won; a given one is kept
    assert late["stage"].tolist() == ["closed_won", "closed_lost", "Signed", "proposal"]
    assert late["is_closed"].tolist() == [True, True, True, False]
    assert late["is_won"].tolist() == [True, False, True, False]
    # the close row starts at the last microsecond of the close date
    assert late.loc["n1", "changed_at"] == pd.Timestamp("2026-03-10 23:59:59.999999")
    assert late["amount"].tolist() == [10.0, 20.0, 30.0, 40.0]
    assert late["close_date"].tolist() == [D("2026-03-10"), D("2026-03-12"), D("2026-03-11"), D("2026-03-31")]


# ---------------------------------------------------------------------------
# Slippage and the open pipeline by close month
# ---------------------------------------------------------------------------

def slippage_case():
    """October 2026: X moved earlier, Y overdue (pushed before October), Z pushed out, W overdue (no
    history), V won in October."""
    o = opps_frame([
        ("X", "2026-09-01 10:00", "2026-09-25", False, False, 300.0, "t1", "ann", "proposal"),
        ("Y", "2026-09-01 10:00", "2026-10-15", False, False, 200.0, "t1", "bob", "negotiation"),
        ("Z", "2026-09-02 10:00", "2026-11-15", False, False, 100.0, "t2", "cy", "discovery"),
        ("W", "2026-09-03 10:00", "2026-10-12", False, False, 50.0, "t2", "dee", "qualification"),
        ("V", "2026-09-04 10:00", "2026-10-08", True, True, 80.0, "t2", "dee", "closed_won"),
    ])
    h = hist_frame([
        ("X", "2026-09-01 10:00", "proposal", 300.0, "2026-10-20"),
        ("X", "2026-10-05 10:00", "proposal", 300.0, "2026-09-25"),     # moved before the period
        ("Y", "2026-09-01 10:00", "negotiation", 200.0, "2026-09-30"),
        ("Y", "2026-09-10 10:00", "negotiation", 200.0, "2026-10-15"),  # a push, before October
        ("Z", "2026-09-02 10:00", "discovery", 100.0, "2026-10-10"),
        ("Z", "2026-10-03 10:00", "discovery", 100.0, "2026-11-15"),    # a push in October
        ("V", "2026-09-04 10:00", "proposal", 80.0, "2026-10-08"),
        ("V", "2026-10-08 10:00", "closed_won", 80.0, "2026-10-08"),
    ])
    return {"opportunities": o, "opportunity_history": h}


def test_slippage_marks_a_deal_moved_before_the_period_and_gives_close_dates_as_dates():
    s = pipeline.slippage(slippage_case(), period="2026-10")
    # due in October at 10-01: X (10-20), Y (10-15), Z (10-10), W (10-12), V (10-08) = 730;
    # still open at 11-01: all but V (won 10-08); largest amount first
    assert s[["opportunity_id", "status", "pushes", "total_pushes"]].values.tolist() == [
        ["X", "moved earlier", 0, 0], ["Y", "overdue", 0, 1], ["Z", "pushed out", 1, 1], ["W", "overdue", 0, 0]]
    assert s["close_date_at_start"].tolist() == [D("2026-10-20"), D("2026-10-15"), D("2026-10-10"), D("2026-10-12")]
    assert s["close_date"].tolist() == [D("2026-09-25"), D("2026-10-15"), D("2026-11-15"), D("2026-10-12")]
    assert all(type(x) is type(D("2026-01-01")) for x in s["close_date"])
    # 300 + 200 + 100 + 50 = 650 of 730
    assert s.attrs["count"] == 4 and s.attrs["amount"] == 650.0
    assert s.attrs["starting_count"] == 5 and s.attrs["starting_amount"] == 730.0
    assert s.attrs["rate"] == pytest.approx(650 / 730)


def test_pipeline_snapshots_split_by_close_month():
    r = pipeline.pipeline_snapshots(slippage_case(), dates=["2026-10-01", "2026-10-06"], by="close_month")
    got = {(str(x.snapshot_date.date()), x.close_month): (x.deals, x.amount) for x in r.itertuples()}
    assert got == {
        # 10-01: X, Y, Z, W, V all due in October: 300 + 200 + 100 + 50 + 80
        ("2026-10-01", "2026-10"): (5, 730.0),
        # 10-06: X moved to 09-25, Z pushed to 11-15 (10-03); Y, W, V (won 10-08) in October: 200 + 50 + 80
        ("2026-10-06", "2026-09"): (1, 300.0), ("2026-10-06", "2026-10"): (3, 330.0),
        ("2026-10-06", "2026-11"): (1, 100.0),
    }


def test_pipeline_snapshots_reject_an_unknown_split_naming_the_allowed_ones():
    with pytest.raises(ParameterError, match=r"\['quarter'\] not allowed.*'close_month'"):
        pipeline.pipeline_snapshots(slippage_case(), dates=["2026-10-01"], by="quarter")


def test_open_pipeline_by_period_of_no_periods_is_an_empty_typed_frame():
    out = pipeline.open_pipeline_by_period(slippage_case(), periods=[], at=[])
    assert len(out) == 0 and out.columns.tolist() == ["period", "measured_at", "deals", "amount"]
    assert str(out["measured_at"].dtype) == "datetime64[us]"
    assert str(out["deals"].dtype) == "int64" and str(out["amount"].dtype) == "float64"


# ---------------------------------------------------------------------------
# Waterfall: cents and deal counts in .attrs
# ---------------------------------------------------------------------------

def test_waterfall_attrs_hold_the_cents_and_deal_counts_of_each_step():
    o = opps_frame([("a", "2026-09-01 10:00", "2026-10-20", True, True, 100.0, "t1", "ann", "closed_won"),
                    ("b", "2026-10-03 10:00", "2026-10-25", False, False, 40.0, "t1", "ann", "proposal"),
                    ("c", "2026-09-01 10:00", "2026-11-20", False, False, 25.0, "t1", "ann", "proposal")])
    h = hist_frame([("c", "2026-09-01 10:00", "proposal", 25.0, "2026-10-15"),
                    ("c", "2026-10-10 10:00", "proposal", 25.0, "2026-11-20")])
    wf = pipeline.pipeline_waterfall({"opportunities": o, "opportunity_history": h}, period="2026-10")
    # starting: a (100, no history: open until the end of 10-20) + c (25) = 125; new: b (40);
    # won: a (100, at the end of 10-20); pushed out: c (25, to 11-20); ending 125 + 40 - 100 - 25 = 40
    assert wf.set_index("step")["amount"].to_dict() == {
        "starting": 125.0, "new": 40.0, "pulled_in": 0.0, "increased": 0.0, "won": 100.0, "lost": 0.0,
        "decreased": 0.0, "pushed_out": 25.0, "ending": 40.0}
    assert wf.attrs["cents"] == {"starting": 12500, "new": 4000, "pulled_in": 0, "increased": 0, "won": 10000,
                                 "lost": 0, "decreased": 0, "pushed_out": 2500, "ending": 4000}
    assert wf.attrs["deals"] == {"starting": 2, "new": 1, "pulled_in": 0, "increased": 0, "won": 1, "lost": 0,
                                 "decreased": 0, "pushed_out": 1}
    assert wf.attrs["period"] == "2026-10" and wf.attrs["cut"] == pd.Timestamp("2026-11-01")


def test_null_history_fields_carry_the_deals_own_previous_value_not_another_rows():
    o = opps_frame([("a", "2026-01-01", "2026-03-31", False, False, 999.0, "t1", "ann", "negotiation"),
                    ("b", "2026-01-01", "2026-04-30", False, False, 500.0, "t1", "bob", "qualification"),
                    ("c", "2026-01-01", "2026-03-15", False, False, 70.0, "t2", "cy", "proposal")])
    o["forecast_category"] = ["commit", "best_case", "pipeline"]
    h = hist_frame([("a", "2026-01-01", "qualification", 300.0, "2026-03-31"),
                    ("a", "2026-01-05", "proposal", 100.0, "2026-02-28"),
                    ("a", "2026-01-10", "negotiation", None, "2000-01-01"),
                    ("b", "2026-01-01", "qualification", 500.0, "2026-04-30"),
                    ("c", "2026-01-02", "proposal", None, "2000-01-01")])
    h.loc[[2, 4], "close_date"] = None  # nulls: carried forward
    h["forecast_category"] = ["pipeline", "commit", None, "best_case", None]
    s = deal_history.deal_states({"opportunities": o, "opportunity_history": h}, at="2026-02-01").set_index(
        "opportunity_id")
    # a: its latest row (01-10) has nulls: amount, close date and category of its 01-05 row (not its largest,
    # nor the largest of all deals: 500, 04-30, "pipeline"); c: no earlier row, so its opportunities values
    assert s["stage"].tolist() == ["negotiation", "qualification", "proposal"]
    assert s["amount"].tolist() == [100.0, 500.0, 70.0]
    assert s["close_date"].tolist() == [D("2026-02-28"), D("2026-04-30"), D("2026-03-15")]
    assert s["forecast_category"].tolist() == ["commit", "best_case", "pipeline"]


def test_slippage_at_the_period_edges():
    """Due on the period's first day at its start: listed; moved to the first day after it: pushed out; due the
    day before the period: not due in it."""
    o = opps_frame([
        ("A", "2026-09-01 10:00", "2026-10-01", False, False, 10.0, "t1", "ann", "proposal"),
        ("B", "2026-09-01 10:00", "2026-11-01", False, False, 20.0, "t1", "ann", "proposal"),
        ("C", "2026-09-01 10:00", "2026-10-20", False, False, 40.0, "t1", "ann", "proposal"),
    ])
    h = hist_frame([
        ("A", "2026-09-01 10:00", "proposal", 10.0, "2026-10-01"),
        ("B", "2026-09-01 10:00", "proposal", 20.0, "2026-10-01"),
        ("B", "2026-10-05 10:00", "proposal", 20.0, "2026-11-01"),   # pushed to the first day after October
        ("C", "2026-09-01 10:00", "proposal", 40.0, "2026-09-30"),   # due the day before October at its start
        ("C", "2026-10-02 10:00", "proposal", 40.0, "2026-10-20"),
    ])
    s = pipeline.slippage({"opportunities": o, "opportunity_history": h}, period="2026-10")
    assert s[["opportunity_id", "status", "pushes"]].values.tolist() == [["B", "pushed out", 1], ["A", "overdue", 0]]
    assert s.attrs["starting_count"] == 2 and s.attrs["starting_amount"] == 30.0


@pytest.mark.parametrize("change, at, stages", [
    # instants at midnight (snapshot dates): the state at the start of each day
    ("2026-03-05 15:00", ["2026-03-05", "2026-03-06"], ["qualification", "proposal"]),
    # times within a day: a change at 15:00 is not yet seen at 12:00 the same day, but is at 18:00
    ("2026-03-05 15:00", ["2026-03-05 12:00", "2026-03-05 18:00"], ["qualification", "proposal"]),
    # a change at 09:00 is seen at 12:00 the same day (a join on the date alone would miss it)
    ("2026-03-05 09:00", ["2026-03-05 12:00", "2026-03-05 18:00"], ["proposal", "proposal"]),
    # a cut-off is exclusive: at the change's instant it is not yet seen, a microsecond later it is
    ("2026-03-05 15:00", ["2026-03-05 15:00", "2026-03-05 15:00:00.000001"], ["qualification", "proposal"]),
])
def test_deal_states_at_whole_days_and_at_times_within_a_day(change, at, stages):
    """Whole-day calendars take a faster path (a join on the date) than calendars of times (an as-of join):
    both must give the state as of each instant, to the microsecond."""
    o = opps_frame([("a", "2026-03-01 10:00", "2026-03-31", False, False, 10.0, "t1", "ann", "proposal")])
    h = hist_frame([("a", "2026-03-01 10:00", "qualification", 10.0, "2026-03-31"),
                    ("a", change, "proposal", 10.0, "2026-03-31")])
    data = {"opportunities": o, "opportunity_history": h}
    s = deal_history.deal_states(data, at=at)  # an interval join
    got = dict(zip(s["at"], s["stage"]))
    assert [got[pd.Timestamp(t)] for t in at] == stages
    snaps = pipeline.pipeline_snapshots(data, dates=at, by="stage")  # the calendar: on the date, or as of
    got = dict(zip(snaps["snapshot_date"], snaps["stage"]))
    assert [got[pd.Timestamp(t)] for t in at] == stages
