"""Every validation rule of the data contract, with its message pinned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from revops_lib.errors import SchemaError
from revops_lib.schema import TABLES
from revops_lib.validation import validate

from conftest import NOW, d, ts, valid_frames, write_folder


def run(frames):
    return validate(frames, now=NOW)


def only(result, check):
    found = [p for p in result.problems if p.check == check]
    assert found, f"no `{check}` problem in:\n{result.format()}"
    return found


def test_contract_lists_the_13_tables_of_design():
    assert list(TABLES) == [
        "leads", "opportunities", "opportunity_history", "forecast_snapshots", "subscriptions",
        "transactions", "marketing_spend", "web_traffic", "email_campaigns", "activities",
        "support_tickets", "reviews", "targets",
    ]
    assert TABLES["leads"].required == ("lead_id", "created_at", "source")
    assert TABLES["opportunities"].required == (
        "opportunity_id", "created_at", "close_date", "is_closed", "is_won", "amount")


def test_valid_frames_have_no_problem():
    result = run(valid_frames())
    assert result.problems == [], result.format()
    assert result.ok and result.exit_code == 0
    assert result.row_counts["leads"] == 3
    assert result.absent == []


def test_absent_table_is_listed_not_an_error(frames):
    del frames["reviews"]
    result = run(frames)
    assert result.ok
    assert result.absent == ["reviews"]
    assert "absent (reports skip what needs them): reviews" in result.format()


def test_missing_required_column_is_an_error(frames):
    frames["leads"] = frames["leads"].drop(columns=["source"])
    result = run(frames)
    (p,) = only(result, "missing_column")
    assert (p.severity, p.table, p.column) == ("error", "leads", "source")
    assert str(p) == "ERROR   leads.source: missing required column `source` (string) (0 rows)"
    assert not result.ok and result.exit_code == 1


def test_missing_optional_column_is_fine(frames):
    frames["leads"] = frames["leads"].drop(columns=["segment", "customer_at"])
    assert run(frames).ok


def test_duplicate_ids_name_count_and_examples(frames):
    leads = frames["leads"]
    frames["leads"] = pd.concat([leads, leads.iloc[[0, 0, 1]]], ignore_index=True)
    (p,) = only(run(frames), "duplicate_key")
    assert (p.severity, p.table, p.column, p.count) == ("error", "leads", "lead_id", 5)
    assert p.examples == ("L1", "L2")
    assert str(p) == "ERROR   leads.lead_id: duplicate id: 2 values repeated (5 rows; e.g. L1, L2)"


def test_duplicate_composite_key(frames):
    t = frames["targets"]
    frames["targets"] = pd.concat([t, t.iloc[[0]]], ignore_index=True)
    (p,) = only(run(frames), "duplicate_key")
    assert p.column == "period, metric, segment"
    assert p.examples == ("period=2026-10 metric=revenue_won segment=None",)


def test_duplicate_history_rows_are_a_warning(frames):
    h = frames["opportunity_history"]
    frames["opportunity_history"] = pd.concat([h, h.iloc[[0]]], ignore_index=True)
    (p,) = only(run(frames), "duplicate_key")
    assert p.severity == "warning"


def test_null_in_required_column(frames):
    frames["leads"].loc[1, "source"] = None
    (p,) = only(run(frames), "null_required")
    assert str(p) == "ERROR   leads.source: null in a required column (1 row; e.g. L2)"


def test_negative_amount_is_an_error(frames):
    frames["opportunities"].loc[2, "amount"] = -5.0
    (p,) = only(run(frames), "negative")
    assert str(p) == "ERROR   opportunities.amount: negative values (1 row; e.g. O3)"


@pytest.mark.parametrize("table,column", [
    ("subscriptions", "mrr"), ("marketing_spend", "spend"), ("web_traffic", "sessions"),
    ("email_campaigns", "opens"), ("transactions", "amount"), ("forecast_snapshots", "amount"),
])
def test_negative_values_everywhere(frames, table, column):
    frames[table].loc[0, column] = -1
    (p,) = only(run(frames), "negative")
    assert (p.table, p.column, p.count) == (table, column, 1)


@pytest.mark.parametrize("table,column,value,bounds", [
    ("support_tickets", "csat", 6, "1–5"),
    ("support_tickets", "ces", 0, "1–7"),
    ("reviews", "rating", 9, "1–5"),
])
def test_ratings_out_of_range(frames, table, column, value, bounds):
    frames[table].loc[0, column] = value
    (p,) = only(run(frames), "out_of_range")
    assert p.message == f"values outside {bounds}"
    assert (p.table, p.column, p.severity) == (table, column, "error")


def test_stage_timestamps_out_of_order_is_a_warning(frames):
    frames["leads"].loc[0, "sql_at"] = pd.Timestamp("2026-10-01 08:00", tz="UTC")  # before created and mql
    result = run(frames)
    found = only(result, "stage_order")
    assert {p.message for p in found} == {"`sql_at` earlier than `created_at`", "`sql_at` earlier than `mql_at`"}
    assert all(p.severity == "warning" and p.examples == ("L1",) for p in found)
    assert result.ok  # warnings only
    assert result.exit_code == 0


def test_ticket_response_before_creation_is_a_warning(frames):
    frames["support_tickets"].loc[0, "first_response_at"] = pd.Timestamp("2026-10-21", tz="UTC")
    (p,) = only(run(frames), "stage_order")
    assert (p.table, p.column) == ("support_tickets", "first_response_at")


def test_end_date_before_start_date(frames):
    frames["subscriptions"].loc[2, "end_date"] = pd.Timestamp("2024-12-31").date()
    (p,) = only(run(frames), "end_before_start")
    assert str(p) == "ERROR   subscriptions.end_date: `end_date` before `start_date` (1 row; e.g. S3)"


def test_won_but_not_closed(frames):
    frames["opportunities"].loc[2, "is_won"] = True
    (p,) = only(run(frames), "won_not_closed")
    assert p.examples == ("O3",)


def test_dates_in_the_future_are_errors(frames):
    frames["leads"].loc[2, "created_at"] = pd.Timestamp("2026-12-01", tz="UTC")
    frames["web_traffic"].loc[0, "date"] = pd.Timestamp("2026-11-26").date()
    found = only(run(frames), "future")
    assert {(p.table, p.column, p.count) for p in found} == {("leads", "created_at", 1), ("web_traffic", "date", 1)}
    assert found[0].message == "in the future (after now, UTC)"


def test_planned_dates_may_lie_in_the_future(frames):
    frames["opportunities"].loc[2, "close_date"] = pd.Timestamp("2027-06-30").date()
    frames["subscriptions"].loc[0, "end_date"] = pd.Timestamp("2027-10-19").date()
    assert run(frames).ok


def test_invalid_period_labels(frames):
    frames["targets"].loc[1, "period"] = "2026-Q5"
    frames["forecast_snapshots"].loc[0, "forecast_period"] = "Oct 2026"
    found = only(run(frames), "invalid_period")
    assert {(p.table, p.column, p.examples) for p in found} == {
        ("targets", "period", ("2026-Q5",)), ("forecast_snapshots", "forecast_period", ("Oct 2026",))}
    # an example as long as a paragraph is cut to the label limit, with an ellipsis
    frames["targets"].loc[1, "period"] = "Q" * 500
    (p,) = [p for p in only(run(frames), "invalid_period") if p.table == "targets"]
    assert p.examples == ("Q" * 199 + "…",)


def test_the_report_of_a_valid_source_ends_with_ok(frames):
    text = run(frames).format()
    assert text.splitlines()[-1] == "OK: 0 errors, 0 warnings" and text.startswith("Validated ")
    frames["leads"].loc[0, "lead_id"] = None
    assert run(frames).format().splitlines()[-1].startswith("FAILED: 1 error")


def test_unexpected_category_value_is_a_warning(frames):
    frames["opportunities"].loc[0, "type"] = "upsell"
    (p,) = only(run(frames), "unexpected_value")
    assert p.severity == "warning"
    assert p.message == "values other than new_business, expansion, renewal"


def test_empty_table_is_a_warning(frames):
    frames["reviews"] = frames["reviews"].iloc[0:0]
    (p,) = only(run(frames), "empty_table")
    assert p.severity == "warning"


def test_text_that_is_not_a_number_is_a_type_error(tmp_path, frames):
    frames["opportunities"]["amount"] = frames["opportunities"]["amount"].astype(object)
    frames["opportunities"].loc[1, "amount"] = "n/a"
    write_folder(frames, tmp_path, fmt="csv")
    (p,) = only(validate(tmp_path, now=NOW), "wrong_type")
    assert str(p) == "ERROR   opportunities.amount: values that are not a valid float (1 row; e.g. O2)"


def test_bad_timestamp_and_boolean_text_in_csv(tmp_path, frames):
    write_folder(frames, tmp_path, fmt="csv")
    leads = pd.read_csv(tmp_path / "leads.csv", dtype=str)
    leads.loc[0, "created_at"] = "yesterday"
    leads.to_csv(tmp_path / "leads.csv", index=False)
    opps = pd.read_csv(tmp_path / "opportunities.csv", dtype=str)
    opps.loc[0, "is_won"] = "maybe"
    opps.to_csv(tmp_path / "opportunities.csv", index=False)
    found = {(p.table, p.column): p for p in only(validate(tmp_path, now=NOW), "wrong_type")}
    assert found[("leads", "created_at")].examples == ("L1",)
    assert found[("opportunities", "is_won")].message == "values that are not a valid bool"


def test_stored_type_that_cannot_hold_the_column(frames):
    frames["opportunities"]["amount"] = pd.to_datetime(["2026-01-01"] * 3)
    (p,) = only(run(frames), "wrong_type")
    assert p.message.startswith("wrong type: stored as timestamp")
    assert p.count == 3


def test_fractional_count_is_a_type_error(frames):
    frames["web_traffic"]["sessions"] = [1000.5, 400.0]
    (p,) = only(run(frames), "wrong_type")
    assert (p.column, p.count) == ("sessions", 1)


def test_at_most_five_examples(frames):
    n = 12
    frames["opportunities"] = pd.DataFrame({
        "opportunity_id": [f"O{i}" for i in range(n)],
        "created_at": ts(*["2026-10-01"] * n),
        "close_date": d(*["2026-10-05"] * n),
        "is_closed": [True] * n, "is_won": [False] * n,
        "amount": -np.arange(1, n + 1, dtype=float),
    })
    (p,) = only(run(frames), "negative")
    assert p.count == n and len(p.examples) == 5


def test_raise_for_errors_carries_the_result(frames):
    frames["opportunities"].loc[0, "amount"] = -1.0
    result = run(frames)
    with pytest.raises(SchemaError, match=r"1 error, 0 warnings") as info:
        result.raise_for_errors()
    assert info.value.result is result


def test_result_as_frame_and_html(frames):
    frames["opportunities"].loc[0, "amount"] = -1.0
    result = run(frames)
    df = result.to_frame()
    assert list(df.columns) == ["severity", "table", "column", "check", "count", "message", "examples"]
    assert df.iloc[0].tolist() == ["error", "opportunities", "amount", "negative", 1, "negative values", "O1"]
    from revops_lib.present.tables import style_table

    assert "negative values" in style_table(df).to_html()  # as the data_quality report shows it


def test_done_when_scenario_lists_each_problem(tmp_path, frames):
    """The issue's acceptance case: leads without `source` and a duplicated id, a negative amount."""
    leads = frames["leads"].drop(columns=["source"])
    frames["leads"] = pd.concat([leads, leads.iloc[[1]]], ignore_index=True)
    frames["opportunities"].loc[1, "amount"] = -5000.0
    write_folder(frames, tmp_path)
    text = validate(tmp_path, now=NOW).format()
    assert "ERROR   leads.source: missing required column `source` (string)" in text
    assert "ERROR   leads.lead_id: duplicate id: 1 value repeated (2 rows; e.g. L2)" in text
    assert "ERROR   opportunities.amount: negative values (1 row; e.g. O2)" in text
    assert text.endswith("FAILED: 3 errors, 0 warnings")


