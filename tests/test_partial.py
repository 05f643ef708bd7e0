"""Partial data: every report builds what its tables allow (issue: "Partial data").

Table-driven over the contract: each report is analysed with each of its tables absent in turn. The
expected left-out parts are written here by hand (not derived from the parts' own declarations), and the
numbers of the parts that stay and do not depend on the absent table must equal those of the full-data run.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from revops_lib.metrics.kpis import KPIS
from revops_lib.present.section import Part, Section
from revops_lib.present.sections import forecast, funnel, quality, retention, scorecard
from revops_lib.schema import TABLES
from revops_lib.sources import Source, open_source
from revops_lib.validation import validate

PERIOD = "2026-10"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def frames(demo_dir):
    src = open_source(demo_dir)
    return {n: src.to_pandas(n) for n in TABLES if src.has(n)}


def without(frames, *absent) -> Source:
    return Source.from_frames({n: f for n, f in frames.items() if n not in absent},
                              description="demo without " + ", ".join(absent))


def analyse(module, src):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if module is funnel:
            return funnel.analyze(src, period=PERIOD)
        if module is forecast:
            return forecast.assess(src, period=PERIOD)
        if module is scorecard:
            return scorecard.analyze(src, period=PERIOD)
        return retention.analyze(src, period=PERIOD)


@pytest.fixture(scope="module")
def full(frames):
    src = without(frames)
    return {m: analyse(m, src) for m in (funnel, forecast, scorecard, retention)}


def same(a, b):
    if a is None or b is None:
        assert a is None and b is None
        return
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=False, rtol=1e-12)


# (report module, absent table) -> (left-out part keys, attributes that must equal the full run)
FUNNEL_LEADS = ("conversion", "timing", "previous_conversion", "trend", "distribution", "activity")
CASES = {
    (funnel, "leads"): ({"funnel", "segments", "trend", "timing", "activity"}, ("deals", "sales", "previous_sales")),
    (funnel, "opportunities"): ({"sales"}, FUNNEL_LEADS + ("stage_times",)),  # closed stages: the defaults
    (funnel, "marketing_spend"): (set(), FUNNEL_LEADS + ("sales", "stage_times", "stuck")),  # channels without spend
    (funnel, "opportunity_history"): ({"stage_time"}, FUNNEL_LEADS + ("sales", "previous_sales", "channels")),
    # (deals from opps)
    (forecast, "forecast_snapshots"): ({"accuracy"}, ("coverage", "waterfall", "slippage")),
    (forecast, "opportunity_history"): ({"waterfall", "slippage"}, ()),
    (forecast, "targets"): (set(), ("accuracy", "waterfall", "slippage")),
    (forecast, "leads"): (set(), ("accuracy", "coverage", "projection", "waterfall", "slippage")),
    (retention, "transactions"): (set(), ("cohorts", "movements", "kpis", "trailing", "survival")),
    (retention, "marketing_spend"): (set(), ("cohorts", "movements", "kpis", "trailing", "survival")),
    (retention, "subscriptions"): (set(), ()),  # computed from transactions instead
    (scorecard, "targets"): ({"pacing"}, ()),
    (scorecard, "marketing_spend"): ({"revenue"}, ()),
    (scorecard, "opportunities"): ({"revenue"}, ()),
}
# every other table of the scorecard: no part left out (each function keeps a KPI)
for _t in ("leads", "web_traffic", "email_campaigns", "activities", "support_tickets", "reviews", "subscriptions",
           "opportunity_history", "forecast_snapshots", "transactions"):
    CASES[(scorecard, _t)] = (set(), ())


@pytest.mark.parametrize("module,table", list(CASES), ids=[f"{m.__name__.rsplit('.', 1)[-1]}-{t}" for m, t in CASES])
def test_each_report_with_each_table_absent(frames, full, module, table):
    left, equal = CASES[(module, table)]
    rep = analyse(module, without(frames, table))
    assert set(rep.left_out) == left
    assert all(f"`{table}`" in rep.left_out[k] for k in left)
    keys = [p.key for p in type(rep).PARTS]
    assert rep.buildable(without(frames, table))
    if left:
        titles = [p.title for p in type(rep).PARTS if p.key in left]
        sentence = rep.scope_sentence()
        assert sentence.startswith("Left out for lack of data: ") and all(t in sentence for t in titles)
        assert f"`{table}`" in sentence
    else:
        assert rep.scope_sentence() == ""
    assert set(keys) >= left
    ref = full[module]
    for attr in equal:
        same(getattr(rep, attr), getattr(ref, attr))


@pytest.mark.parametrize("table", sorted({t for k in KPIS for t in k.tables}))
def test_scorecard_kpis_that_do_not_need_the_absent_table_keep_their_numbers(frames, full, table):
    rep = analyse(scorecard, without(frames, table))
    ref = full[scorecard].card.set_index("kpi")
    got = rep.card.set_index("kpi")
    keep = [k.key for k in KPIS if table not in k.tables and k.key in ref.index]
    gone = [k.key for k in KPIS if table in k.tables]
    assert keep and not set(gone) & set(got.index)
    pd.testing.assert_series_equal(got.loc[keep, "value"], ref.loc[keep, "value"], check_exact=False, rtol=1e-12)
    if table != "targets":
        pd.testing.assert_series_equal(got.loc[keep, "status"], ref.loc[keep, "status"])


def test_a_left_out_part_in_jupyterlab_says_which_table_would_bring_it(frames):
    fr = analyse(funnel, without(frames, "leads"))
    assert str(fr.trend_table()) == "*Left out: the cohort trend needs table `leads`.*"
    assert fr.trend_chart() is None  # a chart cell displays the note instead of drawing
    text = str(fr.findings())
    assert "No leads" not in text and "Win rate" in text
    assert [h for h, _ in fr.headlines()] == ["Win rate"]


@pytest.mark.parametrize("module,tables,reason", [
    (funnel, ("leads", "opportunities", "opportunity_history"), "table `leads`"),
    (forecast, ("opportunities",), "table `opportunities`"),
    (retention, ("subscriptions", "transactions"), "tables `subscriptions` or `transactions`"),
    (scorecard, tuple(sorted({t for k in KPIS for t in k.tables})), "`email_campaigns` or `leads` or `web_traffic`"),
])
def test_a_report_with_no_possible_part_is_not_buildable_and_says_why(frames, module, tables, reason):
    cls = {funnel: funnel.FunnelReport, forecast: forecast.ForecastReport, retention: retention.RetentionReport,
           scorecard: scorecard.Scorecard}[module]
    src = without(frames, *tables)
    assert not cls.buildable(src)
    assert reason in cls.unbuildable_reason(src) and "No part of this report can be built" in cls.unbuildable_reason(src)
    one_back = without(frames, *tables[1:])  # the first table back: at least one part again
    assert cls.buildable(one_back)


def test_part_missing_names_the_tables_that_would_bring_it():
    has = {"a"}.__contains__
    assert Part("x", "x", ("a",)).missing(has) == ""
    assert Part("x", "x", ("b",)).missing(has) == "table `b`"
    assert Part("x", "x", ("a", "b", "c")).missing(has) == "tables `b` and `c`"
    assert Part("x", "x", any_of=("b", "c")).missing(has) == "tables `b` or `c`"
    assert Part("x", "x", any_of=("a", "c")).missing(has) == ""
    assert Part("x", "x", ("b",), any_of=("c", "d")).missing(has) == "tables `b` and (`c` or `d`)"


def test_a_part_needing_an_optional_column_is_left_out_without_it(frames, full):
    f = dict(frames)
    f["leads"] = f["leads"].drop(columns="segment")
    fr = analyse(funnel, Source.from_frames(f))
    assert fr.left_out == {"segments": "column `leads.segment`"}
    assert fr.scope_sentence() == "Left out for lack of data: the funnel by segment (needs column `leads.segment`)."
    same(fr.conversion, full[funnel].conversion)
    has = {"leads"}.__contains__
    assert Part("x", "x", ("leads",), columns=("leads.segment", "leads.mql_at")).missing(
        has, lambda t: {"lead_id"}) == "columns `leads.segment` and `leads.mql_at`"


def test_scope_sentence_groups_parts_by_the_table_they_need():
    class Demo(Section):
        PARTS = (Part("a", "the first", ("t",)), Part("b", "the second", ("t",)), Part("c", "the third", ("u",)))

    d = Demo()
    d.left_out = {"a": "table `t`", "b": "table `t`", "c": "table `u`"}
    assert d.scope_sentence() == ("Left out for lack of data: the first and the second (need table `t`); "
                                  "the third (needs table `u`).")
    d.left_out = {}
    assert d.scope_sentence() == ""


def test_data_quality_lists_what_the_present_tables_allow(frames):
    dq = quality.assess(without(frames, *[t for t in frames if t != "opportunities"]), period=PERIOD)
    parts = dq.parts.set_index(["report", "part_key"])
    built = set(parts.index[parts["built"]])
    assert built == {("revops_scorecard", "sales"), ("revops_scorecard", "customer_success"),
                     ("funnel_conversion", "headline"), ("funnel_conversion", "sales"), ("funnel_conversion", "deals"),
                     ("funnel_conversion", "channels"), ("forecast_accuracy", "projection"),
                     ("forecast_accuracy", "coverage"), ("forecast_accuracy", "reps"),
                     ("forecast_accuracy", "segments")}
    assert parts.loc[("forecast_accuracy", "waterfall"), "needs"] == "table `opportunity_history`"
    assert parts.loc[("funnel_conversion", "trend"), "needs"] == "table `leads`"
    assert "13 of 23 report parts are left out" in str(dq.findings())


# -- open deals without an expected close date --------------------------------------------------


def _undated(frames, share=0.5):
    """The demo with the close date of every other open deal removed (in opportunities and its history)."""
    o = frames["opportunities"].copy()
    open_ids = o.loc[~o["is_closed"].astype(bool), "opportunity_id"]
    ids = set(open_ids.iloc[::2])
    o.loc[o["opportunity_id"].isin(ids), "close_date"] = None
    h = frames["opportunity_history"].copy()
    h.loc[h["opportunity_id"].isin(ids), "close_date"] = None
    return {**frames, "opportunities": o, "opportunity_history": h}, ids


def test_open_deals_without_a_close_date_validate_with_a_warning_and_closed_ones_fail(frames):
    f, ids = _undated(frames)
    res = validate(Source.from_frames(f))
    assert res.ok
    w = [p for p in res.warnings if p.check == "open_without_close_date"]
    assert len(w) == 1 and w[0].table == "opportunities" and w[0].column == "close_date" and w[0].count == len(ids)
    o = f["opportunities"].copy()
    closed = o.index[o["is_closed"].astype(bool)][:3]
    o.loc[closed, "close_date"] = None
    res = validate(Source.from_frames({**f, "opportunities": o}))
    err = [p for p in res.errors if p.check == "null_required"]
    assert len(err) == 1 and err[0].count == 3 and "closed deal" in err[0].message


def test_open_deals_without_a_close_date_count_in_open_pipeline_and_are_counted_where_left_out(frames, full):
    f, ids = _undated(frames)
    src = Source.from_frames(f)
    o = f["opportunities"]
    cut = pd.Timestamp("2026-11-01")
    und = o[o["opportunity_id"].isin(ids) & (pd.to_datetime(o["created_at"]) < cut)]
    fr = analyse(funnel, src)
    # open pipeline counts them: the same as with their dates
    same(fr.sales[["open_opportunities", "open_amount"]], full[funnel].sales[["open_opportunities", "open_amount"]])
    same(fr.deals, full[funnel].deals)
    fa = analyse(forecast, src)
    note = fa.notes["undated"]
    assert f"{len(und):,} open deal" in note and "left out of coverage" in note
    assert note in str(fa.findings())
    # coverage leaves them out: the next period's open pipeline drops by exactly what they held
    nxt, nxt_full = fa.coverage.iloc[-1], full[forecast].coverage.iloc[-1]
    assert nxt["open_pipeline"] < nxt_full["open_pipeline"]
    wf = fa.waterfall.set_index("step")["amount"]
    ident = (wf["starting"] + wf["new"] + wf["pulled_in"] + wf["increased"] - wf["won"] - wf["lost"]
             - wf["decreased"] - wf["pushed_out"])
    assert ident == pytest.approx(wf["ending"], abs=0.01)
    sc = analyse(scorecard, src)
    assert any(f"{len(und):,} open deal" in n for n in sc.notes)


# -- through the real runner: a folder holding only `opportunities` --------------------------------


@pytest.mark.notebook
def test_a_folder_with_only_opportunities_builds_what_it_allows(demo_dir, tmp_path):
    import json
    import shutil

    from conftest import run_report

    src = tmp_path / "crm"
    src.mkdir()
    for f in demo_dir.glob("opportunities.*"):
        shutil.copy(f, src / f.name)
    out = tmp_path / "reports"
    status, messages = run_report(src, out, PERIOD, None)
    assert status == 0, messages
    manifest = json.loads((out / PERIOD / "manifest.json").read_text())
    statuses = {n: e["status"] for n, e in manifest.items()}
    assert statuses == {"revops_scorecard": "ok", "funnel_conversion": "ok", "forecast_accuracy": "ok",
                        "cohort_retention": "no tables", "data_quality": "ok"}
    assert "`subscriptions` or `transactions`" in manifest["cohort_retention"]["reason"]
    index = (out / "index.html").read_text()
    assert "skipped: tables absent" in index and "failed" not in index.split("<tbody>")[-1]
    page = (out / PERIOD / "funnel_conversion.html").read_text()
    assert 'id="Sales-metrics"' in page and 'id="Headline-numbers-vs-the-previous-period"' in page
    assert 'id="Cohort-trend"' not in page and 'id="Deal-stage-funnel"' in page
    assert ("Left out for lack of data: the lead funnel, the funnel by segment, the cohort trend, time to convert "
            "and stage activity (need table <code>leads</code>); time in deal stage (needs table "
            "<code>opportunity_history</code>).") in page
    assert 'id="Channel-economics"' in page  # deals by their own source
    assert "the later stages&#39; rates are lower bounds" in page or "the later stages' rates are lower bounds" in page
    assert set(manifest["funnel_conversion"]["left_out"]) == {"funnel", "segments", "trend", "timing", "activity",
                                                              "stage_time"}
    fc = (out / PERIOD / "forecast_accuracy.html").read_text()
    assert 'id="Rep-and-team-performance"' in fc
    assert 'id="Pipeline-coverage"' in fc and 'id="Slippage"' not in fc and 'id="How-accurate-were-the-calls"' not in fc
    sc = (out / PERIOD / "revops_scorecard.html").read_text()
    assert 'id="Sales"' in sc and 'id="Marketing"' not in sc and 'id="Pacing"' not in sc
    assert not (out / PERIOD / "cohort_retention.html").exists()
    dq = (out / PERIOD / "tables" / "data_quality" / "report_parts.csv").read_text()
    assert "forecast_accuracy,Forecast accuracy,coverage,Pipeline coverage,True," in dq


def test_the_deal_stage_funnel_from_opportunities_alone_counts_lost_deals_at_the_first_stage():
    from revops_lib.metrics import deals

    o = pd.DataFrame({
        "opportunity_id": ["A", "B", "C", "D", "E", "F"],
        "created_at": pd.to_datetime(["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05",
                                      "2026-09-30"]),
        "close_date": [None, None, pd.Timestamp("2026-10-20").date(), pd.Timestamp("2026-10-21").date(), None,
                       None],
        "is_closed": [False, False, True, True, False, False], "is_won": [False, False, True, False, False, False],
        "amount": [1.0] * 6,
        "stage": ["qualification", "proposal", "closed_won", "closed_lost", "discovery", "proposal"]})
    d = deals.deal_stage_conversion(Source.from_frames({"opportunities": o}), period="2026-10")
    # five deals created in October (F is September): A qual (0), B proposal (2), C won (4), D lost (0), E disc (1)
    # reached ≥ i: qual 5, discovery 3 (B, C, E), proposal 2 (B, C), negotiation 1 (C), won 1 (C)
    assert d.attrs["basis"] == "opportunities" and d.attrs["deals"] == 5
    assert d["entered"].tolist() == [5, 3, 2, 1] and d["converted"].tolist() == [3, 2, 1, 1]
    assert d["rate"].tolist() == pytest.approx([0.6, 2 / 3, 0.5, 1.0])
