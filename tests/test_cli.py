"""The `revops` command: help texts, exit statuses and messages."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from conftest import valid_frames, write_folder


def revops(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "revops_lib.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def test_top_level_help_lists_the_commands():
    r = revops("--help")
    assert r.returncode == 0
    for word in ("demo-data", "validate", "report", "examples:", "postgres://"):
        assert word in r.stdout


@pytest.mark.parametrize("command,options", [
    ("demo-data", ["--out", "--seed", "--scale", "--end"]),
    ("validate", ["--source", "--tables", "--strict", "Exit status 1"]),
    ("report", ["--period", "--source", "--notebooks", "--out", "--jobs", "-p NAME VALUE", "--force"]),
])
def test_each_command_explains_its_options(command, options):
    r = revops(command, "--help")
    assert r.returncode == 0
    for opt in options:
        assert opt in r.stdout, f"`revops {command} --help` does not mention {opt}"


def test_validate_passes_on_good_data(tmp_path):
    r = revops("validate", "--source", write_folder(valid_frames(), tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK: 0 errors, 0 warnings" in r.stdout


def test_validate_names_table_column_count_and_ids(tmp_path):
    """Leads without `source` and with a duplicated `lead_id`, an opportunity with a negative amount."""
    frames = valid_frames()
    leads = frames["leads"].drop(columns=["source"])
    frames["leads"] = pd.concat([leads, leads.iloc[[2]]], ignore_index=True)
    frames["opportunities"].loc[0, "amount"] = -100.0
    r = revops("validate", "--source", write_folder(frames, tmp_path))
    assert r.returncode == 1
    assert "ERROR   leads.source: missing required column `source`" in r.stdout
    assert "ERROR   leads.lead_id: duplicate id: 1 value repeated (2 rows; e.g. L3)" in r.stdout
    assert "ERROR   opportunities.amount: negative values (1 row; e.g. O1)" in r.stdout
    assert "FAILED: 3 errors" in r.stdout


def test_validate_warnings_only_exit_zero_unless_strict(tmp_path):
    frames = valid_frames()
    frames["opportunities"].loc[0, "type"] = "upsell"
    src = write_folder(frames, tmp_path)
    assert revops("validate", "--source", src).returncode == 0
    assert revops("validate", "--source", src, "--strict").returncode == 1


def test_validate_refuses_unknown_table_names(tmp_path):
    src = write_folder(valid_frames(), tmp_path)
    r = revops("validate", "--source", src, "--tables", "leads, leadz")
    assert r.returncode == 2
    assert "revops validate: error: Unknown table name(s) `leadz` to validate; canonical names are: leads," in r.stderr
    assert "OK" not in r.stdout
    assert revops("validate", "--source", src, "--tables", "leads, targets").returncode == 0


def test_missing_source_is_a_clear_error(tmp_path):
    r = revops("validate", "--source", tmp_path / "nope")
    assert r.returncode == 2
    assert "revops validate: error: Source" in r.stderr and "revops demo-data --out" in r.stderr


def test_bad_period_label_is_a_clear_error(tmp_path):
    r = revops("report", "--period", "2026-13", "--source", write_folder(valid_frames(), tmp_path))
    assert r.returncode == 2
    assert "Cannot read period `2026-13`" in r.stderr


def test_report_refuses_invalid_data_and_keeps_the_last_good_report(tmp_path):
    frames = valid_frames()
    frames["opportunities"].loc[0, "amount"] = -1.0
    src = write_folder(frames, tmp_path / "data")
    good = tmp_path / "reports" / "2026-10" / "data_quality.html"
    good.parent.mkdir(parents=True)
    good.write_text("last good report")
    r = revops("report", "--period", "2026-10", "--source", src, "--out", tmp_path / "reports")
    assert r.returncode == 1
    assert "ERROR   opportunities.amount: negative values" in r.stderr
    assert "no report was built" in r.stderr
    assert good.read_text() == "last good report"
    assert sorted(p.name for p in good.parent.iterdir()) == ["data_quality.html"]


def test_report_refuses_non_finite_money_and_repeated_csv_headers(tmp_path):
    frames = valid_frames()
    frames["opportunities"]["amount"] = ["12000", "Infinity", "1e13"]
    src = write_folder(frames, tmp_path / "data", fmt="csv")
    (src / "reviews.csv").write_text("review_id,posted_at,rating,rating\nR1,2026-10-28,5,1\n")
    r = revops("report", "--period", "2026-10", "--source", src, "--out", tmp_path / "reports")
    assert r.returncode == 1
    assert "ERROR   opportunities.amount: values that are not finite numbers (NaN or ±infinity) (1 row; e.g. O2)" in r.stderr
    assert "ERROR   opportunities.amount: values larger than 1,000,000,000,000 in absolute value" in r.stderr
    assert "ERROR   reviews.rating: the header of `" in r.stderr
    assert "no report was built" in r.stderr
    assert not (tmp_path / "reports" / "2026-10").exists()


def test_unknown_notebook_is_named(tmp_path):
    r = revops("report", "--notebooks", "funnel_conversions", "--source", write_folder(valid_frames(), tmp_path))
    assert r.returncode == 2
    assert "Unknown notebook(s) `funnel_conversions`" in r.stderr


def test_param_values_are_read_as_the_notebook_declares_them():
    """-p values stay text until the notebook's declaration types them: `2026` stays a period label."""
    from revops_lib.cli import _parse_params
    from revops_lib.periods import parse_period
    from revops_lib.runner.build import task_parameters
    from revops_lib.runner.registry import NOTEBOOKS_DIR

    got = _parse_params([("stale_days", "60"), ("as_of", "2026-11-05"), ("currency", "EUR")])
    assert got == {"stale_days": "60", "as_of": "2026-11-05", "currency": "EUR"}
    prm = task_parameters("data_quality", parse_period("2026-10"), got, source="/data")
    assert prm["stale_days"] == 60 and prm["as_of"] == "2026-11-05" and prm["currency"] == "EUR"
    assert prm["period"] == "2026-10" and prm["source"] == "/data"
    assert (NOTEBOOKS_DIR / "data_quality.ipynb").is_file()
