"""Data-quality summaries on small hand-made frames."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from revops_lib.metrics import quality
from revops_lib.present.sections import quality as quality_section

from conftest import NOW, d, ts


def test_overview_counts_rows_in_period_and_flags_stale_and_absent(frames):
    del frames["reviews"]
    frames["web_traffic"]["date"] = d("2026-09-01", "2026-09-02")  # nothing in October
    ov = quality.table_overview(frames, period="2026-10").set_index("table")
    assert ov.loc["leads", "rows"] == 3 and ov.loc["leads", "rows_in_period"] == 3
    assert ov.loc["opportunities", "rows_in_period"] == 2  # O2 created in September
    assert ov.loc["reviews", "status"] == "absent"
    assert ov.loc["web_traffic", "status"] == "no rows in period"
    assert ov.loc["leads", "days_since_last"] == 28.5  # 2026-10-03 11:00 -> 2026-11-01 00:00
    assert ov.loc["leads", "status"] == "stale"  # older than 14 days
    assert ov.loc["subscriptions", "status"] == "ok"  # 2026-10-25, 7 days
    assert ov.loc["targets", "rows_in_period"] == 1  # only the 2026-10 label


def test_overview_respects_as_of(frames):
    ov = quality.table_overview(frames, period="2026-10", as_of="2026-10-03").set_index("table")
    assert ov.loc["leads", "days_since_last"] == 0.0  # latest row after the cut-off counts as fresh


def _opps(frames):
    frames["opportunities"] = pd.DataFrame({
        "opportunity_id": ["O1", "O2", "O3", "O4", "O5"],
        "created_at": ts("2026-01-10", "2026-09-01", "2026-10-06", "2026-10-07", "2026-11-10"),
        "close_date": d("2026-12-31", "2026-10-15", "2026-12-15", "2026-10-20", "2027-01-01"),
        "is_closed": [False, False, False, True, False],
        "is_won": [False, False, False, True, False],
        "amount": [5000.0, 7000.0, 0.0, 1000.0, 1.0],
        "owner": ["ana", "bo", "ana", "bo", "cy"],
        "stage": ["discovery", "proposal", "qualification", "closed_won", "qualification"],
    })
    frames["opportunity_history"] = pd.DataFrame({
        "opportunity_id": ["O1", "O1", "O2", "O3", "O3", "O3", "O3", "O3"],
        "changed_at": ts("2026-01-10", "2026-03-01", "2026-09-01", "2026-10-06", "2026-10-08", "2026-10-09",
                         "2026-10-10", "2026-11-20"),
        "stage": ["qualification", "discovery", "proposal", "qualification", "qualification", "qualification",
                  "qualification", "qualification"],
        "amount": [5000.0, 5000.0, 7000.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "close_date": d("2026-06-30", "2026-12-31", "2026-10-15", "2026-11-15", "2026-12-01", "2026-11-20",
                        "2026-12-15", "2027-03-01"),
    })
    return frames


def test_stale_open_deals_overdue_or_idle(frames):
    frames = _opps(frames)
    got = quality.stale_open_deals(frames, period="2026-10", stale_days=90)
    # O1: idle since 2026-03-01 (245 days); O2: close date 2026-10-15 passed; O3 fresh; O4 closed; O5 created later
    assert got["opportunity_id"].tolist() == ["O2", "O1"]
    assert got.set_index("opportunity_id").loc["O1", "days_since_change"] == 245
    assert got.set_index("opportunity_id").loc["O2", "reason"] == "close date passed"
    assert got.attrs == {"count": 2, "amount": 12000.0}
    # count and amount are of every such deal, not of the rows shown
    top = quality.stale_open_deals(frames, period="2026-10", stale_days=90, limit=1)
    assert top["opportunity_id"].tolist() == ["O2"] and top.attrs == {"count": 2, "amount": 12000.0}
    assert list(top.columns) == list(got.columns)


def test_stale_open_deals_counts_whole_days_and_flags_only_more_than_stale_days(frames):
    frames = _opps(frames)
    del frames["opportunity_history"]
    frames["opportunities"] = frames["opportunities"].iloc[[0]].assign(created_at=ts("2026-10-21 11:59:55"))
    # created 2026-10-21 11:59:55, cut-off 2026-11-01 00:00: 10 days 12 h 5 s = 10.50006 days -> 11
    got = quality.stale_open_deals(frames, period="2026-10", stale_days=10)
    assert got["days_since_change"].tolist() == [11]
    assert got["reason"].tolist() == ["no change for 10+ days"]
    none = quality.stale_open_deals(frames, period="2026-10", stale_days=11)
    assert none.empty and none.attrs == {"count": 0, "amount": 0.0}  # 11 is not more than 11
    assert list(none.columns) == list(got.columns)


def test_close_date_pushes_counts_moves_later_before_as_of(frames):
    frames = _opps(frames)
    got = quality.close_date_pushes(frames, period="2026-10", min_pushes=2)
    # O3 before 2026-11-01: 11-15 -> 12-01 (push) -> 11-20 (pull) -> 12-15 (push); the 2027 push is after as_of
    assert got.to_dict("records") == [{
        "opportunity_id": "O3", "owner": "ana", "stage": "qualification", "status": "open", "amount": 0.0,
        "pushes": 2, "total_pushes": 2, "first_close_date": dt.date(2026, 11, 15),
        "latest_close_date": dt.date(2026, 12, 15), "days_pushed": 30}]
    assert got.attrs["scope"] == "period"
    # the period's list: O1's one push was in March, so it is not about October
    assert quality.close_date_pushes(frames, period="2026-10", min_pushes=1).attrs["count"] == 1
    # without a period every push before the cut-off counts (all time), O1 too
    all_time = quality.close_date_pushes(frames, as_of="2026-11-01", min_pushes=1)
    assert all_time.attrs == {"count": 2, "scope": "all time"}
    assert set(all_time["opportunity_id"]) == {"O1", "O3"}
    # the count is of every such deal, not of the rows shown: limit=1 shows the most pushed one of the two
    top = quality.close_date_pushes(frames, as_of="2026-11-01", min_pushes=1, limit=1)
    assert top.attrs["count"] == 2 and top["opportunity_id"].tolist() == ["O3"]
    assert list(top.columns) == list(all_time.columns)
    empty = quality.close_date_pushes(frames, period="2026-10", min_pushes=9)
    assert empty.empty and empty.attrs["count"] == 0 and list(empty.columns) == list(all_time.columns)


def test_missing_amounts_lists_open_or_won_deals_with_zero_or_null(frames):
    frames = _opps(frames)
    got = quality.missing_amounts(frames, period="2026-10")
    assert got["opportunity_id"].tolist() == ["O3"]


def test_assess_findings_read_well(frames):
    dq = quality_section.assess(_opps(frames), period="2026-10", now=NOW)
    text = dq.findings().data
    assert "**Contract: passed**" in text
    assert "2 open deals look stale ($12.0k of pipeline)" in text
    assert "1 open or won deals have no amount" in text
    assert dq.summary["count"].tolist() == [0, 0, 2, 1, 1]
    assert dict(dq.headlines()) == {"Contract": "passed", "Warnings": "0", "Stale deals": "2"}
    dq.stale.attrs["count"] = 4790  # the index page's headline reads as a number (seen at demo scale 100)
    assert dict(dq.headlines())["Stale deals"] == "4,790"


def test_the_validation_line_does_not_name_the_resolved_source_path(tmp_path):
    """The page's header names the source as given ("data/demo"); the validation line read "Validation of folder
    /work/main/data/demo": the same source twice, differently, with the machine's folders in it."""
    from conftest import valid_frames, write_folder

    folder = tmp_path / "private-home" / "data"
    write_folder(valid_frames(), folder)
    head = quality_section.assess(folder, period="2026-10", now=NOW).validation_table().data
    assert head.startswith("**Contract validation**: passed — 0 errors") and "private-home" not in head


