"""Apache Spark as the engine: the same typed tables, metrics and published CSVs as DuckDB (and PostgreSQL).

A local Spark Connect server from the pyspark wheel (``spark_url`` in conftest.py, on 127.0.0.1) serves the
metric-level checks; the report builds go through the runner, which starts and stops its own server.
Without pyspark or Java these tests skip (and fail under ``CI=true``: ``make test`` installs both).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from revops_lib import spark as sp
from revops_lib.errors import ParameterError, SourceError
from revops_lib.runner import build
from revops_lib.sources import open_source, public_url, redact

from conftest import (
    DEMO_REPORT_PERIODS,
    ROOT,
    load_postgres,
    need,
    spark_test_settings,
    valid_frames,
    write_folder,
)

REPORTS = ["funnel_conversion", "forecast_accuracy", "cohort_retention", "revops_scorecard", "data_quality"]
PERIODS = ["2026-10", "2026-Q3"]


# ---------------------------------------------------------------------------
# Without a server: URLs, settings, the literal fix
# ---------------------------------------------------------------------------

def test_a_spark_connect_url_names_its_database_apart_from_spark_s_own_parameters():
    assert sp.split_url("sc://spark.local:15002/crm") == ("sc://spark.local:15002", "crm")
    assert sp.split_url("sc://h:15002/;token=abc") == ("sc://h:15002/;token=abc", None)
    assert sp.split_url("sc://h:15002/lake_1;token=abc;use_ssl=true") == ("sc://h:15002/;token=abc;use_ssl=true",
                                                                          "lake_1")
    with pytest.raises(SourceError, match="one name"):
        sp.split_url("sc://h:15002/a/b")
    with pytest.raises(SourceError, match="one name"):
        sp.split_url("sc://h:15002/x y")


def test_a_spark_connect_token_is_redacted_and_never_in_the_public_url():
    url = "sc://h:15002/crm;token=s3cr3t;use_ssl=true"
    assert redact(url) == "sc://h:15002/crm;token=***;use_ssl=true"
    assert public_url(url) == "sc://h:15002/crm;use_ssl=true"
    assert "s3cr3t" not in sp._public("sc://h:15002/;token=s3cr3t")


def test_spark_settings_are_checked_and_always_utc():
    s = sp.SparkSettings(shuffle_partitions=3, driver_memory="2g", conf={"spark.sql.adaptive.enabled": "false"},
                         java_options="-XX:+UseSerialGC")
    conf = s.session_conf(local=True)
    assert conf["spark.sql.session.timeZone"] == "UTC" and conf["spark.sql.shuffle.partitions"] == "3"
    assert conf["spark.sql.adaptive.enabled"] == "false"
    assert not any("Java" in k or "java" in k for k in conf)  # (the JVM's options are the local server's only)
    assert sp.SparkSettings.from_json(s.to_json()) == s
    # a remote session keeps the cluster's partitions unless told; a local one gets 2 x cores
    assert "spark.sql.shuffle.partitions" not in sp.SparkSettings().session_conf(local=False)
    assert sp.SparkSettings().session_conf(local=True)["spark.sql.shuffle.partitions"] == str(2 * os.cpu_count())
    for bad in (dict(shuffle_partitions=0), dict(shuffle_partitions=True), dict(driver_memory="lots"),
                dict(conf={"sql.x": "1"}), dict(conf={"spark.driver.extraJavaOptions": "-Xss4m"})):
        with pytest.raises(ParameterError):
            sp.SparkSettings(**bad)


@pytest.mark.spark
def test_the_local_server_command_binds_to_loopback_with_the_settings(tmp_path):
    need(not sp.missing(), f"Spark cannot run here: {sp.missing()}")
    server = sp.LocalServer(sp.SparkSettings(shuffle_partitions=2, driver_memory="3g",
                                             java_options="-XX:+UseSerialGC -XX:TieredStopAtLevel=1"))
    cmd = server.command(15099, tmp_path)
    assert cmd[0].endswith("bin/spark-submit") and sp.CONNECT_SERVER_CLASS in cmd
    confs = dict(c.split("=", 1) for c in cmd[cmd.index("--conf") :: 1] if "=" in c)
    assert confs["spark.connect.grpc.binding.address"] == "127.0.0.1"
    assert confs["spark.connect.grpc.binding.port"] == "15099"
    assert confs["spark.driver.bindAddress"] == "127.0.0.1" and confs["spark.sql.session.timeZone"] == "UTC"
    assert confs["spark.sql.shuffle.partitions"] == "2"
    assert cmd[cmd.index("--driver-memory") + 1] == "3g"
    assert confs["spark.driver.extraJavaOptions"] == (f"-Dderby.system.home={tmp_path / 'derby'} -XX:+UseSerialGC "
                                                      "-XX:TieredStopAtLevel=1")


def test_an_ibis_pyspark_url_is_refused_with_the_way_to_spark():
    with pytest.raises(SourceError, match="sc://host:15002"):
        open_source("pyspark:///tmp/warehouse")


def test_an_unknown_engine_is_refused(tmp_path):
    with pytest.raises(ParameterError, match="engine"):
        open_source(write_folder(valid_frames(), tmp_path / "d"), engine="sqlite")
    with pytest.raises(ParameterError, match="engine"):
        build.run(period="2026-10", source=str(tmp_path / "d"), out=tmp_path / "out", engine="polars")
    with pytest.raises(ParameterError, match="read by Spark"):
        build.run(period="2026-10", source="sc://127.0.0.1:1", out=tmp_path / "out", engine="duckdb")


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_the_calendar_search_without_an_asof_join_counts_as_the_asof_join_does(monkeypatch, n):
    """Spark has no as-of join: instants <= x by nested comparisons gives DuckDB's as-of answer (checked on
    DuckDB, both ways), at, between, before and after the instants, and n for a null time."""
    from revops_lib.metrics import deal_history

    instants = pd.date_range("2026-10-01 12:00", periods=n, freq="37h")
    cal = deal_history.Calendar(instants)
    assert not cal.midnight
    xs = list(instants) + [t + pd.Timedelta(microseconds=1) for t in instants] + \
        [t - pd.Timedelta(microseconds=1) for t in instants] + [pd.Timestamp("2020-01-01"), None]
    import ibis

    tbl = ibis.memtable(pd.DataFrame({"k": range(len(xs)), "x": pd.Series(xs, dtype="datetime64[us]")}))
    asof = cal.n_le(tbl, "x", "c").to_pandas().sort_values("k")["c"].tolist()
    monkeypatch.setattr(deal_history, "NO_ASOF_ENGINES", ("duckdb",))
    search = cal.n_le(tbl, "x", "c").to_pandas().sort_values("k")["c"].tolist()
    expected = [sum(t <= x for t in instants) if x is not None else n for x in xs]
    assert asof == search == expected


# ---------------------------------------------------------------------------
# A real Spark: typed tables, sources, metrics
# ---------------------------------------------------------------------------

def _spark(path, spark_url, **kw):
    return open_source(path, engine="spark", spark=spark_url, settings=spark_test_settings(), **kw)


def _same(a: pd.DataFrame, b: pd.DataFrame, sort: bool = True):
    if sort and len(a.columns):
        key = list(a.columns)
        a = a.sort_values(key, ignore_index=True, key=lambda s: s.astype(str))
        b = b.sort_values(key, ignore_index=True, key=lambda s: s.astype(str))
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=False, rtol=1e-12)


@pytest.mark.spark
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_spark_types_every_table_as_duckdb_does(spark_url, tmp_path, fmt):
    """The typed tables of a folder read by Spark equal DuckDB's: naive UTC microsecond times, dates, numbers,
    booleans, text; unreadable values null; CSV times with offsets honoured."""
    frames = valid_frames()
    frames["leads"].loc[1, "segment"] = "x" * 300  # a long label: cut in both
    folder = write_folder(frames, tmp_path / fmt, fmt)
    if fmt == "csv":  # values that cannot be typed, and an offset
        text = (folder / "opportunities.csv").read_text().replace("12000.0", "lots").replace("True", "maybe", 1)
        (folder / "opportunities.csv").write_text(text)
    duck, spark = open_source(folder), _spark(folder, spark_url)
    assert spark.names == duck.names and spark.con.name == "pyspark"
    for name in duck.names:
        a, b = duck.to_pandas(name), spark.to_pandas(name)
        assert list(a.columns) == list(b.columns), name
        assert list(a.dtypes) == list(b.dtypes), name  # times in microseconds (Spark hands pandas nanoseconds)
        assert all(t != np.dtype("datetime64[ns]") for t in b.dtypes)
        _same(a, b)


@pytest.mark.spark
def test_spark_reads_spark_style_part_folders_and_partitions(spark_url, tmp_path):
    frames = valid_frames()
    root = tmp_path / "lake"
    leads = root / "leads"
    leads.mkdir(parents=True)
    frames["leads"].iloc[:2].to_parquet(leads / "part-00000.parquet", index=False)
    frames["leads"].iloc[2:].to_parquet(leads / "part-00001.parquet", index=False)
    (leads / "_SUCCESS").write_text("")
    (leads / ".part-00000.parquet.crc").write_bytes(b"crc")
    hist = root / "opportunity_history.parquet" / "year=2026"
    hist.mkdir(parents=True)
    frames["opportunity_history"].to_parquet(hist / "part-0.parquet", index=False)
    frames["opportunities"].to_csv(root / "opportunities.csv", index=False)
    duck, spark = open_source(root), _spark(root, spark_url)
    assert spark.names == duck.names == ["leads", "opportunities", "opportunity_history"]
    for name in duck.names:  # a partition column is an extra: DuckDB reads it as BIGINT, Spark as INT
        _same(duck.to_pandas(name).drop(columns="year", errors="ignore"),
              spark.to_pandas(name).drop(columns="year", errors="ignore"))
    assert spark.to_pandas("opportunity_history")["year"].tolist() == [2026] * 4


@pytest.mark.spark
def test_two_spark_sources_in_one_session_never_read_each_other(spark_url, tmp_path):
    a = valid_frames()
    b = valid_frames()
    b["leads"] = b["leads"].iloc[:1]
    sa = _spark(write_folder(a, tmp_path / "a"), spark_url)
    sb = _spark(write_folder(b, tmp_path / "b"), spark_url)
    assert int(sb.table("leads").count().to_pandas()) == 1
    assert int(sa.table("leads").count().to_pandas()) == 3


@pytest.mark.spark
def test_a_spark_connect_source_url_reads_the_tables_of_its_database(spark_url, tmp_path):
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(spark_url).getOrCreate()
    spark.sql("CREATE DATABASE IF NOT EXISTS revops_t")
    frames = valid_frames()
    frames["targets"]["segment"] = "smb"  # (an all-null column has no type Spark can store)
    for name in ("opportunities", "targets"):
        spark.createDataFrame(frames[name]).write.mode("overwrite").saveAsTable(f"revops_t.{name}")
    try:
        src = open_source(f"{spark_url}/revops_t")
        assert src.names == ["opportunities", "targets"]
        _same(open_source(frames).to_pandas("opportunities"), src.to_pandas("opportunities"))
        # a user's own session, and a user's own Ibis backend
        import ibis

        assert open_source(spark).con.name == "pyspark"
        assert open_source(ibis.pyspark.connect(spark)).con.name == "pyspark"
    finally:
        spark.sql("DROP DATABASE revops_t CASCADE")


@pytest.mark.spark
def test_float_literals_are_doubles_on_spark(spark_url):
    """Spark SQL reads 3600.0 as DECIMAL(5,1): a seconds / 3600.0 would keep 6 decimals (DuckDB: a double)."""
    import ibis

    con = sp.connect(spark_url, spark_test_settings())
    m = ibis.memtable(pd.DataFrame({"s": [10303]}))
    got = con.execute(m.select(h=m.s / 3600.0))["h"].iloc[0]
    assert got == 10303 / 3600.0


@pytest.mark.spark
def test_strip_trims_whitespace_only_on_spark(spark_url):
    """Ibis writes strip()'s characters as ' \\t\\n\\r\\v\\f', and Spark reads \\v and \\f as the letters v and f:
    'false' was stripped to 'alse' (a boolean read from text was null, a where-clause on false kept the row)."""
    import ibis

    from revops_lib.sources import coerce

    con = sp.connect(spark_url, spark_test_settings())
    values = ["false", "vivid", "fluff", " \t pad \x0b\x0c\n", "true"]
    m = ibis.memtable(pd.DataFrame({"s": values}))
    got = con.execute(m.select(m.s, t=m.s.strip(), b=coerce(m.s, "bool")))
    assert got.t.tolist() == [v.strip() for v in values]
    assert [None if pd.isna(b) else bool(b) for b in got.b] == [False, None, None, None, True]


@pytest.fixture(scope="module")
def both(spark_url, demo_dir):
    return open_source(demo_dir), _spark(demo_dir, spark_url)


def _calls():
    from revops_lib.metrics import (
        cohorts,
        deal_history,
        deals,
        economics,
        forecast,
        lead_funnel,
        mrr,
        pipeline,
        quality,
        records,
    )

    dates = ["2026-09-01", "2026-10-01", "2026-10-15 12:00"]
    # (forecast accuracy, the baseline and the scorecard's KPI history are in the reports compared below)
    return {
        "stage_conversion": lambda s: lead_funnel.stage_conversion(s, period="2026-Q3"),
        "stage_timing": lambda s: lead_funnel.stage_timing(s, period="2026-Q3"),
        "deal_stage_conversion": lambda s: deals.deal_stage_conversion(s, period="2026-Q3"),
        "sales_metrics": lambda s: deals.sales_metrics(s, period="2026-10"),
        "stage_win_rates": lambda s: forecast.stage_win_rates(s, dates=dates),
        "stage_win_rates_no_mask": lambda s: forecast.stage_win_rates(
            _no_mask(deal_history.prepare(s)), dates=dates),
        "pipeline_snapshots": lambda s: pipeline.pipeline_snapshots(s, dates=dates),
        "pipeline_waterfall": lambda s: pipeline.pipeline_waterfall(s, period="2026-10"),
        "mrr_movements": lambda s: mrr.mrr_movements(s, period="2026-10"),
        "trailing_retention": lambda s: mrr.trailing_retention(s, as_of="2026-11-01"),
        "cohort_retention": lambda s: cohorts.cohort_retention(mrr.customer_mrr(s, period="2026-10", cache=True)),
        "unit_economics": lambda s: economics.unit_economics(s, period="2026-10"),
        "stale_open_deals": lambda s: quality.stale_open_deals(s, as_of="2026-11-01"),
        "mrr_movement_records": lambda s: records.mrr_movement_records(s, period="2026-Q3"),
        "pipeline_waterfall_records": lambda s: records.pipeline_waterfall_records(s, period="2026-10"),
        "stage_conversion_records": lambda s: records.stage_conversion_records(s, period="2026-10"),
        "stage_conversion_records_masked": lambda s: records.stage_conversion_records(s.with_privacy("masked"),
                                                                                      period="2026-10"),
        "rep_performance_records": lambda s: records.rep_performance_records(s, period="2026-10"),
        "win_rate_records": lambda s: records.win_rate_records(s, period="2026-10"),
        "retention_records": lambda s: records.retention_records(s, period="2026-10"),
    }


def _no_mask(deals):
    deals.stage_bits = None
    return deals


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.parametrize("call", list(_calls()))
def test_metrics_on_spark_equal_duckdb(both, call):
    duck, spark = both
    fn = _calls()[call]
    a, b = fn(duck), fn(spark)
    if isinstance(a, tuple):
        a, b = a[0], b[0]
    if not isinstance(a, pd.DataFrame):
        a, b = pd.DataFrame(a), pd.DataFrame(b)
    _same(a, b)


@pytest.mark.spark
def test_spark_caches_the_deal_history_only_and_every_cache_is_dropped(both):
    """On Spark the deal history is cached (Spark finds its plan again: queries read the cached rows) and released
    with its view; the MRR change points and stage spells, plans Spark cannot find in its cache, are computed
    in every query. On DuckDB every cache is made and dropped."""
    from revops_lib.metrics import deal_history, forecast, mrr, stage_time
    from revops_lib.metrics.common import caches

    duck, spark = both
    session = spark.con._session

    def cached_views():
        return {r.viewName for r in session.sql("SHOW VIEWS").collect() if r.viewName.startswith("ibis_cached")}

    assert not cached_views()
    with deal_history.prepare(spark) as d:
        assert d.materialized
        (name,) = cached_views()
        df = spark.con._cached_dataframes[name]
        assert df.is_cached
        dates = ["2026-09-01", "2026-10-01"]
        _same(forecast.stage_win_rates(d, dates=dates), forecast.stage_win_rates(duck, dates=dates))
    assert not d.materialized and not cached_views() and not df.is_cached
    cm = mrr.customer_mrr(spark, period="2026-10", cache=True)
    assert cm._temp is None
    spells = stage_time.stage_spells(spark, as_of=pd.Timestamp("2026-11-01"))
    assert not caches(spells) and caches(stage_time.stage_spells(duck, as_of=pd.Timestamp("2026-11-01")))
    assert not cached_views()
    for name in duck.names:
        duck.raw(name)  # (files are opened on first use, as views)
    before = set(duck.con.list_tables())
    with deal_history.prepare(duck) as dh:
        assert dh.materialized and set(duck.con.list_tables()) - before
    assert set(duck.con.list_tables()) == before


# ---------------------------------------------------------------------------
# The five reports: DuckDB, Spark (through the runner) and PostgreSQL publish the same bytes
# ---------------------------------------------------------------------------

def _published(out) -> dict[str, bytes]:
    files = {}
    for period in PERIODS:
        base = out / period / "tables"
        for p in sorted(base.rglob("*.csv")):
            files[f"{period}/{p.relative_to(base).as_posix()}"] = p.read_bytes()
    return files


def _build(source, out, **kw) -> tuple[int, list[str]]:
    messages: list[str] = []
    status = build.run(periods=PERIODS, source=str(source), out=out, notebooks=REPORTS, jobs=2, force=True,
                       progress=messages.append, **kw)
    return status, messages


def _assert_identical(reference: dict[str, bytes], other: dict[str, bytes], engine: str):
    assert sorted(other) == sorted(reference), f"{engine} published other tables"
    differ = []
    for name, data in reference.items():
        if other[name] != data:
            a, b = data.decode().splitlines(), other[name].decode().splitlines()
            first = next((i for i in range(max(len(a), len(b)))
                          if i >= len(a) or i >= len(b) or a[i] != b[i]), 0)
            differ.append(f"{name} line {first + 1}:\n  duckdb: {a[first] if first < len(a) else '<none>'}\n"
                          f"  {engine}: {b[first] if first < len(b) else '<none>'}")
    assert not differ, f"published CSVs differ between DuckDB and {engine}:\n" + "\n".join(differ)


@pytest.fixture(scope="module")
def duckdb_tables(demo_reports):
    """The tables DuckDB publishes for the five reports of :data:`PERIODS` (the session's demo reports, built by
    the runner on DuckDB with the same defaults)."""
    assert set(PERIODS) <= set(DEMO_REPORT_PERIODS)
    tables = _published(demo_reports)
    assert len(tables) > 60 and all(f"{p}/{r}/" in " ".join(tables) for p in PERIODS for r in REPORTS)
    return tables


def _listening(url: str) -> bool:
    host, port = url[5:].split(":")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.notebook
def test_the_five_reports_publish_the_same_bytes_on_spark(duckdb_tables, demo_dir, tmp_path, monkeypatch):
    """The runner starts ONE local Spark Connect server for its kernels, says so, and stops it at the end."""
    monkeypatch.delenv(sp.REMOTE_ENV, raising=False)
    status, messages = _build(demo_dir, tmp_path / "out", engine="spark", spark_settings=spark_test_settings())
    log = "\n".join(messages)
    assert status == 0, log
    started = [m for m in messages if m.startswith("Spark: starting a local Spark Connect server at sc://127.0.0.1:")]
    assert len(started) == 1, log
    url = started[0].split(" at ", 1)[1].split(" ", 1)[0]
    assert f"Spark: stopped the local Spark Connect server at {url}" in messages
    assert not _listening(url)
    _assert_identical(duckdb_tables, _published(tmp_path / "out"), "spark")


@pytest.mark.spark
def test_a_setting_fixed_at_server_start_is_accepted_when_the_server_has_it_and_refused_clearly_otherwise(
        spark_url, monkeypatch):
    """`--spark-conf spark.driver.maxResultSize=…` with a local server: the server gets it at launch and the
    sessions cannot change it (Spark's CANNOT_MODIFY_CONFIG), so the same value is fine; another value stops
    with the setting's name and no value (a setting may hold a secret)."""
    monkeypatch.delenv(sp.REMOTE_ENV, raising=False)
    same = sp.SparkSettings(conf={"spark.driver.host": "127.0.0.1", "spark.sql.adaptive.enabled": "false"})
    assert sp.session(spark_url, same).conf.get("spark.sql.adaptive.enabled") == "false"
    other = sp.SparkSettings(conf={"spark.driver.host": "s3cret-host"})
    with pytest.raises(ParameterError, match="`spark.driver.host` is fixed when the Spark server starts") as err:
        sp.session(spark_url, other)
    assert "s3cret" not in str(err.value)


@pytest.mark.spark
@pytest.mark.slow
def test_the_runner_uses_the_server_of_a_spark_connect_source(spark_url, tmp_path, frames):
    """A sc:// source: the user's server, no local one; the report of a table-less source is skipped cleanly."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(spark_url).getOrCreate()
    spark.sql("CREATE DATABASE IF NOT EXISTS revops_r")
    try:
        frames["targets"]["segment"] = "smb"  # (an all-null column has no type Spark can store)
        frames["leads"]["customer_at"] = frames["leads"]["created_at"]
        for name in ("leads", "opportunities", "opportunity_history", "targets"):
            df = frames[name].copy()
            spark.createDataFrame(df).write.mode("overwrite").saveAsTable(f"revops_r.{name}")
        messages: list[str] = []
        status = build.run(period="2026-10", source=f"{spark_url}/revops_r", out=tmp_path / "out",
                           notebooks=["data_quality"], jobs=1, force=True, progress=messages.append)
        log = "\n".join(messages)
        assert status == 0, log
        assert f"use the Spark Connect server of the source, {spark_url}/revops_r" in log
        assert "starting a local Spark Connect server" not in log
        assert (tmp_path / "out" / "2026-10" / "tables" / "data_quality" / "table_overview.csv").is_file()
    finally:
        spark.sql("DROP DATABASE revops_r CASCADE")


@pytest.mark.spark
def test_the_local_server_is_stopped_when_a_run_is_interrupted(tmp_path):
    """Ctrl-C (or any error) while the kernels run: the runner's finally stops the server (its port closes)."""
    need(not sp.missing(), f"Spark cannot run here: {sp.missing()}")
    server = sp.LocalServer(spark_test_settings())
    url = server.launch()
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        server.stop()
    assert server.proc is None and not _listening(url)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.notebook
def test_the_five_reports_publish_the_same_bytes_on_postgresql(duckdb_tables, demo_dir, pg_url, tmp_path):
    frames = {p.stem: pd.read_parquet(p) for p in sorted(demo_dir.glob("*.parquet"))}
    url = load_postgres(pg_url, frames, "published_identity")
    status, messages = _build(url, tmp_path / "out")
    assert status == 0, "\n".join(messages)
    _assert_identical(duckdb_tables, _published(tmp_path / "out"), "postgres")


@pytest.mark.spark
@pytest.mark.slow
def test_revops_report_engine_spark_from_the_command_line(spark_url, tmp_path):
    """`revops validate --engine spark` on $SPARK_REMOTE's server (the CLI's options reach the session)."""
    folder = write_folder(valid_frames(), tmp_path / "data")
    env = {**os.environ, sp.REMOTE_ENV: spark_url, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "revops_lib.cli", "validate", "--source", str(folder), "--engine",
                        "spark", "--spark-shuffle-partitions", "1"], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=300)
    assert r.returncode in (0, 1), r.stderr
    duck = subprocess.run([sys.executable, "-m", "revops_lib.cli", "validate", "--source", str(folder)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.stdout.replace(" (Spark)", "") == duck.stdout
    from revops_lib.cli import _engine_options, _spark_settings

    parser = argparse.ArgumentParser()
    _engine_options(parser)
    for given in (["--spark-java-options=-XX:+UseSerialGC"], ["--spark-java-options", "-Xss4m -XX:+UseSerialGC"]):
        assert _spark_settings(parser.parse_args(given)).java_options == given[-1].split("=", 1)[-1]
    bad = subprocess.run([sys.executable, "-m", "revops_lib.cli", "validate", "--source", str(folder), "--engine",
                          "spark", "--spark-conf", "nonsense"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
