"""Warehouse presets: the tables Fivetran lands, mapped on the fly (revops_lib.importers.live, `--preset`).

The landed fixture is derived from the hand-made export fixtures of tests/fixtures/ (test_importers.py): the same
records under Fivetran's table and column names (github.com/fivetran/dbt_*_source macros: Salesforce fields in
snake_case, HubSpot properties as property_<name>, Stripe objects split into subscription_history,
subscription_item, price, product, invoice, refund) with typed booleans, timestamps and dates — plus rows that
must be dropped: a `_fivetran_deleted` lead, contact and subscription item, an inactive history-mode version of an
opportunity and of a subscription, a deleted deal with its stage history, a test-mode subscription and a deleted
invoice. So the contract tables the CSV import gives (checked by hand in test_importers.py) are the expected ones.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from revops_lib.errors import SourceError
from revops_lib.importers import MappingError, load_mappings, open_mapped, open_mapped_source, open_source

FIXTURES = Path(__file__).parent / "fixtures"
SYNCED = pd.Timestamp("2026-04-06 03:00", tz="UTC")


# --------------------------------------------------------------------------- the landed fixture

def _csv(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return df.map(lambda v: None if v == "" else v).astype(object)


def _ts(s):
    return pd.to_datetime(s, utc=True)


def _date(s):
    return pd.Series([None if pd.isna(v) else dt.date.fromisoformat(v[:10]) for v in s], index=s.index, dtype=object)


def _bool(s):
    return pd.Series([None if pd.isna(v) else v == "true" for v in s], index=s.index, dtype="boolean")


def _int(s):
    return pd.to_numeric(s).astype("Int64")


def _snake(name: str) -> str:
    """A Salesforce API name as Fivetran writes it: CamelCase → camel_case, MQL_Date__c → mql_date_c."""
    return re.sub(r"_+", "_", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)).lower()


def _salesforce() -> dict[str, pd.DataFrame]:
    out = {}
    for obj in ("Lead", "Opportunity", "OpportunityHistory", "Event", "Task"):
        df = _csv(FIXTURES / "salesforce" / f"{obj}.csv")
        for c in df.columns:
            if c in ("CreatedDate", "StartDateTime", "EndDateTime", "MQL_Date__c"):
                df[c] = _ts(df[c])
            elif c in ("CloseDate", "ConvertedDate", "ActivityDate"):
                df[c] = _date(df[c])
            elif c.startswith("Is"):
                df[c] = _bool(df[c])
            elif c == "Amount":
                df[c] = pd.to_numeric(df[c])
        df.columns = [_snake(c) for c in df.columns]
        df["_fivetran_synced"] = SYNCED
        out[_snake(obj)] = df
    lead = out["lead"]
    lead["_fivetran_deleted"] = False
    gone = lead.iloc[[0]].assign(id="00Q5g00000L0099", _fivetran_deleted=True)  # deleted in Salesforce for good
    out["lead"] = pd.concat([lead, gone], ignore_index=True)
    opp = out["opportunity"]
    opp["_fivetran_active"] = True
    old = opp.iloc[[0]].assign(stage_name="Prospecting", is_closed=False, is_won=False, amount=10000.0,
                               forecast_category_name="Pipeline", _fivetran_active=False)  # history mode
    out["opportunity"] = pd.concat([opp, old], ignore_index=True)
    assert list(out["opportunity"].columns[:5]) == ["id", "account_id", "name", "stage_name", "amount"]
    return out


def _hubspot() -> dict[str, pd.DataFrame]:
    contacts = _csv(FIXTURES / "hubspot" / "contacts.csv")
    contact = pd.DataFrame({"id": _int(contacts.hs_object_id), "_fivetran_deleted": False, "_fivetran_synced": SYNCED})
    for c in contacts.columns.drop("hs_object_id"):
        v = contacts[c]
        contact[f"property_{c}"] = _ts(v) if c == "createdate" or c.endswith("_date") else (
            _int(v) if c == "associatedcompanyid" else v)
    gone = contact.iloc[[0]].assign(id=51000031, _fivetran_deleted=True)
    contact = pd.concat([contact, gone], ignore_index=True)

    deals = _csv(FIXTURES / "hubspot" / "deals.csv")
    extra = deals.iloc[[0]].assign(hs_object_id="9000000013", dealname="Deal 13 (deleted)")
    deal = pd.DataFrame({"deal_id": _int(pd.concat([deals.hs_object_id, extra.hs_object_id], ignore_index=True))})
    deals = pd.concat([deals, extra], ignore_index=True)
    deal["deal_pipeline_id"] = deals.pipeline
    deal["deal_pipeline_stage_id"] = deals.dealstage
    deal["owner_id"] = _int(deals.hubspot_owner_id)
    deal["is_deleted"] = [False] * (len(deals) - 1) + [True]
    deal["_fivetran_synced"] = SYNCED
    for c in deals.columns.drop(["hs_object_id", "pipeline", "dealstage", "hubspot_owner_id"]):
        v = deals[c]
        if c in ("createdate", "closedate") or c.startswith("hs_date_entered_"):
            v = _ts(v)
        elif c.startswith("hs_is_"):
            v = _bool(v)
        elif c == "amount":
            v = pd.to_numeric(v)
        deal[f"property_{c}"] = v
    entered = [c for c in deal.columns if c.startswith("property_hs_date_entered_")]
    stage = (deal.melt(id_vars="deal_id", value_vars=entered, var_name="value", value_name="date_entered")
             .dropna(subset=["date_entered"]))
    stage["value"] = stage["value"].str.removeprefix("property_hs_date_entered_")
    stage = stage.assign(source="CRM_UI", _fivetran_synced=SYNCED).reset_index(drop=True)
    stages = [("appointmentscheduled", False, False), ("qualifiedtobuy", False, False),
              ("presentationscheduled", False, False), ("decisionmakerboughtin", False, False),
              ("contractsent", False, False), ("closedwon", True, True), ("closedlost", True, False),
              ("12345678", False, False)]
    pipeline_stage = pd.DataFrame({
        "stage_id": [s for s, _, _ in stages], "pipeline_id": "default", "label": [s.title() for s, _, _ in stages],
        "is_closed": pd.array([c for _, c, _ in stages], dtype="boolean"),
        "closed_won": pd.array([w for _, _, w in stages], dtype="boolean"),
        "display_order": range(len(stages)), "_fivetran_deleted": False, "_fivetran_synced": SYNCED})
    # engagements, hand-made: a meeting and a call on deals, an e-mail without one; a note and an archived
    # meeting that are not activities
    engagement = pd.DataFrame({
        "id": pd.array([7001, 7002, 7003, 7004, 7005], dtype="Int64"),
        "type": ["MEETING", "CALL", "NOTE", "EMAIL", "MEETING"],
        "timestamp": _ts(["2026-03-02 15:00", "2026-03-03 10:30", "2026-03-03 11:00", "2026-03-04 09:15",
                          "2026-03-05 16:00"]),
        "owner_id": pd.array([71001, 71002, 71001, 71003, 71001], dtype="Int64"),
        "active": pd.array([True, True, True, True, False], dtype="boolean"),
        "_fivetran_synced": SYNCED})
    engagement_deal = pd.DataFrame({"engagement_id": pd.array([7001, 7002, 7003], dtype="Int64"),
                                    "deal_id": pd.array([9000000001, 9000000002, 9000000002], dtype="Int64"),
                                    "_fivetran_synced": SYNCED})
    return {"contact": contact, "deal": deal, "deal_stage": stage, "deal_pipeline_stage": pipeline_stage,
            "engagement": engagement, "engagement_deal": engagement_deal}


def _stripe() -> dict[str, pd.DataFrame]:
    subs = _csv(FIXTURES / "stripe" / "subscriptions.csv")
    t = {c: _ts(subs[c]) for c in subs.columns if c.endswith("(UTC)")}
    history = pd.DataFrame({
        "id": subs.id, "customer_id": subs["Customer ID"], "status": subs.Status, "created": t["Created (UTC)"],
        "start_date": t["Start (UTC)"], "trial_start": t["Trial Start (UTC)"], "trial_end": t["Trial End (UTC)"],
        "canceled_at": t["Canceled At (UTC)"], "ended_at": t["Ended At (UTC)"], "livemode": True,
        "_fivetran_active": True, "_fivetran_start": t["Created (UTC)"], "_fivetran_synced": SYNCED})
    # sub_1Pa003 before its upgrade (history mode: an inactive version), and a test-mode subscription
    old = history[history.id == "sub_1Pa003"].assign(_fivetran_active=False, status="trialing")
    test = history[history.id == "sub_1Pa002"].assign(id="sub_test01", customer_id="cus_TEST", livemode=False)
    history = pd.concat([history, old, test], ignore_index=True)

    items = subs[["id", "Plan", "Quantity"]].rename(columns={"id": "subscription_id", "Plan": "plan_id",
                                                             "Quantity": "quantity"})
    items["quantity"] = _int(items.quantity)
    items.loc[len(items)] = ["sub_test01", "price_team_year", 1]
    # sub_1Pa009 (Pro yearly × 2) as two items of one seat; sub_1Pa001 has an item removed since (deleted)
    two = items.subscription_id == "sub_1Pa009"
    items.loc[two, "quantity"] = 1
    items = pd.concat([items, items[two]], ignore_index=True)
    items["_fivetran_deleted"] = False
    items.loc[len(items)] = ["sub_1Pa001", "price_pro_month", 1, True]
    items.insert(0, "id", [f"si_{i:04d}" for i in range(1, len(items) + 1)])
    items["created"] = SYNCED
    items["quantity"] = items.quantity.astype("Int64")
    items["_fivetran_deleted"] = items._fivetran_deleted.astype("boolean")

    prices = subs.drop_duplicates("Plan")
    price = pd.DataFrame({
        "id": prices.Plan, "unit_amount": _int((pd.to_numeric(prices.Amount) * 100).round().astype(int)),
        "currency": prices.Currency, "recurring_interval": prices.Interval,
        "recurring_interval_count": pd.array([1] * len(prices), dtype="Int64"),
        "product_id": "prod_" + prices.Product.str.lower(), "active": True, "livemode": True,
        "_fivetran_synced": SYNCED}).reset_index(drop=True)
    product = pd.DataFrame({"id": "prod_" + prices.Product.str.lower(), "name": prices.Product,
                            "_fivetran_synced": SYNCED}).reset_index(drop=True)

    inv = _csv(FIXTURES / "stripe" / "invoices.csv")
    created = pd.to_datetime(pd.to_numeric(inv.created), unit="s", utc=True)
    invoice = pd.DataFrame({
        "id": inv.id, "customer_id": inv.customer, "subscription_id": inv.subscription, "status": inv.status,
        "currency": inv.currency, "amount_due": _int(inv.amount_due), "amount_paid": _int(inv.amount_paid),
        "created": created, "status_transitions_paid_at": created.where(inv.status == "paid"),
        "charge_id": inv.charge, "billing_reason": inv.billing_reason, "is_deleted": False, "livemode": True,
        "_fivetran_synced": SYNCED})
    deleted = invoice.iloc[[0]].assign(id="in_1Qb0099", is_deleted=True)
    invoice = pd.concat([invoice, deleted], ignore_index=True)
    ref = _csv(FIXTURES / "stripe" / "refunds.csv")
    refund = pd.DataFrame({"id": ref.id, "charge_id": ref.charge, "amount": _int(ref.amount),
                           "currency": ref.currency, "status": ref.status,
                           "created": pd.to_datetime(pd.to_numeric(ref.created), unit="s", utc=True),
                           "reason": ref.reason, "_fivetran_synced": SYNCED})
    return {"subscription_history": history, "subscription_item": items, "price": price, "product": product,
            "invoice": invoice, "refund": refund}


def landed() -> dict[str, dict[str, pd.DataFrame]]:
    """The fixture as Fivetran lands it: schema -> table -> frame."""
    return {"salesforce": _salesforce(), "hubspot": _hubspot(), "stripe": _stripe()}


def write_duckdb(path: Path, schemas: dict) -> Path:
    import ibis

    con = ibis.duckdb.connect(str(path))
    for schema, tables in schemas.items():
        con.raw_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for name, df in tables.items():
            con.create_table(name, df, database=schema, overwrite=True)
    con.disconnect()
    return path


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    return write_duckdb(tmp_path_factory.mktemp("fivetran") / "warehouse.duckdb", landed())


# --------------------------------------------------------------------------- (a) same tables as the CSV import

KEYS = {"leads": ["lead_id"], "opportunities": ["opportunity_id"], "opportunity_history": ["opportunity_id",
        "changed_at", "stage"], "activities": ["activity_id"], "subscriptions": ["subscription_id"],
        "transactions": ["transaction_id"]}


def _sorted(src, table):
    df = src.to_pandas(table)
    return df.sort_values(KEYS[table]).reset_index(drop=True)


def assert_same_tables(got, expected, tables):
    for table in tables:
        a, b = _sorted(got, table), _sorted(expected, table)
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=table)


@pytest.mark.parametrize("vendor", ["salesforce", "hubspot", "stripe"])
def test_landed_tables_map_to_the_same_contract_tables_as_the_export(warehouse, vendor):
    csv = open_mapped(FIXTURES / vendor, preset=vendor)
    live = open_mapped_source(warehouse, preset=f"fivetran_{vendor}")
    (part,) = live.parts
    assert set(csv.mapped) <= set(part.mapped), part.skipped
    assert_same_tables(live.source, csv.source, list(csv.mapped))


def test_the_landed_tables_read_are_the_presets_own(warehouse):
    live = open_mapped_source(warehouse, preset="fivetran_salesforce,fivetran_stripe")
    sf, st = live.parts
    assert sf.mapped == {"leads": "lead", "opportunities": "opportunity", "opportunity_history": "opportunity_history",
                         "activities": "event"}
    assert st.mapped == {"subscriptions": "subscription_history", "transactions": "invoice"}
    assert live.where == [f"schema `salesforce` of DuckDB file {warehouse}",
                          f"schema `stripe` of DuckDB file {warehouse}"]
    assert live.source.names == ["leads", "opportunities", "opportunity_history", "subscriptions", "transactions",
                                 "activities"]
    text = live.format()
    assert "  opportunities        ← opportunity\n" in text and "  subscriptions  ← subscription_history\n" in text
    assert "not in the input" not in text
    assert "leads.source ← lead.lead_source = 'LinkedIn': no map knows it, 2 rows" in text


def test_rows_fivetran_marks_deleted_inactive_or_test_mode_are_left_out(warehouse):
    src = open_source(warehouse, preset="fivetran_salesforce")
    leads = src.to_pandas("leads")
    assert "00Q5g00000L0099" not in set(leads.lead_id) and len(leads) == 30  # _fivetran_deleted
    opps = src.to_pandas("opportunities").set_index("opportunity_id")
    assert len(opps) == 13 and opps.loc["0065g00000A0001", "stage"] == "closed_won"  # not its inactive version
    hs = open_source(warehouse, preset="fivetran_hubspot")
    assert "51000031" not in set(hs.to_pandas("leads").lead_id)
    assert "9000000013" not in set(hs.to_pandas("opportunities").opportunity_id)  # is_deleted
    assert "9000000013" not in set(hs.to_pandas("opportunity_history").opportunity_id)  # its stage rows too
    st = open_source(warehouse, preset="fivetran_stripe")
    subs = st.to_pandas("subscriptions").set_index("subscription_id")
    assert "sub_test01" not in subs.index and len(subs) == 15  # livemode false; incomplete_expired
    assert subs.loc["sub_1Pa001", "mrr"] == 49.0  # its deleted item does not count
    assert subs.loc["sub_1Pa009", "mrr"] == 398.0  # two items of 2388 a year: 199 + 199
    assert subs.loc["sub_1Pa003", "mrr"] == 297.0  # the current version only
    assert "in_1Qb0099" not in set(st.to_pandas("transactions").transaction_id)


def test_hubspot_engagements_become_activities(warehouse):
    acts = open_source(warehouse, preset="fivetran_hubspot").to_pandas("activities").set_index("activity_id")
    # 7001 meeting on deal 1, 7002 call on deal 2, 7004 e-mail on no deal; 7003 is a note, 7005 archived
    assert sorted(acts.index) == ["7001", "7002", "7004"]
    assert list(acts.type) == ["meeting", "call", "email"]
    assert acts.loc["7001", "opportunity_id"] == "9000000001" and pd.isna(acts.loc["7004", "opportunity_id"])
    assert acts.loc["7002", "occurred_at"] == pd.Timestamp("2026-03-03 10:30") and acts.loc["7002", "owner"] == "71002"


def test_hubspot_closed_and_won_come_from_the_stage_settings_when_the_deal_lacks_them(tmp_path):
    schemas = {"hubspot": _hubspot()}
    deal, stage = schemas["hubspot"]["deal"], schemas["hubspot"]["deal_pipeline_stage"]
    deal.loc[deal.deal_id == 9000000009, ["property_hs_is_closed", "property_hs_is_closed_won"]] = pd.NA
    stage.loc[stage.stage_id == "12345678", ["is_closed", "closed_won"]] = True  # a custom "signed" stage
    src = open_source(write_duckdb(tmp_path / "w.duckdb", schemas), preset="fivetran_hubspot")
    d9 = src.to_pandas("opportunities").set_index("opportunity_id").loc["9000000009"]
    assert (bool(d9.is_closed), bool(d9.is_won), d9.stage) == (True, True, "12345678")  # no map knows the stage


def test_a_user_mapping_moves_the_schema_and_adds_custom_fields(tmp_path):
    schemas = landed()
    schemas["salesforce_prod"] = schemas.pop("salesforce")
    db = write_duckdb(tmp_path / "w.duckdb", schemas)
    with pytest.raises(SourceError) as err:
        open_source(db, preset="fivetran_salesforce")
    msg = str(err.value)
    assert "schema `salesforce`" in msg and "no input object `lead`" in msg and "salesforce_prod" in msg
    assert "`schema: <name>`" in msg
    mine = tmp_path / "my_sfdc.yaml"
    mine.write_text("extends: fivetran_salesforce\nschema: salesforce_prod\n"
                    "tables:\n  leads:\n    columns:\n      mql_at: mql_date_c\n")
    leads = open_source(db, preset=str(mine)).to_pandas("leads").set_index("lead_id")
    assert leads.loc["00Q5g00000L0004", "mql_at"] == pd.Timestamp("2026-01-10 15:30")
    same = open_source(db, preset="fivetran_salesforce", mapping=mine).to_pandas("leads").set_index("lead_id")
    pd.testing.assert_frame_equal(same, leads)


def test_a_folder_of_exports_is_read_on_the_fly_with_the_csv_presets():
    src = open_source(FIXTURES / "salesforce", preset="salesforce")
    assert src.names == ["leads", "opportunities", "opportunity_history", "activities"]
    assert src.description == f"folder {FIXTURES / 'salesforce'} through salesforce"
    assert len(src.to_pandas("opportunities")) == 13


# --------------------------------------------------------------------------- (c) combined presets, (d) errors

def test_presets_feeding_different_tables_combine_and_an_overlap_is_an_error(warehouse):
    src = open_source(warehouse, preset=" fivetran_salesforce , fivetran_stripe ")
    assert {"leads", "subscriptions"} <= set(src.names)
    assert src.description == f"DuckDB file {warehouse} through fivetran_salesforce + fivetran_stripe"
    with pytest.raises(MappingError) as err:
        load_mappings("fivetran_salesforce,fivetran_hubspot")
    msg = str(err.value)
    assert "`presets/fivetran_salesforce.yaml extending presets/salesforce.yaml`" in msg
    assert "`presets/fivetran_hubspot.yaml extending presets/hubspot.yaml`" in msg
    assert "both map table `leads`" in msg and "`opportunities`" in msg and "tables: {leads: null}" in msg


def test_an_overlap_removed_by_a_mapping_file_combines(warehouse, tmp_path):
    mine = tmp_path / "hs_activities_only.yaml"
    mine.write_text("extends: fivetran_hubspot\nname: hubspot_activities\n"
                    "tables:\n  leads: null\n  opportunities: null\n  opportunity_history: null\n")
    with pytest.raises(MappingError, match="both map table `activities`"):
        load_mappings(f"fivetran_salesforce,{mine}")
    src = open_source(warehouse, preset=f"{mine},fivetran_stripe")
    assert src.names == ["subscriptions", "transactions", "activities"]


def test_an_unknown_preset_names_the_presets(warehouse):
    with pytest.raises(MappingError) as err:
        open_source(warehouse, preset="fivetran_salesforce,fivetran_salesfroce")
    assert "unknown preset 'fivetran_salesfroce'; presets: fivetran_hubspot, fivetran_salesforce, fivetran_stripe, " \
           "hubspot, salesforce, stripe." in str(err.value)
    with pytest.raises(MappingError, match="Give a preset .*fivetran_stripe"):
        load_mappings(" , ")
    with pytest.raises(MappingError, match="extends one preset"):
        load_mappings("fivetran_salesforce,fivetran_stripe", mapping="mine.yaml")


@pytest.mark.parametrize("text, needles", [
    ("extends: fivetran_salesforce\nschema: 'sales force'\n",
     ["key `schema`", "'sales force'", "salesforce_prod"]),
    ("extends: fivetran_stripe\ntables:\n  subscriptions:\n    from: []\n",
     ["key `tables.subscriptions.from`", "list of alternatives"]),
    ("extends: fivetran_hubspot\ntables:\n  opportunity_history:\n    where:\n"
     "      value: {in_object: {from: deal_stage}}\n",
     ["key `tables.opportunity_history.where.value.in_object.key`", "must be a column name"]),
    ("extends: fivetran_hubspot\ntables:\n  opportunity_history:\n    where:\n      deal_id: {in_objekt: {}}\n",
     ["key `tables.opportunity_history.where.deal_id.in_objekt`", "in, not_in, in_object"]),
    ("extends: fivetran_stripe\ntables:\n  transactions:\n    columns:\n      amount:\n        minus:\n"
     "          lookup: {from: refund, key: charge_id, by: charge_id, value: {derive: arr}}\n",
     ["key `tables.transactions.columns.amount.minus.lookup.value.derive`", "'arr'", "mrr"]),
    ("extends: fivetran_stripe\ntables:\n  subscriptions:\n    columns:\n"
     "      segment: {lookup: {from: customer, key: id, by: customer_id}}\n",
     ["key `tables.subscriptions.columns.segment.lookup.value`", "missing"]),
])
def test_bad_warehouse_mappings_name_the_file_the_key_and_the_allowed_values(tmp_path, text, needles):
    f = tmp_path / "mine.yaml"
    f.write_text(text)
    with pytest.raises(MappingError) as err:
        open_source(tmp_path, preset=str(f))
    msg = str(err.value)
    assert "mine.yaml" in msg, msg
    for n in needles:
        assert n in msg, (n, msg)


# --------------------------------------------------------------------------- the command line

def test_cli_validate_reads_through_the_preset_and_says_what_it_mapped(warehouse, capsys):
    from revops_lib.cli import main

    assert main(["validate", "--source", str(warehouse), "--preset", "fivetran_salesforce"]) == 0
    text = capsys.readouterr().out
    assert f"Mapping presets/fivetran_salesforce.yaml extending presets/salesforce.yaml, inputs from schema " \
           f"`salesforce` of DuckDB file {warehouse}:" in text
    assert "  opportunity_history  ← opportunity_history" in text
    assert "opportunities.type ← opportunity.type = 'Partner Resale': no map knows it, 1 row" in text
    assert "0 errors" in text
    assert main(["validate", "--source", str(warehouse), "--preset", "fivetran_salesforce,fivetran_hubspot"]) == 2
    assert "both map table `leads`" in capsys.readouterr().err


def test_cli_report_checks_the_preset_before_anything_runs(warehouse, tmp_path, capsys):
    from revops_lib.cli import main

    out = tmp_path / "reports"
    assert main(["report", "--period", "2026-03", "--source", str(warehouse), "--preset", "fivetran_salesforse",
                 "--out", str(out)]) == 2
    assert "unknown preset 'fivetran_salesforse'" in capsys.readouterr().err
    assert main(["report", "--period", "2026-03", "--source", str(warehouse), "-p", "preset", "fivetran_stripe",
                 "--out", str(out)]) == 2
    assert "Parameter `preset` is set by the runner: use `--preset`" in capsys.readouterr().err
    assert not (out / "2026-03").exists()
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    assert "--preset A,B" in capsys.readouterr().out


def test_every_report_notebook_declares_the_preset_and_hands_it_to_its_report(tmp_path, monkeypatch):
    from revops_lib.periods import parse_period
    from revops_lib.runner import build
    from revops_lib.runner.parameters import declared_parameters
    from revops_lib.runner.registry import NOTEBOOKS_DIR

    (tmp_path / "mine.yaml").write_text("extends: fivetran_stripe\nschema: billing\n")
    monkeypatch.chdir(tmp_path)
    param = build._preset_parameter("fivetran_salesforce, mine.yaml")  # kernels run elsewhere: absolute
    assert param == f"fivetran_salesforce,{tmp_path.resolve() / 'mine.yaml'}"
    assert build._preset_parameter(None) == build._preset_parameter(" ") == ""
    for nb in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        assert declared_parameters(nb)["preset"].type == "str", nb.name
        assert "preset=preset" in nb.read_text(), nb.name
        prm = build.task_parameters(nb.stem, parse_period("2026-03"), {}, source="postgres://a@db/dw", preset=param)
        assert prm["preset"] == param and prm["source"] == "postgres://a@db/dw"


# --------------------------------------------------------------------------- (b) PostgreSQL, on the fly vs import

@pytest.fixture(scope="module")
def pg_landed(pg_url) -> str:
    """The landed fixture in PostgreSQL, schemas salesforce, hubspot and stripe (as Fivetran writes them)."""
    from conftest import load_postgres

    for schema, tables in landed().items():
        load_postgres(pg_url, tables, schema)
    return pg_url


def landed_like_the_import(url: str, engine: str, tmp_path, where=None):
    """The landed tables at ``url``, read through each vendor's preset by ``engine``, equal the tables that
    `revops import` makes of the CSV exports (imported into ``tmp_path/<vendor>``), and give the figures
    test_importers.py checks; ``where(vendor)``: the expected ``MappedSource.where``. Returns the source read
    through ``fivetran_salesforce,fivetran_stripe``."""
    from revops_lib.importers import import_folder
    from revops_lib.metrics.deals import win_rate
    from revops_lib.metrics.mrr import mrr_movements
    from revops_lib.sources import open_source as open_plain

    for vendor in ("salesforce", "hubspot", "stripe"):
        imported = import_folder(FIXTURES / vendor, tmp_path / vendor, preset=vendor)
        live = open_mapped_source(url, preset=f"fivetran_{vendor}")
        assert live.source.con.name == engine
        if where is not None:
            assert live.where == [where(vendor)]
        assert_same_tables(live.source, open_plain(imported.out), list(imported.rows))
    sf = open_source(url, preset="fivetran_salesforce,fivetran_stripe")
    # the figures test_importers.py checks after `revops import`, here computed by the engine
    assert win_rate(sf.table("opportunities"), period="2026-03", as_of="2026-04-01") == pytest.approx(3 / 5)
    assert win_rate(sf.table("opportunities"), period="2026-03", as_of="2026-04-01",
                    weight="amount") == pytest.approx(37000 / 48000)
    hs = open_source(url, preset="fivetran_hubspot")
    assert win_rate(hs.table("opportunities"), period="2026-03", as_of="2026-04-01") == pytest.approx(3 / 6)
    mv = mrr_movements(sf, period="2026-03", as_of="2026-04-01")
    assert mv.set_index("month").loc["2026-03", "ending_mrr"] == pytest.approx(1718.0)
    return sf


def report_of_the_import(tmp_path, notebooks, period: str = "2026-03") -> None:
    """Build ``notebooks`` into ``tmp_path/from_import`` from one folder of what `revops import` makes of the
    Salesforce and Stripe CSV exports: the reference the reports read through presets must equal."""
    import shutil

    from revops_lib.importers import import_folder

    from conftest import run_report

    folder = tmp_path / "data"
    folder.mkdir()
    for vendor in ("salesforce", "stripe"):
        done = import_folder(FIXTURES / vendor, tmp_path / f"import_{vendor}", preset=vendor)
        for f in done.out.glob("*.parquet"):
            shutil.copy(f, folder / f.name)
    status, said = run_report(folder, tmp_path / "from_import", period, notebooks)
    assert status == 0, said


def same_as_the_import(tmp_path, out, notebooks, period: str = "2026-03") -> None:
    """Every report in ``out`` published the same CSV bytes as :func:`report_of_the_import`'s and says its presets."""
    for nb in notebooks:
        a, b = tmp_path / "from_import" / period / "tables" / nb, out / period / "tables" / nb
        names = sorted(p.name for p in a.glob("*.csv"))
        assert names and names == sorted(p.name for p in b.glob("*.csv")), nb
        for name in names:
            assert (a / name).read_bytes() == (b / name).read_bytes(), f"{nb}/{name}"
        html = (out / period / f"{nb}.html").read_text()
        assert "(preset fivetran_salesforce,fivetran_stripe)" in html