# ---------------------------------------------------------------------------
# Contract tightening: hostile and careless input
# ---------------------------------------------------------------------------

MONEY = [("opportunities", "amount"), ("opportunity_history", "amount"), ("forecast_snapshots", "amount"),
         ("subscriptions", "mrr"), ("transactions", "amount"), ("marketing_spend", "spend")]
NOT_FINITE = "values that are not finite numbers (NaN or ±infinity)"
TOO_LARGE = "values larger than 1,000,000,000,000 in absolute value (the money bound)"


def csv_with(tmp_path, frames, table, column, values):
    """A CSV folder whose `table.column` holds these texts (row by row from the first)."""
    df = frames[table].copy()
    df[column] = df[column].astype(object)
    for i, v in enumerate(values):
        df.loc[i, column] = v
    frames[table] = df
    return write_folder(frames, tmp_path, fmt="csv")


def test_money_columns_are_the_float_columns_but_targets():
    from revops_lib.schema import MAX_MONEY

    assert MAX_MONEY == 1e12
    money = [(t.name, c.name) for t in TABLES.values() for c in t.columns if c.money]
    assert money == MONEY
    floats = [(t.name, c.name) for t in TABLES.values() for c in t.columns if c.kind == "float"]
    assert floats == MONEY + [("targets", "target")]


