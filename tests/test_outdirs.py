"""Output folders (revops_lib.outdirs): demo-data and reports never write over the user's data.

Read-only folders: root writes through permission bits and ``os.access`` says
yes to it, so when the tests run as root the read-only case is simulated by
making ``os.access`` answer as it would for another user (the check is what
is tested; a real write is never attempted). Those tests call ``cli.main`` in
the process so that the simulation applies; an exception escaping ``main``
(a traceback) fails them.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from revops_lib import demo, outdirs
from revops_lib.cli import main
from revops_lib.errors import OutputError, RevOpsError

from conftest import need, valid_frames, write_folder

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SMALL = ["--scale", "0.02", "--end", "2026-11-01"]  # a demo build in well under a second
END = dt.date(2026, 11, 1)


def revops(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "revops_lib.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def snapshot(root: Path) -> dict:
    """Every path under ``root`` with its bytes (None for folders)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


@pytest.fixture
def user_folder(tmp_path):
    """A folder of the user's own data, not made by demo-data."""
    folder = tmp_path / "my_crm_export"
    (folder / "sub").mkdir(parents=True)
    (folder / "precious.xlsx").write_bytes(b"PK\x03\x04 quarterly numbers")
    (folder / "sub" / "notes.txt").write_text("do not lose")
    return folder


@pytest.fixture
def read_only(monkeypatch):
    """Make a folder read-only for the current user (simulated for root, see the module docstring)."""
    made = []

    def make(folder: Path) -> Path:
        folder.chmod(0o555)
        made.append(folder)
        if IS_ROOT:
            real = os.access

            def access(path, mode, *args, **kwargs):
                if Path(path) == folder and mode & os.W_OK:
                    return False
                return real(path, mode, *args, **kwargs)

            monkeypatch.setattr(outdirs.os, "access", access)
        return folder

    yield make
    for folder in made:
        folder.chmod(0o755)


# --------------------------------------------------------------------------- demo-data: what is refused