def test_monthly_volume_last_months(frames):
    got = quality.monthly_volume(frames, period="2026-10", months=2, tables=("opportunities", "transactions"))
    assert got.to_dict("records") == [
        {"month": "2026-09", "table": "opportunities", "rows": 1},
        {"month": "2026-10", "table": "opportunities", "rows": 2},
        {"month": "2026-10", "table": "transactions", "rows": 1},
    ]


def test_a_validation_handed_over_by_the_runner_is_reused_for_the_same_files(tmp_path):
    import pickle

    from revops_lib.sources import open_source
    from revops_lib.validation import validate

    from conftest import valid_frames, write_folder

    folder = tmp_path / "data"
    write_folder(valid_frames(), folder)
    src = open_source(folder)
    handed = validate(src)
    handed.summary_note = "from the runner"  # a marker: the report must show this very result
    path = tmp_path / "v.pickle"
    path.write_bytes(pickle.dumps((quality.validation_key(src), handed)))
    quality.load_validation(path)
    assert getattr(quality_section.assess(folder, period="2026-10").validation, "summary_note", None) == "from the runner"
    # other files: validated again
    (folder / "reviews.parquet").unlink()
    assert not hasattr(quality_section.assess(folder, period="2026-10").validation, "summary_note")
    quality.load_validation(tmp_path / "missing.pickle")  # unreadable: ignored