@pytest.mark.parametrize("text", ["NaN", "nan", "Infinity", "inf", "-inf", "1e309", "-1e309"])
def test_non_finite_money_in_csv_is_an_error(tmp_path, frames, text):
    result = validate(csv_with(tmp_path, frames, "opportunities", "amount", ["12000", text]), now=NOW)
    (p,) = result.problems  # not also `negative` or `too_large`
    assert (p.severity, p.table, p.column, p.check, p.count, p.examples) == (
        "error", "opportunities", "amount", "non_finite", 1, ("O2",))
    assert str(p) == f"ERROR   opportunities.amount: {NOT_FINITE} (1 row; e.g. O2)"
    assert result.exit_code == 1


def test_non_finite_money_in_parquet_is_an_error(tmp_path, frames):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_folder(frames, tmp_path)
    table = pa.Table.from_pandas(frames["opportunities"], preserve_index=False)
    amount = pa.array([12000.0, float("nan"), float("-inf")], type=pa.float64(), from_pandas=False)
    assert amount.null_count == 0  # a real IEEE NaN, not a null
    pq.write_table(table.set_column(table.schema.get_field_index("amount"), "amount", amount),
                   tmp_path / "opportunities.parquet")
    (p,) = validate(tmp_path, now=NOW).problems
    assert (p.check, p.table, p.column, p.count, p.examples) == ("non_finite", "opportunities", "amount", 2,
                                                                  ("O2", "O3"))


