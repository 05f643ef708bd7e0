"""Warehouse presets on Spark: the landed fixture of test_fivetran.py in a Spark Connect server's catalog.

The schemas Fivetran writes (``salesforce``, ``hubspot``, ``stripe``) are databases of the catalog here (made with
CREATE DATABASE, the tables with saveAsTable: managed tables of the test server's warehouse, not temporary views).
``open_source("sc://…", preset=…)`` maps them with Ibis expressions that Spark runs: the contract tables must equal
those of ``revops import`` on the CSV exports, as for DuckDB and PostgreSQL.
"""

from __future__ import annotations

import pandas as pd
import pytest

from revops_lib.importers import open_mapped_source, open_source

from test_fivetran import (
    FIXTURES,
    assert_same_tables,
    landed,
    landed_like_the_import,
    report_of_the_import,
    same_as_the_import,
)

SCHEMAS = ("salesforce", "hubspot", "stripe", "salesforce_paris")


def _arrow(df: pd.DataFrame):
    """A frame as Arrow, a column without any value typed as text (Spark cannot store a column of type void)."""
    import pyarrow as pa

    t = pa.Table.from_pandas(df, preserve_index=False)
    for i, f in enumerate(t.schema):
        if pa.types.is_null(f.type):
            t = t.set_column(i, pa.field(f.name, pa.string()), t.column(i).cast(pa.string()))
    return t


def _paris(lead: pd.DataFrame) -> pd.DataFrame:
    """Leads as a connector that lands naive wall times of Europe/Paris would have them (text, no offset)."""
    out = lead.copy()
    for c in ("created_date", "mql_date_c"):
        wall = out[c].dt.tz_convert("Europe/Paris").dt.strftime("%Y-%m-%d %H:%M:%S")
        out[c] = wall.where(out[c].notna(), None).astype(object)
    return out


@pytest.fixture(scope="module")
def spark_landed(spark_url):
    """The landed fixture in the test Spark Connect server: one database per schema, loaded once."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(spark_url).getOrCreate()
    schemas = landed()
    schemas["salesforce_paris"] = {"lead": _paris(schemas["salesforce"]["lead"])}
    try:
        for schema, tables in schemas.items():
            spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
            for name, df in tables.items():
                spark.createDataFrame(_arrow(df)).write.mode("overwrite").saveAsTable(f"{schema}.{name}")
        yield spark_url
    finally:
        for schema in SCHEMAS:
            spark.sql(f"DROP DATABASE IF EXISTS {schema} CASCADE")


@pytest.mark.spark
def test_spark_landed_tables_give_the_import_s_tables_and_figures(spark_landed, tmp_path):
    from revops_lib.importers import import_folder
    from revops_lib.sources import open_source as open_plain

    sf = landed_like_the_import(spark_landed, "pyspark", tmp_path,
                                where=lambda vendor: f"database `{vendor}` of Spark {spark_landed}")
    assert sf.names == ["leads", "opportunities", "opportunity_history", "subscriptions", "transactions",
                        "activities"]
    # `revops import --from sc://…`: the landed tables written as the folder the CSV export's import gives
    from_spark = import_folder(spark_landed, tmp_path / "spark-stripe", preset="fivetran_stripe")
    assert_same_tables(open_plain(from_spark.out), open_plain(tmp_path / "stripe"), list(from_spark.rows))


@pytest.mark.spark
def test_naive_times_are_read_in_the_mapping_s_zone_on_spark(spark_landed, tmp_path):
    """Spark has no timezone(): a mapping's zone is applied with to_utc_timestamp (summer time included)."""
    mine = tmp_path / "paris.yaml"
    mine.write_text("extends: fivetran_salesforce\nschema: salesforce_paris\ntimezone: Europe/Paris\n")
    paris = open_mapped_source(spark_landed, preset=str(mine))
    assert list(paris.parts[0].mapped) == ["leads"]
    utc = open_source(spark_landed, preset="fivetran_salesforce")
    cols = ["lead_id", "created_at", "source"]  # (no opportunity table there: no lookups)
    a = paris.source.to_pandas("leads")[cols].sort_values("lead_id").reset_index(drop=True)
    b = utc.to_pandas("leads")[cols].sort_values("lead_id").reset_index(drop=True)
    assert len(a) > 10 and a.created_at.notna().all()
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    # the same mapping without the zone reads the wall times as UTC: an hour or two off
    mine.write_text("extends: fivetran_salesforce\nschema: salesforce_paris\n")
    naive = open_source(spark_landed, preset=str(mine)).to_pandas("leads").sort_values("lead_id")
    off = set((naive.created_at.reset_index(drop=True) - b.created_at).dt.total_seconds() / 3600)
    assert off <= {1.0, 2.0} and off


@pytest.mark.spark
def test_a_mapping_without_a_schema_reads_the_database_of_the_url(spark_landed, tmp_path):
    mine = tmp_path / "here.yaml"
    mine.write_text("extends: fivetran_stripe\nschema: null\n")
    live = open_mapped_source(f"{spark_landed}/stripe", preset=str(mine))
    assert live.where == [f"database `stripe` of Spark {spark_landed}/stripe"]
    assert set(live.source.names) == {"subscriptions", "transactions"}


@pytest.mark.spark
def test_cli_validate_reads_spark_through_the_presets(spark_landed, capsys):
    from revops_lib.cli import main

    status = main(["validate", "--source", spark_landed, "--preset", "fivetran_salesforce,fivetran_stripe"])
    said = capsys.readouterr().out
    assert status in (0, 1), said  # warnings are allowed; errors are not
    assert f"inputs from database `salesforce` of Spark {spark_landed}" in said
    assert "  subscriptions  ← subscription_history" in said


@pytest.mark.spark
@pytest.mark.notebook
@pytest.mark.slow
def test_a_report_from_spark_through_presets_publishes_the_import_s_tables(spark_landed, tmp_path):
    """The runner on a sc:// source with `--preset`: the kernels read Spark through the presets and publish the
    same bytes as a report on the folder `revops import` writes."""
    from revops_lib.runner import build

    notebooks = ["funnel_conversion"]
    report_of_the_import(tmp_path, notebooks)
    messages = []
    status = build.run(period="2026-03", source=spark_landed, out=tmp_path / "from_spark", notebooks=notebooks,
                       jobs=1, force=True, progress=messages.append, preset="fivetran_salesforce,fivetran_stripe")
    log = "\n".join(messages)
    assert status == 0, log
    assert "use the Spark Connect server of the source" in log and "  leads                ← lead" in log
    same_as_the_import(tmp_path, tmp_path / "from_spark", notebooks)


def test_presets_with_engine_spark_need_a_spark_connect_source(tmp_path, capsys):
    """A folder (or a database URL) is read through presets by DuckDB: with `--engine spark` the run stops before
    any JVM starts and says to give a sc:// source."""
    from revops_lib.cli import main
    from revops_lib.errors import ParameterError
    from revops_lib.runner import build

    status = main(["validate", "--engine", "spark", "--source", str(FIXTURES / "salesforce"), "--preset", "salesforce"])
    assert status == 2 and "give its URL (`--source sc://host:15002`)" in capsys.readouterr().err
    with pytest.raises(ParameterError, match="Spark Connect server"):
        build.run(period="2026-03", source=FIXTURES / "salesforce", out=tmp_path / "out",
                  notebooks=["funnel_conversion"], preset="salesforce", engine="spark")
    assert not (tmp_path / "out").exists()
