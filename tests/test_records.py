"""The records behind the numbers (issue 17, item 5): each records table adds up to its aggregate exactly, on
hand-computed frames, on random ones, on the demo data and in the published CSVs; masked sources hash the ids;
PostgreSQL gives the same records as DuckDB."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_channels import company, random_company
from test_forecast import STEPS, D, reference_waterfall, waterfall_case

from revops_lib.errors import ParameterError, SourceError
from revops_lib.metrics import records as R
from revops_lib.metrics.channels import channel_economics
from revops_lib.metrics.lead_funnel import stage_conversion
from revops_lib.metrics.mrr import mrr_movements
from revops_lib.metrics.pipeline import WATERFALL_STEPS, pipeline_waterfall
from revops_lib.metrics.reps import rep_performance
from revops_lib.metrics.segments import retention_by, win_rate_by
from revops_lib.present.section import Section, WithRecords
from revops_lib.sources import Source, open_source

MOVES = ["new", "expansion", "reactivation", "contraction", "churned"]
LOGOS = dict(zip(MOVES, ["new_logos", "expanded_logos", "reactivated_logos", "contracted_logos", "churned_logos"]))


def cents(x) -> np.ndarray:
    return np.round(np.asarray(x, dtype="float64") * 100).astype("int64")


# ---------------------------------------------------------------------------
# How a records table adds up to its aggregate (the checks every test below uses)
# ---------------------------------------------------------------------------

def assert_movements_add_up(records: pd.DataFrame, movements: pd.DataFrame) -> None:
    """Σ amount per month and movement = the movement (in cents); rows per month and movement = its logos."""
    months = sorted(set(records["month"])) if len(records) else []
    for m in months:
        row = movements[movements["month"] == m].iloc[0]
        part = records[records["month"] == m]
        for mv in MOVES:
            sel = part[part["movement"] == mv]
            assert cents(sel["amount"]).sum() == cents(row[mv]), (m, mv)
            assert len(sel) == row[LOGOS[mv]], (m, mv)
        # each row is the customer's change: ending - starting = ± amount
        sign = np.where(part["movement"].isin(["new", "expansion", "reactivation"]), 1, -1)
        assert (cents(part["ending_mrr"]) - cents(part["starting_mrr"]) == sign * cents(part["amount"])).all()


def assert_waterfall_adds_up(records: pd.DataFrame, wf: pd.DataFrame) -> None:
    """Σ amount per step = the step (in cents); rows per step = the deals behind it."""
    got = records.assign(c=cents(records["amount"])).groupby("step")["c"].sum()
    for step in WATERFALL_STEPS:
        assert got.get(step, 0) == wf.attrs["cents"][step], step
    n = records.groupby("step").size()
    for step, count in wf.attrs["deals"].items():
        assert n.get(step, 0) == count, step
    assert cents(wf["amount"]).tolist() == [wf.attrs["cents"][s] for s in WATERFALL_STEPS]
    # the forecast report publishes the waterfall summed from its records: the same frame, attrs included
    rebuilt = R.waterfall_of_records(records)
    pd.testing.assert_frame_equal(rebuilt, wf)
    assert rebuilt.attrs == wf.attrs


def conversion_from_records(records: pd.DataFrame, by: str = "source") -> pd.DataFrame:
    """The cohort funnel rebuilt from its records: per group and pair, and over every group (``all``)."""
    keys = ["from_stage", "to_stage"]
    per = records.groupby([by, *keys]).agg(entered=("converted", "size"), converted=("converted", "sum"))
    tot = records.groupby(keys).agg(entered=("converted", "size"), converted=("converted", "sum"))
    tot = tot.reset_index().assign(**{by: "all"})
    return pd.concat([per.reset_index(), tot], ignore_index=True)


def assert_conversion_adds_up(records: pd.DataFrame, conversion: pd.DataFrame, by: str = "source",
                              total: bool = True) -> None:
    """Per group and pair (and, with ``total``, over every group: the ``all`` row), the table's counts."""
    rebuilt = conversion_from_records(records, by)
    if not total:
        rebuilt = rebuilt[rebuilt[by] != "all"]
    keys = [by, "from_stage", "to_stage"]
    m = conversion[keys + ["entered", "converted"]].merge(rebuilt, on=keys, how="outer", suffixes=("", "_r"),
                                                          indicator=True)
    assert (m["_merge"] == "both").all(), m[m["_merge"] != "both"]
    assert (m["entered"] == m["entered_r"]).all() and (m["converted"] == m["converted_r"]).all(), m


def assert_win_rates_add_up(records: pd.DataFrame, table: pd.DataFrame, by: str = "segment") -> None:
    """Per value of ``by`` and over all (``all``): the table's won and lost; every row is a closed deal."""
    assert ((records["won"] + records["lost"]) == 1).all()
    assert (records["outcome"] == np.where(records["won"] == 1, "won", "lost")).all()
    per = records.groupby(by)[["won", "lost"]].sum().reset_index()
    rebuilt = pd.concat([per, records[["won", "lost"]].sum().to_frame().T.assign(**{by: "all"})], ignore_index=True)
    m = table[[by, "closed", "won", "lost"]].merge(rebuilt, on=by, how="outer", suffixes=("", "_r"), indicator=True)
    assert (m["_merge"] == "both").all(), m
    assert (m["won"] == m["won_r"]).all() and (m["lost"] == m["lost_r"]).all(), m
    assert (m["closed"] == m["won_r"] + m["lost_r"]).all(), m


def assert_retention_adds_up(records: pd.DataFrame, table: pd.DataFrame, by: str = "segment") -> None:
    """Per value of ``by`` and over all: rows = base customers, Σ retained, Σ base, now and capped MRR (cents)."""
    r = records.assign(**{c: cents(records[c]) for c in ("base_mrr", "mrr", "capped_mrr")})
    assert ((r["retained"] == 1) == (r["mrr"] > 0)).all() and (r["capped_mrr"] <= r["base_mrr"]).all()
    assert (r["base_mrr"] > 0).all() and not records["customer_id"].duplicated().any()
    sums = {"base_customers": ("retained", "size"), "retained_customers": ("retained", "sum"),
            "base_mrr": ("base_mrr", "sum"), "mrr": ("mrr", "sum"), "capped_mrr": ("capped_mrr", "sum")}
    per = r.groupby(by).agg(**sums).reset_index()
    rebuilt = pd.concat([per, r.assign(**{by: "all"}).groupby(by).agg(**sums).reset_index()], ignore_index=True)
    t = table.assign(**{c: cents(table[c]) for c in ("base_mrr", "mrr", "capped_mrr")})
    m = t.merge(rebuilt, on=by, how="left", suffixes=("", "_r"))
    m = m.fillna({f"{c}_r": 0 for c in sums})
    for c in sums:
        assert (m[c] == m[f"{c}_r"]).all(), m[[by, c, f"{c}_r"]]
    assert set(rebuilt[by]) <= set(table[by]), "a group of the records is not in the table"
    assert set(records["month"]) <= set(table["month"]) and set(records["base_month"]) <= set(table["base_month"])


