"""One rule per helper: the ratio, the cut-off, the targets lookup and the formatters, pinned.

Each helper exists once (``revops_lib.metrics.common.ratio``, ``revops_lib.periods.window``,
``revops_lib.metrics.targets.targets``, ``revops_lib.present.format``); these tests say what each does
with missing, zero and negative input, and that the reports use them.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from revops_lib.errors import ParameterError
from revops_lib.metrics.common import ratio
from revops_lib.metrics.targets import target, targets
from revops_lib.periods import window
from revops_lib.present import format as fmt
from revops_lib.present.tables import plain_number
from revops_lib.sources import open_source

from conftest import valid_frames

# --- the ratio ---------------------------------------------------------------------------------

@pytest.mark.parametrize("num, den, expected", [
    (5, 2, 2.5), (0, 4, 0.0), (-3, 2, -1.5),          # a negative numerator is a negative ratio
    (5, 0, math.nan), (5, -2, math.nan),                # zero or negative denominator: no ratio
    (None, 2, math.nan), (5, None, math.nan), (math.nan, 2, math.nan), (5, math.nan, math.nan),
])
def test_ratio_is_nan_for_a_missing_zero_or_negative_denominator(num, den, expected):
    got = ratio(num, den)
    assert isinstance(got, float)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_ratio_works_elementwise_on_arrays():
    got = ratio(np.array([1.0, 1.0, 1.0, 2.0]), pd.Series([2.0, 0.0, -1.0, np.nan]))
    np.testing.assert_array_equal(got, [0.5, np.nan, np.nan, np.nan])


def test_no_other_ratio_helper_is_left_in_the_library():
    from pathlib import Path

    lib = Path(__file__).resolve().parents[1] / "revops_lib"
    defs = [f for f in lib.rglob("*.py") if "def _ratio(" in f.read_text() or "def ratio(" in f.read_text()]
    assert [f.relative_to(lib).as_posix() for f in defs] == ["metrics/common.py"]


# --- the cut-off -------------------------------------------------------------------------------

def test_the_cut_off_is_the_period_end_or_as_of_in_utc():
    assert window("2026-10")[1] == pd.Timestamp("2026-11-01")
    assert window("2026-10", "2026-10-15")[1] == pd.Timestamp("2026-10-15")
    # an offset is converted to UTC (the quality report once kept the local time)
    assert window("2026-10", "2026-10-15T02:00:00+02:00")[1] == pd.Timestamp("2026-10-15 00:00")
    assert window(None, pd.Timestamp("2026-10-15 09:00", tz="America/New_York"))[1] == pd.Timestamp("2026-10-15 13:00")


def test_the_cut_off_needs_a_period_or_as_of():
    with pytest.raises(ParameterError, match="Give `period`"):
        window(None, None)
    with pytest.raises(ParameterError, match="`period` is required"):
        window("", "2026-10-01", period_required=True)


def test_every_metric_family_resolves_its_cut_off_with_the_one_resolver():
    from pathlib import Path

    lib = Path(__file__).resolve().parents[1] / "revops_lib"
    own = [f.relative_to(lib).as_posix() for f in lib.rglob("*.py")
           if any(f"def {n}(" in f.read_text() for n in ("_cut", "_cutoff", "_window"))]
    assert own == []


# --- the targets lookup ------------------------------------------------------------------------

def _source(rows):
    frames = valid_frames()
    frames["targets"] = pd.DataFrame(rows, columns=["period", "metric", "target", "segment"])
    return open_source(frames)


def test_a_period_target_is_its_own_company_row_first():
    src = _source([("2026-10", "revenue_won", 100.0, None), ("2026-10", "revenue_won", 70.0, "smb"),
                   ("2026-10", "win_rate", 0.3, None)])
    assert targets(src, "2026-10") == {"revenue_won": 100.0, "win_rate": 0.3}
    assert target(src, "2026-10", "revenue_won", segment="smb") == 70.0


def test_an_additive_target_adds_up_its_segments_and_a_rate_never_does():
    src = _source([("2026-10", "revenue_won", 60.0, "smb"), ("2026-10", "revenue_won", 40.0, "enterprise"),
                   ("2026-10", "win_rate", 0.3, "smb"), ("2026-10", "win_rate", 0.5, "enterprise")])
    assert targets(src, "2026-10") == {"revenue_won": 100.0}


def test_an_additive_month_target_adds_up_its_weeks_by_their_days_in_the_month():
    # October 2026: W40 (Sep 28 - Oct 4) has 4 days in October, W41-W43 7 each, W44 (Oct 26 - Nov 1) 6
    weeks = [("2026-W40", 70.0), ("2026-W41", 70.0), ("2026-W42", 70.0), ("2026-W43", 70.0), ("2026-W44", 70.0)]
    src = _source([(w, "leads", t, None) for w, t in weeks])
    assert targets(src, "2026-10") == {"leads": pytest.approx(10 * (4 + 7 + 7 + 7 + 6))}
    src = _source([(w, "leads", t, None) for w, t in weeks[:-1]])  # a week missing: no month target
    assert targets(src, "2026-10") == {}


def test_the_scorecard_and_the_forecast_report_use_the_same_target_for_revenue_won():
    from revops_lib.metrics.pipeline import coverage
    from revops_lib.metrics.scorecard import scorecard

    # only segment rows: the company target is their sum, for the scorecard and for coverage alike
    src = _source([("2026-10", "revenue_won", 60_000.0, "smb"), ("2026-10", "revenue_won", 40_000.0, "enterprise"),
                   ("2026-11", "revenue_won", 90_000.0, None)])
    card = scorecard(src, period="2026-10", breakdowns=False).set_index("kpi")
    cov = coverage(src, period="2026-10", lookback_periods=1).set_index("period")
    assert card.loc["revenue_won", "target"] == 100_000.0 == cov.loc["2026-10", "target"]
    assert cov.loc["2026-11", "target"] == 90_000.0


# --- the formatters ----------------------------------------------------------------------------

@pytest.mark.parametrize("f", [fmt.fmt_money, fmt.fmt_pct, fmt.fmt_points, fmt.fmt_int, fmt.fmt_days,
                               fmt.fmt_hours, fmt.fmt_pval])
@pytest.mark.parametrize("missing", [None, math.nan, pd.NA, pd.NaT])
def test_every_formatter_shows_a_missing_value_as_a_dash(f, missing):
    assert f(missing) == "—"


@pytest.mark.parametrize("value, expected", [
    (1_234_567, "$1.23M"), (12_000, "$12.0k"), (950, "$950"), (-12_000, "-$12.0k"), (0, "$0"),
    (2_500_000_000, "$2.50B"),
])
def test_money(value, expected):
    assert fmt.fmt_money(value) == expected


def test_the_other_kinds():
    assert fmt.fmt_money(4_500_000, "EUR") == "€4.50M" and fmt.fmt_money(10, "CHF") == "CHF 10"
    assert fmt.fmt_pct(0.1234) == "12.3%" and fmt.fmt_pct(-0.05, signed=True) == "-5.0%"
    assert fmt.fmt_pct(0.05, signed=True) == "+5.0%"
    assert fmt.fmt_points(0.021) == "+2.1 pp" and fmt.fmt_points(-0.0006476) == "-0.1 pp"
    assert fmt.fmt_int(12345.4) == "12,345" and fmt.fmt_days(1) == "1.0 day" and fmt.fmt_days(12.46) == "12.5 days"
    assert fmt.fmt_hours(3.21) == "3.2 h" and fmt.fmt_pval(0.0001) == "p < 0.001" and fmt.fmt_pval(0.0123) == "p = 0.012"
    assert fmt.fmt_interval(0.2189, 0.3958) == "21.9% – 39.6%" and fmt.fmt_interval(None, 0.3) == "—"
    assert fmt.stage_label("mql_at") == "MQL" and fmt.pair_label("sql_at", "opportunity_at") == "SQL → Opportunity"


@pytest.mark.parametrize("shown, expected", [
    (lambda: fmt.fmt_pct(-0.0004, signed=True), "±0.0%"), (lambda: fmt.fmt_pct(-0.0004), "0.0%"),
    (lambda: fmt.fmt_pct(-0.004, 0), "0%"), (lambda: fmt.fmt_points(-0.0004), "±0.0 pp"),
    (lambda: fmt.fmt_points(0.00004), "±0.0 pp"), (lambda: fmt.fmt_points(0, 0), "±0 pp"),
    (lambda: fmt.fmt_change(0.0000232, "rate"), "±0.0 pp"), (lambda: fmt.fmt_pct(0.0, 2, signed=True), "±0.00%"),
    (lambda: fmt.fmt_money(-0.3), "$0"), (lambda: fmt.fmt_money(-0.3, decimals=2), "-$0.30"),
    (lambda: fmt.fmt_days(-0.01), "0.0 days"), (lambda: fmt.fmt_hours(-0.04), "0.0 h"),
    (lambda: fmt.fmt_change(-0.3, "currency"), "±$0"), (lambda: fmt.fmt_change(-0.004, "days"), "±0.0 days"),
    (lambda: fmt.fmt_change(-3, "count"), "-3"), (lambda: plain_number(-0.0), "0"),
])
def test_a_value_that_rounds_to_zero_shows_no_minus(shown, expected):
    """The forecast's bias table read "-0.0%" for a bias of -0.04 %: a CFO reads a sign as a direction. A signed
    change that rounds to zero reads "±" on every page: the scorecard's win rate read "+0.0 pp" beside CES "±0.00"."""
    assert shown() == expected


