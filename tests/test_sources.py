"""Sources: a folder of Parquet or CSV files, a DuckDB file, DataFrames — the same typed tables."""

from __future__ import annotations

import os

import duckdb
import pandas as pd
import pytest

from revops_lib.errors import SourceError
from revops_lib.schema import TABLES
from revops_lib.sources import Source, open_source

from conftest import write_folder


def canonical(src: Source, name: str) -> pd.DataFrame:
    df = src.to_pandas(name)
    key = [k for k in TABLES[name].key if k in df.columns]
    return df.sort_values(key, ignore_index=True)


def write_duckdb(frames, path):
    con = duckdb.connect(str(path))
    for name, df in frames.items():
        con.register("df", df)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM df")
        con.unregister("df")
    con.close()
    return path


@pytest.fixture
def three_sources(tmp_path, frames):
    pq = open_source(write_folder(frames, tmp_path / "pq", "parquet"))
    csv = open_source(write_folder(frames, tmp_path / "csv", "csv"))
    db = open_source(write_duckdb(frames, tmp_path / "crm.duckdb"))
    return pq, csv, db


@pytest.mark.parametrize("name", list(TABLES))
def test_csv_parquet_and_duckdb_give_identical_tables(three_sources, name):
    pq, csv, db = three_sources
    expected = canonical(pq, name)
    pd.testing.assert_frame_equal(canonical(csv, name), expected, check_dtype=True)
    pd.testing.assert_frame_equal(canonical(db, name), expected, check_dtype=True)


def test_typed_tables_follow_the_contract_kinds(frames):
    src = Source.from_frames(frames)
    schema = src.table("opportunities").schema()
    assert str(schema["created_at"]) == "timestamp"
    assert str(schema["close_date"]) == "date"
    assert str(schema["is_won"]) == "boolean"
    assert str(schema["amount"]) == "float64"
    assert str(src.table("web_traffic").schema()["sessions"]) == "int64"


def test_timestamps_with_and_without_offset_are_utc(tmp_path, frames):
    leads = frames["leads"].astype({"created_at": str})
    leads["created_at"] = ["2026-10-01T10:00:00+02:00", "2026-10-01 10:00:00", "2026-10-01T10:00:00Z"]
    frames["leads"] = leads
    src = open_source(write_folder(frames, tmp_path, "csv"))
    got = canonical(src, "leads")["created_at"].tolist()
    assert got == [pd.Timestamp("2026-10-01 08:00"), pd.Timestamp("2026-10-01 10:00"), pd.Timestamp("2026-10-01 10:00")]


def test_tz_aware_pandas_frames_are_converted_to_utc(frames):
    frames["leads"]["created_at"] = frames["leads"]["created_at"].dt.tz_convert("America/New_York")
    src = Source.from_frames(frames)
    assert canonical(src, "leads")["created_at"][0] == pd.Timestamp("2026-10-01 09:00")


@pytest.mark.parametrize("text,expected", [("true", True), ("false", False), ("1", True), ("0", False),
                                           ("TRUE", True), ("f", False)])
def test_booleans_from_text(tmp_path, frames, text, expected):
    opps = frames["opportunities"].astype({"is_won": object})
    opps["is_won"] = [text] * 3
    opps["is_closed"] = [True] * 3
    frames["opportunities"] = opps
    src = open_source(write_folder(frames, tmp_path, "csv"))
    assert canonical(src, "opportunities")["is_won"].tolist() == [expected] * 3


def test_missing_table_is_absent_not_an_error(tmp_path, frames):
    del frames["reviews"], frames["targets"]
    src = open_source(write_folder(frames, tmp_path))
    assert not src.has("reviews") and src.has("leads")
    assert src.absent == ["reviews", "targets"]
    with pytest.raises(SourceError, match=r"Table `reviews` is absent from folder"):
        src.table("reviews")


def test_missing_optional_column_becomes_a_typed_null_column(frames):
    frames["leads"] = frames["leads"].drop(columns=["mql_at", "segment"])
    t = Source.from_frames(frames).table("leads")
    assert str(t.schema()["mql_at"]) == "timestamp"
    assert t.to_pandas()["mql_at"].isna().all()