REP_SUMS = ["won", "lost", "revenue_won", "pipeline_created"]


def assert_reps_add_up(records: pd.DataFrame, reps: pd.DataFrame) -> None:
    """Per owner and team, per team (owner ``all``) and over all (``all``, ``all``): the table's figures."""
    s = records[REP_SUMS]
    owner = records.groupby(["owner", "team"])[REP_SUMS].sum().reset_index()
    team = records.groupby("team")[REP_SUMS].sum().reset_index().assign(owner="all")
    company = s.sum().to_frame().T.assign(owner="all", team="all")
    rebuilt = pd.concat([owner, team, company], ignore_index=True)
    m = reps[["owner", "team", *REP_SUMS]].merge(rebuilt, on=["owner", "team"], how="left", suffixes=("", "_r"))
    m = m.fillna({f"{c}_r": 0 for c in REP_SUMS})
    for c in ("won", "lost"):
        assert (m[c] == m[f"{c}_r"]).all(), m[[c, f"{c}_r"]]
    for c in ("revenue_won", "pipeline_created"):
        assert (cents(m[c]) == cents(m[f"{c}_r"])).all(), m[["owner", "team", c, f"{c}_r"]]
    # every deal row counts in the table: no owner in the records without its row
    assert set(map(tuple, owner[["owner", "team"]].to_numpy())) <= set(map(tuple, reps[["owner", "team"]].to_numpy()))


CHANNEL_SUMS = {"opportunities": "created", "pipeline_created": "pipeline_created", "revenue_won": "revenue_won",
                "new_business_won": "new_business_won", "new_customers": "new_customer"}


def assert_channels_add_up(records: pd.DataFrame, table: pd.DataFrame) -> None:
    """Per source and over all (the ``all`` row): the deal columns of channel economics; the starting MRR behind
    payback too when the table has it."""
    sums = {c: r for c, r in CHANNEL_SUMS.items() if c in table.columns}
    per = records.groupby("source")[list(sums.values())].sum()
    per.loc["all"] = records[list(sums.values())].sum()
    t = table.set_index("source")
    for src_row in t.index:
        for col, rcol in sums.items():
            want = t.loc[src_row, col]
            got = per[rcol].get(src_row, 0)
            if col in ("opportunities", "new_customers"):
                assert got == want, (src_row, col, got, want)
            else:
                assert cents(got) == cents(0.0 if pd.isna(want) else want), (src_row, col, got, want)
    assert set(per.index) <= set(t.index), set(per.index) - set(t.index)  # every deal row counts in the table
    if "starting_mrr" in t.columns:
        nc = records[records["new_customer"] == 1]
        mrr = nc.groupby("source")["starting_mrr"].agg(["sum", "count"])
        for src_row in mrr.index:
            want = t.loc[src_row, "starting_mrr"]
            assert cents(mrr.loc[src_row, "sum"]) == cents(0.0 if pd.isna(want) else want), src_row
            assert mrr.loc[src_row, "count"] == t.loc[src_row, "customers_with_mrr"], src_row
    assert records.loc[records["new_customer"] == 0, "starting_mrr"].isna().all()
    assert (records["won"] >= records["new_customer"]).all()  # a new customer's deal is won in the period


# ---------------------------------------------------------------------------
# MRR movements
# ---------------------------------------------------------------------------

def mrr_case() -> pd.DataFrame:
    """Subscriptions: A expands in March, B churns in March, C comes back in March, D contracts, E is new."""
    rows = [("A", "2026-01-05", 100.0, None), ("A", "2026-03-01", 50.0, None),
            ("B", "2026-02-01", 80.0, "2026-03-15"),
            ("C", "2026-01-10", 40.0, "2026-02-01"), ("C", "2026-03-01", 60.0, None),
            ("D", "2026-01-01", 100.0, "2026-03-01"), ("D", "2026-03-01", 70.0, None),
            ("E", "2026-03-20", 25.0, None)]
    df = pd.DataFrame(rows, columns=["customer_id", "start_date", "mrr", "end_date"])
    df["start_date"] = [D(x) for x in df["start_date"]]
    df["end_date"] = [D(x) if isinstance(x, str) else None for x in df["end_date"]]
    return df


def test_mrr_movement_records_hand_computed():
    r = R.mrr_movement_records(mrr_case(), period="2026-03")
    assert r.columns.tolist() == R.MOVEMENT_RECORD_COLUMNS
    assert r[["month", "customer_id", "movement", "amount", "starting_mrr", "ending_mrr"]].values.tolist() == [
        ["2026-03", "E", "new", 25.0, 0.0, 25.0],
        ["2026-03", "A", "expansion", 50.0, 100.0, 150.0],
        ["2026-03", "C", "reactivation", 60.0, 0.0, 60.0],
        ["2026-03", "D", "contraction", 30.0, 100.0, 70.0],
        ["2026-03", "B", "churned", 80.0, 80.0, 0.0]]
    assert r.attrs["months"] == ["2026-03"]
    assert_movements_add_up(r, mrr_movements(mrr_case(), period="2026-03", months=3))


def retention_case() -> pd.DataFrame:
    """Customer months: A grows, B churns, C contracts (smb, ent); D has no segment; E starts after the base
    month; F left before it."""
    rows = [("A", "smb", "2025-01", 100.0), ("A", "smb", "2026-01", 130.0), ("B", "ent", "2025-01", 50.0),
            ("C", "smb", "2025-01", 20.0), ("C", "smb", "2025-07", 15.0), ("C", "smb", "2026-01", 10.0),
            ("D", None, "2025-01", 40.0), ("D", None, "2026-01", 40.0), ("E", "smb", "2025-06", 70.0),
            ("E", "smb", "2026-01", 70.0), ("F", "ent", "2024-12", 30.0)]
    df = pd.DataFrame(rows, columns=["customer_id", "segment", "month", "mrr"])
    df["month"] = pd.to_datetime(df["month"])
    return df