@pytest.mark.parametrize("table,column", MONEY)
def test_infinite_money_everywhere(frames, table, column):
    frames[table].loc[0, column] = np.inf
    (p,) = run(frames).problems
    assert (p.severity, p.table, p.column, p.check, p.count) == ("error", table, column, "non_finite", 1)


@pytest.mark.parametrize("table,column", MONEY)
def test_money_above_the_bound_is_an_error(frames, table, column):
    frames[table].loc[0, column] = 1.5e12
    frames[table].loc[1, column] = 1e12  # the bound itself is allowed
    (p,) = run(frames).problems
    assert (p.severity, p.table, p.column, p.check, p.count, p.message) == (
        "error", table, column, "too_large", 1, TOO_LARGE)


def test_money_above_the_bound_in_csv_and_parquet(tmp_path, frames):
    result = validate(csv_with(tmp_path / "csv", valid_frames(), "subscriptions", "mrr", ["2e12", "-3e15"]), now=NOW)
    found = {p.check: p for p in result.problems}
    assert (found["too_large"].count, found["too_large"].examples) == (2, ("S1", "S2"))
    assert found["negative"].examples == ("S2",)
    frames["subscriptions"].loc[0, "mrr"] = 2e12
    (p,) = validate(write_folder(frames, tmp_path / "pq"), now=NOW).problems
    assert str(p) == f"ERROR   subscriptions.mrr: {TOO_LARGE} (1 row; e.g. S1)"


def test_null_optional_money_and_finite_money_are_fine(tmp_path, frames):
    frames["opportunity_history"].loc[0, "amount"] = np.nan  # pandas NaN is a missing value
    assert run(frames).problems == []
    assert validate(write_folder(frames, tmp_path), now=NOW).problems == []


def test_targets_must_be_finite_but_have_no_money_bound(frames):
    frames["targets"].loc[0, "target"] = 5e15  # a yearly target in a currency with small units
    frames["targets"].loc[1, "target"] = -10.0
    assert run(frames).problems == []
    frames["targets"].loc[2, "target"] = -np.inf
    (p,) = run(frames).problems
    assert (p.table, p.column, p.check, p.examples) == (
        "targets", "target", "non_finite", ("period=2026-W44 metric=leads segment=None",))


@pytest.mark.parametrize("text", ["inf", "NaN", "-Infinity", "1e309", "1e19"])
def test_non_finite_counts_in_csv_are_type_errors(tmp_path, frames, text):
    (p,) = validate(csv_with(tmp_path, frames, "web_traffic", "sessions", [text]), now=NOW).problems
    assert str(p) == "ERROR   web_traffic.sessions: values that are not a valid int (1 row; e.g. date=2026-10-01 source=organic_search)"