def test_extra_columns_are_kept(frames):
    frames["leads"]["utm_campaign"] = ["a", "b", "c"]
    assert "utm_campaign" in Source.from_frames(frames).table("leads").columns


def test_unknown_table_name_is_refused(frames):
    with pytest.raises(SourceError, match=r"Unknown table `lead`; canonical names are: leads, "):
        Source.from_frames(frames).table("lead")


def test_nonexistent_source_says_what_to_do(tmp_path):
    with pytest.raises(SourceError, match=r"Source `.*nope` not found: give a folder of Parquet/CSV files"):
        open_source(tmp_path / "nope")


def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(SourceError, match=r"No canonical tables in folder"):
        open_source(tmp_path)


def test_partitioned_parquet_folder(tmp_path, frames):
    write_folder(frames, tmp_path)
    (tmp_path / "leads.parquet").unlink()
    (tmp_path / "leads").mkdir()
    frames["leads"].iloc[:2].to_parquet(tmp_path / "leads" / "part-0.parquet", index=False)
    frames["leads"].iloc[2:].to_parquet(tmp_path / "leads" / "part-1.parquet", index=False)
    assert len(canonical(open_source(tmp_path), "leads")) == 3


def test_fingerprint_changes_when_data_change(tmp_path, frames):
    write_folder(frames, tmp_path)
    before = open_source(tmp_path).fingerprint()
    assert open_source(tmp_path).fingerprint() == before
    frames["leads"].iloc[:2].to_parquet(tmp_path / "leads.parquet", index=False)
    assert open_source(tmp_path).fingerprint() != before


def test_duckdb_file_and_url(tmp_path, frames):
    path = write_duckdb(frames, tmp_path / "crm.duckdb")
    by_url = open_source(f"duckdb://{path}")
    assert by_url.names == list(TABLES)
    assert len(canonical(by_url, "opportunities")) == 3


def test_url_password_is_hidden_in_errors():
    with pytest.raises(SourceError) as info:
        open_source("postgres://bob:secret@127.0.0.1:1/nodb")
    assert "secret" not in str(info.value) and "bob:***@" in str(info.value)


@pytest.mark.postgres
def test_postgres_gives_the_same_tables_and_problems(pg_url, tmp_path, frames):
    from revops_lib.validation import validate

    from conftest import NOW, load_postgres

    frames["opportunities"].loc[1, "amount"] = -5.0
    pg = open_source(load_postgres(pg_url, frames, "src_identity"))
    pq = open_source(write_folder(frames, tmp_path))
    assert pg.names == list(TABLES)
    for name in TABLES:
        pd.testing.assert_frame_equal(canonical(pg, name), canonical(pq, name), check_dtype=False)
    assert [str(p) for p in validate(pg, now=NOW).problems] == [str(p) for p in validate(pq, now=NOW).problems]


# ---------------------------------------------------------------------------
# Folder layouts: what is read, what is refused
# ---------------------------------------------------------------------------

def test_broken_link_where_a_table_file_should_be(tmp_path, frames):
    write_folder(frames, tmp_path)
    (tmp_path / "leads.parquet").unlink()
    (tmp_path / "leads.parquet").symlink_to(tmp_path / "gone.parquet")
    with pytest.raises(SourceError, match=rf"^Table file `{tmp_path / 'leads.parquet'}` is a broken link\.$"):
        open_source(tmp_path)


def test_symlink_loop_where_a_table_file_should_be(tmp_path, frames):
    write_folder(frames, tmp_path)
    (tmp_path / "leads.parquet").unlink()
    (tmp_path / "leads.csv").symlink_to(tmp_path / "leads.csv")
    with pytest.raises(SourceError, match=rf"^Table file `{tmp_path / 'leads.csv'}` is a symlink loop\.$"):
        open_source(tmp_path)


