"""The funnel_conversion notebook runs for a month, a quarter and an ISO week through the real runner,
publishes its contract tables with exactly DESIGN.md's columns, and warns when samples are too small."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint
from test_funnel import STAGES, reference_funnel

from revops_lib.metrics import deals, lead_funnel
from revops_lib.sources import open_source

from conftest import naive_utc, period_bounds, run_report

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

CONTRACT = {
    "stage_conversion": ["source", "from_stage", "to_stage", "entered", "converted", "rate", "ci_low", "ci_high"],
    "stage_timing": ["source", "from_stage", "to_stage", "n", "median_days", "p90_days"],
    "deal_stage_conversion": ["from_stage", "to_stage", "entered", "converted", "rate"],
    "channel_economics": ["source", "leads", "mqls", "sqls", "opportunities", "pipeline_created", "revenue_won",
                          "new_customers", "spend", "cost_per_lead", "cac", "roas", "payback_months"],
    "time_in_stage": ["stage", "outcome", "n", "median_days", "p90_days"],
}


@pytest.mark.parametrize("period,small", [("2026-10", None), ("2026-Q3", False), ("2026-W40", True)])
def test_funnel_notebook_runs_and_publishes_the_contract_tables(demo_dir, demo_reports, period, small):
    d = demo_reports / period
    html = (d / "funnel_conversion.html").read_text()
    assert html.count("data:image/png;base64,") >= 6  # funnel, by source, heatmap, trend, timing, deals
    nb = nbformat.read(str(d / "funnel_conversion.ipynb"), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"], "errors or warnings shown"
    tables = d / "tables" / "funnel_conversion"
    published = {name: pd.read_csv(tables / f"{name}.csv") for name in CONTRACT}
    for name, cols in CONTRACT.items():
        assert list(published[name].columns) == cols, name

    conv, timing = published["stage_conversion"], published["stage_timing"]
    totals = conv[conv["source"] == "all"]
    assert totals["from_stage"].tolist() == list(lead_funnel.DEFAULT_STAGES[:len(totals)]) and (conv["entered"] > 0).all()
    assert len(totals) == (4 if not small else len(totals)) >= 2
    assert conv["rate"].between(0, 1).all() and (conv["ci_low"] <= conv["rate"]).all()
    assert (conv["rate"] <= conv["ci_high"]).all() and (conv["converted"] <= conv["entered"]).all()
    assert conv[["source", "from_stage", "to_stage"]].equals(timing[["source", "from_stage", "to_stage"]])
    # every published rate against the pandas reference of METRICS.md (test_funnel.reference_funnel) on the
    # same leads, with statsmodels' Wilson interval
    start, end = period_bounds(period)
    ref = reference_funnel(open_source(demo_dir).to_pandas("leads"), STAGES, start, end, end)
    key = ["source", "from_stage", "to_stage"]
    got = conv.sort_values(key, ignore_index=True)
    ref = ref.sort_values(key, ignore_index=True)
    assert got[key].equals(ref[key])
    np.testing.assert_array_equal(got["entered"], ref["entered"])
    np.testing.assert_array_equal(got["converted"], ref["converted"])
    np.testing.assert_allclose(got["rate"], ref["converted"] / ref["entered"], rtol=1e-9)
    low, high = proportion_confint(ref["converted"], ref["entered"], alpha=0.05, method="wilson")
    np.testing.assert_allclose(got["ci_low"], low, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["ci_high"], high, rtol=1e-9, atol=1e-12)
    t = timing.sort_values(key, ignore_index=True)
    for c in ("median_days", "p90_days"):  # numpy's linear percentiles of the conversion times
        np.testing.assert_allclose(t[c], ref[c], rtol=1e-9, atol=1e-9, equal_nan=True)
    stage_rows = published["deal_stage_conversion"]
    assert stage_rows["from_stage"].tolist() == list(deals.DEFAULT_DEAL_STAGES[:-1])
    assert (stage_rows["converted"] <= stage_rows["entered"]).all()
    # deals created in the period that reached each stage (a history row at that stage or a later one), in pandas
    src = open_source(demo_dir)
    o, h = src.to_pandas("opportunities"), src.to_pandas("opportunity_history")
    created = naive_utc(o["created_at"])
    cohort = set(o.loc[((created >= start) & (created < end)).to_numpy(), "opportunity_id"])
    rank = {s: i for i, s in enumerate(deals.DEFAULT_DEAL_STAGES)}
    h = h[h["opportunity_id"].isin(cohort) & (naive_utc(h["changed_at"]) < end).to_numpy()]
    furthest = h["stage"].map(rank).groupby(h["opportunity_id"]).max()
    reached = [int((furthest >= i).sum()) for i in range(len(rank))]
    assert stage_rows["entered"].tolist() == reached[:-1] and stage_rows["converted"].tolist() == reached[1:]
    assert reached[0] > 0

    # channel economics: the all row is the period's flow, recomputed with pandas; the sources add up to it
    ch = published["channel_economics"].set_index("source")
    leads = open_source(demo_dir).to_pandas("leads")
    made = naive_utc(leads["created_at"])
    assert ch.loc["all", "leads"] == int(((made >= start) & (made < end)).sum())
    won_in = o["is_won"].to_numpy() & ((naive_utc(o["close_date"]) >= start) & (naive_utc(o["close_date"]) < end)
                                       ).to_numpy()
    assert ch.loc["all", "revenue_won"] == pytest.approx(o.loc[won_in, "amount"].sum(), rel=1e-9)
    rows = ch.drop(index="all")
    for c in ("leads", "opportunities", "pipeline_created", "revenue_won", "new_customers", "spend"):
        assert rows[c].sum() == pytest.approx(ch.loc["all", c], rel=1e-9), c
    tis = published["time_in_stage"]
    assert set(tis["outcome"]) <= {"won", "lost", "open", "all"} and (tis["n"] > 0).all()
    assert (tis["median_days"] <= tis["p90_days"] + 1e-9).all() and (tis["median_days"] >= 0).all()

    # narrative: too-small windows are called out with a longer period to run instead
    if small:  # a week of the small demo: even the totals of the later stages are too small
        assert "Too few leads to read" in html and "run the report for 2026-10" in html
    elif small is False:  # a quarter: the totals are large enough, only some sources are flagged
        assert "Too few leads to read" not in html and "Small samples" in html
    m = json.loads((d / "manifest.json").read_text())["funnel_conversion"]
    labels = [h["label"] for h in m["headlines"]]
    assert m["status"] == "ok" and "Leads" in labels and "Win rate" in labels


def test_funnel_notebook_leaves_out_deal_sections_and_says_so_when_only_leads_are_present(tmp_path):
    from conftest import valid_frames, write_folder

    src = write_folder({"leads": valid_frames()["leads"]}, tmp_path / "data")
    status, messages = run_report(src, tmp_path / "reports", "2026-10", ["funnel_conversion"])
    assert status == 0, "\n".join(messages)
    html = (tmp_path / "reports" / "2026-10" / "funnel_conversion.html").read_text()
    assert ("Left out for lack of data: the deal-stage funnel (needs tables <code>opportunity_history</code> or "
            "<code>opportunities</code>); time in deal stage (needs table <code>opportunity_history</code>); the "
            "sales metrics (needs table <code>opportunities</code>).") in html
    assert 'id="Deal-stage-funnel"' not in html and 'id="Sales-metrics"' not in html and 'id="Cohort-trend"' in html
    assert 'id="Time-in-deal-stage"' not in html and 'id="Channel-economics"' in html  # channels from leads alone
    ch = pd.read_csv(tmp_path / "reports" / "2026-10" / "tables" / "funnel_conversion" / "channel_economics.csv")
    assert ch.set_index("source").loc["all", "leads"] == 3 and ch["spend"].isna().all()
    assert "&#x27;No " not in html and "<pre>'No " not in html  # notes are sentences, not quoted reprs
    conv = pd.read_csv(tmp_path / "reports" / "2026-10" / "tables" / "funnel_conversion" / "stage_conversion.csv")
    assert conv.loc[conv["source"] == "all", "entered"].iloc[0] == 3