def test_nan_counts_in_parquet_are_type_errors(tmp_path, frames):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_folder(frames, tmp_path)
    t = pa.Table.from_pandas(frames["support_tickets"], preserve_index=False)
    csat = pa.array([float("nan"), float("inf")], type=pa.float64(), from_pandas=False)
    pq.write_table(t.set_column(t.schema.get_field_index("csat"), "csat", csat), tmp_path / "support_tickets.parquet")
    (p,) = validate(tmp_path, now=NOW).problems
    assert (p.check, p.table, p.column, p.count, p.examples) == ("wrong_type", "support_tickets", "csat", 2,
                                                                  ("K1", "K2"))


def test_duplicated_csv_header_is_an_error_and_its_values_are_not_used(tmp_path, frames):
    from revops_lib.sources import open_source

    write_folder(frames, tmp_path, fmt="csv")
    (tmp_path / "leads.csv").write_text(
        "lead_id,created_at,source,segment,source\n"
        "L1,2026-10-01T09:00:00Z,organic_search,smb,paid_search\n"
        "L2,2026-10-02T10:00:00Z,paid_search,smb,referral\n"
    )
    result = validate(tmp_path, now=NOW)
    (p,) = [p for p in result.problems if p.table == "leads"]
    assert (p.severity, p.column, p.check, p.count) == ("error", "source", "duplicate_column", 2)
    assert p.message == (f"the header of `{tmp_path / 'leads.csv'}` names `source` 2 times: "
                         "its values are ignored until the header names it once")
    assert result.exit_code == 1
    src = open_source(tmp_path)
    leads = src.to_pandas("leads")
    assert "source_1" not in leads.columns  # DuckDB's name for the second copy
    assert leads["source"].isna().all()  # neither copy is credited
    assert src.duplicate_columns("leads") == {"source": 2}


def test_duplicated_header_is_found_case_insensitively_and_outside_the_contract(tmp_path, frames):
    write_folder(frames, tmp_path, fmt="csv")
    (tmp_path / "reviews.csv").write_text(
        "review_id;posted_at;rating;Rating;note;NOTE;note\nR1;2026-10-28;5;4;a;b;c\n")
    found = {(p.column, p.severity, p.check): p for p in validate(tmp_path, now=NOW).problems}
    assert set(found) == {("rating", "error", "duplicate_column"), ("note", "warning", "duplicate_column")}
    assert "names `note` 3 times" in found[("note", "warning", "duplicate_column")].message


def test_csv_without_a_repeated_header_has_no_duplicate_column(tmp_path, frames):
    from revops_lib.sources import open_source

    write_folder(frames, tmp_path, fmt="csv")
    assert validate(tmp_path, now=NOW).problems == []
    assert all(open_source(tmp_path).duplicate_columns(n) == {} for n in TABLES)


def test_long_labels_are_a_warning_with_the_rows_keys(frames):
    from revops_lib.schema import MAX_LABEL

    assert MAX_LABEL == 200
    frames["leads"].loc[1, "source"] = "x" * 201
    frames["marketing_spend"].loc[2, "channel"] = "paid_" * 1000
    frames["opportunities"].loc[0, "owner"] = "y" * 200  # at the limit: fine
    result = run(frames)
    found = {(p.table, p.column): p for p in only(result, "long_label")}
    assert set(found) == {("leads", "source"), ("marketing_spend", "channel")}
    assert str(found[("leads", "source")]) == (
        "WARNING leads.source: labels longer than 200 characters (cut to 200 for display) (1 row; e.g. L2)")
    assert found[("marketing_spend", "channel")].examples == ("2026-10-02 00:00:00",)  # the key without the label
    assert result.ok


def test_label_columns_are_the_contracts_text_labels():
    labels = {t.name: t.labels for t in TABLES.values() if t.labels}
    assert labels == {
        "leads": ("source", "segment"),
        "opportunities": ("owner", "team", "segment", "source", "type", "stage", "forecast_category", "product"),
        "opportunity_history": ("stage", "forecast_category"),
        "forecast_snapshots": ("scope", "category"),
        "subscriptions": ("product", "segment"),
        "marketing_spend": ("channel",),
        "web_traffic": ("source",),
        "email_campaigns": ("audience",),
        "activities": ("type", "owner"),
        "reviews": ("platform",),
        "targets": ("metric", "segment", "owner", "team"),
    }
    assert all(not c.label or (c.kind == "string" and not c.name.endswith("_id"))
               for t in TABLES.values() for c in t.columns)