@pytest.mark.parametrize("unit, value, change, shown, changed", [
    ("currency", 128_700.0, -5_000.0, "$128.7k", "-$5.0k"),
    ("rate", 0.01194, -0.0006476, "1.2%", "-0.1 pp"),
    ("count", 673.0, 12.0, "673", "+12"),
    ("days", 59.0, 0.0, "59.0 days", "±0.0 days"),
    ("hours", 3.5, 1.25, "3.5 h", "+1.2 h"),
])
def test_kpi_values_by_unit_never_in_scientific_notation(unit, value, change, shown, changed):
    assert fmt.fmt_value(value, unit) == shown
    assert fmt.fmt_change(change, unit) == changed
    assert "e+" not in shown and "e-" not in shown


@pytest.mark.parametrize("shown, expected", [
    # the unit changes exactly at 1,000, 1,000,000 and 1,000,000,000, never one cent later
    (lambda: fmt.fmt_money(1_000), "$1.0k"), (lambda: fmt.fmt_money(999.4), "$999"),
    (lambda: fmt.fmt_money(1_000_000), "$1.00M"), (lambda: fmt.fmt_money(1_000_000_000), "$1.00B"),
    (lambda: fmt.fmt_money(-5), "-$5"), (lambda: fmt.fmt_money(0.7), "$1"),  # a sign only for a loss
    (lambda: fmt.fmt_money(1_500_000, decimals=1), "$1.5M"), (lambda: fmt.fmt_money(-2_000, "GBP"), "-£2.0k"),
    (lambda: fmt.currency_symbol(), "$"), (lambda: fmt.currency_symbol("CHF"), "CHF "),
    (lambda: fmt.fmt_pct(0.004), "0.4%"), (lambda: fmt.fmt_pct(0.12345, 2), "12.35%"),
    (lambda: fmt.fmt_points(0.5), "+50.0 pp"), (lambda: fmt.fmt_points(-0.123, 0), "-12 pp"),
    (lambda: fmt.fmt_days(0.4), "0.4 days"), (lambda: fmt.fmt_hours(0.4), "0.4 h"),
    (lambda: fmt.fmt_pval(0.001), "p = 0.001"), (lambda: fmt.fmt_pval(0.00099), "p < 0.001"),
    (lambda: fmt.fmt_interval(0.2194, 0.3962, 0), "22% – 40%"),
    (lambda: fmt.fmt_value("n/a", "count"), "—"), (lambda: fmt.fmt_value(None, "rate"), "—"),
    (lambda: fmt.fmt_value(4_500_000, "currency", "EUR"), "€4.50M"), (lambda: fmt.fmt_value(4.256, "score"), "4.26"),
    (lambda: fmt.fmt_change("n/a", "count"), "—"), (lambda: fmt.fmt_change(None, "count"), "—"),
    (lambda: fmt.fmt_change(12_000, "currency", "EUR"), "+€12.0k"), (lambda: fmt.fmt_change(0.5, "score"), "+0.50"),
    (lambda: fmt.fmt_change(-0.5, "score"), "-0.50"), (lambda: fmt.fmt_change(0.02, "rate"), "+2.0 pp"),
])
def test_formatter_edges(shown, expected):
    """Each formatter at the edges a page meets: unit thresholds, small values, decimals asked for, a currency
    passed through, unreadable input."""
    assert shown() == expected