def test_retention_records_hand_computed():
    r = R.retention_records(retention_case(), period="2026-01")
    assert r.columns.tolist() == R.RETENTION_RECORD_COLUMNS
    assert r[["customer_id", "segment", "base_mrr", "mrr", "capped_mrr", "retained"]].values.tolist() == [
        ["B", "ent", 50.0, 0.0, 0.0, 0], ["A", "smb", 100.0, 130.0, 100.0, 1], ["C", "smb", 20.0, 10.0, 10.0, 1],
        ["D", "(none)", 40.0, 40.0, 40.0, 1]]
    assert set(r["base_month"]) == {"2025-01"} and set(r["month"]) == {"2026-01"}
    assert_retention_adds_up(r, retention_by(retention_case(), period="2026-01"))
    # another lag: the base is 2025-07, where C alone pays (E paid in June only, then again in January)
    r6 = R.retention_records(retention_case(), period="2026-01", lag=6)
    assert r6[["customer_id", "base_mrr", "mrr"]].values.tolist() == [["C", 15.0, 10.0]]
    assert_retention_adds_up(r6, retention_by(retention_case(), period="2026-01", lag=6))
    # `by` is a column name, as retention_by takes it (None used to end in a KeyError of pandas)
    for bad in (None, ""):
        with pytest.raises(ParameterError, match="`by` must be a column name"):
            R.retention_records(retention_case(), period="2026-01", by=bad)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 7), st.sampled_from(["smb", "ent", None]), st.integers(0, 14),
                          st.sampled_from([0.0, 10.0, 25.5, 99.99])), min_size=1, max_size=40))
def test_retention_records_add_up_on_random_customer_months(rows):
    seg = {}
    data = []
    for c, s, m, mrr in rows:  # one segment per customer (its first), one row per customer and month
        seg.setdefault(c, s)
        data.append((f"C{c}", seg[c], pd.Timestamp("2024-12-01") + pd.DateOffset(months=m), mrr))
    cm = pd.DataFrame(data, columns=["customer_id", "segment", "month", "mrr"]).drop_duplicates(
        ["customer_id", "month"])
    assert_retention_adds_up(R.retention_records(cm, period="2026-01"), retention_by(cm, period="2026-01"))


def test_mrr_movement_records_cover_the_period_months_only():
    q = R.mrr_movement_records(mrr_case(), period="2026-Q1")
    assert q.attrs["months"] == ["2026-01", "2026-02", "2026-03"]
    assert q[q["month"] == "2026-01"][["customer_id", "movement"]].values.tolist() == [
        ["A", "new"], ["D", "new"], ["C", "new"]]  # largest first: A and D 100, then C 40
    assert q[q["month"] == "2026-02"][["customer_id", "movement", "amount"]].values.tolist() == [
        ["B", "new", 80.0], ["C", "churned", 40.0]]
    assert_movements_add_up(q, mrr_movements(mrr_case(), period="2026-Q1", months=3))
    # a month: its own rows, none of the history before it
    assert set(R.mrr_movement_records(mrr_case(), period="2026-02")["month"]) == {"2026-02"}
    # as_of cuts the incomplete month off
    assert set(R.mrr_movement_records(mrr_case(), period="2026-Q1", as_of="2026-03-15")["month"]) <= {
        "2026-01", "2026-02"}
    # no month to list (all after the data's last month): no rows, money columns still numbers
    none = R.mrr_movement_records(mrr_case(), period="2026-Q1", months=["2030-01"])
    assert none.empty and none.columns.tolist() == R.MOVEMENT_RECORD_COLUMNS
    assert {c: str(none[c].dtype) for c in ("amount", "starting_mrr", "ending_mrr")} == dict.fromkeys(
        ("amount", "starting_mrr", "ending_mrr"), "float64")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from("ABCDEF"), st.integers(0, 5),
                          st.sampled_from([0.0, 0.004, 10.0, 25.5, 99.99])), min_size=1, max_size=25))
def test_mrr_movement_records_add_up_on_random_customer_months(rows):
    df = pd.DataFrame(rows, columns=["customer_id", "k", "mrr"]).drop_duplicates(["customer_id", "k"])
    df["month"] = [pd.Timestamp(2026, 1 + k, 1) for k in df["k"]]
    df = df.drop(columns="k")
    mv = mrr_movements(df, period="2026-06", months=6)
    for period in ("2026-Q1", "2026-Q2", "2026-06"):
        assert_movements_add_up(R.mrr_movement_records(df, period=period), mv)


# ---------------------------------------------------------------------------
# The pipeline waterfall
# ---------------------------------------------------------------------------

def test_waterfall_records_hand_computed():
    r = R.pipeline_waterfall_records(waterfall_case(), period="2026-10")
    assert r.columns.tolist() == R.WATERFALL_RECORD_COLUMNS
    assert r[["step", "opportunity_id", "amount"]].values.tolist() == [
        ["starting", "A", 100.0], ["starting", "B", 50.0], ["starting", "G", 40.0],
        ["new", "C", 70.0], ["new", "H", 30.0],
        ["pulled_in", "D", 200.0], ["pulled_in", "F", 80.0], ["pulled_in", "B", 50.0],
        ["increased", "A", 30.0],
        ["won", "D", 200.0], ["won", "A", 130.0], ["won", "H", 30.0],
        ["lost", "F", 80.0], ["lost", "C", 60.0],
        ["decreased", "C", 10.0],
        ["pushed_out", "B", 50.0], ["pushed_out", "G", 40.0],
        ["ending", "B", 50.0]]
    b = r[r["opportunity_id"] == "B"].iloc[0]  # its state at the cut-off, its owner and team
    assert (b["stage"], b["close_date"], b["owner"], b["team"]) == ("proposal", D("2026-10-30"), "bob", "t1")
    assert r[r["opportunity_id"] == "A"]["stage"].iloc[0] == "closed_won"
    assert_waterfall_adds_up(r, pipeline_waterfall(waterfall_case(), period="2026-10"))