@pytest.mark.parametrize("entry", ["leads.parquet", "leads"])
def test_directory_without_parquet_parts_is_refused(tmp_path, frames, entry):
    write_folder(frames, tmp_path)
    (tmp_path / "leads.parquet").unlink()
    (tmp_path / entry).mkdir()
    (tmp_path / entry / "_SUCCESS").touch()
    (tmp_path / entry / "notes.txt").touch()
    what = "file" if entry.endswith(".parquet") else "folder"
    with pytest.raises(SourceError, match=rf"^Table {what} `{tmp_path / entry}` is a directory without Parquet parts\.$"):
        open_source(tmp_path)


def test_directory_named_like_a_csv_file_is_refused(tmp_path, frames):
    write_folder(frames, tmp_path)
    (tmp_path / "reviews.parquet").unlink()
    (tmp_path / "reviews.csv").mkdir()
    with pytest.raises(SourceError, match=r"^Table file `.*reviews\.csv` is a directory, not a CSV file\.$"):
        open_source(tmp_path)


def test_links_to_real_files_and_unrelated_folders_are_fine(tmp_path, frames):
    write_folder(frames, tmp_path / "store")
    (tmp_path / "src").mkdir()
    for name in TABLES:
        (tmp_path / "src" / f"{name}.parquet").symlink_to(tmp_path / "store" / f"{name}.parquet")
    (tmp_path / "src" / "archive").mkdir()  # not a table name
    assert open_source(tmp_path / "src").names == list(TABLES)


def spark_folder(folder, df, parts=((0, 2), (2, 3))):
    """`folder` written the way Spark writes a table: part files, _SUCCESS, .crc files, _committed_ markers."""
    folder.mkdir(parents=True)
    for i, (a, b) in enumerate(parts):
        part = f"part-{i:05d}-1b2c3d4e-c000.snappy.parquet"
        df.iloc[a:b].to_parquet(folder / part, index=False)
        (folder / f".{part}.crc").write_bytes(b"\x00crc")
    (folder / "_SUCCESS").touch()
    (folder / "_committed_123").write_text("{}")
    (folder / "_temporary").mkdir()
    (folder / "_temporary" / "part-9.parquet").write_bytes(b"not parquet")


def test_spark_style_parquet_folder(tmp_path, frames):
    write_folder(frames, tmp_path)
    (tmp_path / "leads.parquet").unlink()
    spark_folder(tmp_path / "leads.parquet", frames["leads"])
    src = open_source(tmp_path)
    assert canonical(src, "leads")["lead_id"].tolist() == ["L1", "L2", "L3"]
    assert [p.name for p in src.files["leads"]] == ["part-00000-1b2c3d4e-c000.snappy.parquet",
                                                     "part-00001-1b2c3d4e-c000.snappy.parquet"]


def test_spark_style_partitioned_folder_without_extension(tmp_path, frames):
    write_folder(frames, tmp_path)
    (tmp_path / "leads.parquet").unlink()
    spark_folder(tmp_path / "leads", frames["leads"], parts=((0, 3),))
    assert len(canonical(open_source(tmp_path), "leads")) == 3


def test_hive_partition_folders_give_their_columns(tmp_path, frames):
    write_folder(frames, tmp_path)
    (tmp_path / "leads.parquet").unlink()
    leads = frames["leads"]
    for segment, g in leads.groupby("segment"):
        (tmp_path / "leads" / f"segment={segment}").mkdir(parents=True)
        g.drop(columns=["segment"]).to_parquet(tmp_path / "leads" / f"segment={segment}" / "part-0.parquet",
                                               index=False)
    (tmp_path / "leads" / "_SUCCESS").touch()
    got = canonical(open_source(tmp_path), "leads")
    assert got["segment"].tolist() == ["smb", "smb", "enterprise"]
    pd.testing.assert_frame_equal(got, canonical(Source.from_frames(frames), "leads"))


@pytest.mark.parametrize("other", ["leads.parquet", "leads"])
def test_csv_beside_parquet_is_refused(tmp_path, frames, other):
    write_folder(frames, tmp_path)
    frames["leads"].to_csv(tmp_path / "leads.csv", index=False)
    if other == "leads":
        (tmp_path / "leads.parquet").rename(tmp_path / "part-0.parquet")
        (tmp_path / "leads").mkdir()
        (tmp_path / "part-0.parquet").rename(tmp_path / "leads" / "part-0.parquet")
    shown = "`leads/`" if other == "leads" else "`leads.parquet`"
    with pytest.raises(SourceError, match=rf"^Table `leads` has both `leads\.csv` and {shown} in `.*`; keep one\.$"):
        open_source(tmp_path)


