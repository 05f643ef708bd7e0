"""Slices (:mod:`revops_lib.slices`): each table kind's rule on hand-made frames, the names and labels,
the parts a slice leaves out, a property test (a metric on the sliced source equals the metric on data
filtered first, in pandas, by an independent implementation of the rules), the runner's ``--slice`` and
``--by`` on the demo company, the command line, and PostgreSQL against DuckDB."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revops_lib import slices
from revops_lib.errors import ParameterError, SourceError
from revops_lib.metrics import deals, lead_funnel, mrr, pipeline
from revops_lib.metrics.targets import targets
from revops_lib.sources import Source, open_source, pseudonym_text

from conftest import load_postgres, write_folder


def ts(*values):
    return pd.to_datetime(list(values))


def day(*values):
    return [None if v is None else dt.date.fromisoformat(v) for v in values]


def frames() -> dict[str, pd.DataFrame]:
    """Five deals in two teams and two segments (O5 has no attributes at all), and every other table."""
    return {
        "opportunities": pd.DataFrame({
            "opportunity_id": ["O1", "O2", "O3", "O4", "O5"],
            "created_at": ts("2026-09-01", "2026-09-02", "2026-09-03", "2026-09-04", "2026-09-05"),
            "close_date": day("2026-10-10", "2026-10-11", "2026-10-12", "2026-11-13", "2026-10-14"),
            "is_closed": [True, True, True, False, True],
            "is_won": [True, False, True, False, True],
            "amount": [100.0, 200.0, 300.0, 400.0, 500.0],
            "account_id": ["A1", "A2", "A3", "A4", "A5"],
            "owner": ["ana", "bo", "ana", "cy", None],
            "team": ["east", "east", "west", "west", None],
            "segment": ["ent", "smb", "ent", "ent", None],
            "source": ["web", "web", "partner", "partner", None],
            "type": ["new_business", "renewal", "new_business", "expansion", None],
            "stage": ["closed_won", "closed_lost", "closed_won", "proposal", "closed_won"],
            "forecast_category": ["closed", "omitted", "closed", "pipeline", "closed"],
            "product": ["core", "core", "suite", "suite", None],
        }),
        "leads": pd.DataFrame({
            "lead_id": ["L1", "L2", "L3", "L4"],
            "created_at": ts("2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"),
            "source": ["web", "web", "partner", "partner"],
            "segment": ["ent", "smb", None, "ent"],
            "mql_at": ts("2026-10-02", None, "2026-10-05", None),
        }),
        "opportunity_history": pd.DataFrame({
            "opportunity_id": ["O1", "O1", "O2", "O3", "O5"],
            "changed_at": ts("2026-09-01", "2026-10-10", "2026-09-02", "2026-09-03", "2026-09-05"),
            "stage": ["qualification", "closed_won", "qualification", "closed_won", "closed_won"],
        }),
        "activities": pd.DataFrame({
            "activity_id": ["X1", "X2", "X3", "X4", "X5", "X6"],
            "occurred_at": ts(*["2026-10-05"] * 6),
            "type": ["meeting"] * 6,
            "owner": ["ana", "bo", "ana", "bo", "ana", "ana"],
            "opportunity_id": ["O1", "O2", None, None, None, "O4"],
            "account_id": ["A1", "A2", "A3", "A2", None, "A4"],
        }),
        "forecast_snapshots": pd.DataFrame({
            "snapshot_date": day(*["2026-10-01"] * 7),
            "forecast_period": ["2026-10"] * 7,
            "scope": ["company", "east", "west", "ana", "bo", "cy", "zed"],
            "category": ["commit"] * 7,
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        }),
        "subscriptions": pd.DataFrame({
            "customer_id": ["C1", "C1", "C2", "C3"],
            "start_date": day("2026-01-01", "2026-03-01", "2026-02-01", "2026-04-01"),
            "mrr": [10.0, 5.0, 20.0, 30.0],
            "subscription_id": ["S1", "S2", "S3", "S4"],
            "product": ["core", "addon", "core", "core"],
            "segment": ["ent", "ent", "smb", None],
        }),
        "transactions": pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C9"],
                                      "occurred_at": ts(*["2026-10-02"] * 4), "amount": [1.0, 2.0, 3.0, 4.0],
                                      "transaction_id": ["T1", "T2", "T3", "T4"]}),
        "support_tickets": pd.DataFrame({"ticket_id": ["K1", "K2"], "created_at": ts("2026-10-02", "2026-10-03"),
                                         "customer_id": ["C1", "C2"]}),
        "reviews": pd.DataFrame({"review_id": ["R1", "R2"], "posted_at": ts("2026-10-02", "2026-10-03"),
                                 "rating": [5, 4], "customer_id": ["C1", "C3"]}),
        "targets": pd.DataFrame({
            "period": ["2026-10"] * 5,
            "metric": ["revenue_won", "revenue_won", "win_rate", "revenue_won", "leads"],
            "target": [100.0, 60.0, 0.3, 40.0, 10.0],
            "segment": [None, "ent", "ent", "smb", None],
        }),
        "marketing_spend": pd.DataFrame({"date": day("2026-10-01"), "channel": ["web"], "spend": [9.0]}),
        "web_traffic": pd.DataFrame({"date": day("2026-10-01"), "source": ["web"], "sessions": [9]}),
        "email_campaigns": pd.DataFrame({"campaign_id": ["E1"], "sent_date": day("2026-10-01"), "delivered": [9],
                                         "opens": [3], "clicks": [1]}),
    }


ID = {"opportunities": "opportunity_id", "leads": "lead_id", "activities": "activity_id",
      "forecast_snapshots": "scope", "subscriptions": "subscription_id", "transactions": "transaction_id",
      "support_tickets": "ticket_id", "reviews": "review_id", "targets": "target"}


def kept(src, name):
    """The ids (history: opportunity ids) of a table of a (sliced) source, sorted."""
    df = src.to_pandas(name)
    col = "opportunity_id" if name == "opportunity_history" else ID[name]
    return sorted(df[col].tolist())


# --------------------------------------------------------------------------- the rule of each table kind

def test_a_segment_slice_filters_direct_tables_and_follows_keys_for_the_others():
    s = slices.apply(frames(), {"segment": "ent"})
    assert kept(s, "opportunities") == ["O1", "O3", "O4"]  # O5 (no segment) never matches
    assert kept(s, "leads") == ["L1", "L4"]
    assert kept(s, "opportunity_history") == ["O1", "O1", "O3"]
    # X1: kept deal; X3: no deal, account A3 of kept O3; X6: kept O4; X4's account A2 is O2's (smb); X5: nothing
    assert kept(s, "activities") == ["X1", "X3", "X6"]
    assert kept(s, "subscriptions") == ["S1", "S2"]
    assert kept(s, "transactions") == ["T1"]  # customers with a kept subscription
    assert kept(s, "support_tickets") == ["K1"]
    assert kept(s, "reviews") == ["R1"]
    # all deals of team west and of owners ana and cy are enterprise; east has O2 (smb), bo too; zed has none;
    # company has O2 and O5
    assert kept(s, "forecast_snapshots") == ["ana", "cy", "west"]
    assert s.not_sliced == {"marketing_spend": "company-wide", "web_traffic": "company-wide",
                            "email_campaigns": "company-wide"}
    assert [s.has(t) for t in ("marketing_spend", "web_traffic", "email_campaigns", "leads")] == [False] * 3 + [True]


def test_the_targets_of_a_segment_act_as_the_totals_of_its_slice():
    src = Source.from_frames(frames())
    assert targets(src, "2026-10") == {"revenue_won": 100.0, "leads": 10.0}
    s = slices.apply(src, {"segment": "ent"})
    t = s.to_pandas("targets")
    assert sorted(t.target) == [0.3, 60.0] and t.segment.isna().all()
    assert targets(s, "2026-10") == {"revenue_won": 60.0, "win_rate": 0.3}  # a rate target too, not the company's


def test_an_owner_slice_filters_activities_by_their_own_owner():
    s = slices.apply(frames(), {"owner": "ana"})
    assert kept(s, "opportunities") == ["O1", "O3"]
    assert kept(s, "opportunity_history") == ["O1", "O1", "O3"]
    assert kept(s, "activities") == ["X1", "X3", "X5", "X6"]  # ana's, with or without a deal
    assert kept(s, "forecast_snapshots") == ["ana"]
    assert s.not_sliced["leads"] == "no `owner` column"
    assert s.not_sliced["subscriptions"] == "no `owner` column"
    assert s.not_sliced["transactions"] == "its rows are per customer, not per owner"
    assert s.not_sliced["targets"] == "no `owner` column"  # the contract's targets have no owner column


def test_a_team_slice_uses_the_targets_team_column_when_the_table_has_one():
    f = frames()
    f["targets"]["team"] = [None, None, None, "west", "west"]
    s = slices.apply(f, {"team": "west"})
    assert kept(s, "opportunities") == ["O3", "O4"]
    assert kept(s, "activities") == ["X3", "X6"]  # through the deals (activities have no team)
    assert kept(s, "forecast_snapshots") == ["cy", "west"]  # ana also sells for east
    t = s.to_pandas("targets")
    assert sorted(t.target) == [10.0, 40.0] and t.team.isna().all()
    assert t.segment.tolist().count("smb") == 1  # only the slice's own columns become null


@pytest.mark.parametrize("spec,expected,not_sliced", [
    ({"source": "partner"}, {"opportunities": ["O3", "O4"], "leads": ["L3", "L4"], "opportunity_history": ["O3"],
                             "activities": ["X3", "X6"], "forecast_snapshots": ["cy", "west"]},
     {"subscriptions": "no `source` column", "targets": "no `source` column"}),
    ({"type": "new_business"}, {"opportunities": ["O1", "O3"], "activities": ["X1", "X3"],
                                "forecast_snapshots": ["ana"]},  # both of ana's deals are new business
     {"leads": "no `type` column", "subscriptions": "no `type` column"}),
    ({"product": "core"}, {"opportunities": ["O1", "O2"], "subscriptions": ["S1", "S3", "S4"],
                           "forecast_snapshots": ["bo", "east"]},
     {"transactions": "its rows are per customer, not per product", "leads": "no `product` column",
      "reviews": "its rows are per customer, not per product"}),
    ({"segment": "ent", "owner": "ana"}, {"opportunities": ["O1", "O3"], "activities": ["X1", "X3"],
                                          "forecast_snapshots": ["ana"]},  # X5: no deal, no account; X6: cy's deal
     {"leads": "no `owner` column", "subscriptions": "no `owner` column"}),
    ({"segment": "none-such"}, {"opportunities": [], "leads": [], "activities": [], "subscriptions": [],
                                "transactions": [], "forecast_snapshots": [], "targets": []}, {}),
])
def test_other_slice_columns_and_several_slices_anded(spec, expected, not_sliced):
    s = slices.apply(frames(), spec)
    for name, ids in expected.items():
        assert kept(s, name) == ids, name
    for name, why in not_sliced.items():
        assert s.not_sliced[name] == why
        assert not s.has(name)


def test_a_slice_that_covers_every_deal_keeps_the_company_forecast_and_changes_nothing():
    f = frames()
    f["opportunities"]["segment"] = "ent"
    s = slices.apply(f, {"segment": "ent"})
    assert kept(s, "forecast_snapshots") == ["ana", "bo", "company", "cy", "east", "west"]
    base = Source.from_frames(f)
    for name in ("opportunities", "opportunity_history"):
        pd.testing.assert_frame_equal(s.to_pandas(name).sort_values(list(f[name].columns[:2])).reset_index(drop=True),
                                      base.to_pandas(name))
    assert kept(s, "activities") == ["X1", "X2", "X3", "X4", "X6"]  # X5 has no deal and no account: in no slice


def test_a_table_whose_parent_cannot_be_sliced_is_not_sliced_and_an_absent_table_stays_absent():
    f = frames()
    f["opportunities"] = f["opportunities"].drop(columns=["team"])
    del f["reviews"]
    s = slices.apply(f, {"team": "west"})
    assert s.not_sliced["opportunities"] == "no `team` column"
    assert s.not_sliced["opportunity_history"] == "its rows follow `opportunities`, which is not sliced"
    assert s.not_sliced["forecast_snapshots"] == "its rows follow `opportunities`, which is not sliced"
    assert "reviews" not in s.not_sliced and "reviews" in s.absent
    f = frames()
    del f["opportunities"]
    s = slices.apply(f, {"segment": "ent"})
    assert s.not_sliced["opportunity_history"] == "its rows follow `opportunities`, which is absent"
    assert kept(s, "leads") == ["L1", "L4"]


def test_a_slice_of_a_csv_folder_types_values_before_comparing(tmp_path):
    """CSV columns are text: ids and values are typed as the contract says before they are compared."""
    f = frames()
    f["opportunities"]["segment"] = ["ent", "smb", "ent", "ent", None]
    s = slices.apply(open_source(write_folder(f, tmp_path, fmt="csv")), {"segment": "ent"})
    assert kept(s, "opportunities") == ["O1", "O3", "O4"]
    assert kept(s, "activities") == ["X1", "X3", "X6"]
    assert kept(s, "transactions") == ["T1"]
    assert kept(s, "forecast_snapshots") == ["ana", "cy", "west"]
    assert s.raw("opportunities").schema() == open_source(tmp_path).raw("opportunities").schema()


def test_values_are_data_never_sql():
    f = frames()
    evil = "ent' OR '1'='1"
    f["opportunities"].loc[0, "segment"] = evil
    s = slices.apply(f, {"segment": evil})
    assert kept(s, "opportunities") == ["O1"]
    assert kept(slices.apply(f, {"segment": "ent' OR '1'='1' --"}), "opportunities") == []


def test_masked_privacy_filters_on_the_real_names_and_shows_pseudonyms():
    s = slices.apply(open_source(frames(), privacy="masked"), {"owner": "ana"})
    rep = pseudonym_text("ana", "Rep ")
    assert s.to_pandas("opportunities").owner.tolist() == [rep, rep]
    assert s.label == f"owner = {rep}" and "ana" not in s.description and "ana" not in s.name
    again = slices.apply(frames(), {"owner": "ana"}).with_privacy("masked")
    assert again.to_pandas("opportunities").owner.tolist() == [rep, rep]
    assert slices.label({"segment": "ent"}, "masked") == "segment = ent"


def test_a_slice_of_a_slice_ands_them_and_refuses_two_values_of_one_column():
    s = slices.apply(slices.apply(frames(), {"segment": "ent"}), {"owner": "ana"})
    assert s.slice == (("segment", "ent"), ("owner", "ana"))
    assert kept(s, "opportunities") == ["O1", "O3"]
    with pytest.raises(ParameterError, match="given twice"):
        s.sliced({"segment": "smb"})
    assert slices.apply(frames(), {}) is not None and not hasattr(slices.apply(frames(), None), "slice")


def test_distinct_values_come_from_the_direct_tables_in_one_sorted_list():
    assert slices.distinct_values(frames(), "segment") == ["ent", "smb"]
    assert slices.distinct_values(frames(), "source") == ["partner", "web"]
    assert slices.distinct_values(frames(), "owner") == ["ana", "bo", "cy"]  # not from activities
    assert slices.distinct_values(slices.apply(frames(), {"segment": "ent"}), "owner") == ["ana", "cy"]
    with pytest.raises(ParameterError, match="slice columns: segment, team, owner, source, product, type"):
        slices.distinct_values(frames(), "stage")


# --------------------------------------------------------------------------- parsing, names, labels

@pytest.mark.parametrize("spec,expected", [
    ("segment=enterprise", (("segment", "enterprise"),)),
    (["owner=Ana Lima", "segment=smb"], (("segment", "smb"), ("owner", "Ana Lima"))),
    ({"type": "new_business", "team": "a=b"}, (("team", "a=b"), ("type", "new_business"))),
    (["source= paid search"], (("source", " paid search"),)),  # a value is kept as given
    ({}, ()), (None, ()), ("", ()), ([], ()),
])
def test_parse_accepts_mappings_and_column_value_texts(spec, expected):
    assert slices.parse(spec) == expected


@pytest.mark.parametrize("spec,match", [
    ("segment", "takes COLUMN=VALUE such as segment=enterprise, not 'segment'"),
    ("stage=won", ("`--slice` column 'stage' is not a slice column; slice columns: segment, team, owner, source, "
                   "product, type")),
    ("segment=", "empty value"),
    (["segment=a", "segment=b"], "given twice"),
    ({"segment": ["a"]}, "give one text value"),
    ({"segment": True}, "give one text value"),
    ({"segment": "x" * 201}, "longer than 200"),
    (42, "is a mapping"),
])
def test_parse_refuses_what_is_not_a_slice(spec, match):
    with pytest.raises(ParameterError, match=match.replace("(", r"\(").replace(")", r"\)")):
        slices.parse(spec)


def test_names_are_safe_file_names_and_labels_read_as_conditions():
    assert slices.slice_name({"segment": "Mid Market"}) == "segment-mid-market"
    assert slices.slice_name({"owner": "Zoë O'Neil", "segment": "ent"}) == "segment-ent_owner-zoe-o-neil"
    assert slices.slice_name({"team": "../../etc"}) == "team-etc"
    weird = slices.slice_name({"team": "???"})
    assert weird.startswith("team-v") and len(weird) == len("team-v") + 10
    assert len(slices.slice_name({"team": "x" * 200})) == len("team-") + 60
    assert slices.label({"owner": "ana", "segment": "ent"}) == "segment = ent and owner = ana"


def test_by_values_that_share_a_folder_name_are_an_error():
    from revops_lib.runner.slicing import slice_sets

    f = frames()
    f["opportunities"]["segment"] = ["Ent", "ent", "ent", "smb", None]
    with pytest.raises(ParameterError, match="would share the report folder `segment-ent`"):
        slice_sets(Source.from_frames(f), (), "segment")
    with pytest.raises(SourceError, match="no value of `segment`"):
        slice_sets(Source.from_frames(f), (("team", "nowhere"),), "segment")
    sets = slice_sets(Source.from_frames(frames()), (("team", "west"),), "owner")
    assert [(s.name, s.label, s.index_href) for s in sets] == [
        ("team-west_owner-ana", "team = west and owner = ana", "../../index.html"),
        ("team-west_owner-cy", "team = west and owner = cy", "../../index.html")]


# --------------------------------------------------------------------------- what the reports say

def test_parts_that_need_a_table_the_slice_left_out_say_not_sliced_rather_than_absent():
    from revops_lib.present.sections.funnel import FunnelReport
    from revops_lib.present.sections.scorecard import Scorecard

    s = slices.apply(frames(), {"team": "west"})
    plan = Scorecard.plan(s)
    assert plan["revenue"] == "table `marketing_spend`: not sliced, company-wide"
    assert plan["pacing"] == "table `targets`: not sliced, no `team` column"
    assert "`leads`: no `team` column" in plan["marketing"] and "`web_traffic`: company-wide" in plan["marketing"]
    assert FunnelReport.plan(s)["funnel"] == "table `leads`: not sliced, no `team` column"
    sc = Scorecard.__new__(Scorecard)
    sc.left_out = {"revenue": plan["revenue"], "customer_success": "table `reviews`"}
    assert sc.scope_sentence() == (
        "Left out of this slice: the revenue-efficiency KPIs (needs table `marketing_spend`: not sliced, "
        "company-wide). Left out for lack of data: the customer-success KPIs (needs table `reviews`).")
    assert slices.not_sliced_sentence(slices.apply(frames(), {"segment": "ent"})) == (
        "Not sliced, so left out: `marketing_spend`, `web_traffic` and `email_campaigns` (company-wide).")
    assert slices.not_sliced_sentence(Source.from_frames(frames())) == ""
    assert Scorecard.plan(Source.from_frames(frames())) == {}


def test_the_slice_travels_to_a_report_through_its_context():
    from revops_lib.present.context import check_value, context

    ctx = context(period="2026-10", source=frames(), slices={"segment": "ent"})
    assert ctx.slice == "segment = ent" and ctx.source.slice == (("segment", "ent"),)
    assert context(period="2026-10", source=frames()).slice == ""
    with pytest.raises(ParameterError, match="not a slice column"):
        check_value("slices", {"stage": "won"})


# --------------------------------------------------------------------------- property: slice = filter first

def filtered_first(f: dict, column: str, value) -> dict:
    """The rules of revops_lib.slices for one condition, written again in pandas (the tests' independent side):
    direct tables on the column, deal history by kept deal, customers' payments by kept subscription."""
    out = {}
    direct = {"leads": ("segment", "source"), "opportunities": ("segment", "team", "owner", "source"),
              "subscriptions": ("segment",)}
    for name, df in f.items():
        if column in direct.get(name, ()):
            out[name] = df[df[column].eq(value).fillna(False).astype(bool)].reset_index(drop=True)
    if "opportunities" in out and "opportunity_history" in f:
        h = f["opportunity_history"]
        out["opportunity_history"] = h[h.opportunity_id.isin(out["opportunities"].opportunity_id)].reset_index(
            drop=True)
    if "subscriptions" in out and column == "segment" and "transactions" in f:
        t = f["transactions"]
        out["transactions"] = t[t.customer_id.isin(out["subscriptions"].customer_id)].reset_index(drop=True)
    return out


VALUES = ["a", "b", None]
MOMENT = st.integers(0, 90).map(lambda d: pd.Timestamp("2026-08-15") + pd.Timedelta(days=d))


@st.composite
def sources(draw):
    n_leads = draw(st.integers(0, 12))
    leads = []
    for i in range(n_leads):
        created = draw(MOMENT)
        steps = draw(st.lists(st.integers(0, 20), min_size=4, max_size=4))
        reached = draw(st.integers(0, 4))
        times = []
        t = created
        for k in range(4):
            t = t + pd.Timedelta(days=steps[k])
            times.append(t if k < reached else pd.NaT)
        leads.append({"lead_id": f"L{i}", "created_at": created, "source": draw(st.sampled_from(["x", "y"])),
                      "segment": draw(st.sampled_from(VALUES)), "mql_at": times[0], "sql_at": times[1],
                      "opportunity_at": times[2], "customer_at": times[3]})
    n_opps = draw(st.integers(1, 10))
    opps, hist = [], []
    for i in range(n_opps):
        created = draw(MOMENT)
        closed = draw(st.booleans())
        close = (created + pd.Timedelta(days=draw(st.integers(0, 60)))).date()
        amount = float(draw(st.integers(1, 50)) * 100)
        opps.append({"opportunity_id": f"O{i}", "created_at": created, "close_date": close, "is_closed": closed,
                     "is_won": closed and draw(st.booleans()), "amount": amount,
                     "owner": draw(st.sampled_from(["ana", "bo"])), "team": draw(st.sampled_from(VALUES)),
                     "segment": draw(st.sampled_from(VALUES))})
        for k in range(draw(st.integers(0, 3))):
            hist.append({"opportunity_id": f"O{i}", "changed_at": created + pd.Timedelta(days=7 * k),
                         "stage": draw(st.sampled_from(["qualification", "proposal"])),
                         "amount": amount + 100 * k, "close_date": close + dt.timedelta(days=10 * k)})
    subs = []
    for i in range(draw(st.integers(0, 8))):
        start = draw(MOMENT).date() - dt.timedelta(days=200)
        end = draw(st.one_of(st.none(), st.integers(30, 400).map(lambda d, s=start: s + dt.timedelta(days=d))))
        subs.append({"customer_id": f"C{draw(st.integers(0, 4))}", "start_date": start, "end_date": end,
                     "mrr": float(draw(st.integers(1, 9)) * 10), "segment": draw(st.sampled_from(VALUES))})
    f = {"leads": pd.DataFrame(leads, columns=["lead_id", "created_at", "source", "segment", "mql_at", "sql_at",
                                               "opportunity_at", "customer_at"]),
         "opportunities": pd.DataFrame(opps),
         "opportunity_history": pd.DataFrame(hist, columns=["opportunity_id", "changed_at", "stage", "amount",
                                                            "close_date"]),
         "subscriptions": pd.DataFrame(subs, columns=["customer_id", "start_date", "end_date", "mrr", "segment"])}
    for df in f.values():  # all-null text columns keep a text type
        for c in df.columns:
            if df[c].isna().all() and df[c].dtype == object:
                df[c] = df[c].astype("string")
    return f


def typed_frames(f):
    """Frames with the columns of the contract typed as the kit types them (so pandas compares like with like)."""
    return {n: Source.from_frames({n: df}).to_pandas(n) for n, df in f.items()}


def same(metric, sliced, filtered):
    """The metric gives the same frame on both sources, or fails the same way on both."""
    try:
        want = metric(filtered)
    except Exception as exc:  # noqa: BLE001 — e.g. no subscription at all: both must refuse alike
        with pytest.raises(type(exc)):
            metric(sliced)
        return
    pd.testing.assert_frame_equal(metric(sliced), want)


@pytest.mark.slow  # about 5 s per example (four metrics, twice each)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(f=sources(), value=st.sampled_from(["a", "b"]))
def test_metrics_of_a_slice_equal_the_metrics_of_data_filtered_first(f, value):
    """Lead funnel (segment), win rate (team), MRR movements (segment) and the pipeline waterfall (owner)."""
    tf = typed_frames(f)
    src = Source.from_frames(f)
    seg = slices.apply(src, {"segment": value})
    pre = Source.from_frames(filtered_first(tf, "segment", value))
    same(lambda s: lead_funnel.stage_conversion(s, period="2026-10"), seg, pre)
    same(lambda s: mrr.mrr_movements(s, period="2026-10", months=3), seg, pre)
    team = slices.apply(src, {"team": value})
    pre_team = Source.from_frames(filtered_first(tf, "team", value))
    for weight in ("count", "amount"):
        a = deals.win_rate(team, period="2026-10", weight=weight)
        b = deals.win_rate(pre_team, period="2026-10", weight=weight)
        assert (a == b) or (pd.isna(a) and pd.isna(b))
    owner = "ana" if value == "a" else "bo"
    by_owner = slices.apply(src, {"owner": owner})
    pre_owner = Source.from_frames(filtered_first(tf, "owner", owner))
    same(lambda s: pipeline.pipeline_waterfall(s, period="2026-10"), by_owner, pre_owner)


def test_win_rates_of_slices_by_hand():
    """Closed in 2026-10: O1 won (east, ent), O2 lost (east, smb), O3 won (west, ent), O5 won (no attributes)."""
    src = Source.from_frames(frames())
    assert deals.win_rate(src, period="2026-10") == 0.75
    assert deals.win_rate(slices.apply(src, {"segment": "ent"}), period="2026-10") == 1.0
    assert deals.win_rate(slices.apply(src, {"team": "east"}), period="2026-10") == 0.5
    assert deals.win_rate(slices.apply(src, {"team": "east"}), period="2026-10", weight="amount") == 100 / 300


# --------------------------------------------------------------------------- the runner and the command line

def revops(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "revops_lib.cli", *map(str, args)], capture_output=True, text=True,
                          check=False)


