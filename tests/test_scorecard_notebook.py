"""The scorecard notebook runs for a week, a month and a quarter on the demo data."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import run_report
from test_notebooks import assert_stakeholder_html

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


@pytest.mark.parametrize("period", ["2026-W43", "2026-10", "2026-Q3"])
def test_scorecard_runs_for_every_cadence(demo_dir, report_out, period):
    status, messages = run_report(demo_dir, report_out, period, ["revops_scorecard"])
    assert status == 0, "\n".join(messages)
    d = report_out / period
    html = (d / "revops_scorecard.html").read_text()
    assert_stakeholder_html(html)
    assert "What needs attention" in html and "Pacing" in html
    kpis = pd.read_csv(d / "tables" / "revops_scorecard" / "kpis.csv")
    assert list(kpis.columns) == ["function", "indicator", "kpi", "period", "value", "target", "pct_of_target",
                                  "prior_value", "change", "unit"]
    assert (kpis.period == period).all()
    assert {"revenue_won", "leads", "mqls", "win_rate", "nrr_12m", "csat", "cac"} <= set(kpis.kpi)
    assert kpis.kpi.is_unique
    if period.startswith("2026-W"):
        assert "Month 2026-10 to date" in html