@pytest.mark.parametrize("stage, expected", [
    ("created_at", "Created"), ("sql_at", "SQL"), ("opportunity_at", "Opportunity"),
    ("demo_booked_at", "Demo booked"),  # a stage column of the user's own: `_at` dropped, words, a capital
    ("closed_won", "Closed won"), ("poc_at", "POC"), ("poc", "POC"),  # three letters or fewer: an abbreviation
    ("pilot_at", "Pilot"), ("demo_at", "Demo"), ("trial", "Trial"), ("sal_at", "SAL"), ("pql_at", "PQL"),
])
def test_stage_labels_of_the_default_and_of_custom_stage_columns(stage, expected):
    assert fmt.stage_label(stage) == expected


@pytest.mark.parametrize("value, shown", [
    (0.0, "0"), (-0.0, "0"), (0.01, "0.01"), (0.005, "0.005"), (0.0001, "0.0001"), (0.00009, "≈0"),
    (-0.00009, "≈0"), (99.5, "99.50"), (100.4, "100"), (1234.0, "1,234"), (12.345, "12.35"), (float("nan"), "—"),
])
def test_a_number_without_a_format_of_its_own(value, shown):
    """plain_number: two decimals below 100, whole numbers above, two significant digits below a cent, "≈0" below
    a ten-thousandth; never scientific notation, never "-0"."""
    assert plain_number(value) == shown


