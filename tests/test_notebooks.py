"""Every report notebook executes on the demo data through the real runner (Papermill + nbconvert)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from conftest import naive_utc, period_bounds

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def assert_stakeholder_html(html: str) -> None:
    """No code, nothing loaded from another host, images inline."""
    assert not EXTERNAL.search(html), EXTERNAL.search(html).group(0)
    assert "<script src" not in html and "@import url(" not in html
    assert "from revops_lib" not in html, "code leaked into the HTML"
    assert "data:image/png;base64," in html


#: the column that dates each table's rows (schema.py); targets are matched by period label
TIME_COLUMNS = {"leads": "created_at", "opportunities": "created_at", "opportunity_history": "changed_at",
                "forecast_snapshots": "snapshot_date", "subscriptions": "start_date", "transactions": "occurred_at",
                "marketing_spend": "date", "web_traffic": "date", "email_campaigns": "sent_date",
                "activities": "occurred_at", "support_tickets": "created_at", "reviews": "posted_at", "targets": None}


@pytest.mark.parametrize("period", ["2026-10", "2026-Q3", "2026-W40"])
def test_data_quality_runs_on_demo_data(demo_dir, demo_reports, period):
    d = demo_reports / period
    html = (d / "data_quality.html").read_text()
    assert_stakeholder_html(html)
    assert "Contract: passed" in html
    assert "How the numbers are computed" in html
    overview = pd.read_csv(d / "tables" / "data_quality" / "table_overview.csv")
    assert len(overview) == 13 and (overview["status"] != "absent").all()
    assert (overview["rows_in_period"] > 0).sum() >= 10
    # rows, rows dated in the period (targets: rows for the period label) and the latest time, with pandas
    start, end = period_bounds(period)
    got = overview.set_index("table")
    for table, column in TIME_COLUMNS.items():
        df = pd.read_parquet(demo_dir / f"{table}.parquet")
        assert got.loc[table, "rows"] == len(df), table
        if column is None:
            assert got.loc[table, "rows_in_period"] == (df["period"] == period).sum()
            continue
        t = naive_utc(df[column])
        assert got.loc[table, "rows_in_period"] == ((t >= start) & (t < end)).sum(), table
        assert pd.Timestamp(got.loc[table, "last"]) == t.max(), table
    m = json.loads((d / "manifest.json").read_text())
    assert m["data_quality"]["status"] == "ok"
    assert {"label": "Contract", "value": "passed"} in m["data_quality"]["headlines"]
    index = (demo_reports / "index.html").read_text()
    assert f'href="{period}/data_quality.html"' in index
    assert not EXTERNAL.search(index)
