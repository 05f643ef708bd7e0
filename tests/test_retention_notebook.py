"""The cohort_retention notebook runs through the real runner, from subscriptions and from transactions."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from test_retention import _reference_months, _reference_movements

from conftest import naive_utc, run_report

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

PUBLISHED = {
    "logo_retention": ["cohort", "age", "cohort_size", "active", "retention"],
    "revenue_retention": ["cohort", "age", "starting_mrr", "mrr", "nrr", "grr"],
    "mrr_movements": ["month", "starting_mrr", "new", "expansion", "reactivation", "contraction", "churned",
                      "ending_mrr"],
}


@pytest.fixture(scope="module")
def transactions_dir(demo_dir, tmp_path_factory):
    """The demo folder without subscriptions.parquet: retention falls back to transactions."""
    path = tmp_path_factory.mktemp("tx") / "data"
    shutil.copytree(demo_dir, path)
    (path / "subscriptions.parquet").unlink()
    return path


def _tables(out, period="2026-10"):
    d = out / period / "tables" / "cohort_retention"
    return {name: pd.read_csv(d / f"{name}.csv", dtype={"cohort": str, "month": str}) for name in PUBLISHED}


def _check_published(tables):
    for name, cols in PUBLISHED.items():
        assert list(tables[name].columns) == cols, name
    logo, rev, mv = tables["logo_retention"], tables["revenue_retention"], tables["mrr_movements"]
    cohorts = sorted(logo["cohort"].unique())
    assert len(cohorts) == 24 and cohorts[-1] == "2026-10" and cohorts[0] == "2024-11"
    assert logo.groupby("cohort")["age"].max().to_dict() == {
        c: (2026 - int(c[:4])) * 12 + 10 - int(c[5:]) for c in cohorts}  # every age up to the cut-off, no more
    assert (logo.loc[logo["age"] == 0, "retention"] == 1).all()
    assert (rev["grr"] <= rev["nrr"] + 1e-12).all() and (rev["grr"] <= 1 + 1e-12).all()
    assert mv["month"].tolist() == [f"2025-{m:02d}" for m in (11, 12)] + [f"2026-{m:02d}" for m in range(1, 11)]
    cents = {c: (mv[c] * 100).round().astype("int64") for c in PUBLISHED["mrr_movements"][1:]}
    assert (cents["ending_mrr"] == cents["starting_mrr"] + cents["new"] + cents["expansion"] + cents["reactivation"]
            - cents["contraction"] - cents["churned"]).all()


def reference_levels(data_dir, basis: str) -> pd.DataFrame:
    """Customer-months ``customer_id, month, c`` (cents > 0) up to 2026-10, in pandas from the demo files:
    month-end MRR of the subscriptions, or the payments of the month."""
    if basis == "subscriptions":
        subs = pd.read_parquet(data_dir / "subscriptions.parquet")
        return _reference_months(subs, pd.Period("2026-10", freq="M"), first_month="2023-11")
    tx = pd.read_parquet(data_dir / "transactions.parquet")
    tx = tx[(naive_utc(tx["occurred_at"]) < pd.Timestamp("2026-11-01")).to_numpy()]
    month = naive_utc(tx["occurred_at"]).dt.to_period("M").dt.start_time.to_numpy()
    cents = tx.assign(month=month, c=(tx["amount"] * 100).round().astype("int64"))  # each payment to the cent
    c = cents.groupby(["customer_id", "month"])["c"].sum()
    return c[c > 0].reset_index()


def _check_against_pandas(tables, levels: pd.DataFrame):
    """Movements, logo and revenue retention of the published tables, recomputed from the customer-months."""
    ref_mv = _reference_movements(levels, "2023-11", "2026-10")
    for row in tables["mrr_movements"].itertuples():
        e = ref_mv[row.month]
        for col, key in (("starting_mrr", "starting"), ("new", "new"), ("expansion", "expansion"),
                         ("reactivation", "reactivation"), ("contraction", "contraction"), ("churned", "churned"),
                         ("ending_mrr", "ending")):
            assert round(getattr(row, col) * 100) == e[key], (row.month, col)
    assert sum(ref_mv[m]["reactivation"] for m in tables["mrr_movements"]["month"]) > 0  # every kind occurs
    grid = levels.assign(month=pd.to_datetime(levels["month"]).dt.strftime("%Y-%m")).pivot_table(
        index="customer_id", columns="month", values="c", aggfunc="sum", fill_value=0)
    months = list(pd.period_range("2023-11", "2026-10", freq="M").strftime("%Y-%m"))
    grid = grid.reindex(columns=months, fill_value=0)
    first = (grid > 0).idxmax(axis=1)  # each customer's first paid month
    logo = tables["logo_retention"].set_index(["cohort", "age"])
    rev = tables["revenue_retention"].set_index(["cohort", "age"])
    for (cohort, age), row in logo.iterrows():
        members = grid[first == cohort]
        start = members[cohort]
        at_k = members[months[months.index(cohort) + age]]
        assert row["cohort_size"] == len(members) and row["active"] == (at_k > 0).sum(), (cohort, age)
        r = rev.loc[(cohort, age)]
        assert round(r["starting_mrr"] * 100) == start.sum() and round(r["mrr"] * 100) == at_k.sum(), (cohort, age)
        assert r["nrr"] == pytest.approx(at_k.sum() / start.sum(), rel=1e-9)
        assert r["grr"] == pytest.approx(np.minimum(at_k, start).sum() / start.sum(), rel=1e-9)
    assert (logo["retention"] < 1).any() and (rev["nrr"] > 1).any() and (rev["grr"] < rev["nrr"]).any()


def test_cohort_retention_runs_from_subscriptions(demo_dir, demo_reports):
    html = (demo_reports / "2026-10" / "cohort_retention.html").read_text()
    assert html.count("data:image/png;base64,") >= 5  # curves, survival, movements, ARR bridge, NRR trend
    # the two cohort heatmaps are shaded tables: numbers as text, one colour per cell
    assert "Logo retention: share of each cohort" in html and "Net revenue retention: cohort MRR" in html
    assert html.count("background-color: #") >= 50 and ">Average<" in html
    assert "Trailing-12-month <strong>NRR" in html and "by segment" in html
    assert "Traceback" not in html and "nan%" not in html
    tables = _tables(demo_reports)
    _check_published(tables)
    _check_against_pandas(tables, reference_levels(demo_dir, "subscriptions"))
    m = json.loads((demo_reports / "2026-10" / "manifest.json").read_text())["cohort_retention"]
    heads = [h for h in m["headlines"] if h.get("kind") != "finding"]
    assert m["status"] == "ok" and [h["label"] for h in heads] == ["MRR", "NRR (12 m)", "GRR (12 m)", "LTV:CAC"]
    top = [h for h in m["headlines"] if h.get("kind") == "finding"]  # the executive summary's line
    assert len(top) == 1 and top[0]["value"].startswith("MRR at the end of 2026-10 is $") and top[0]["anchor"]


def test_cohort_retention_runs_from_transactions_with_the_same_tables(demo_reports, transactions_dir, tmp_path):
    subs_out, tx_out = demo_reports, tmp_path / "tx"  # from subscriptions: the session's demo reports
    status, messages = run_report(transactions_dir, tx_out, "2026-10", ["cohort_retention"])
    assert status == 0, "\n".join(messages)
    html = (tx_out / "2026-10" / "cohort_retention.html").read_text()
    assert "payments per month" in html and "by cohort year" in html
    tx, subs = _tables(tx_out), _tables(subs_out)
    _check_published(tx)
    _check_against_pandas(tx, reference_levels(transactions_dir, "transactions"))
    # the demo bills every subscription once per month it is active at month end: the same numbers
    for name in PUBLISHED:
        pd.testing.assert_frame_equal(tx[name], subs[name])