def test_target_conflicts_are_found_and_the_demo_has_none(demo_dir):
    """A quarter target that is not the sum of its months (additive) or lies outside its months' range (a rate)
    is reported; the demo company's targets agree with each other."""
    from revops_lib.metrics.targets import target_conflicts

    t = pd.DataFrame({"period": ["2026-Q3", "2026-07", "2026-08", "2026-09", "2026-Q3", "2026-07", "2026-08",
                                 "2026-Q4", "2026-10", "2026-11", "2026-12", "2026-Q4", "2026-10"],
                      "metric": ["revenue_won"] * 4 + ["csat"] * 3 + ["leads"] * 4 + ["win_rate"] * 2,
                      "target": [15.8e6, 5.9e6, 5.9e6, 5.92e6, 0.83, 0.93, 0.92,
                                 90.0, 30.0, 30.0, 30.0, 0.505, 0.50]})
    found = target_conflicts({"targets": t})
    assert found[["period", "metric"]].values.tolist() == [["2026-Q3", "csat"], ["2026-Q3", "revenue_won"]]
    rev = found.set_index("metric").loc["revenue_won"]
    assert rev["parts_value"] == pytest.approx(17.72e6) and rev["difference"] == pytest.approx(-1.92e6)
    assert found.set_index("metric").loc["csat", "parts_value"] == pytest.approx(0.92)  # the nearest month
    # within tolerance (leads add up; 50.5 % vs 50 % is half a point): nothing
    assert target_conflicts(demo_dir).empty


def test_month_and_quarter_targets_are_checked_against_their_weeks():
    """A month's additive target against its ISO weeks weighted by their days in the month; a rate against the
    range of its weeks' targets. 2026-10 (Thu 1 to Sat 31) overlaps 2026-W40 (4 days in it: Oct 1–4), W41–W43
    (7 each) and W44 (Oct 26–31: 6 days)."""
    from revops_lib.metrics.targets import target_conflicts

    weeks = ["2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44"]
    rows = [(w, "leads", 70.0) for w in weeks] + [("2026-10", "leads", 300.0)]
    # weighted: 70 × (4 + 7 + 7 + 7 + 6) / 7 = 70 × 31 / 7 = 310
    rows += [(w, "win_rate", r) for w, r in zip(weeks[:2], [0.40, 0.45])] + [("2026-10", "win_rate", 0.50)]
    t = pd.DataFrame(rows, columns=["period", "metric", "target"])
    found = target_conflicts({"targets": t}).set_index("metric")
    assert list(found.index) == ["leads", "win_rate"]
    leads = found.loc["leads"]
    assert leads["parts_value"] == pytest.approx(310.0) and leads["difference"] == pytest.approx(-10.0)
    assert leads["parts"] == "2026-W40 to 2026-W44" and "sum of its weeks'" in leads["problem"]
    rate = found.loc["win_rate"]
    assert rate["parts_value"] == pytest.approx(0.45) and rate["difference"] == pytest.approx(0.05)
    assert rate["parts"] == "2026-W40 to 2026-W41" and "outside its weeks' targets" in rate["problem"]
    # the month at exactly its weeks' weighted sum, and a rate within a point of its weeks: no conflict
    t.loc[t.period.eq("2026-10") & t.metric.eq("leads"), "target"] = 310.0
    t.loc[t.period.eq("2026-10") & t.metric.eq("win_rate"), "target"] = 0.46
    assert target_conflicts({"targets": t}).empty
    # a week missing: an additive month is not compared (the lookup would not add its weeks either)
    assert target_conflicts({"targets": t[t.period != "2026-W44"].assign(
        target=lambda d: d.target.where(~(d.period.eq("2026-10") & d.metric.eq("leads")), 1.0))}).empty