def test_report_help_explains_slice_and_by():
    r = revops("report", "--help")
    assert r.returncode == 0
    for words in ("--slice COLUMN=VALUE", "--by COLUMN", "segment, team, owner, source, product, type", "ANDed"):
        assert words in " ".join(r.stdout.split()), words


@pytest.mark.parametrize("args,message", [
    (["--slice", "segment"], "`--slice` takes COLUMN=VALUE such as segment=enterprise, not 'segment'"),
    (["--slice", "stage=won"], ("`--slice` column 'stage' is not a slice column; slice columns: segment, team, "
                                "owner, source, product, type")),
    (["--by", "stage"], "`--by` column 'stage' is not a slice column"),
    (["--slice", "segment=a", "--by", "segment"], "name the same column"),
    (["-p", "slices", "{segment: a}"], "Parameter `slices` is set by the runner: use `--slice`"),
])
def test_bad_slices_stop_the_command_before_anything_is_written(tmp_path, args, message):
    out = tmp_path / "reports"
    r = revops("report", "--period", "2026-10", "--source", tmp_path / "nowhere", "--out", out, *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert not out.exists()


@pytest.mark.notebook
@pytest.mark.browser
@pytest.mark.slow
def test_the_pdf_pack_of_each_slice_is_printed_in_its_folder_and_names_it(demo_dir, tmp_path):
    """``--by segment --pdf``: one pack per slice built, in the slice's folder, its cover naming the slice (read back
    from Chromium's PDF with pypdf); no pack of the whole source, which this run did not build."""
    import shutil

    from pypdf import PdfReader

    from revops_lib.errors import RevOpsError
    from revops_lib.runner.pdf import build_pack

    from conftest import need

    need(any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")),
         "Chromium is not installed (`make system-deps` installs it)")
    out = tmp_path / "reports"
    r = revops("report", "--period", "2026-09", "--source", demo_dir, "--out", out, "--notebooks", "data_quality",
               "--by", "segment", "--pdf")
    assert r.returncode == 0, r.stderr
    for name, value in (("segment-enterprise", "enterprise"), ("segment-mid-market", "mid_market"),
                        ("segment-smb", "smb")):
        pdf = out / "2026-09" / name / "2026-09-pack.pdf"
        assert f"PDF pack → {pdf}" in r.stderr, r.stderr
        pages = [" ".join(page.extract_text().split()) for page in PdfReader(str(pdf)).pages]
        assert f"RevOps review — 2026-09 — segment = {value}" in pages[0], pages[0][:200]
        assert any(f"segment = {value}" in text for text in pages[1:])  # the report's header names the slice
    assert not (out / "2026-09" / "2026-09-pack.pdf").exists()
    with pytest.raises(RevOpsError, match="not the folder name of a slice"):
        build_pack(out, "2026-09", slice_name="../segment-smb")
    with pytest.raises(RevOpsError, match="No built report for 2026-09/segment-none"):
        build_pack(out, "2026-09", slice_name="segment-none")


def test_slices_in_a_parameters_file_are_refused(tmp_path):
    from revops_lib.periods import parse_period
    from revops_lib.runner import build

    (tmp_path / "default.yaml").write_text("slices: {segment: enterprise}\n")
    with pytest.raises(ParameterError, match=r"Parameter `slices` \(in parameters/default.yaml\) is set by the runner"):
        build.task_parameters("data_quality", parse_period("2026-10"), {}, parameters_dir=tmp_path, source="s")


def prefiltered_demo(demo_dir, out, segment):
    """The demo company filtered to one segment in pandas (the rules, for the tables the funnel reads)."""
    out.mkdir()
    leads = pd.read_parquet(demo_dir / "leads.parquet")
    opps = pd.read_parquet(demo_dir / "opportunities.parquet")
    hist = pd.read_parquet(demo_dir / "opportunity_history.parquet")
    opps = opps[opps.segment == segment]
    leads[leads.segment == segment].to_parquet(out / "leads.parquet", index=False)
    opps.to_parquet(out / "opportunities.parquet", index=False)
    hist[hist.opportunity_id.isin(opps.opportunity_id)].to_parquet(out / "opportunity_history.parquet", index=False)
    return out


@pytest.mark.notebook
@pytest.mark.slow
def test_report_of_a_slice_and_by_segment_on_the_demo_company(demo_dir, tmp_path):
    """``--slice`` then ``--by``: paths, manifests, index grouping, header, and the sliced CSV equals the report
    of data filtered first."""
    from revops_lib.runner import build

    out = tmp_path / "reports"
    said = []
    status = build.run(period="2026-09", source=demo_dir, out=out, notebooks=["funnel_conversion"], jobs=2,
                       slices=["segment=enterprise"], progress=said.append)
    assert status == 0, said
    d = out / "2026-09" / "segment-enterprise"
    assert (d / "funnel_conversion.html").is_file() and (d / "tables" / "funnel_conversion").is_dir()
    assert not (out / "2026-09" / "funnel_conversion.html").exists()  # the whole source's place is untouched
    m = json.loads((d / "manifest.json").read_text())["funnel_conversion"]
    assert (m["status"], m["slice"], m["slice_name"]) == ("ok", "segment = enterprise", "segment-enterprise")
    page = (d / "funnel_conversion.html").read_text()
    assert 'slice <b class="revops-slice">segment = enterprise</b>' in page
    assert "<title>Funnel conversion — 2026-09 — segment = enterprise</title>" in page
    assert 'href="../../index.html"' in page
    assert "Not sliced, so left out: <code>marketing_spend</code>" in page

    pre = prefiltered_demo(demo_dir, tmp_path / "pre", "enterprise")
    assert build.run(period="2026-09", source=pre, out=tmp_path / "plain", notebooks=["funnel_conversion"],
                     jobs=1, progress=said.append) == 0
    for table in ("stage_conversion.csv", "deal_stage_conversion.csv"):
        assert (d / "tables" / "funnel_conversion" / table).read_bytes() == (
            tmp_path / "plain" / "2026-09" / "tables" / "funnel_conversion" / table).read_bytes(), table

    said.clear()
    assert build.run(period="2026-09", source=demo_dir, out=out, notebooks=["funnel_conversion"], jobs=2,
                     by="segment", progress=said.append) == 0, said
    assert "By segment: 3 set(s) of reports (segment-enterprise, segment-mid-market, segment-smb)" in said
    assert "  skip   2026-09/segment-enterprise funnel_conversion" in " ".join(said)  # same slice, same key
    for name in ("segment-enterprise", "segment-mid-market", "segment-smb"):
        assert (out / "2026-09" / name / "funnel_conversion.html").is_file(), name
    index = (out / "index.html").read_text()
    rows = [index.index(f"Slice <b>segment = {v}</b>") for v in ("enterprise", "mid_market", "smb")]
    assert rows == sorted(rows)
    assert 'href="2026-09/segment-mid-market/funnel_conversion.html"' in index
    assert 'href="2026-09/segment-smb/tables/funnel_conversion/"' in index


# --------------------------------------------------------------------------- PostgreSQL

@pytest.mark.postgres
def test_postgres_gives_the_same_sliced_tables_as_duckdb(pg_url):
    f = frames()
    url = load_postgres(pg_url, f, "slices_test")
    pg, duck = open_source(url), Source.from_frames(f)
    for spec in ({"segment": "ent"}, {"owner": "ana"}, {"team": "west", "type": "expansion"}):
        a, b = slices.apply(pg, spec), slices.apply(duck, spec)
        assert a.names == b.names and a.not_sliced == b.not_sliced
        for name in a.names:
            x, y = a.to_pandas(name), b.to_pandas(name)
            x = x.sort_values(list(x.columns)).reset_index(drop=True)
            y = y[list(x.columns)].sort_values(list(x.columns)).reset_index(drop=True)
            pd.testing.assert_frame_equal(x, y, check_dtype=False, obj=f"{spec} {name}")
        assert slices.distinct_values(a, "owner") == slices.distinct_values(b, "owner")


# --------------------------------------------------------------------------- hostile values, leftovers

EVIL = '<script>alert("x")</script>&'


def test_a_hostile_slice_value_is_escaped_in_the_header_the_title_and_the_index(tmp_path):
    import nbformat

    from revops_lib.runner.export import render_html
    from revops_lib.runner.index import write_index
    from revops_lib.runner.manifest import _record

    label = slices.label({"segment": EVIL})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Page")])
    page = render_html(nb, tmp_path / "page.html", meta={
        "title": "Funnel", "period": "2026-10", "slice": label, "index_href": "../../index.html",
        "slice_note": "Not sliced, so left out: `marketing_spend` (company-wide <b>)."}).read_text()
    assert "<script>alert" not in page
    assert 'slice <b class="revops-slice">segment = &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;</b>' in page
    assert '<title>Funnel — 2026-10 — segment = &lt;script&gt;alert("x")&lt;/script&gt;&amp;</title>' in page
    assert "<code>marketing_spend</code> (company-wide &lt;b&gt;)" in page
    name = slices.slice_name({"segment": EVIL})
    assert name == "segment-script-alert-x-script"
    folder = tmp_path / "reports" / "2026-10" / name
    folder.mkdir(parents=True)
    (folder / "alpha.html").write_text("ok")
    _record(folder, "alpha", {"status": "ok", "seconds": 1.0, "headlines": [], "title": "Alpha", "slice": label,
                              "slice_name": name})
    index = write_index(tmp_path / "reports").read_text()
    assert "<script>alert" not in index
    assert "Slice <b>segment = &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;</b>" in index
    assert f'href="2026-10/{name}/alpha.html"' in index


def test_a_killed_runs_leftovers_in_a_slice_folder_are_swept(tmp_path):
    from revops_lib.runner.runfiles import sweep_output

    folder = tmp_path / "2026-10" / "segment-enterprise"
    (folder / ".staging-alpha-x").mkdir(parents=True)
    (folder / ".alpha.x.partial.ipynb").write_text("{}")
    (folder / "tables" / ".old-alpha").mkdir(parents=True)
    (folder / "alpha.html").write_text("good")
    other = tmp_path / "2026-10" / "my-notes"  # not a slice folder: left alone
    (other / ".staging-keep").mkdir(parents=True)
    removed = sweep_output(tmp_path)
    assert sorted(p.name for p in removed) == [".alpha.x.partial.ipynb", ".old-alpha", ".staging-alpha-x"]
    assert (folder / "alpha.html").read_text() == "good" and (other / ".staging-keep").is_dir()