@pytest.mark.parametrize("as_of", [None, "2026-10-11", "2026-10-25T12:00"])
def test_waterfall_records_match_the_independent_per_deal_reference(as_of):
    case = waterfall_case()
    r = R.pipeline_waterfall_records(case, period="2026-10", as_of=as_of)
    cut = pd.Timestamp(as_of) if as_of else pd.Timestamp("2026-11-01")
    _, _, per_deal = reference_waterfall(case, D("2026-10-01"), D("2026-11-01"), cut)
    flows = r[r["step"].isin(STEPS)]
    got = {(o, s): c for o, s, c in zip(flows["opportunity_id"], flows["step"], cents(flows["amount"]))}
    want = {(o, s): v for o, steps in per_deal.items() for s, v in steps.items()}  # the reference counts in cents
    assert got == want
    assert_waterfall_adds_up(r, pipeline_waterfall(case, period="2026-10", as_of=as_of))


# ---------------------------------------------------------------------------
# The lead funnel
# ---------------------------------------------------------------------------

def leads_case() -> pd.DataFrame:
    T = pd.Timestamp
    return pd.DataFrame({
        "lead_id": ["L1", "L2", "L3", "L4", "L5", "L6"],
        "source": ["web", "web", "event", None, "web", "event"],
        "created_at": [T("2026-10-01"), T("2026-10-02"), T("2026-10-03"), T("2026-10-04"), T("2026-09-20"),
                       T("2026-10-30")],
        "mql_at": [T("2026-10-02"), None, None, T("2026-10-20"), T("2026-10-01"), T("2026-11-02")],
        "sql_at": [None, None, T("2026-10-05"), None, T("2026-10-03"), None]})


STAGES3 = ["created_at", "mql_at", "sql_at"]


def test_stage_conversion_records_hand_computed():
    r = R.stage_conversion_records(leads_case(), period="2026-10", stages=STAGES3)
    assert r.columns.tolist() == R.CONVERSION_RECORD_COLUMNS
    # L5 was created in September (not in the cohort); L6's MQL came after the cut-off; L4 has no source
    assert r[["lead_id", "source", "from_stage", "converted"]].values.tolist() == [
        ["L1", "web", "created_at", 1], ["L2", "web", "created_at", 0], ["L3", "event", "created_at", 1],
        ["L4", "unknown", "created_at", 1], ["L6", "event", "created_at", 0],
        ["L1", "web", "mql_at", 0], ["L3", "event", "mql_at", 1], ["L4", "unknown", "mql_at", 0]]
    l3 = r[r["lead_id"] == "L3"]  # reached the skipped MQL stage at its SQL time
    assert l3["entered_at"].tolist() == [pd.Timestamp("2026-10-03"), pd.Timestamp("2026-10-05")]
    assert l3["converted_at"].tolist() == [pd.Timestamp("2026-10-05"), pd.Timestamp("2026-10-05")]
    assert pd.isna(r[r["lead_id"] == "L2"]["converted_at"].iloc[0])
    assert_conversion_adds_up(r, stage_conversion(leads_case(), period="2026-10", stages=STAGES3))


def test_stage_conversion_records_follow_the_window_and_the_strict_mode():
    kw = dict(period="2026-10", stages=STAGES3)
    w = R.stage_conversion_records(leads_case(), conversion_window_days=7, **kw)
    assert w[(w["lead_id"] == "L4") & (w["from_stage"] == "created_at")]["converted"].tolist() == [0]  # 16 days
    assert pd.isna(w[w["lead_id"] == "L4"]["converted_at"].iloc[0])
    assert_conversion_adds_up(w, stage_conversion(leads_case(), conversion_window_days=7, **kw))
    s = R.stage_conversion_records(leads_case(), funnel_mode="strict", **kw)
    assert ("L3", "mql_at") not in set(zip(s["lead_id"], s["from_stage"]))  # skipped MQL: not reached when strict
    assert_conversion_adds_up(s, stage_conversion(leads_case(), funnel_mode="strict", **kw))
    # a record list is of a period: a cut-off alone is refused, as by the rates
    with pytest.raises(ParameterError, match="`period` is required"):
        R.stage_conversion_records(leads_case(), period="", as_of="2026-11-01", stages=STAGES3)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["web", "event", None]), st.integers(0, 60),
                          st.one_of(st.none(), st.integers(0, 20)), st.one_of(st.none(), st.integers(0, 20))),
                min_size=1, max_size=30),
       st.sampled_from(["reached", "strict"]), st.sampled_from([None, 5]))
def test_stage_conversion_records_add_up_on_random_leads(rows, mode, window):
    base = pd.Timestamp("2026-09-15")
    leads = pd.DataFrame({
        "lead_id": [f"L{i}" for i in range(len(rows))], "source": [r[0] for r in rows],
        "created_at": [base + pd.Timedelta(days=r[1]) for r in rows],
        "mql_at": [base + pd.Timedelta(days=r[1] + r[2]) if r[2] is not None else pd.NaT for r in rows],
        "sql_at": [base + pd.Timedelta(days=r[1] + r[3]) if r[3] is not None else pd.NaT for r in rows]})
    kw = dict(period="2026-10", stages=STAGES3, funnel_mode=mode, conversion_window_days=window)
    assert_conversion_adds_up(R.stage_conversion_records(leads, **kw), stage_conversion(leads, **kw))


# ---------------------------------------------------------------------------
# Rep performance
# ---------------------------------------------------------------------------

def reps_case() -> pd.DataFrame:
    rows = [  # id, owner, team, created_at, close_date, is_closed, is_won, amount
        ("O1", "ana", "smb", "2026-09-01", "2026-10-05", True, True, 100.0),    # won, created before
        ("O2", "ana", "smb", "2026-10-03", "2026-10-20", True, False, 300.0),   # created and lost
        ("O3", "bo", "smb", "2026-10-10", "2026-12-01", False, False, 70.0),    # created, open
        ("O4", "bo", "ent", "2026-10-11", "2026-10-28", True, True, 500.0),     # created and won
        ("O5", None, None, "2026-08-01", "2026-10-15", True, True, 40.0),       # won, unassigned
        ("O6", "ana", "smb", "2026-08-01", "2026-09-28", True, True, 900.0),    # closed before: not in
        ("O7", "cy", "ent", "2026-07-01", "2026-11-02", True, False, 60.0),     # closed after: not in
    ]
    df = pd.DataFrame(rows, columns=["opportunity_id", "owner", "team", "created_at", "close_date", "is_closed",
                                     "is_won", "amount"])
    df["created_at"] = pd.to_datetime(df["created_at"])
    df["close_date"] = [D(x) for x in df["close_date"]]
    df["stage"] = np.where(df["is_won"], "closed_won", np.where(df["is_closed"], "closed_lost", "proposal"))
    return df