@pytest.mark.postgres
def test_postgres_landed_tables_give_the_import_s_tables_and_figures(pg_landed, tmp_path):
    from revops_lib.importers import import_folder
    from revops_lib.sources import open_source as open_plain

    sf = landed_like_the_import(pg_landed, "postgres", tmp_path)
    # `revops import --from URL`: the landed tables written as a folder equal to the CSV export's import
    for vendor in ("salesforce", "stripe"):
        url = pg_landed.replace("://postgres@", "://postgres:s3cret@")  # trust auth: any password is accepted
        assert "s3cret" in url
        from_db = import_folder(url, tmp_path / f"db-{vendor}", preset=f"fivetran_{vendor}")
        csv = open_plain(tmp_path / vendor)
        assert from_db.rows == {t: len(csv.to_pandas(t)) for t in from_db.rows}
        assert_same_tables(open_plain(from_db.out), csv, list(from_db.rows))
        marker = (from_db.out / ".revops-import").read_text()
        assert "postgres://" in marker and "s3cret" not in marker
        assert not any("s3cret" in f.read_bytes().decode("latin-1") for f in from_db.out.rglob("*") if f.is_file())
    tx = sf.to_pandas("transactions")
    march = tx[(tx.occurred_at >= "2026-03-01") & (tx.occurred_at < "2026-04-01")]
    assert (len(march), round(march.amount.sum(), 2)) == (12, 5598.0)