def test_user_folder_is_left_byte_identical_and_the_message_names_what_is_there(tmp_path, user_folder):
    before = snapshot(tmp_path)
    r = revops("demo-data", "--out", "my_crm_export", *SMALL, cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert ("`my_crm_export` is not empty and was not made by `revops demo-data` (it holds precious.xlsx and sub/): "
            "give a new or empty folder, or delete it yourself.") in r.stderr
    assert snapshot(tmp_path) == before  # nothing changed, no temporary folder left


def test_a_long_listing_names_a_few_and_counts_the_rest(user_folder):
    for name in ("a.csv", "b.csv", "c.csv"):
        (user_folder / name).write_text("x")
    with pytest.raises(OutputError, match=r"it holds a\.csv, b\.csv, c\.csv and 2 more\)"):
        outdirs.check_demo_folder(user_folder)


def test_demo_folder_with_files_demo_data_did_not_write_is_refused(tmp_path):
    out = tmp_path / "demo"
    demo.build(out, scale=0.02, end=END)
    (out / "my_notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match=r"`.*demo` was made by `revops demo-data` but also holds files it did "
                                          r"not write \(my_notes\.txt\)"):
        demo.build(out, scale=0.02, end=END)
    assert snapshot(tmp_path) == before


def test_a_marker_demo_data_did_not_write_does_not_count(user_folder):
    (user_folder / ".revops-demo").write_text("hello")
    with pytest.raises(OutputError, match="was not made by `revops demo-data`"):
        outdirs.check_demo_folder(user_folder)


@pytest.mark.parametrize("out, says", [
    (".", "is the current folder"),
    ("..", "is an ancestor of the current folder"),
    ("../..", "is an ancestor of the current folder"),
    ("/", "is the filesystem root"),
    ("~", "is your home folder"),
])
def test_current_ancestor_home_and_root_folders_are_refused(tmp_path, out, says):
    home = tmp_path / "home"
    cwd = home / "work" / "project" / "empty"  # empty: even an empty current folder cannot be replaced
    cwd.mkdir(parents=True)
    before = snapshot(tmp_path)
    r = revops("demo-data", "--out", out, *SMALL, cwd=cwd, env={"HOME": str(home)})
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert f"`{out}` {says}" in r.stderr and "new or empty folder" in r.stderr
    assert snapshot(tmp_path) == before


def test_an_existing_file_is_refused_with_exit_2(tmp_path):
    (tmp_path / "export.csv").write_text("id\n1\n")
    r = revops("demo-data", "--out", tmp_path / "export.csv", *SMALL)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "export.csv` is a file, not a folder" in r.stderr
    assert (tmp_path / "export.csv").read_text() == "id\n1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]


def test_a_folder_inside_a_file_is_refused(tmp_path):
    (tmp_path / "export.csv").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        outdirs.check_demo_folder(tmp_path / "export.csv" / "demo")


def test_read_only_parent_is_refused_with_exit_2(tmp_path, read_only, capsys):
    parent = tmp_path / "locked"
    parent.mkdir()
    read_only(parent)
    assert main(["demo-data", "--out", str(parent / "demo"), *SMALL]) == 2
    err = capsys.readouterr().err
    assert f"`{parent / 'demo'}` cannot be written: `{parent}` is read-only for you" in err
    assert list(parent.iterdir()) == []


def test_read_only_ancestor_of_a_new_path_is_refused(tmp_path, read_only):
    locked = tmp_path / "locked"
    locked.mkdir()
    read_only(locked)
    with pytest.raises(OutputError, match=r"cannot be written: `.*locked` is read-only"):
        outdirs.check_demo_folder(locked / "a" / "b" / "demo")


# --------------------------------------------------------------------------- demo-data: what is accepted

def test_new_empty_and_earlier_demo_folders_are_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    for out in ("new/nested/demo", "empty", "empty"):  # the last one: an earlier demo folder
        r = revops("demo-data", "--out", out, *SMALL, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        marker = outdirs.read_demo_marker(tmp_path / out)
        assert marker["seed"] == 42 and marker["scale"] == 0.02 and marker["end"] == "2026-11-01"
        assert set(marker["files"]) == {p.name for p in (tmp_path / out).iterdir()} - {".revops-demo"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "new"]  # no temporary folder left


def test_an_earlier_demo_folder_behind_a_link_is_replaced_without_leftovers(tmp_path):
    demo.build(tmp_path / "real", scale=0.02, end=END)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    demo.build(tmp_path / "link", seed=5, scale=0.02, end=END)
    assert outdirs.read_demo_marker(tmp_path / "link")["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


# --------------------------------------------------------------------------- demo-data: failures leave nothing

@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_build_leaves_no_temporary_folder(tmp_path, monkeypatch, error):
    out = tmp_path / "demo"
    demo.build(out, scale=0.02, end=END)
    before = snapshot(tmp_path)

    def boom(self):
        (self.folder / "leads.parquet").write_bytes(b"half")
        raise error

    monkeypatch.setattr(demo._Company, "run", boom)
    with pytest.raises(type(error)):
        demo.build(out, scale=0.02, end=END)
    assert snapshot(tmp_path) == before
    with pytest.raises(type(error)):
        demo.build(tmp_path / "fresh", scale=0.02, end=END)
    assert snapshot(tmp_path) == before


def test_ctrl_c_in_the_command_exits_130_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo._Company, "run", interrupted)
    assert main(["demo-data", "--out", str(tmp_path / "demo"), *SMALL]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_final_rename_puts_the_earlier_folder_back(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    demo.build(out, scale=0.02, end=END)
    before = snapshot(tmp_path)
    real = os.replace
    calls = []

    def replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the earlier folder is set aside; moving the new one in fails
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        demo.build(out, seed=9, scale=0.02, end=END)
    assert snapshot(tmp_path) == before


def test_files_that_land_in_the_folder_during_the_build_are_kept(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    out.mkdir()
    run = demo._Company.run

    def meanwhile(self):
        counts = run(self)
        (out / "report.xlsx").write_text("saved while the build ran")
        return counts

    monkeypatch.setattr(demo._Company, "run", meanwhile)
    with pytest.raises(OutputError, match=r"not empty .* \(it holds report\.xlsx\)"):
        demo.build(out, scale=0.02, end=END)
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]
    assert [p.name for p in out.iterdir()] == ["report.xlsx"]


def test_output_error_is_a_revops_error():
    assert issubclass(OutputError, RevOpsError)


# --------------------------------------------------------------------------- reports

def test_report_out_that_is_a_file_is_refused_with_exit_2(tmp_path):
    src = write_folder(valid_frames(), tmp_path / "data")
    (tmp_path / "reports").write_text("not a folder")
    r = revops("report", "--period", "2026-10", "--source", src, "--out", tmp_path / "reports")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "reports` is a file, not a folder" in r.stderr
    assert (tmp_path / "reports").read_text() == "not a folder"


def test_report_out_read_only_folder_is_refused_with_exit_2(tmp_path, read_only, capsys):
    src = write_folder(valid_frames(), tmp_path / "data")
    out = tmp_path / "reports"
    out.mkdir()
    read_only(out)
    assert main(["report", "--period", "2026-10", "--source", str(src), "--out", str(out)]) == 2
    assert f"`{out}` is read-only for you: give a folder you can write to." in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_report_out_may_hold_earlier_reports_and_other_files(tmp_path):
    out = tmp_path / "reports"
    (out / "2026-09").mkdir(parents=True)
    (out / "2026-09" / "manifest.json").write_text("{}")
    (out / "README.md").write_text("generated reports land here")
    assert outdirs.check_report_folder(out) == out
    assert outdirs.check_report_folder(tmp_path / "new" / "reports") == tmp_path / "new" / "reports"
    assert not (tmp_path / "new").exists()  # the check writes nothing


def test_report_out_current_folder_empty_or_with_earlier_reports_is_fine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert outdirs.check_report_folder(".") == tmp_path
    (tmp_path / "2026-10").mkdir()
    (tmp_path / "2026-10" / "manifest.json").write_text("{}")
    assert outdirs.check_report_folder(".") == tmp_path


def test_report_out_current_folder_with_other_files_is_refused(tmp_path, user_folder, monkeypatch):
    monkeypatch.chdir(user_folder)
    with pytest.raises(OutputError, match=r"`\.` is the current folder \(.*\) and holds other files "
                                          r"\(precious\.xlsx and sub/\), not earlier reports"):
        outdirs.check_report_folder(".")
    monkeypatch.chdir(user_folder / "sub")
    with pytest.raises(OutputError, match="is an ancestor of the current folder"):
        outdirs.check_report_folder("..")


def test_report_out_root_and_home_are_refused(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(OutputError, match="is your home folder"):
        outdirs.check_report_folder("~")
    with pytest.raises(OutputError, match="is the filesystem root"):
        outdirs.check_report_folder("/")


def test_report_out_with_an_index_html_of_someone_else_is_refused(tmp_path):
    from revops_lib.runner.index import write_index

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html>my web site</html>")
    with pytest.raises(OutputError, match="holds an `index.html` that revops-kit did not write"):
        outdirs.check_report_folder(site)
    ours = tmp_path / "reports"
    write_index(ours)
    assert outdirs.check_report_folder(ours) == ours


# --------------------------------------------------------------------------- the Makefile

@pytest.fixture
def make_copy(tmp_path):
    """The Makefile in a scratch folder with a stand-in ``.venv/bin/revops`` that logs its arguments."""
    need(shutil.which("make"), "make is not installed")
    root = tmp_path / "kit"
    bin_ = root / ".venv" / "bin"
    bin_.mkdir(parents=True)
    shutil.copy(REPO / "Makefile", root / "Makefile")
    (root / "pyproject.toml").write_text("")
    for name in ("revops", "python"):
        (bin_ / name).write_text(f'#!/bin/sh\necho "$*" >> "{root}/calls.log"\n'
                                 'if [ "$1" = demo-data ]; then mkdir -p "$3"; fi\n')
        (bin_ / name).chmod(0o755)
    stamp = root / ".venv" / ".setup-stamp"
    stamp.touch()
    later = (root / "pyproject.toml").stat().st_mtime + 10
    os.utime(stamp, (later, later))
    return root


def _make(root, *args):
    r = subprocess.run(["make", "-s", *args], cwd=root, capture_output=True, text=True)
    log = root / "calls.log"
    return r, (log.read_text().splitlines() if log.exists() else [])


@pytest.mark.parametrize("target", ["reports", "validate", "backfill", "weekly", "quarterly", "lab"])
def test_make_with_a_missing_data_folder_stops_and_builds_nothing(make_copy, target):
    r, calls = _make(make_copy, target, "DATA=my_crm_export", "FROM=2026-01", "TO=2026-02")
    assert r.returncode != 0
    assert f"DATA=my_crm_export does not exist; `make {target}` builds demo data only into data/demo" in r.stderr
    assert calls == []
    assert not (make_copy / "my_crm_export").exists()


def test_make_reports_on_an_existing_folder_only_reads_it(make_copy):
    data = make_copy / "my_crm_export"
    data.mkdir()
    (data / "precious.xlsx").write_text("mine")
    r, calls = _make(make_copy, "reports", "DATA=my_crm_export")
    assert r.returncode == 0, r.stderr
    assert calls == ["report --source my_crm_export --out reports"]
    assert sorted(p.name for p in data.iterdir()) == ["precious.xlsx"]


def test_make_builds_demo_data_only_into_data_demo(make_copy):
    r, calls = _make(make_copy, "reports")
    assert r.returncode == 0, r.stderr
    assert calls == ["demo-data --out data/demo", "report --source data/demo --out reports"]
    r, calls = _make(make_copy, "demo-data", "DATA=elsewhere")
    assert r.returncode != 0 and "`make demo-data` builds demo data only into data/demo" in r.stderr
    assert not (make_copy / "elsewhere").exists()


def test_make_help_still_lists_the_targets(make_copy):
    r, calls = _make(make_copy, "help", "DATA=nowhere")
    assert r.returncode == 0 and "reports" in r.stdout and "any other DATA must exist" in r.stdout
    assert calls == []


def test_help_texts_describe_the_rule():
    demo_help = " ".join(revops("demo-data", "--help").stdout.split())
    assert "a new or empty folder, or one an earlier `revops demo-data` made" in demo_help
    assert "refused and left untouched" in demo_help
    report_help = " ".join(revops("report", "--help").stdout.split())
    assert "earlier reports in it are kept" in report_help and "Refused: a file, a read-only folder" in report_help


def test_an_os_error_while_writing_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    def disk_full(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(demo._Company, "run", disk_full)
    assert main(["demo-data", "--out", str(tmp_path / "demo"), *SMALL]) == 2
    assert "Writing the demo data to " in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