def test_rep_records_hand_computed():
    r = R.rep_performance_records(reps_case(), period="2026-10")
    assert r.columns.tolist() == R.REP_RECORD_COLUMNS
    assert r[["opportunity_id", "owner", "team", "outcome", "won", "lost", "revenue_won", "created",
              "pipeline_created"]].values.tolist() == [
        ["O4", "bo", "ent", "won", 1, 0, 500.0, 1, 500.0],
        ["O1", "ana", "smb", "won", 1, 0, 100.0, 0, 0.0],
        ["O2", "ana", "smb", "lost", 0, 1, 0.0, 1, 300.0],
        ["O3", "bo", "smb", "created", 0, 0, 0.0, 1, 70.0],
        ["O5", "unassigned", "unassigned", "won", 1, 0, 40.0, 0, 0.0]]
    assert_reps_add_up(r, rep_performance(reps_case(), period="2026-10"))
    # as_of: O4 (closed 10-28), O3 (created 10-10) and O5 (closed 10-15) fall after a cut-off on 10-08; O2 was
    # created before it and closes after it
    early = R.rep_performance_records(reps_case(), period="2026-10", as_of="2026-10-08")
    assert early[["opportunity_id", "outcome"]].values.tolist() == [["O1", "won"], ["O2", "created"]]
    assert_reps_add_up(early, rep_performance(reps_case(), period="2026-10", as_of="2026-10-08"))


def test_win_rate_records_hand_computed():
    deals = reps_case().assign(segment=["smb", "smb", "smb", "ent", None, "ent", "ent"])
    edges = deals.iloc[[0, 0]].assign(opportunity_id=["O8", "O9"], close_date=[D("2026-11-01"), D("2026-10-08")])
    deals = pd.concat([deals, edges], ignore_index=True)  # O8 closes after the month, O9 on the cut-off's date below
    r = R.win_rate_records(deals, period="2026-10")
    assert r.columns.tolist() == R.WIN_RATE_RECORD_COLUMNS
    # closed in October: O1 and O9 won, O2 lost (smb), O4 won (ent), O5 won (no segment: last); O3 is open, O6,
    # O7 and O8 closed outside the month
    assert r[["opportunity_id", "segment", "outcome", "won", "lost", "owner"]].values.tolist() == [
        ["O4", "ent", "won", 1, 0, "bo"], ["O1", "smb", "won", 1, 0, "ana"], ["O9", "smb", "won", 1, 0, "ana"],
        ["O2", "smb", "lost", 0, 1, "ana"], ["O5", "(none)", "won", 1, 0, "unassigned"]]
    assert_win_rates_add_up(r, win_rate_by(deals, period="2026-10"))
    # the cut-off: only deals closed before its date (O1 on 10-05; not O9, on the cut-off's date)
    early = R.win_rate_records(deals, period="2026-10", as_of="2026-10-08")
    assert early["opportunity_id"].tolist() == ["O1"]
    assert_win_rates_add_up(early, win_rate_by(deals, period="2026-10", as_of="2026-10-08"))
    by_team = R.win_rate_records(deals, period="2026-10", by="team")  # one team column, named as the table does
    assert by_team.columns.tolist() == ["opportunity_id", "team", "outcome", "won", "lost", "close_date", "amount",
                                        "owner"]
    assert by_team["team"].tolist() == ["ent", "smb", "smb", "smb", "(none)"]
    assert_win_rates_add_up(by_team, win_rate_by(deals, period="2026-10", by="team"), "team")
    with pytest.raises(Exception, match="`by` names column `region`"):
        R.win_rate_records(deals, period="2026-10", by="region")
    leads = {"leads": pd.DataFrame({"lead_id": ["L1"], "created_at": pd.to_datetime(["2026-10-01"])})}
    with pytest.raises(SourceError, match="absent from pandas DataFrames; the list of win rate records needs it"):
        R.win_rate_records(leads, period="2026-10")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["ana", "bo", None]), st.sampled_from(["smb", "ent", None]),
                          st.integers(0, 90), st.integers(0, 60), st.booleans(), st.booleans(),
                          st.one_of(st.none(), st.sampled_from([0.0, 10.0, 33.33, 250.0]))),
                min_size=1, max_size=25),
       st.sampled_from([None, "2026-10-17T06:00"]))
def test_rep_records_add_up_on_random_deals(rows, as_of):
    base = pd.Timestamp("2026-08-20")
    df = pd.DataFrame({
        "opportunity_id": [f"O{i}" for i in range(len(rows))], "owner": [r[0] for r in rows],
        "team": [r[1] for r in rows], "created_at": [base + pd.Timedelta(days=r[2], hours=5) for r in rows],
        "close_date": [(base + pd.Timedelta(days=r[2] + r[3])).date() for r in rows],
        "is_closed": [r[4] for r in rows], "is_won": [r[4] and r[5] for r in rows], "amount": [r[6] for r in rows],
        "stage": "proposal", "segment": [{"smb": "mid_market", "ent": "enterprise"}.get(r[1]) for r in rows]})
    assert_reps_add_up(R.rep_performance_records(df, period="2026-10", as_of=as_of),
                       rep_performance(df, period="2026-10", as_of=as_of))
    assert_win_rates_add_up(R.win_rate_records(df, period="2026-10", as_of=as_of),
                            win_rate_by(df, period="2026-10", as_of=as_of))


# ---------------------------------------------------------------------------
# Channel economics
# ---------------------------------------------------------------------------