def test_subscription_starting_after_today_is_a_planned_warning(frames):
    frames["subscriptions"].loc[1, "start_date"] = pd.Timestamp("2026-12-01").date()
    result = run(frames)
    (p,) = result.problems
    assert str(p) == ("WARNING subscriptions.start_date: starts after today (planned); counted from its start "
                      "(1 row; e.g. S2)")
    assert result.ok and result.exit_code == 0
    frames["subscriptions"].loc[1, "start_date"] = pd.Timestamp("2026-11-25").date()  # today: not after
    assert run(frames).problems == []


def test_only_subscription_start_is_a_planned_date():
    from revops_lib.schema import EVENT_TIME_COLUMNS, PLANNED_TIME_COLUMNS

    assert PLANNED_TIME_COLUMNS == {"subscriptions": ("start_date",)}
    assert EVENT_TIME_COLUMNS["subscriptions"] == ()
    assert "start_date" not in {c for cols in EVENT_TIME_COLUMNS.values() for c in cols}


def test_orphan_opportunity_ids_are_warnings_with_counts_and_examples(frames):
    frames["opportunity_history"].loc[3, "opportunity_id"] = "O9"
    frames["activities"].loc[1, "opportunity_id"] = "O7"
    frames["leads"].loc[2, "opportunity_id"] = "O8"
    result = run(frames)
    found = {p.table: p for p in only(result, "orphan_key")}
    assert str(found["opportunity_history"]) == (
        "WARNING opportunity_history.opportunity_id: `opportunity_id` not found in `opportunities` "
        "(1 row; e.g. opportunity_id=O9 changed_at=2026-10-06 00:00:00)")
    assert (found["activities"].column, found["activities"].count, found["activities"].examples) == (
        "opportunity_id", 1, ("X2",))
    assert found["leads"].examples == ("L3",)
    assert set(found) == {"opportunity_history", "activities", "leads"}
    assert result.ok


def test_orphan_accounts_are_checked_against_the_leads_accounts(frames):
    frames["opportunities"].loc[[0, 2], "account_id"] = ["A7", None]  # a null account is not an orphan
    (p,) = run(frames).problems
    assert str(p) == ("WARNING opportunities.account_id: `account_id` not among the accounts known from "
                      "`leads.account_id` (1 row; e.g. O1)")


def test_orphans_are_not_checked_without_the_parent(frames):
    frames["opportunities"].loc[0, "account_id"] = "A7"
    frames["leads"]["account_id"] = None  # leads without accounts: no known accounts, no check
    frames["opportunity_history"].loc[3, "opportunity_id"] = "O9"
    del frames["opportunities"]  # no parent: history is not checked either
    assert [p for p in run(frames).problems if p.check == "orphan_key"] == []


def test_orphans_of_a_selected_table_use_the_parent_of_the_source(frames):
    frames["activities"].loc[1, "opportunity_id"] = "O7"
    (p,) = validate(frames, tables=["activities"], now=NOW).problems
    assert (p.table, p.check) == ("activities", "orphan_key")


def test_unknown_table_names_are_refused(frames):
    from revops_lib.errors import SourceError

    with pytest.raises(SourceError, match=r"^Unknown table name\(s\) `leadz`, `opps` to validate; "
                                          r"canonical names are: leads, opportunities, "):
        validate(frames, tables=["leads", "leadz", "opps"], now=NOW)
    assert validate(frames, tables="leads", now=NOW).row_counts == {"leads": 3}  # one name as text
    assert list(validate(frames, tables=["leads", "targets"], now=NOW).row_counts) == ["leads", "targets"]


