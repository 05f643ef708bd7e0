"""Every report notebook executes on the demo data through the real runner (Papermill + nbconvert)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import run_report

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


@pytest.mark.parametrize("period", ["2026-10", "2026-Q3", "2026-W40"])
def test_data_quality_runs_on_demo_data(demo_dir, report_out, period):
    status, messages = run_report(demo_dir, report_out, period, ["data_quality"])
    assert status == 0, "\n".join(messages)
    d = report_out / period
    html = (d / "data_quality.html").read_text()
    assert "Contract: passed" in html
    assert "data:image/png;base64," in html
    overview = pd.read_csv(d / "tables" / "data_quality" / "table_overview.csv")
    assert len(overview) == 13 and (overview["status"] != "absent").all()
    assert (overview["rows_in_period"] > 0).sum() >= 10
    m = json.loads((d / "manifest.json").read_text())
    assert m["data_quality"]["status"] == "ok"
    assert {"label": "Contract", "value": "passed"} in m["data_quality"]["headlines"]