def test_channel_records_hand_computed():
    r = R.channel_economics_records(company(), period="2026-10")
    assert r.columns.tolist() == R.CHANNEL_RECORD_COLUMNS
    # O6 (won in September) is in no column; O3 (created in September, won 10-12) is A3's first new-business
    # win: its new customer, with A3's starting MRR 150 + 50; O1 is A1's second win (O6 was the first)
    assert r[["opportunity_id", "source", "basis", "created", "pipeline_created", "won", "revenue_won",
              "new_business_won", "new_customer"]].values.tolist() == [
        ["O2", "organic_search", "account", 1, 500.0, 0, 0.0, 0.0, 0],
        ["O1", "paid_search", "lead", 1, 1000.0, 1, 1000.0, 1000.0, 0],
        ["O3", "partner", "opportunity", 0, 0.0, 1, 2000.0, 2000.0, 1],
        ["O4", "referral", "account", 1, 300.0, 1, 300.0, 0.0, 0],
        ["O5", "unattributed", "none", 1, 700.0, 0, 0.0, 0.0, 0]]
    assert r["starting_mrr"].fillna(-1).tolist() == [-1, -1, 200.0, -1, -1]
    assert_channels_add_up(r, channel_economics(company(), period="2026-10"))
    # a cut-off on 10-06: O4 (10-01) and O5 (10-03) created before it; nothing won yet
    early = R.channel_economics_records(company(), period="2026-10", as_of="2026-10-06")
    assert early["opportunity_id"].tolist() == ["O4", "O5"] and early["won"].sum() == 0
    assert_channels_add_up(early, channel_economics(company(), period="2026-10", as_of="2026-10-06"))
    # the deals prepared once (a cached table) give the same table and records, and are dropped after
    from revops_lib.metrics.channels import prepare_deals

    src = Source.from_frames(company())
    with prepare_deals(src, period="2026-10") as deals:
        assert deals.cached
        pd.testing.assert_frame_equal(R.channel_economics_records(src, period="2026-10", deals=deals), r)
        pd.testing.assert_frame_equal(channel_economics(src, period="2026-10", deals=deals),
                                      channel_economics(src, period="2026-10"))
        with pytest.raises(ParameterError, match="prepare_deals"):  # deals of another cut-off
            R.channel_economics_records(src, period="2026-10", as_of="2026-10-06", deals=deals)
    assert not [t for t in src.con.list_tables() if t.startswith("ibis_cache")]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_channel_records_add_up_on_random_companies(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 10_000)))
    frames = random_company(rng, data.draw(st.integers(1, 30)), data.draw(st.integers(1, 25)))
    base, accounts = pd.Timestamp("2026-09-01"), [f"A{i}" for i in range(8)]
    k = data.draw(st.integers(0, 8))
    frames["subscriptions"] = pd.DataFrame({
        "customer_id": rng.choice(np.array(accounts, dtype=object), k), "mrr": rng.integers(1, 40, k) * 12.5,
        "start_date": [(base + pd.Timedelta(days=int(d))).date() for d in rng.integers(0, 70, k)],
        "end_date": [None] * k})
    as_of = data.draw(st.sampled_from([None, "2026-10-17T06:00"]))
    r = R.channel_economics_records(frames, period="2026-10", as_of=as_of)
    assert_channels_add_up(r, channel_economics(frames, period="2026-10", as_of=as_of))
    # the documented order: by source (unattributed last), new customers first, then won deals, largest first
    key = pd.DataFrame({"u": r["source"].eq("unattributed"), "s": r["source"], "n": -r["new_customer"],
                        "w": -r["won"], "a": -r["amount"].fillna(-np.inf), "id": r["opportunity_id"]})
    assert key.apply(tuple, axis=1).is_monotonic_increasing, r[["source", "new_customer", "won", "amount"]]


# ---------------------------------------------------------------------------
# Demo data: every records table adds up; masked sources hash ids and pseudonymise owners and teams
# ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("privacy", ["names", "masked"])
def test_demo_records_add_up_and_follow_the_privacy_mode(demo_dir, privacy):
    src = open_source(demo_dir, privacy=privacy)
    p = "2026-10"
    mv = R.mrr_movement_records(src, period=p)
    assert set(mv["month"]) == {p} and len(mv) > 10
    assert_movements_add_up(mv, mrr_movements(src, period=p))
    wr = R.pipeline_waterfall_records(src, period=p)
    assert_waterfall_adds_up(wr, pipeline_waterfall(src, period=p))
    cr = R.stage_conversion_records(src, period=p)
    assert_conversion_adds_up(cr, stage_conversion(src, period=p))
    sr = R.stage_conversion_records(src, period=p, by="segment")
    assert_conversion_adds_up(sr, stage_conversion(src, period=p, by="segment", include_total=False), "segment",
                              total=False)
    assert sr.drop(columns="segment").equals(cr.drop(columns="source")) and sr["segment"].nunique() >= 3
    # the funnel's one query for both: by source with the segment too, each column dropped in turn
    both = R.stage_conversion_records(src, period=p, also=["segment"])
    assert both.columns.tolist()[:3] == ["lead_id", "source", "segment"]
    pd.testing.assert_frame_equal(both.drop(columns="segment"), cr)
    pd.testing.assert_frame_equal(both.drop(columns="source"), sr)
    rr = R.rep_performance_records(src, period=p)
    assert_reps_add_up(rr, rep_performance(src, period=p))
    rt = R.retention_records(src, period=p)
    assert_retention_adds_up(rt, retention_by(src, period=p))
    assert rt["retained"].sum() > 0 and (rt["retained"] == 0).sum() > 0 and rt["segment"].nunique() >= 3
    wr_seg = R.win_rate_records(src, period=p)
    assert_win_rates_add_up(wr_seg, win_rate_by(src, period=p))
    assert set(wr_seg["opportunity_id"]) == set(rr.loc[rr["outcome"] != "created", "opportunity_id"])
    ch = R.channel_economics_records(src, period=p)
    assert_channels_add_up(ch, channel_economics(src, period=p))
    assert ch["new_customer"].sum() > 0 and ch["starting_mrr"].notna().sum() > 0
    # bounded: the period's leads and deals, never the history
    leads = src.to_pandas("leads")
    created = pd.to_datetime(leads["created_at"], utc=True).dt.tz_localize(None)
    assert cr["lead_id"].nunique() == created.between("2026-10-01", "2026-11-01", inclusive="left").sum()
    assert len(cr) < len(leads) / 5
    assert pd.to_datetime(rr["close_date"]).where(rr["outcome"] != "created").dropna().between(
        "2026-10-01", "2026-10-31").all()
    assert rr[rr["outcome"] == "created"]["created_at"].between("2026-10-01", "2026-11-01").all()
    ids = {"customer_id": pd.concat([mv["customer_id"], ch["account_id"].dropna()]),
           "opportunity_id": pd.concat([wr["opportunity_id"], rr["opportunity_id"], ch["opportunity_id"]]),
           "lead_id": cr["lead_id"]}
    people = pd.concat([wr["owner"], wr["team"], rr["owner"], rr["team"]]).dropna()
    if privacy == "masked":
        for name, col in ids.items():
            assert col.str.fullmatch(r"id-[0-9a-f]{10}").all(), name
        assert people.str.match(r"(Rep|Team) [0-9a-f]{6}$|unassigned$").all()
        # the same pseudonyms as the masked tables show
        assert set(cr["lead_id"]) <= set(leads["lead_id"])
        assert set(rr["opportunity_id"]) <= set(src.to_pandas("opportunities")["opportunity_id"])
        assert set(mv["customer_id"]) <= set(src.to_pandas("subscriptions")["customer_id"])
    else:
        assert not ids["lead_id"].str.startswith("id-").any() and not people.str.startswith("Rep ").any()


