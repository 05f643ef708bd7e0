"""Importers: vendor exports mapped to the contract (revops_lib.importers, `revops import`).

Fixtures under tests/fixtures/<preset>/ are hand-made exports with the vendors' real field names. Expected
values are worked out by hand from the fixture rows (see the comments), never taken from the code under test.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

from revops_lib.errors import OutputError
from revops_lib.importers import MappingError, import_folder, load_mapping, open_mapped, preset_names
from revops_lib.importers.engine import apply_mapping
from revops_lib.outdirs import IMPORT_MARKER
from revops_lib.validation import validate

FIXTURES = Path(__file__).parent / "fixtures"


def _frame(mapped, table, key):
    return mapped.source.to_pandas(table).set_index(key)


def _hashes(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_presets_ship_and_load():
    assert {"salesforce", "hubspot", "stripe"} <= set(preset_names())
    for name in ("salesforce", "hubspot", "stripe"):
        m = load_mapping(name)
        assert m.tables and m.files == [f"presets/{name}.yaml"]


# --------------------------------------------------------------------------- salesforce

@pytest.fixture(scope="module")
def sf():
    return open_mapped(FIXTURES / "salesforce", preset="salesforce")


def test_salesforce_tables_and_key_columns(sf):
    assert sf.mapped == {"leads": "Lead", "opportunities": "Opportunity", "opportunity_history": "OpportunityHistory",
                         "activities": "Event"}
    opps = _frame(sf, "opportunities", "opportunity_id")
    assert len(opps) == 13  # 14 rows, one IsDeleted
    assert "0065g00000A0013" not in opps.index
    o = opps.loc["0065g00000A0001"]
    assert (o.created_at, o.close_date, bool(o.is_closed), bool(o.is_won), o.amount) == (
        pd.Timestamp("2026-01-05 09:00"), pd.Timestamp("2026-03-10"), True, True, 12000.0)
    assert (o.type, o.stage, o.forecast_category, o.source, o.owner) == (
        "new_business", "closed_won", "closed", "organic_search", "0055g00000U0001")
    assert opps.loc["0065g00000A0003", "type"] == "expansion"
    assert opps.loc["0065g00000A0007", "type"] == "renewal"
    assert opps.loc["0065g00000A0012", "forecast_category"] == "commit"
    assert opps.loc["0065g00000A0009", "type"] == "Partner Resale"  # unmapped: kept, reported
    assert opps.loc["0065g00000A0014", "amount"] == 0.0  # empty Amount

    leads = _frame(sf, "leads", "lead_id")
    assert len(leads) == 30
    a = leads.loc["00Q5g00000L0001"]  # converted to 0001 (created 2026-01-05 09:00, won 2026-03-10)
    assert a.opportunity_at == pd.Timestamp("2026-01-05 09:00")
    assert a.customer_at == pd.Timestamp("2026-03-10")
    assert a.opportunity_id == "0065g00000A0001" and a.account_id == "0015g00000B0001"
    assert pd.isna(leads.loc["00Q5g00000L0002", "customer_at"])  # its deal was lost
    assert pd.isna(leads.loc["00Q5g00000L0003", "opportunity_at"])  # never converted
    assert leads.loc["00Q5g00000L0012", "source"] == "unattributed"  # blank LeadSource
    assert leads.loc["00Q5g00000L0004", "source"] == "partner"

    hist = sf.source.to_pandas("opportunity_history")
    reopened = hist[hist.opportunity_id == "0065g00000A0004"].sort_values("changed_at")
    assert list(reopened.stage) == ["prospecting", "closed_lost", "negotiation", "closed_won"]
    assert list(reopened.forecast_category) == ["pipeline", "omitted", "commit", "closed"]
    pushed = hist[hist.opportunity_id == "0065g00000A0006"].sort_values("changed_at")
    assert list(pushed.close_date) == [pd.Timestamp(d) for d in ("2026-03-31", "2026-03-31", "2026-04-30")]


def test_salesforce_unmapped_values_are_reported_with_counts(sf):
    got = {(u.table, u.source, u.value): u.rows for u in sf.unmapped()}
    assert got == {("leads", "Lead.LeadSource", "LinkedIn"): 2,
                   ("opportunities", "Opportunity.Type", "Partner Resale"): 1, ("activities", "Event.Type", "Demo"): 1}


def test_salesforce_win_rate_after_import(sf):
    from revops_lib.metrics.deals import win_rate

    # closed in March 2026: 0001 won 12000, 0002 lost 8000, 0003 won 5000, 0004 won 20000 (reopened),
    # 0010 lost 3000; 0013 (won) is deleted. 3 won of 5; 37000 of 48000.
    opps = sf.source.table("opportunities")
    assert win_rate(opps, period="2026-03", as_of="2026-04-01") == pytest.approx(3 / 5)
    assert win_rate(opps, period="2026-03", as_of="2026-04-01", weight="amount") == pytest.approx(37000 / 48000)


def test_a_user_mapping_extends_the_preset_with_custom_fields_and_values(tmp_path):
    mine = tmp_path / "my_sfdc.yaml"
    mine.write_text(
        "extends: salesforce\n"
        "tables:\n  leads:\n    columns:\n      mql_at: MQL_Date__c\n"
        "values:\n  lead_source:\n    LinkedIn: paid_social\n  deal_type:\n    Partner Resale: new_business\n"
        "  activity_type:\n    Demo: first_meeting\n")
    m = open_mapped(FIXTURES / "salesforce", mapping=mine)
    assert m.unmapped() == []
    leads = _frame(m, "leads", "lead_id")
    assert leads.loc["00Q5g00000L0004", "mql_at"] == pd.Timestamp("2026-01-10 15:30")
    assert leads.loc["00Q5g00000L0009", "source"] == "paid_social"
    assert pd.isna(leads.loc["00Q5g00000L0003", "mql_at"])
    acts = _frame(m, "activities", "activity_id")
    assert acts.loc["00U5g00000E0010", "type"] == "first_meeting"
    assert m.mapping.files == ["presets/salesforce.yaml", str(mine)]


# --------------------------------------------------------------------------- hubspot

@pytest.fixture(scope="module")
def hs():
    return open_mapped(FIXTURES / "hubspot", preset="hubspot")


def test_hubspot_tables_and_key_columns(hs):
    opps = _frame(hs, "opportunities", "opportunity_id")
    assert len(opps) == 12
    d6 = opps.loc["9000000006"]  # hs_is_closed / hs_is_closed_won empty: from the stage's settings
    assert (bool(d6.is_closed), bool(d6.is_won), d6.stage) == (True, False, "closed_lost")
    d7 = opps.loc["9000000007"]  # open, no close date
    assert pd.isna(d7.close_date) and not d7.is_closed and d7.forecast_category == "pipeline"
    assert opps.loc["9000000008", "forecast_category"] == "commit"
    assert opps.loc["9000000003", "type"] == "expansion"
    assert opps.loc["9000000001", "close_date"] == pd.Timestamp("2026-03-05")
    leads = _frame(hs, "leads", "lead_id")
    assert len(leads) == 30
    c4 = leads.loc["51000004"]  # created 2026-01-11 04:00; MQL +3 d, SQL +8 d, opportunity +15 d, customer +40 d
    assert (c4.created_at, c4.mql_at, c4.sql_at, c4.opportunity_at, c4.customer_at) == (
        pd.Timestamp("2026-01-11 04:00"), pd.Timestamp("2026-01-14 04:00"), pd.Timestamp("2026-01-19 04:00"),
        pd.Timestamp("2026-01-26 04:00"), pd.Timestamp("2026-02-20 04:00"))
    assert c4.source == "paid_social"
    assert leads.loc["51000012", "source"] == "unattributed"
    hist = hs.source.to_pandas("opportunity_history")
    d5 = hist[hist.opportunity_id == "9000000005"].sort_values("changed_at")  # lost in February, reopened, won
    assert list(d5.stage) == ["appointment_scheduled", "closed_lost", "decision_maker_bought_in", "closed_won"]
    assert list(d5.changed_at) == [pd.Timestamp(x) for x in ("2026-01-05 11:00", "2026-02-10 10:00",
                                                             "2026-03-01 10:00", "2026-03-18 17:00")]
    # one row per filled hs_date_entered_* value: deals 1-12 have 4, 2, 2, 3, 4, 2, 2, 2, 0, 2, 2, 2
    assert len(hist) == 27


def test_hubspot_unmapped_values_and_missing_columns(hs):
    got = {(u.source, u.value): (u.column, u.rows) for u in hs.unmapped()}
    assert got == {("contacts.hs_analytics_source", "PODCAST"): ("source", 2),
                   ("deals.dealstage", "12345678"): ("is_closed, is_won, stage, forecast_category", 1),
                   ("deals.dealtype", "partnerbusiness"): ("type", 1)}
    assert ("opportunities", "source", "hs_analytics_source") in hs.missing  # deals.csv has no such column


def test_hubspot_win_rate_after_import(hs):
    from revops_lib.metrics.deals import win_rate

    # closed in March 2026: deals 1 (won), 2 (lost), 3 (won), 4 (lost), 5 (won after a loss in February), 6 (lost)
    assert win_rate(hs.source.table("opportunities"), period="2026-03", as_of="2026-04-01") == pytest.approx(3 / 6)


def test_naive_times_are_read_in_the_mapping_time_zone(tmp_path):
    mine = tmp_path / "hs_ny.yaml"
    mine.write_text("extends: hubspot\ntimezone: America/New_York\n")
    m = open_mapped(FIXTURES / "hubspot", mapping=mine)
    opps = _frame(m, "opportunities", "opportunity_id")
    assert opps.loc["9000000001", "created_at"] == pd.Timestamp("2026-01-10 14:00")  # 09:00 EST = 14:00 UTC
    assert opps.loc["9000000007", "created_at"] == pd.Timestamp("2026-03-02 14:00")  # EST until 8 March


# --------------------------------------------------------------------------- stripe

@pytest.fixture(scope="module")
def st():
    return open_mapped(FIXTURES / "stripe", preset="stripe")


def test_stripe_subscriptions_and_transactions(st):
    subs = _frame(st, "subscriptions", "subscription_id")
    assert len(subs) == 15  # 16 rows, one incomplete_expired
    assert subs.loc["sub_1Pa002", "mrr"] == 100.0  # 1200 a year
    assert subs.loc["sub_1Pa003", "mrr"] == 297.0  # 99 × 3 seats (upgrade from sub_1Pa004)
    assert subs.loc["sub_1Pa009", "mrr"] == 398.0  # 2388 a year × 2
    assert subs.loc["sub_1Pa010", "mrr"] == 130.0  # 30 a week × 52 / 12
    assert subs.loc["sub_1Pa008", "start_date"] == pd.Timestamp("2026-04-03")  # trial: MRR from the trial's end
    assert subs.loc["sub_1Pa004", "end_date"] == pd.Timestamp("2026-01-10")
    assert pd.isna(subs.loc["sub_1Pa001", "end_date"])
    tx = _frame(st, "transactions", "transaction_id")
    assert len(tx) == 22  # 24 invoices: one open, one void
    assert tx.loc["in_1Qb0010", "amount"] == 0.0  # 199.00 refunded in full
    assert tx.loc["in_1Qb0013", "amount"] == 4756.0  # 4776.00 less a 20.00 refund
    assert tx.loc["in_1Qb0014", "amount"] == 30.0  # its refund failed
    assert tx.loc["in_1Qb0001", "occurred_at"] == pd.Timestamp("2026-01-03 10:05")  # Unix seconds


def test_stripe_mrr_of_a_month_after_import(st):
    from revops_lib.metrics.mrr import mrr_movements

    # active on 2026-03-31: 49 + 100 + 297 + 99 + 398 + 130 + 199 (past due) + 49 (ends 10 April) + 199 (starts
    # 31 March) + 198 (2 × 99 after a trial) = 1718; not: ended 4, 5, 7; trial 8 (from 3 April); 15 (April)
    mv = mrr_movements(st.source, period="2026-03", as_of="2026-04-01")
    assert mv.set_index("month").loc["2026-03", "ending_mrr"] == pytest.approx(1718.0)


def test_stripe_payments_of_a_month(st):
    tx = st.source.to_pandas("transactions")
    march = tx[(tx.occurred_at >= "2026-03-01") & (tx.occurred_at < "2026-04-01")]
    # 49 + 297 + 0 (refunded) + 99 + 4756 + 5 × 30 + 49 + 198 = 5598; J's invoice is open, K's void
    assert (len(march), round(march.amount.sum(), 2)) == (12, 5598.0)


def test_mrr_derivation_with_interval_count_and_cents():
    import ibis

    raw = ibis.memtable(pd.DataFrame({
        "id": ["s1", "s2", "s3"], "customer": ["c1", "c2", "c3"], "start_date": ["1767225600"] * 3,
        "unit_amount": ["27000", "1000", "500"], "interval": ["month", "day", "fortnight"],
        "interval_count": ["3", "1", "1"], "quantity": ["1", "2", ""]}))
    m = load_mapping("stripe")
    m.tables = {"subscriptions": {"from": "sub", "columns": {
        "subscription_id": "id", "customer_id": "customer", "start_date": "start_date",
        "mrr": {"derive": "mrr", "amount": {"column": "unit_amount", "scale": 0.01}, "quantity": "quantity",
                "interval": "interval", "interval_count": "interval_count"}}}}
    got = apply_mapping(m, {"sub": raw})
    subs = got.source.to_pandas("subscriptions").set_index("subscription_id")
    assert subs.loc["s1", "mrr"] == 90.0  # 270.00 every 3 months
    assert subs.loc["s2", "mrr"] == pytest.approx(round(10.0 * 2 * 365 / 12, 2))  # 10.00 a day × 2
    assert pd.isna(subs.loc["s3", "mrr"])  # unknown interval: no MRR, reported
    assert subs.loc["s1", "start_date"] == pd.Timestamp("2026-01-01")
    assert [(u.value, u.rows) for u in got.unmapped()] == [("fortnight", 1)]


def test_several_currencies_need_a_rate_table(tmp_path):
    src = tmp_path / "stripe"
    shutil.copytree(FIXTURES / "stripe", src)
    subs = pd.read_csv(src / "subscriptions.csv", dtype=str)
    subs.loc[subs.id == "sub_1Pa001", "Currency"] = "eur"
    subs.to_csv(src / "subscriptions.csv", index=False)
    with pytest.raises(MappingError) as err:
        open_mapped(src, preset="stripe")
    msg = str(err.value)
    assert "`subscriptions`" in msg and "subscriptions.Currency" in msg
    assert "USD 14 rows" in msg and "EUR 1 rows (e.g. sub_1Pa001)" in msg and "rate" in msg
    (src / "rates.csv").write_text("currency,rate\nEUR,1.10\n")
    mine = tmp_path / "fx.yaml"
    mine.write_text("extends: stripe\ncurrency: {to: USD, rates: rates}\n")
    m = open_mapped(src, mapping=mine)
    subs = _frame(m, "subscriptions", "subscription_id")
    assert subs.loc["sub_1Pa001", "mrr"] == pytest.approx(53.9)  # 49 EUR × 1.10
    assert subs.loc["sub_1Pa002", "mrr"] == 100.0


# --------------------------------------------------------------------------- bad mappings

@pytest.mark.parametrize("text, needles", [
    ("extends: salesforce\nvalues:\n  deal_type:\n    Upsell: upsell\n",
     ["key `values.deal_type.Upsell`", "'upsell'", "opportunities.type", "new_business, expansion, renewal"]),
    ("extends: salesforce\ntables:\n  deals:\n    from: Opportunity\n    columns: {opportunity_id: Id}\n",
     ["key `tables.deals`", "unknown contract table", "opportunities"]),
    ("extends: salesforce\ntables:\n  opportunities:\n    columns:\n      stage_name: StageName\n",
     ["key `tables.opportunities.columns.stage_name`", "forecast_category"]),
    ("extends: salesforsce\n", ["key `extends`", "unknown preset 'salesforsce'", "hubspot, salesforce, stripe"]),
    ("extends: hubspot\ntimezone: Mars/Olympus\n", ["key `timezone`", "Mars/Olympus", "IANA"]),
    ("extends: hubspot\nvalues:\n  stages:\n    closedwon: {stage: won, closed: true, won: yes-ish}\n",
     ["key `values.stages.closedwon.won`", "'yes-ish'", "true, false"]),
    ("extends: hubspot\ntables:\n  opportunities:\n    columns:\n      stage: {column: dealstage, map: stagez}\n",
     ["key `tables.opportunities.columns.stage.map`", "names no value map", "stages"]),
    ("tables:\n  leads:\n    from: contacts\n    columns: {lead_id: id}\n",
     ["key `tables.leads.columns`", "`created_at`", "`source`", "required"]),
    ("extends: stripe\nfrobnicate: 1\n", ["unknown key `frobnicate`", "extends, timezone, tables"]),
])
def test_bad_mappings_name_the_file_the_key_and_the_allowed_values(tmp_path, text, needles):
    f = tmp_path / "mine.yaml"
    f.write_text(text)
    with pytest.raises(MappingError) as err:
        load_mapping(mapping=f)
    msg = str(err.value)
    assert "mine.yaml" in msg, msg
    for n in needles:
        assert n in msg, (n, msg)


# --------------------------------------------------------------------------- revops import

def test_import_writes_parquet_validates_and_never_touches_inputs(tmp_path, capsys):
    from revops_lib.cli import main

    before = _hashes(FIXTURES / "salesforce")
    out = tmp_path / "crm"
    assert main(["import", "--preset", "salesforce", "--from", str(FIXTURES / "salesforce"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert _hashes(FIXTURES / "salesforce") == before
    assert sorted(p.name for p in out.iterdir()) == [IMPORT_MARKER, "activities.parquet", "leads.parquet",
                                                     "opportunities.parquet", "opportunity_history.parquet"]
    assert "opportunities" in text and "← Opportunity" in text and "13 rows" in text
    assert "leads.source ← Lead.LeadSource = 'LinkedIn': 2 rows" in text
    assert "Input files not used by the mapping: Task" in text
    assert "funnel_conversion: leads, opportunities, opportunity_history" in text
    assert "0 errors" in text
    assert validate(str(out)).ok
    assert not list(tmp_path.glob(".*partial"))
    import pyarrow.parquet as pq  # the columns the mapping makes, no all-null optional ones (no empty "segment" part)

    assert pq.read_schema(out / "leads.parquet").names == ["lead_id", "created_at", "source", "opportunity_at",
                                                           "customer_at", "account_id", "opportunity_id"]


@pytest.mark.parametrize("preset", ["salesforce", "hubspot", "stripe"])
def test_each_preset_imports_into_a_valid_folder(tmp_path, preset):
    before = _hashes(FIXTURES / preset)
    result = import_folder(FIXTURES / preset, tmp_path / "data" / "out", preset=preset)  # data/ made on the way
    assert _hashes(FIXTURES / preset) == before
    assert result.out == tmp_path / "data" / "out" and (result.out / IMPORT_MARKER).is_file()
    check = validate(str(result.out))
    assert check.errors == [], check.format()
    assert result.feeds()


def test_output_folder_is_replaced_only_when_an_earlier_import_made_it(tmp_path):
    out = tmp_path / "crm"
    out.mkdir()
    (out / "notes.xlsx").write_text("mine")
    with pytest.raises(OutputError, match="not made by `revops import`"):
        import_folder(FIXTURES / "hubspot", out, preset="hubspot")
    assert [p.name for p in out.iterdir()] == ["notes.xlsx"]
    (out / "notes.xlsx").unlink()
    import_folder(FIXTURES / "salesforce", out, preset="salesforce")  # empty: fine
    import_folder(FIXTURES / "hubspot", out, preset="hubspot")  # an earlier import: replaced as a whole
    assert sorted(p.name for p in out.iterdir()) == [IMPORT_MARKER, "leads.parquet", "opportunities.parquet",
                                                     "opportunity_history.parquet"]
    with pytest.raises(OutputError, match="input folder"):
        import_folder(FIXTURES / "hubspot", FIXTURES / "hubspot" / "out", preset="hubspot")
    assert not (FIXTURES / "hubspot" / "out").exists()


def test_cli_import_help_and_errors(tmp_path, capsys):
    from revops_lib.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["import", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--preset" in text and "--mapping" in text and ".revops-import" in text and "docs/mappings.md" in text
    assert main(["import", "--preset", "nope", "--from", str(FIXTURES / "stripe"), "--out", str(tmp_path / "o")]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