def test_target_conflicts_of_a_rate_name_the_periods_they_were_checked_against():
    from revops_lib.metrics.targets import target_conflicts

    # csat: 2026-Q3 at 0.83 against July 0.93 and August 0.92 (outside by 9 points);
    # win_rate: 2026-10 at 0.50 against its one week with a target, 2026-W41 at 0.40
    t = pd.DataFrame({"period": ["2026-Q3", "2026-07", "2026-08", "2026-10", "2026-W41"],
                      "metric": ["csat"] * 3 + ["win_rate"] * 2,
                      "target": [0.83, 0.93, 0.92, 0.50, 0.40]})
    found = target_conflicts({"targets": t}).set_index("metric")
    assert found.loc["csat", "problem"] == "the quarter's target is outside its months' targets (2026-07, 2026-08)"
    assert found.loc["win_rate", "parts"] == "2026-W41"
    assert found.loc["win_rate", "parts_value"] == pytest.approx(0.40)


def test_overview_first_and_last_are_the_oldest_and_newest_row_times(frames):
    ov = quality.table_overview(frames, period="2026-10").set_index("table")
    # leads created 10-01 09:00, 10-02 10:00, 10-03 11:00
    assert ov.loc["leads", "first"] == pd.Timestamp("2026-10-01 09:00")
    assert ov.loc["leads", "last"] == pd.Timestamp("2026-10-03 11:00")
    # a date column: its days at midnight (subscriptions start 2025-01-01 .. 2026-10-25)
    assert ov.loc["subscriptions", "first"] == pd.Timestamp("2025-01-01")
    assert ov.loc["subscriptions", "last"] == pd.Timestamp("2026-10-25")
    # targets have no time column: no dates
    assert pd.isna(ov.loc["targets", "first"]) and pd.isna(ov.loc["targets", "last"])


def test_overview_period_end_is_exclusive_for_times_and_dates(frames):
    late = frames["leads"].iloc[[0]].assign(lead_id="L4", created_at=ts("2026-11-01 00:00"))
    frames["leads"] = pd.concat([frames["leads"], late], ignore_index=True)
    day = frames["web_traffic"].iloc[[0]].assign(date=d("2026-11-01"))
    frames["web_traffic"] = pd.concat([frames["web_traffic"], day], ignore_index=True)
    ov = quality.table_overview(frames, period="2026-10").set_index("table")
    # L4 at 2026-11-01 00:00 and the 2026-11-01 traffic row are November's: counted in rows only
    assert (ov.loc["leads", "rows"], ov.loc["leads", "rows_in_period"]) == (4, 3)
    assert (ov.loc["web_traffic", "rows"], ov.loc["web_traffic", "rows_in_period"]) == (3, 2)


def test_overview_targets_without_a_row_for_the_period(frames):
    ov = quality.table_overview(frames, period="2026-09").set_index("table")
    # targets rows are for 2026-10, 2026-Q4 and 2026-W44: none for September
    assert (ov.loc["targets", "rows"], ov.loc["targets", "rows_in_period"]) == (3, 0)
    assert ov.loc["targets", "status"] == "no rows in period"


def test_latest_event_is_the_newest_time_over_the_event_tables(frames):
    # leads 10-03 11:00, opportunities 10-06, activities 10-15, web_traffic 10-01, transactions 10-21
    assert quality.latest_event(frames) == pd.Timestamp("2026-10-21")
    assert quality.latest_event(frames, tables=("leads", "activities")) == pd.Timestamp("2026-10-15")
    frames["transactions"] = frames["transactions"].iloc[0:0]  # empty: no latest time, skipped
    del frames["activities"]  # absent: skipped
    assert quality.latest_event(frames) == pd.Timestamp("2026-10-06")
    assert quality.latest_event(frames, tables=("transactions", "activities")) is None


def test_close_date_pushes_without_history_is_an_empty_list_with_the_usual_columns(frames):
    columns = ["opportunity_id", "owner", "stage", "status", "amount", "pushes", "total_pushes",
               "first_close_date", "latest_close_date", "days_pushed"]
    assert list(quality.close_date_pushes(frames, period="2026-10").columns) == columns  # history present
    del frames["opportunity_history"]
    got = quality.close_date_pushes(frames, period="2026-10")
    assert list(got.columns) == columns and got.empty
    assert got.attrs == {"count": 0, "absent": True, "scope": "period"}
    assert quality.close_date_pushes(frames, as_of="2026-11-01").attrs["scope"] == "all time"