# ---------------------------------------------------------------------------
# Publishing: the records CSV beside the table, linked under it
# ---------------------------------------------------------------------------

class _Demo(Section):
    report = "some_report"


def test_ties_of_duplicate_ids_are_broken_by_every_other_column_whatever_the_row_order():
    """Messy data with a repeated id: the rows come back in one order from any engine's order (the bytes of the
    published CSV), text, blanks and numbers among the other columns."""
    df = pd.DataFrame({"id": ["O1", "O1", "O1", "O0"], "owner": ["bo", None, "ana", "cy"],
                       "amount": [5.0, 7.0, np.nan, 1.0], "won": [1, 0, 1, 0]})
    want = R._sorted(df, ["id"], [True])
    assert want["id"].tolist() == ["O0", "O1", "O1", "O1"]
    for seed in range(6):
        shuffled = df.sample(frac=1, random_state=seed).reset_index(drop=True)
        pd.testing.assert_frame_equal(R._sorted(shuffled, ["id"], [True]), want)


def test_records_docstring_examples_run():
    import doctest

    from revops_lib.metrics import channels

    attempted = 0
    for mod in (R, channels):
        result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0
        attempted += result.attempted
    assert attempted >= 20


def test_with_records_publishes_beside_the_table_and_links_it(tmp_path):
    from revops_lib.present.publish import set_output_dir

    table = pd.DataFrame({"step": ["won"], "amount": [10.0]})
    rec = pd.DataFrame({"step": ["won", "won"], "opportunity_id": ["=HYPERLINK(1)", "<b>x</b>"],
                        "amount": [4.004, 5.996]})
    set_output_dir(tmp_path)
    try:
        out = _Demo.table(table, "waterfall", records=rec)
        described = _Demo.with_records(_Demo.table(table), rec, "described", "the deals <behind>")
        linked = _Demo.link_records(_Demo.table(table), "waterfall", len(rec), "by <team>")  # another table's file
    finally:
        set_output_dir(None)
    assert isinstance(out, WithRecords)
    html = out._repr_html_()
    assert html.startswith("<style") or "<table" in html.split("Records behind")[0]  # the table first
    assert ('<p class="revops-records">Records behind this table: <a href="tables/some_report/'
            'waterfall_records.csv">waterfall_records.csv</a> (2 rows).</p>') in html
    assert "Records behind this table (the deals &lt;behind&gt;): <a" in described._repr_html_()
    assert "<b>x</b>" not in html  # records are linked, never shown
    assert repr(out) == "<table; the 2 records behind it in tables/some_report/waterfall_records.csv>"
    written = (tmp_path / "tables" / "waterfall_records.csv").read_text()
    assert written.splitlines() == ["step,opportunity_id,amount", "won,'=HYPERLINK(1),4", "won,<b>x</b>,6"]
    assert (tmp_path / "tables" / "waterfall.csv").is_file()
    assert ('Records behind this table (by &lt;team&gt;): <a href="tables/some_report/waterfall_records.csv">'
            'waterfall_records.csv</a> (2 rows).') in linked._repr_html_()
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == [  # the link wrote nothing
        "described_records.csv", "waterfall.csv", "waterfall_records.csv"]
    # outside a run: nothing written, the link shown all the same
    again = _Demo.with_records(_Demo.table(table), rec, "other")
    assert "other_records.csv" in again._repr_html_() and not (tmp_path / "tables" / "other_records.csv").exists()