@pytest.mark.postgres
def test_postgres_finds_the_same_new_problems_as_duckdb(pg_url, tmp_path, frames):
    """NaN and infinity in PostgreSQL double precision, the money bound, long labels, orphans, planned starts."""
    import ibis
    import pyarrow as pa
    import pyarrow.parquet as pq

    from revops_lib.sources import open_source

    from conftest import load_postgres

    frames["opportunities"].loc[1, "amount"] = np.inf
    frames["opportunity_history"].loc[0, "amount"] = 2e12
    frames["targets"].loc[0, "target"] = -np.inf
    frames["leads"].loc[1, "source"] = "x" * 300
    frames["activities"].loc[1, "opportunity_id"] = "O7"
    frames["opportunities"].loc[0, "account_id"] = "A7"
    frames["subscriptions"].loc[1, "start_date"] = pd.Timestamp("2027-01-01").date()
    url = load_postgres(pg_url, frames, "contract_tightening")
    con = ibis.connect(url)
    con.raw_sql("UPDATE opportunities SET amount = 'NaN' WHERE opportunity_id = 'O3'").close()
    con.disconnect()
    write_folder(frames, tmp_path)
    t = pa.Table.from_pandas(frames["opportunities"], preserve_index=False)
    amount = pa.array([12000.0, float("inf"), float("nan")], type=pa.float64(), from_pandas=False)
    pq.write_table(t.set_column(t.schema.get_field_index("amount"), "amount", amount), tmp_path / "opportunities.parquet")

    pg, duck = validate(url, now=NOW), validate(tmp_path, now=NOW)
    assert [str(p) for p in pg.problems] == [str(p) for p in duck.problems]
    assert {(p.table, p.check) for p in pg.problems} == {
        ("opportunities", "non_finite"), ("opportunity_history", "too_large"), ("targets", "non_finite"),
        ("leads", "long_label"), ("activities", "orphan_key"), ("opportunities", "orphan_key"),
        ("subscriptions", "planned_future")}
    assert next(p for p in pg.problems if p.check == "non_finite" and p.table == "opportunities").count == 2
    cut = open_source(url).to_pandas("leads").sort_values("lead_id")["source"].tolist()[1]
    assert cut == "x" * 199 + "…"


# --------------------------------------------------------------------------- boundaries of the rules

@pytest.mark.parametrize("table,key", [("subscriptions", "subscription_id"), ("transactions", "transaction_id")])
def test_nulls_in_an_optional_single_column_key_are_not_duplicates(frames, table, key):
    frames[table][key] = None  # every row without an id: allowed (the id is optional)
    result = run(frames)
    assert result.problems == [], result.format()
    frames[table][key] = "same id"  # the same non-null id on every row: a duplicate
    (p,) = only(run(frames), "duplicate_key")
    assert (p.table, p.column, p.count, p.examples) == (table, key, len(frames[table]), ("same id",))


def test_validate_with_tables_checks_only_those_tables(frames):
    frames["leads"].loc[1, "source"] = None  # an error in leads
    frames["opportunities"].loc[2, "amount"] = -5.0  # an error in opportunities
    frames["reviews"].loc[0, "rating"] = 0  # an error in reviews
    result = validate(frames, tables=["opportunities", "reviews"], now=NOW)
    assert {(p.table, p.check) for p in result.problems} == {("opportunities", "negative"),
                                                             ("reviews", "out_of_range")}
    assert list(result.row_counts) == ["opportunities", "reviews"]
    assert {(p.table, p.check) for p in run(frames).problems} >= {("leads", "null_required")}  # all tables: found


def test_an_event_exactly_at_now_is_not_in_the_future_and_a_microsecond_later_is(frames):
    frames["leads"]["created_at"] = frames["leads"]["created_at"].astype("datetime64[us, UTC]")  # room for 1 µs
    frames["leads"].loc[1, "created_at"] = pd.Timestamp(NOW)
    frames["web_traffic"].loc[0, "date"] = NOW.date()  # a date column: today is not in the future
    result = run(frames)
    assert result.problems == [], result.format()
    frames["leads"].loc[1, "created_at"] = pd.Timestamp(NOW) + pd.Timedelta(microseconds=1)
    (p,) = only(run(frames), "future")
    assert (p.table, p.column, p.examples) == ("leads", "created_at", ("L2",))
    frames["leads"].loc[1, "created_at"] = pd.Timestamp(NOW)
    frames["web_traffic"].loc[0, "date"] = (NOW + pd.Timedelta(days=1)).date()
    (p,) = only(run(frames), "future")
    assert (p.table, p.column) == ("web_traffic", "date")


def test_a_subscription_may_end_on_its_start_date_but_not_a_day_earlier(frames):
    frames["subscriptions"].loc[2, "end_date"] = frames["subscriptions"].loc[2, "start_date"]
    result = run(frames)
    assert result.problems == [], result.format()
    frames["subscriptions"].loc[2, "end_date"] = frames["subscriptions"].loc[2, "start_date"] - pd.Timedelta(days=1)
    (p,) = only(run(frames), "end_before_start")
    assert (p.count, p.examples) == (1, ("S3",))