def test_anomaly_summary_one_row_per_check_with_count_and_next_step():
    from types import SimpleNamespace

    stale = pd.DataFrame({"opportunity_id": ["O1", "O2"]})
    stale.attrs["count"] = 7  # the list is cut at `limit`; the count is over all deals
    pushes = pd.DataFrame({"opportunity_id": ["O3"]})  # no count: the rows are counted
    missing = pd.DataFrame({"opportunity_id": []})
    missing.attrs["count"] = 0
    got = quality.anomaly_summary(stale, pushes, missing)
    assert got.values.tolist() == [
        ["stale open deals", 7, "ask owners to update or close them: they inflate pipeline and coverage"],
        ["close date pushed repeatedly", 1, "review in pipeline calls: repeated pushes predict slippage"],
        ["open or won deals without amount", 0, "fill amounts: they understate pipeline, revenue and deal size"],
    ]
    assert list(got.columns) == ["check", "count", "next step"]
    validation = SimpleNamespace(errors=["e1", "e2"], warnings=["w1"])
    got = quality.anomaly_summary(stale, pushes, missing, validation=validation)
    assert got.iloc[:2].values.tolist() == [
        ["contract errors", 2, "fix at the source before trusting any report"],
        ["contract warnings", 1, "read the list below; numbers stay usable"],
    ]
    assert got["check"].tolist()[2:] == ["stale open deals", "close date pushed repeatedly",
                                         "open or won deals without amount"]


def test_validation_key_changes_on_the_hour(monkeypatch):
    from types import SimpleNamespace

    clock = {}

    class FrozenDatetime(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return clock["now"]

    src = SimpleNamespace(description="folder data", fingerprint=lambda: "f1")

    def key_at(*when):
        clock["now"] = FrozenDatetime(*when, tzinfo=dt.timezone.utc)
        with monkeypatch.context() as m:
            m.setattr(dt, "datetime", FrozenDatetime)
            return quality.validation_key(src)

    assert key_at(2026, 11, 25, 10, 0) == ("folder data", "f1", "2026-11-25 10")
    assert key_at(2026, 11, 25, 10, 59) == key_at(2026, 11, 25, 10, 0)  # the same hour
    assert key_at(2026, 11, 25, 11, 0) != key_at(2026, 11, 25, 10, 59)  # the next hour
    assert key_at(2026, 12, 25, 10, 0) != key_at(2026, 11, 25, 10, 0)  # the same hour a month later


def test_masked_validation_hashes_ids_in_examples_as_the_masked_tables_do(frames, monkeypatch):
    import hashlib

    from revops_lib.sources import open_source
    from revops_lib.validation import Problem, ValidationResult

    monkeypatch.delenv("REVOPS_PRIVACY_SALT", raising=False)

    def hashed(v):  # md5 of "salt|value", first 10 hex digits (the default salt)
        return "id-" + hashlib.md5(f"revops-kit|{v}".encode()).hexdigest()[:10]

    result = ValidationResult(source="frames", problems=[
        Problem("error", "leads", "lead_id", "duplicate_key", 2, "duplicate lead_id", ("L1", "L2")),
        Problem("warning", "opportunity_history", "close_date", "out_of_range", 1, "odd close date",
                ("opportunity_id=O1 changed_at=2026-10-04",)),
        Problem("warning", "web_traffic", "sessions", "negative", 1, "negative sessions",
                ("date=2026-10-01 source=paid_search",)),
        Problem("info", "something_else", "", "unexpected_value", 1, "not a contract table", ("X1",)),
    ], row_counts={"leads": 3}, absent=["reviews"])
    got = quality.masked_validation(result)
    assert [p.examples for p in got.problems] == [
        (hashed("L1"), hashed("L2")),
        (f"opportunity_id={hashed('O1')} changed_at=2026-10-04",),
        ("date=2026-10-01 source=paid_search",),  # no id in the key: kept
        ("X1",),  # not a contract table: no key known, kept
    ]
    assert [p.message for p in got.problems] == [p.message for p in result.problems]
    assert (got.source, got.row_counts, got.absent) == ("frames", {"leads": 3}, ["reviews"])
    # the same pseudonyms as the masked table shows
    masked = open_source(frames, privacy="masked").table("leads").execute()
    assert set(masked["lead_id"]) >= {hashed("L1"), hashed("L2")}


def test_the_pushed_deals_show_their_amount_as_money_as_the_stale_deals_do(frames):
    """The close-date pushes table read "15,300" under the stale deals' "$82.7k"."""
    import re

    frames = _opps(frames)
    frames["opportunities"].loc[frames["opportunities"]["opportunity_id"] == "O3", "amount"] = 15_300.0
    dq = quality_section.assess(frames, period="2026-10", as_of="2026-11-01", min_pushes=2, now=NOW)
    html = dq.pushes_table().to_html()
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", html)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert cells[heads.index("Amount")] == "$15.3k"