@pytest.mark.notebook
@pytest.mark.slow
def test_reports_publish_records_that_add_up_to_their_tables_and_links_that_resolve(demo_reports):
    import re

    period = "2026-10"
    d = demo_reports / period
    expected = {"cohort_retention": ["mrr_movements", "retention_by_segment"],
                "forecast_accuracy": ["pipeline_waterfall", "rep_performance", "win_rate_by_segment"],
                "funnel_conversion": ["stage_conversion", "channel_economics"]}
    # tables whose records are another table's file (a column for each grouping)
    shared = {"funnel_conversion": {"stage_conversion_by_segment": "stage_conversion"}}
    for report, tables in expected.items():
        html = (d / f"{report}.html").read_text()
        links = re.findall(r'Records behind this table[^<]*<a href="([^"]+)"', html)
        linked = tables + list(shared.get(report, {}).values())
        assert sorted(links) == sorted(f"tables/{report}/{t}_records.csv" for t in linked), report
        for link in links:
            assert (d / link).is_file(), link  # relative to the HTML: it resolves
    t = {name: pd.read_csv(d / "tables" / r / f"{name}.csv") for r, names in expected.items() for name in names}
    rec = {name: pd.read_csv(d / "tables" / r / f"{name}_records.csv") for r, names in expected.items()
           for name in names}
    assert rec["mrr_movements"].columns.tolist() == ["month", "customer_id", "segment", "movement", "amount",
                                                     "starting_mrr", "ending_mrr"]
    assert set(rec["mrr_movements"]["month"]) == {period}
    mv = t["mrr_movements"].assign(**{c: 0 for c in LOGOS.values()})  # the CSV has no logo counts
    for m in MOVES:
        mv[LOGOS[m]] = int((rec["mrr_movements"]["movement"] == m).sum())
    assert_movements_add_up(rec["mrr_movements"], mv)
    wr, wf = rec["pipeline_waterfall"], t["pipeline_waterfall"]
    assert wr.columns.tolist() == R.WATERFALL_RECORD_COLUMNS
    got = wr.assign(c=cents(wr["amount"])).groupby("step")["c"].sum()
    assert [got.get(s, 0) for s in wf["step"]] == cents(wf["amount"]).tolist()
    cols = R.CONVERSION_RECORD_COLUMNS
    assert rec["stage_conversion"].columns.tolist() == cols[:2] + ["segment"] + cols[2:]
    assert_conversion_adds_up(rec["stage_conversion"], t["stage_conversion"])
    by_segment = pd.read_csv(d / "tables" / "funnel_conversion" / "stage_conversion_by_segment.csv")
    assert_conversion_adds_up(rec["stage_conversion"], by_segment, "segment", total=False)
    assert not (d / "tables" / "funnel_conversion" / "stage_conversion_by_segment_records.csv").exists()
    assert rec["rep_performance"].columns.tolist() == R.REP_RECORD_COLUMNS
    assert_reps_add_up(rec["rep_performance"], t["rep_performance"])
    ch = rec["channel_economics"]
    assert ch.columns.tolist() == R.CHANNEL_RECORD_COLUMNS and ch["new_customer"].sum() > 0
    assert rec["win_rate_by_segment"].columns.tolist() == R.WIN_RATE_RECORD_COLUMNS
    assert_win_rates_add_up(rec["win_rate_by_segment"], t["win_rate_by_segment"])
    assert rec["retention_by_segment"].columns.tolist() == R.RETENTION_RECORD_COLUMNS
    assert_retention_adds_up(rec["retention_by_segment"], t["retention_by_segment"])
    assert_channels_add_up(ch, t["channel_economics"])


# ---------------------------------------------------------------------------
# PostgreSQL gives the same records as DuckDB
# ---------------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.slow
def test_records_are_the_same_on_postgresql(pg_url, demo_dir):
    from conftest import load_postgres

    names = ["leads", "opportunities", "opportunity_history", "subscriptions"]
    duck = open_source(demo_dir)
    frames = {n: duck.raw(n).to_pandas() for n in names}
    pg_frames = {k: v.assign(**{c: v[c].dt.tz_localize("UTC") if v[c].dt.tz is None else v[c]
                                for c in v.columns if pd.api.types.is_datetime64_any_dtype(v[c])})
                 for k, v in frames.items()}
    pg = open_source(load_postgres(pg_url, pg_frames, "records_portability"))
    local = Source.from_frames(frames)
    for period, as_of in (("2026-10", None), ("2026-Q3", "2026-08-20T12:00")):
        for fn in (R.mrr_movement_records, R.pipeline_waterfall_records, R.stage_conversion_records,
                   R.rep_performance_records, R.channel_economics_records, R.win_rate_records,
                   R.retention_records):
            a, b = fn(pg, period=period, as_of=as_of), fn(local, period=period, as_of=as_of)
            assert len(b) > 0, fn.__name__
            pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=f"{fn.__name__} {period}")
    masked_pg, masked_duck = pg.with_privacy("masked"), local.with_privacy("masked")
    for fn in (R.stage_conversion_records, R.rep_performance_records, R.channel_economics_records,
               R.win_rate_records):
        pd.testing.assert_frame_equal(fn(masked_pg, period="2026-10"), fn(masked_duck, period="2026-10"),
                                      check_dtype=False)


def _empty_and_full_calls():
    from revops_lib.metrics import lead_funnel, stage_time

    return {
        "mrr_movement_records": lambda s, p: R.mrr_movement_records(s, period=p),
        "stage_conversion_records": lambda s, p: R.stage_conversion_records(s, period=p),
        "pipeline_waterfall_records": lambda s, p: R.pipeline_waterfall_records(s, period=p),
        "rep_performance_records": lambda s, p: R.rep_performance_records(s, period=p),
        "channel_economics_records": lambda s, p: R.channel_economics_records(s, period=p),
        "win_rate_records": lambda s, p: R.win_rate_records(s, period=p),
        "retention_records": lambda s, p: R.retention_records(s, period=p),
        "time_in_stage": lambda s, p: stage_time.time_in_stage(s, period=p),
        "stuck_deals": lambda s, p: stage_time.stuck_deals(s, period=p),
        "cohort_trend": lambda s, p: lead_funnel.cohort_trend(s, period=p, cohorts=2),
    }


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::revops_lib.errors.ImmatureWarning")
@pytest.mark.parametrize("call", list(_empty_and_full_calls()))
def test_a_result_without_rows_has_the_dtypes_of_one_with_rows(demo_dir, call):
    """A period before the data gives no rows; its columns keep the dtypes a full result has (ids and labels as
    text, counts as integers, times as times), so an analyst can concatenate periods without the empty one
    turning text into ``object`` and counts into floats. (Empty records had ``object`` ids and a ``float64``
    month; stuck deals had ``object`` everywhere.)"""
    fn = _empty_and_full_calls()[call]
    src = open_source(demo_dir)
    full, none = fn(src, "2026-10"), fn(src, "2019-01")
    assert len(full) and not len(none)
    assert list(none.columns) == list(full.columns)
    assert none.dtypes.astype(str).to_dict() == full.dtypes.astype(str).to_dict()
    assert pd.concat([none, full]).dtypes.astype(str).to_dict() == full.dtypes.astype(str).to_dict()


def test_an_empty_record_frame_has_the_dtypes_of_a_full_one():
    """``_empty`` by hand (the slow sweep over every records function checks it through them): money float64,
    counts int64, times datetime64[us], every other column str — not object."""
    e = R._empty(["customer_id", "mrr", "n", "at", "movement"], money=["mrr"], ints=["n"], times=["at"])
    assert e.empty and list(e.columns) == ["customer_id", "mrr", "n", "at", "movement"]
    assert {c: str(t) for c, t in e.dtypes.items()} == {"customer_id": "str", "mrr": "float64", "n": "int64",
                                                        "at": "datetime64[us]", "movement": "str"}