def test_one_layout_per_table_is_fine(tmp_path, frames):
    write_folder(frames, tmp_path)
    frames["leads"].to_csv(tmp_path / "leads.csv", index=False)
    (tmp_path / "leads.parquet").unlink()
    (tmp_path / "leads").mkdir()  # an empty folder beside the CSV is not a second layout
    src = open_source(tmp_path)
    assert src.files["leads"] == [tmp_path / "leads.csv"]


# ---------------------------------------------------------------------------
# Long labels are cut in the typed view
# ---------------------------------------------------------------------------

def test_long_labels_are_cut_in_the_typed_view(tmp_path, frames):
    frames["leads"].loc[0, "source"] = "é" * 500_000  # a 1 MB label: characters, not bytes, are counted
    frames["leads"].loc[1, "source"] = "s" * 200
    frames["opportunities"].loc[2, "stage"] = "proposal " * 40
    frames["leads"].loc[2, "lead_id"] = "L" * 300  # ids are never cut
    for src in (Source.from_frames(frames), open_source(write_folder(frames, tmp_path, "csv"))):
        leads = canonical(src, "leads")
        assert leads["source"].tolist() == ["é" * 199 + "…", "s" * 200, "referral"]
        assert leads["lead_id"].str.len().tolist() == [2, 2, 300]
        assert canonical(src, "opportunities")["stage"].tolist() == [
            "closed_won", "closed_lost", ("proposal " * 40)[:199] + "…"]
        assert src.raw("leads").to_pandas()["source"].str.len().max() == 500_000  # the data stay as stored


def test_engine_memory_limit_and_spill_folder(tmp_path, monkeypatch, frames):
    """Every DuckDB connection of the kit has a memory limit and spills into a folder of its own process."""
    from revops_lib.errors import SourceError
    from revops_lib.sources import DEFAULT_ENGINE_MEMORY, ENGINE_MEMORY_ENV, ENGINE_TMP_ENV, duckdb_config

    write_folder(frames, tmp_path / "data")
    monkeypatch.delenv(ENGINE_MEMORY_ENV, raising=False)
    monkeypatch.setenv(ENGINE_TMP_ENV, str(tmp_path / "spill"))
    assert duckdb_config()["memory_limit"] == DEFAULT_ENGINE_MEMORY == "384MB"
    con = open_source(tmp_path / "data").con
    limit, folder = con.raw_sql("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    assert limit == "366.2 MiB"  # 384 MB
    assert folder == str(tmp_path / "spill" / f"revops-engine-{os.getpid()}")
    monkeypatch.setenv(ENGINE_MEMORY_ENV, "2GB")
    con = open_source(frames).con
    assert con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0] == "1.8 GiB"
    monkeypatch.setenv(ENGINE_MEMORY_ENV, "lots; SET x=1")
    with pytest.raises(SourceError, match=r"REVOPS_ENGINE_MEMORY = .* is not a memory size: give e.g. 512MB"):
        open_source(tmp_path / "data")


def test_ids_landed_as_floats_read_as_whole_numbers():
    """A numeric id stored as a float (HubSpot's ids through a warehouse, a column with gaps) reads 880001, not
    880001.0; a fractional value keeps its digits, a missing one stays missing."""
    import ibis

    from revops_lib.sources import coerce

    t = ibis.memtable(pd.DataFrame({"x": [880001.0, None, 12.5, -3.0, float(2**60)]}))
    got = coerce(t.x, "string", backend="duckdb").name("x")
    out = t.select(got).to_pandas()["x"].tolist()
    assert out[0] == "880001" and out[3] == "-3"
    assert out[1] is None or pd.isna(out[1])
    assert out[2] == "12.5"
    assert out[4] == "1.152921504606847e+18"  # beyond 2**53 a float is no exact id: left as the engine writes it
