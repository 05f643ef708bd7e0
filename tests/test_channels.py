"""Channel economics (metrics/channels.py) on a hand-computed company, against the scorecard's blended figures,
with absent tables, as a property (the sources add up to ``all``) and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revops_lib.errors import ParameterError
from revops_lib.metrics import channels
from revops_lib.metrics.common import run
from revops_lib.metrics.scorecard import scorecard
from revops_lib.sources import Source

from conftest import valid_frames


def ts(*v):
    return pd.to_datetime(list(v))


def days(*v):
    return [None if x is None else dt.date.fromisoformat(x) for x in v]


def company() -> dict[str, pd.DataFrame]:
    """Six leads, six deals, spend on five channels, three subscriptions; the expected October 2026 figures are
    written out in the tests."""
    leads = pd.DataFrame({
        "lead_id": ["L1", "L2", "L3", "L4", "L5", "L6"],
        "created_at": ts("2026-10-02", "2026-10-05", "2026-09-20", "2026-10-07", "2026-08-01", "2026-09-01"),
        "source": ["paid_search", "paid_search", "organic_search", None, "referral", "events"],
        "mql_at": ts("2026-10-03", None, "2026-10-02", "2026-10-08", None, None),
        "sql_at": ts("2026-10-05", None, None, None, None, None),
        "opportunity_at": ts("2026-10-06", None, None, None, None, None),
        "customer_at": ts(None, None, None, None, None, None),
        "account_id": ["A1", None, "A2", None, "A3", "A3"],
        "opportunity_id": ["O1", None, None, None, None, None],
    })
    opps = pd.DataFrame({
        "opportunity_id": ["O1", "O2", "O3", "O4", "O5", "O6"],
        "created_at": ts("2026-10-06", "2026-10-10", "2026-09-15", "2026-10-01", "2026-10-03", "2026-08-01"),
        "close_date": days("2026-10-20", "2026-12-01", "2026-10-12", "2026-10-25", "2026-10-30", "2026-09-10"),
        "is_closed": [True, False, True, True, True, True],
        "is_won": [True, False, True, True, False, True],
        "amount": [1000.0, 500.0, 2000.0, 300.0, 700.0, 100.0],
        "account_id": ["A1", "A2", "A3", "A3", "A9", "A1"],
        "source": [None, None, "partner", None, None, "paid_search"],
        "type": ["new_business", "new_business", "new_business", "expansion", "new_business", "new_business"],
    })
    spend = pd.DataFrame({
        "date": days("2026-10-01", "2026-10-15", "2026-10-01", "2026-10-02", "2026-09-30", "2026-10-03"),
        "channel": ["paid_search", "paid_search", "partner", "sales", "content", "content"],
        "spend": [100.0, 200.0, 400.0, 1000.0, 50.0, 60.0],
    })
    subs = pd.DataFrame({
        "customer_id": ["A3", "A3", "A3"], "start_date": days("2026-10-12", "2026-10-12", "2026-10-25"),
        "mrr": [150.0, 50.0, 25.0], "end_date": days(None, None, None), "subscription_id": ["S1", "S2", "S3"],
    })
    return {"leads": leads, "opportunities": opps, "marketing_spend": spend, "subscriptions": subs}


def table(frames=None, **kw) -> pd.DataFrame:
    return channels.channel_economics(frames if frames is not None else company(), period="2026-10", **kw)


def test_each_source_row_is_counted_as_written_out_by_hand():
    got = table().set_index("source")
    assert got.index.tolist() == ["organic_search", "paid_search", "partner", "referral", "unattributed",
                                  "unattributed:content", "unattributed:sales", "all"]
    cols = ["leads", "mqls", "sqls", "opportunities", "pipeline_created", "revenue_won", "new_customers", "spend"]
    expected = pd.DataFrame([
        # leads: L1, L2 (paid), L4 (no source); MQL entries: L1, L3, L4; SQL: L1
        # deals: O1 via its lead (paid), O2 via its account's first lead (organic), O4 via account A3's first
        # lead (referral, not the later events lead), O5 traceable to nothing; O3 carries its own source
        ("organic_search", 0, 1, 0, 1, 500.0, 0.0, 0, np.nan),
        ("paid_search", 2, 1, 1, 1, 1000.0, 1000.0, 0, 300.0),  # A1's first win was O6 in September
        ("partner", 0, 0, 0, 0, 0.0, 2000.0, 1, 400.0),
        ("referral", 0, 0, 0, 1, 300.0, 300.0, 0, np.nan),
        ("unattributed", 1, 1, 0, 1, 700.0, 0.0, 0, np.nan),
        ("unattributed:content", 0, 0, 0, 0, 0.0, 0.0, 0, 60.0),  # September's 50 is out of the period
        ("unattributed:sales", 0, 0, 0, 0, 0.0, 0.0, 0, 1000.0),
        ("all", 3, 3, 1, 4, 2500.0, 3300.0, 1, 1760.0),
    ], columns=["source"] + cols).set_index("source")
    pd.testing.assert_frame_equal(got[cols], expected, check_dtype=False)
    paid, partner, total = got.loc["paid_search"], got.loc["partner"], got.loc["all"]
    assert paid["cost_per_lead"] == 150.0 and np.isnan(paid["cac"]) and paid["roas"] == pytest.approx(1000 / 300)
    # A3's first subscriptions start together: starting MRR 150 + 50 (the later add-on is not starting MRR)
    assert partner["cac"] == 400.0 and partner["roas"] == 5.0 and partner["payback_months"] == pytest.approx(2.5)
    assert total["cost_per_lead"] == pytest.approx(1760 / 3) and total["cac"] == 1760.0
    assert total["roas"] == pytest.approx(3000 / 1760) and total["payback_months"] == pytest.approx(1760 / 160)
    # a source no spend channel maps to has no spend (not zero), so no cost per lead; spend-only rows: no ROAS
    assert np.isnan(got.loc["organic_search", "cost_per_lead"]) and np.isnan(got.loc["unattributed:sales", "roas"])
    assert list(table().columns[:13]) == channels.CHANNEL_COLUMNS
    at = table().attrs  # what the report's finding names: the period, its cut-off, the margin used
    assert (at["period"], at["as_of"], at["gross_margin"]) == ("2026-10", pd.Timestamp("2026-11-01"), 0.8)


def test_the_channel_map_attributes_spend_and_an_empty_target_keeps_a_channel_on_its_own_row():
    got = table(channel_map={"content": "organic_search", "partner": ""}).set_index("source")
    assert got.loc["organic_search", "spend"] == 60.0 and got.loc["organic_search", "roas"] == 0.0
    assert "unattributed:content" not in got.index and got.loc["unattributed:partner", "spend"] == 400.0
    assert np.isnan(got.loc["partner", "spend"]) and got.loc["all", "spend"] == 1760.0
    assert table().attrs["channels"] == {"content": "unattributed:content", "paid_search": "paid_search",
                                         "partner": "partner", "sales": "unattributed:sales"}
    with pytest.raises(ParameterError, match="`channel_map`"):
        table(channel_map=["content"])


def test_attribution_names_the_link_that_gave_each_source():
    a = run(channels.attributed_opportunities(Source.from_frames(company())))
    got = dict(zip(a["opportunity_id"], zip(a["attributed_source"], a["basis"])))
    assert got == {"O1": ("paid_search", "lead"), "O2": ("organic_search", "account"), "O3": ("partner", "opportunity"),
                   "O4": ("referral", "account"), "O5": ("unattributed", "none"), "O6": ("paid_search", "opportunity")}
    # without leads only an opportunity's own source counts; a lone opportunities frame is that table
    opps = company()["opportunities"]
    for data in ({"opportunities": opps}, opps):
        b = run(channels.attributed_opportunities(data))
        assert dict(zip(b["opportunity_id"], zip(b["attributed_source"], b["basis"]))) == {
            "O1": ("unattributed", "none"), "O2": ("unattributed", "none"), "O3": ("partner", "opportunity"),
            "O4": ("unattributed", "none"), "O5": ("unattributed", "none"), "O6": ("paid_search", "opportunity")}


def test_deals_prepared_for_a_period_on_an_engine_that_does_not_cache(monkeypatch):
    """Without a cached table the prepared deals still carry their period and cut-off (the check that they are
    the deals of the table asked for); a period is required."""
    src = Source.from_frames(company())
    want = channels.channel_economics(src, period="2026-10")
    monkeypatch.setattr(channels, "caches", lambda *a, **k: False)
    with channels.prepare_deals(src, period="2026-10") as deals:
        assert not deals.cached and (deals.period, deals.as_of) == ("2026-10", pd.Timestamp("2026-11-01"))
        pd.testing.assert_frame_equal(channels.channel_economics(src, period="2026-10", deals=deals), want)
    with pytest.raises(ParameterError, match="`period` is required"):
        channels.prepare_deals(src, period="", as_of="2026-11-01")


def test_a_deal_closed_on_the_periods_first_day_is_the_periods_one_on_the_next_periods_first_day_is_not():
    f = company()
    o = f["opportunities"]
    o.loc[o["opportunity_id"] == "O3", "close_date"] = dt.date(2026, 10, 1)  # partner: A3's first win, won
    o.loc[o["opportunity_id"] == "O4", "close_date"] = dt.date(2026, 11, 1)  # referral, won
    got, base = table(f).set_index("source"), table().set_index("source")
    for col, value in (("revenue_won", 2000.0), ("new_customers", 1)):
        assert got.loc["partner", col] == base.loc["partner", col] == value, col
    assert got.loc["referral", "revenue_won"] == 0.0 and base.loc["referral", "revenue_won"] == 300.0


def test_a_new_customers_starting_mrr_is_of_subscriptions_started_before_the_cut_off():
    """A3 (O3, a new customer of October) starts paying 200 on 10-12; had it started on 11-05, after the
    period, October knows no starting MRR for it."""
    def start_mrr(frames):
        d = run(channels.attributed_deals(frames, period="2026-10")).set_index("opportunity_id")
        return d.loc["O3", "starting_mrr"]

    f = company()
    assert start_mrr(f) == 200.0
    f["subscriptions"]["start_date"] = [dt.date(2026, 11, 5)] * 3
    assert np.isnan(start_mrr(f))


def test_the_all_row_is_the_scorecards_blended_figures():
    for frames in (company(), valid_frames()):
        all_row = table(frames).set_index("source").loc["all"]
        card = scorecard(frames, period="2026-10", breakdowns=False, comparisons=False).set_index("kpi")["value"]
        for kpi, col in (("leads", "leads"), ("mqls", "mqls"), ("sqls", "sqls"), ("opportunities_created",
                         "opportunities"), ("revenue_won", "revenue_won"), ("new_customers", "new_customers"),
                         ("cost_per_lead", "cost_per_lead"), ("cac", "cac")):
            assert all_row[col] == pytest.approx(card[kpi], nan_ok=True), kpi


def test_absent_tables_leave_their_columns_blank():
    f = company()
    no_spend = table({k: v for k, v in f.items() if k != "marketing_spend"})
    assert no_spend[["spend", "cost_per_lead", "cac", "roas", "payback_months"]].isna().all().all()
    assert not any(s.startswith("unattributed:") for s in no_spend["source"])
    assert no_spend.set_index("source").loc["all", "revenue_won"] == 3300.0
    no_subs = table({k: v for k, v in f.items() if k != "subscriptions"})
    assert no_subs["payback_months"].isna().all() and no_subs.set_index("source").loc["partner", "cac"] == 400.0
    only_leads = table({"leads": f["leads"]}).set_index("source")
    assert only_leads[["opportunities", "revenue_won", "new_customers", "spend"]].isna().all().all()
    assert only_leads.loc["all", "leads"] == 3
    # deals without leads: a deal without its own source cannot be traced
    only_opps = table({"opportunities": f["opportunities"]}).set_index("source")
    assert only_opps.loc["unattributed", "opportunities"] == 4 and only_opps["leads"].isna().all()


def test_a_cut_off_inside_the_period_counts_only_what_happened_before_it():
    got = channels.channel_economics(company(), period="2026-10", as_of="2026-10-06").set_index("source")
    assert got.loc["all", "leads"] == 2 and got.loc["all", "opportunities"] == 2  # O4, O5 by 10-03
    assert got.loc["all", "spend"] == 1760.0 - 200.0 and got.loc["all", "revenue_won"] == 0.0


def random_company(rng, n: int, m: int) -> dict[str, pd.DataFrame]:
    """``n`` random leads (some without a source, an account or a deal), ``m`` deals around October 2026 (some
    without a source, an amount or a type; accounts shared) and spend on four channels."""
    srcs = np.array(["a", "b", "c", None], dtype=object)
    base = pd.Timestamp("2026-09-15")
    created = base + pd.to_timedelta(rng.integers(0, 45 * 24, n), unit="h")
    accounts = np.array([f"A{i}" for i in range(8)] + [None], dtype=object)
    leads = pd.DataFrame({"lead_id": [f"L{i}" for i in range(n)], "created_at": created,
                          "source": rng.choice(srcs, n),
                          "mql_at": created + pd.to_timedelta(np.where(rng.random(n) < 0.5, 30, np.nan), unit="h"),
                          "account_id": rng.choice(accounts, n),
                          "opportunity_id": rng.choice(np.array([f"O{i}" for i in range(m)] + [None], dtype=object), n)})
    closed = rng.random(m) < 0.6
    opps = pd.DataFrame({
        "opportunity_id": [f"O{i}" for i in range(m)],
        "created_at": base + pd.to_timedelta(rng.integers(0, 45 * 24, m), unit="h"),
        "close_date": [(base + pd.Timedelta(days=int(d))).date() for d in rng.integers(-20, 60, m)],
        "is_closed": closed, "is_won": closed & (rng.random(m) < 0.5),
        "amount": np.where(rng.random(m) < 0.1, np.nan, rng.integers(1, 50, m) * 33.33),
        "account_id": rng.choice(accounts[:-1], m),
        "source": rng.choice(np.array(["a", "d", None, None], dtype=object), m),
        "type": rng.choice(np.array(["new_business", "new_business", "expansion", None], dtype=object), m)})
    spend = pd.DataFrame({"date": [(base + pd.Timedelta(days=int(d))).date() for d in rng.integers(0, 45, 12)],
                          "channel": rng.choice(np.array(["a", "d", "x", "y"], dtype=object), 12),
                          "spend": rng.integers(1, 100, 12) * 10.0}).drop_duplicates(["date", "channel"])
    return {"leads": leads, "opportunities": opps, "marketing_spend": spend}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_sources_add_up_to_the_all_row(data):
    """Property: every count and amount of the ``all`` row is the sum of the source rows (each lead, deal and
    spend row counts in exactly one), on random companies."""
    rng = np.random.default_rng(data.draw(st.integers(0, 10_000)))
    frames = random_company(rng, data.draw(st.integers(1, 40)), data.draw(st.integers(1, 25)))
    got = channels.channel_economics(frames, period="2026-10", channel_map={"x": "b"})
    rows, total = got[got["source"] != "all"], got[got["source"] == "all"].iloc[0]
    for c in ("leads", "mqls", "sqls", "opportunities", "pipeline_created", "revenue_won", "new_customers", "spend",
              "new_business_won"):
        assert rows[c].sum() == pytest.approx(total[c]), c
    assert (got[["cost_per_lead", "cac", "roas"]].dropna() >= 0).all().all()


@pytest.mark.postgres
def test_channel_economics_is_the_same_on_postgresql(pg_url):
    from revops_lib.sources import open_source

    from conftest import load_postgres

    f = company()
    pg_frames = {k: v.assign(**{c: v[c].dt.tz_localize("UTC") for c in v.columns
                                if pd.api.types.is_datetime64_any_dtype(v[c])}) for k, v in f.items()}
    pg = open_source(load_postgres(pg_url, pg_frames, "channels_portability"))
    for kw in ({}, {"channel_map": {"content": "organic_search"}}, {"as_of": "2026-10-06"}):
        pd.testing.assert_frame_equal(channels.channel_economics(pg, period="2026-10", **kw),
                                      channels.channel_economics(Source.from_frames(f), period="2026-10", **kw),
                                      check_dtype=False)


def test_the_attribution_is_one_query_and_leaves_no_table_behind(monkeypatch):
    """The deal columns come from one query over the attributed deals (two window passes over the leads, once):
    no cached table to create or drop."""
    import ibis
    import ibis.expr.types.relations as rel

    caches, attributed = [], []
    original_cache, original_run = rel.Table.cache, channels.run
    monkeypatch.setattr(rel.Table, "cache", lambda self: caches.append(1) or original_cache(self))
    monkeypatch.setattr(channels, "run", lambda e: attributed.append("attributed_source" in ibis.to_sql(e))
                        or original_run(e))
    src = Source.from_frames(company())
    got = channels.channel_economics(src, period="2026-10")
    assert sum(attributed) == 1 and not caches and got.set_index("source").loc["all", "opportunities"] > 0
    assert not [t for t in src.con.list_tables() if t.startswith("ibis_cache")]


def test_a_period_without_any_activity_has_an_all_row_of_zeros_where_the_tables_are_present():
    """No lead, deal or spend in the period: the ``all`` row counts 0 (not blank) for the tables the source has,
    and stays blank for those it lacks (a random company found the blank zeros)."""
    f = company()
    got = channels.channel_economics(f, period="2025-01").set_index("source")
    assert got.index.tolist() == ["all"]
    row = got.loc["all"]
    for c in ("leads", "mqls", "sqls", "opportunities", "new_customers"):
        assert row[c] == 0, c
    assert row["pipeline_created"] == 0.0 and row["revenue_won"] == 0.0
    assert np.isnan(row["cac"]) and np.isnan(row["cost_per_lead"])  # 0 / 0: blank
    only_leads = channels.channel_economics({"leads": f["leads"]}, period="2025-01").set_index("source")
    assert only_leads.loc["all", "leads"] == 0 and np.isnan(only_leads.loc["all", "opportunities"])
