"""The forecast_accuracy notebook runs for a month and a quarter on the demo data, through the real runner."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import run_report

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

PUBLISHED = {
    "accuracy": ["forecast_period", "scope", "category", "snapshot_date", "week_of_period", "forecast", "actual",
                 "error", "abs_pct_error", "accuracy"],
    "summary": ["category", "n", "mape", "wape", "bias", "hit_rate_10"],
    "pipeline_waterfall": ["step", "amount"],
}


@pytest.mark.parametrize("period, kind", [("2026-10", "month"), ("2026-Q3", "quarter")])
def test_forecast_accuracy_notebook_runs_and_publishes_the_contract_tables(demo_dir, report_out, period, kind):
    from revops_lib.demo import TRUE_RATES

    status, messages = run_report(demo_dir, report_out, period, ["forecast_accuracy"])
    assert status == 0, "\n".join(messages)
    d = report_out / period
    html = (d / "forecast_accuracy.html").read_text()
    assert html.count("data:image/png;base64,") >= 5  # convergence, bias, calls, coverage, waterfall
    assert "Traceback" not in html
    tables = d / "tables" / "forecast_accuracy"
    frames = {name: pd.read_csv(tables / f"{name}.csv") for name in PUBLISHED}
    for name, cols in PUBLISHED.items():
        assert frames[name].columns.tolist() == cols, name

    acc = frames["accuracy"]
    assert set(acc["category"]) == {"commit", "best_case", "baseline"}
    assert set(acc["scope"]) == {"company", "smb_sales", "mid_market_sales", "enterprise_sales"}
    assert acc["abs_pct_error"].dropna().ge(0).all() and acc["accuracy"].dropna().between(0, 1).all()
    assert acc["abs_pct_error"].isna().eq(acc["actual"].eq(0)).all()  # undefined exactly where nothing was won
    # every period in view ended by the cut-off; the report kind's latest period is the report period or before
    ends = {p: pd.Period(p.replace("-Q", "Q"), freq="Q" if "Q" in p else "M").end_time for p in acc["forecast_period"]}
    cutoff = pd.Timestamp("2026-11-01") if period == "2026-10" else pd.Timestamp("2026-10-01")
    assert max(ends.values()) < cutoff
    assert acc["forecast_period"].str.contains("Q").any() and (~acc["forecast_period"].str.contains("Q")).any()

    s = frames["summary"].set_index("category")
    assert s.loc["commit", "wape"] < s.loc["baseline", "wape"]  # the team's commit beats the mechanical baseline
    assert s["n"].eq(len(acc) // 3).all()

    w = frames["pipeline_waterfall"]
    assert w["step"].tolist() == ["starting", "new", "pulled_in", "increased", "won", "lost", "decreased",
                                  "pushed_out", "ending"]
    a = w.set_index("step")["amount"]
    assert a["ending"] == pytest.approx(a["starting"] + a["new"] + a["pulled_in"] + a["increased"] - a["won"]
                                        - a["lost"] - a["decreased"] - a["pushed_out"], abs=1e-6)

    # who sandbags, who is optimistic: the demo's true biases are recovered in sign and order
    by_scope = pd.read_csv(tables / "summary_by_scope.csv")
    commit = by_scope[by_scope["category"] == "commit"].set_index("scope")
    true = TRUE_RATES["forecast_bias"]
    assert commit.loc["smb_sales", "verdict"] == "optimistic" and true["smb_sales"] > 0
    assert commit.loc["enterprise_sales", "verdict"] == "sandbagging" and true["enterprise_sales"] < 0
    order = sorted(true, key=true.get)
    assert commit.loc[order, "bias"].is_monotonic_increasing
    assert "optimistic: smb_sales" in html and "sandbagging: enterprise_sales" in html

    by_week = pd.read_csv(tables / "accuracy_by_week.csv")
    assert kind in set(by_week["kind"])
    cov = pd.read_csv(tables / "coverage.csv")
    assert len(cov) == 7 and not cov["complete"].iloc[-1] and cov["complete"].iloc[:-1].all()

    m = json.loads((d / "manifest.json").read_text())["forecast_accuracy"]
    labels = [h["label"] for h in m["headlines"]]
    assert m["status"] == "ok" and "Commit WAPE" in labels and "Slipped deals" in labels