def test_equal_stage_timestamps_are_not_out_of_order(frames):
    for col in ("created_at", "mql_at", "sql_at", "opportunity_at", "customer_at"):
        frames["leads"][col] = frames["leads"][col].astype("datetime64[us, UTC]")
    t = frames["leads"].loc[0, "created_at"]
    for col in ("mql_at", "sql_at", "opportunity_at", "customer_at"):  # every stage reached at creation
        frames["leads"].loc[0, col] = t
    frames["support_tickets"].loc[0, "first_response_at"] = frames["support_tickets"].loc[0, "created_at"]
    result = run(frames)
    assert result.problems == [], result.format()
    frames["leads"].loc[0, "customer_at"] = t - pd.Timedelta(microseconds=1)
    found = only(run(frames), "stage_order")
    assert {p.message for p in found} == {f"`customer_at` earlier than `{c}`"
                                          for c in ("created_at", "mql_at", "sql_at", "opportunity_at")}


@pytest.mark.parametrize("rating,ok", [(0, False), (1, True), (5, True), (6, False)])
def test_a_rating_must_lie_on_its_1_to_5_scale_bounds_included(frames, rating, ok):
    frames["reviews"].loc[0, "rating"] = rating
    result = run(frames)
    assert result.ok is ok, result.format()
    if not ok:
        (p,) = only(result, "out_of_range")
        assert (p.table, p.column, p.message) == ("reviews", "rating", "values outside 1–5")


# ---------------------------------------------------------------------------
# Duplicate keys by one sort (validation._duplicate_runs) against a pandas GROUP BY
# ---------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_KEY_VALUES = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "aa", ""]))


def _pandas_duplicates(df: pd.DataFrame, keys: list[str]) -> tuple[int, int, list]:
    """(rows, keys, sorted repeated keys) the way a GROUP BY counts them: nulls are one value."""
    g = df.fillna("\x00null").groupby(keys).size()
    rep = g[g > 1]
    firsts = sorted(k if isinstance(k, tuple) else (k,) for k in rep.index)  # nulls as "\x00null"
    return int(rep.sum()), len(rep), firsts


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(_KEY_VALUES, _KEY_VALUES), min_size=0, max_size=12), composite=st.booleans())
def test_duplicate_runs_equal_a_group_by(rows, composite):
    import ibis

    from revops_lib.validation import _duplicate_runs

    df = pd.DataFrame(rows, columns=["k1", "k2"], dtype="object").astype({"k1": "string", "k2": "string"})
    keys = ["k1", "k2"] if composite else ["k1"]
    con = ibis.duckdb.connect()
    t = con.create_table("t", df.astype(object).where(df.notna(), None),
                         schema=ibis.schema({"k1": "string", "k2": "string"}))
    first, stats = _duplicate_runs(t, keys)
    got = con.execute(stats).iloc[0]
    want_rows, want_keys, want_first = _pandas_duplicates(df[keys].astype(object), keys)
    assert (int(got["rows"]), int(got["keys"])) == (want_rows, want_keys)
    listed = sorted(tuple("\x00null" if pd.isna(v) else v for v in r)
                    for r in con.execute(first.select(*keys)).itertuples(index=False))
    assert listed == want_first


@pytest.mark.postgres
def test_postgres_counts_duplicate_keys_as_duckdb(pg_url, tmp_path, frames):
    """A repeated id, a repeated composite key with a null part (GROUP BY semantics) on both engines."""
    from conftest import load_postgres

    frames["leads"] = pd.concat([frames["leads"], frames["leads"].iloc[[0, 0, 1]]], ignore_index=True)
    t = frames["targets"]
    extra = t.iloc[[0]].assign(segment=None)
    frames["targets"] = pd.concat([t.assign(segment=None).iloc[[0]], extra, t], ignore_index=True)
    url = load_postgres(pg_url, frames, "duplicate_runs")
    write_folder(frames, tmp_path)
    pg, duck = validate(url, now=NOW), validate(tmp_path, now=NOW)
    dups = [str(p) for p in duck.problems if p.check == "duplicate_key"]
    assert [str(p) for p in pg.problems if p.check == "duplicate_key"] == dups
    lead = next(p for p in duck.problems if p.check == "duplicate_key" and p.table == "leads")
    assert (lead.count, lead.examples[:2]) == (5, (frames["leads"].lead_id.iloc[0], frames["leads"].lead_id.iloc[1]))
    assert any(p.table == "targets" for p in duck.problems if p.check == "duplicate_key")