def test_a_styled_table_shows_blanks_as_dashes_booleans_as_words_and_keeps_its_status_in_view():
    from revops_lib.present.tables import style_table

    df = pd.DataFrame({"kpi": ["Leads", "MQLs", "SQLs"], "share": [0.5, None, 2.0], "complete": [True, False, None],
                       "Status": ["on track", "at risk", None]})
    html = style_table(df).to_html()
    body = html.split("</style>", 1)[1]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", body)
    assert cells == ["Leads", "0.50", "yes", "on track", "MQLs", "—", "no", "at risk", "SQLs", "2", "—", "—"]
    style = html.split("</style>", 1)[0]
    assert re.search(r"td\.col3 \{[^}]*position: sticky", style)  # the Status column, cells and heading
    assert re.search(r"th\.col_heading\.col3 \{[^}]*position: sticky", style)
    assert "position: sticky" not in style_table(df.drop(columns="Status")).to_html()


# --- one resolution for published tables (issue 16) --------------------------------------------------------------

def test_published_frames_have_one_resolution_on_every_engine():
    """``publish.normalised``: times as naive UTC microseconds (an engine may hand nanoseconds or an offset),
    money to the cent (money columns, the table's own, and the values of ``currency`` rows); nothing else."""
    from revops_lib.present.publish import normalised

    df = pd.DataFrame({
        "at": pd.DatetimeIndex([pd.Timestamp("2026-10-01 02:00:00.1234567", tz="+02:00")] * 2),
        "day": pd.DatetimeIndex([pd.Timestamp("2026-10-01 00:00:00.0000019")] * 2),
        "amount": [12.3456, -0.004], "rate": [0.123456, 0.5], "won": [1234.5678, 1.0],
        "target": [1234.5678, 0.123456], "unit": ["currency", "rate"], "value": [10.0049, 0.123456],
        "change": [-3.14159, 0.0101], "n": [3, 4]},
        index=pd.DatetimeIndex(["2026-10-01 01:00:00.0000005+01:00", "2026-10-02"], tz="UTC"))
    before = df.copy()
    out = normalised(df)
    assert str(out["at"].dtype) == str(out["day"].dtype) == "datetime64[us]"
    assert out["at"].tolist() == [pd.Timestamp("2026-10-01 00:00:00.123456")] * 2  # converted to UTC, naive
    assert out["day"].iloc[0] == pd.Timestamp("2026-10-01 00:00:00.000001")
    assert out["amount"].tolist() == [12.35, -0.0] and out["rate"].tolist() == [0.123456, 0.5]
    assert out["won"].tolist() == [1234.5678, 1.0]  # not money in every table ...
    assert normalised(df, "coverage")["won"].tolist() == [1234.57, 1.0]  # ... money in coverage
    # the unit's values: the currency row to the cent, the rate row as it was
    assert out["value"].tolist() == [10.0, 0.123456] and out["target"].tolist() == [1234.57, 0.123456]
    assert out["change"].tolist() == [-3.14, 0.0101] and out["n"].tolist() == [3, 4]
    assert out.index.tz is None and str(out.index.dtype) == "datetime64[us]"
    assert out.index[0] == pd.Timestamp("2026-10-01 00:00:00")  # the index's microseconds (.5 us cut)
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is left alone
    # a row without a unit is not money; a naive index is already UTC
    odd = pd.DataFrame({"unit": [None, "currency"], "value": [0.123456, 2.3456]},
                       index=pd.DatetimeIndex(["2026-10-01 00:00:00.0000009", "2026-10-02"]))
    out = normalised(odd)
    assert out["value"].tolist() == [0.123456, 2.35]
    assert out.index[0] == pd.Timestamp("2026-10-01") and str(out.index.dtype) == "datetime64[us]"