@pytest.mark.postgres
@pytest.mark.notebook
@pytest.mark.slow
def test_reports_from_postgres_through_presets_publish_the_import_s_tables(pg_landed, tmp_path):
    """The runner both ways: a folder made by `revops import` and PostgreSQL read through the presets (with a
    password in the URL, which no file may hold) publish byte-identical tables."""
    from revops_lib.runner import build

    notebooks = ["funnel_conversion", "cohort_retention"]
    report_of_the_import(tmp_path, notebooks)
    secret = "s3cr3t-pw"
    url = pg_landed.replace("postgres://postgres@", f"postgres://postgres:{secret}@", 1)
    messages = []
    status = build.run(period="2026-03", source=url, out=tmp_path / "from_pg", notebooks=notebooks, jobs=2,
                       force=True, progress=messages.append, preset="fivetran_salesforce,fivetran_stripe")
    assert status == 0, messages
    said = "\n".join(messages)
    assert "  leads                ← lead" in said and "  subscriptions  ← subscription_history" in said
    same_as_the_import(tmp_path, tmp_path / "from_pg", notebooks)
    for p in (tmp_path / "from_pg").rglob("*"):
        assert not p.is_file() or secret.encode() not in p.read_bytes(), p


def test_a_changed_mapping_file_changes_the_source_fingerprint(warehouse, tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: fivetran_salesforce\nvalues:\n  lead_source:\n    LinkedIn: paid_social\n")
    before = open_source(warehouse, preset=str(mine)).fingerprint()
    assert open_source(warehouse, preset=str(mine)).fingerprint() == before
    mine.write_text("extends: fivetran_salesforce\nvalues:\n  lead_source:\n    LinkedIn: organic_social\n")
    assert open_source(warehouse, preset=str(mine)).fingerprint() != before  # the reports are built again


def test_a_folder_with_a_sub_folder_per_schema_is_read_like_the_warehouse(tmp_path):
    """Landed tables exported as Parquet, one sub-folder per schema (landed/salesforce/opportunity.parquet …)."""
    for schema, tables in landed().items():
        (tmp_path / "landed" / schema).mkdir(parents=True)
        for name, df in tables.items():
            df.to_parquet(tmp_path / "landed" / schema / f"{name}.parquet")
    live = open_mapped_source(tmp_path / "landed", preset="fivetran_salesforce,fivetran_stripe")
    assert live.where == [f"folder {tmp_path / 'landed' / 'salesforce'}", f"folder {tmp_path / 'landed' / 'stripe'}"]
    assert_same_tables(live.source, open_mapped(FIXTURES / "salesforce", preset="salesforce").source,
                       ["leads", "opportunities", "opportunity_history", "activities"])
    assert_same_tables(live.source, open_mapped(FIXTURES / "stripe", preset="stripe").source,
                       ["subscriptions", "transactions"])