# -- one label map (issue 14) ---------------------------------------------------------------------

def test_one_label_map_for_keys_and_nothing_else():
    from revops_lib.present.labels import kpi_label, label, set_labels

    assert label("organic_search") == "Organic search"
    assert label("mid_market") == "Mid-market" and label("smb") == "SMB"
    assert label("new_business") == "New business"
    assert label("hit_rate_10") == "Hit rate (±10 %)" and label("mape") == "MAPE"
    assert label("won_to_date") == "Won to date"
    assert label("avg_revenue_per_new_customer") == "Revenue per new customer"  # the KPI table's label
    assert label("revenue_won:new_business") == "Revenue won — New business"
    assert label("leads:LinkedIn") == "Leads — LinkedIn"  # a breakdown by a name (it came back as the raw key)
    assert label("my:Thing") == "my:Thing"  # not a KPI's breakdown: left as it is
    assert kpi_label("revenue_won:new_business", "type") == "Revenue won by type — New business"
    assert kpi_label("leads:LinkedIn", "source") == "Leads by source — LinkedIn"
    assert kpi_label("revenue_won:core") == "Revenue won — Core" and kpi_label("leads", "source") == "Leads"
    assert label("mql_at") == "MQL"
    assert label("cac_payback_months") == "CAC payback months"  # abbreviations in capitals
    for name in ("Acme Corp", "Enterprise Sales", "2026-10", "a@b.c", "", 3.5, None):
        assert label(name) == name  # names, not keys, are never rewritten
    try:
        from revops_lib.present.tables import style_table

        set_labels({"organic_search": "<b>SEO</b>"})
        html = style_table(pd.DataFrame({"source": ["organic_search"], "organic_search": [1]})).to_html()
        assert "<b>SEO" not in html and html.count("&lt;b&gt;SEO&lt;/b&gt;") == 2  # a label is text, never markup
        set_labels({"organic_search": "SEO", "revenue_won": "Bookings"})
        assert label("organic_search") == "SEO"
        assert label("revenue_won:expansion") == "Bookings — Expansion"
        set_labels({"source": "Channel", "leads:events": "Event leads"})
        assert kpi_label("leads:paid_search", "source") == "Leads by channel — Paid search"
        assert kpi_label("leads:events", "source") == "Event leads"  # the report's label for the whole key first
    finally:
        set_labels(None)
    assert label("organic_search") == "Organic search"


def test_tables_show_labels_and_plain_numbers_but_keep_their_columns():
    import re

    from revops_lib.present.tables import style_table

    df = pd.DataFrame({"source": ["organic_search", "Partner Co"], "won_to_date": [128700.0, 0.01194],
                       "owner": ["some_user", "x"], "status": ["on track", "at risk"]})
    html = style_table(df).map(lambda s: "color: red", subset=["status"]).to_html()
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", html)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert heads == ["Source", "Won to date", "Owner", "Status"]
    assert cells[:4] == ["Organic search", "128,700", "some_user", "on track"]  # owner is not a category
    assert cells[4:6] == ["Partner Co", "0.01"]
    assert "e+0" not in html and "e-0" not in html


def test_charts_write_a_negative_number_with_the_same_minus_as_the_tables():
    """The ARR bridge read "−$4.14M" (U+2212) above a table reading "-$5.0k"; matplotlib's default ticks too."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from revops_lib.present.charts.base import set_theme
    from revops_lib.present.charts.retention import plot_arr_bridge

    with matplotlib.rc_context():  # the theme is global: other tests of this process keep matplotlib's defaults
        set_theme()
        fig, ax = plt.subplots()
        ax.plot([-2, 3], [-1, 1])
        fig.canvas.draw()
        assert "-2" in [t.get_text() for t in ax.get_xticklabels()]
        plt.close(fig)
        bridge = pd.DataFrame({"step": ["starting", "new", "churned", "ending"], "arr": [100.0, 30.0, -20.0, 110.0],
                               "from_month": "2026-01", "to_month": "2026-12"})
        ax = plot_arr_bridge(bridge)
        labels = [t.get_text() for t in ax.texts]
        assert labels == ["$100", "+$30", "-$20", "$110"]
        plt.close(ax.figure)


def test_column_headings_start_with_a_capital_but_a_statistic_s_symbol_stays():
    import re

    from revops_lib.present.tables import style_table

    df = pd.DataFrame({"ending MRR": [1.0], "pro-rated target": [2.0], "n": [3], "p-value": [0.5], "won_to_date": [1.0]})
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", style_table(df).to_html())
    assert heads == ["Ending MRR", "Pro-rated target", "n", "p-value", "Won to date"]


def test_a_true_false_column_reads_yes_and_no():
    """The coverage table's "Period complete" column read Python's True / False."""
    import re

    from revops_lib.present.tables import style_table

    html = style_table(pd.DataFrame({"period": ["2026-10", "2026-11"], "complete": [True, False]})).to_html()
    assert re.findall(r"<td[^>]*>([^<]*)</td>", html) == ["2026-10", "yes", "2026-11", "no"]


def test_periods_and_dates_in_a_table_never_break_at_their_hyphen():
    """The MRR movements table showed "2025-" over "12" in its narrow month column."""
    import datetime as dt
    import re

    from revops_lib.present.tables import style_table

    df = pd.DataFrame({"month": ["2025-12", "2026-01*"], "quarter": ["2026-Q4", None], "week": ["2026-W48", "2026-W49"],
                       "close_date": [dt.date(2026, 10, 3), dt.date(2026, 11, 1)], "kpi": ["Leads", "2026-10"],
                       "amount": [1.0, 2.0]})
    css = style_table(df).to_html().split("</style>")[0]
    nowrap = sorted(int(i) for i in re.findall(r"td\.col(\d+) \{\s*white-space: nowrap;", css))
    assert nowrap == [0, 1, 2, 3]  # not the text column that only holds one period, not the numbers


def test_a_long_table_shows_its_first_rows_and_links_the_csv_with_all_of_them(tmp_path):
    from revops_lib.present.publish import set_output_dir
    from revops_lib.present.section import Section

    class Page(Section):
        report = "data_quality"

    frame = pd.DataFrame({"opportunity_id": [f"O{i}" for i in range(30)], "amount": [float(i) for i in range(30)]})
    set_output_dir(tmp_path)
    try:
        shown = Page.table(frame, "stale_open_deals", limit=25)
        html = shown._repr_html_()
        assert html.count("<tr>") - 1 == 25  # the header row and 25 of 30
        assert '… and 5 more rows: all rows in <a href="tables/data_quality/stale_open_deals.csv">' in html
        assert len(pd.read_csv(tmp_path / "tables" / "stale_open_deals.csv")) == 30  # the CSV has them all
        assert not hasattr(Page.table(frame.head(3), "few", limit=25), "more")  # short tables stay whole
        # a display built by a function formats only the rows shown, and the table reads the same
        seen = []

        def display(rows):
            seen.append(len(rows))
            return rows.rename(columns={"opportunity_id": "Deal"})

        lazy = Page.table(frame, "stale_open_deals", display, limit=25)
        same = [re.sub(r"T_[0-9a-f]+", "T_", x) for x in (lazy._repr_html_(), html.replace("Opportunity ID", "Deal"))]
        assert seen == [25] and same[0] == same[1]  # (a styled table's element ids are random)
        assert Page.table(frame.head(0), "none", display, limit=25, empty="No deal.")._repr_html_().count("No deal.")
        assert seen[-1] == 0
    finally:
        set_output_dir(None)
