"""Hostile and careless input, end to end: the `revops` command against what users and data smuggle in.

- ``test_catalog``: a table of hostile and careless inputs (data that break the contract, folder
  layouts, parameters, ``--notebooks``, output folders, demo-data targets, source URLs with secrets).
  Each case runs the real command and asserts its exit status, that the message names the table,
  column, parameter or path, that no Python traceback is shown, that a previously published report
  is byte-identical afterwards, that the input folder is unchanged, that nothing was left in TMPDIR
  and that no smuggled command ran.
- ``test_planted_payloads_*``: the five real reports built from demo data with script, link, markdown
  and formula payloads in every label column; loaded in headless Chromium (network blocked), they
  must not run anything, and their published CSVs must neutralise formula cells.
- ``test_two_builds_*``: two builds of the same data give byte-identical CSVs and the same HTML
  except the generation time.
- Runs that collide or vanish: two runs into one ``--out``, SIGTERM, no temporary file outliving a
  run (SIGKILL leftovers removed by the next run), a source password that never reaches a file.

The catalog runs each command in a fresh process forked from a server that has imported the kit
once (``RevopsServer``): the child calls ``revops_lib.cli.main(argv)`` and exits with its status,
as the ``revops`` console script does, with its own working folder, environment and stdout/stderr
files. That keeps ~130 cases fast on a 2-core machine; ``REVOPS_HOSTILE_COLD=1`` runs every case
as ``python -m revops_lib.cli`` instead.

Unit tests of the same promises are in tests/test_safety.py.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nbformat.v4 import new_code_cell

from conftest import need, valid_frames, write_folder
from test_report import make_notebook

ROOT = Path(__file__).resolve().parents[1]
PERIOD = "2026-10"
DEMO_END = "2026-11-01"
TRACEBACK = "Traceback (most recent call last)"
SECRET = "S3cr3t-pa55"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# ---------------------------------------------------------------------------------------------
# Running the command
# ---------------------------------------------------------------------------------------------

def base_env(**extra) -> dict:
    """The environment of a command: this checkout first on PYTHONPATH (the kernels import the kit
    from it), no REVOPS_* variable of the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVOPS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update({k: str(v) for k, v in extra.items()})
    return env


#: A fork server: imports the kit once, then forks one child per request; the child runs
#: ``revops_lib.cli.main(argv)`` as the console script does and exits with its status. A request may
#: patch the runner's notebooks and parameters folders and its list of reports (tiny test notebooks).
SERVER = r'''
import json, os, sys, traceback
import revops_lib.runner.build as runner_build
runner_build._skip_slow_optional_imports()
import revops_lib.cli as cli
import revops_lib.demo, revops_lib.outdirs, revops_lib.runner.parameters, revops_lib.metrics.quality
import revops_lib.schema, revops_lib.validation, revops_lib.sources, revops_lib.runner.runfiles
from revops_lib.runner import registry
import duckdb, ibis, nbformat, pandas, papermill, pyarrow.parquet
import threading
if threading.active_count() != 1:
    raise SystemExit("threads before fork: %r" % threading.enumerate())
replies = os.fdopen(os.dup(1), "w")
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        rc = 1
        try:
            os.close(replies.fileno())
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
                f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(f, fd)
                os.close(f)
            sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
            sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
            os.chdir(req["cwd"])
            os.environ.clear()
            os.environ.update(req["env"])
            import tempfile
            tempfile.tempdir = None  # read TMPDIR again
            kit = req.get("kit")
            if kit:
                from pathlib import Path
                registry.NOTEBOOKS_DIR, registry.PARAMETERS_DIR = Path(kit["notebooks"]), Path(kit["parameters"])
                registry.REPORTS = {n: registry.Report(n, t, "revops_lib.present.section")
                                    for n, t in kit["reports"].items()}
            sys.argv = ["revops", *req["argv"]]
            try:
                rc = cli.main(req["argv"])
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if not isinstance(exc.code, int) and exc.code is not None:
                    print(exc.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
                rc = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(rc if isinstance(rc, int) else 1)
    _, status = os.waitpid(pid, 0)
    replies.write(json.dumps({"rc": os.waitstatus_to_exitcode(status)}) + "\n")
    replies.flush()
'''

#: ``python -c KIT_MAIN NOTEBOOKS PARAMETERS revops-args…``: the real ``cli.main`` (SIGTERM handler,
#: exit statuses) running the tiny test notebooks of tests/test_report.py instead of the kit's reports.
KIT_MAIN = """import sys
from pathlib import Path
from revops_lib import cli
from revops_lib.runner import registry
registry.NOTEBOOKS_DIR, registry.PARAMETERS_DIR = Path(sys.argv[1]), Path(sys.argv[2])
registry.REPORTS = {n: registry.Report(n, t, "revops_lib.present.section")
                    for n, t in {"alpha": "Alpha report", "beta": "Beta report"}.items()}
sys.exit(cli.main(sys.argv[3:]))
"""


@dataclass
class Ran:
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def __str__(self) -> str:
        return f"exit {self.rc}\n--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-3000:]}"


class RevopsServer:
    """Runs `revops …` commands (see the module docstring)."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.cold = os.environ.get("REVOPS_HOSTILE_COLD") == "1"
        self.n = 0
        self.proc = None
        if not self.cold:
            self.proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, env=base_env(), cwd=ROOT)

    def __call__(self, *argv, cwd: Path, env: dict | None = None, kit: dict | None = None,
                 timeout: float = 600) -> Ran:
        argv = [str(a) for a in argv]
        env = env or base_env()
        if self.cold:
            cmd = ([sys.executable, "-c", KIT_MAIN, kit["notebooks"], kit["parameters"], *argv] if kit
                   else [sys.executable, "-m", "revops_lib.cli", *argv])
            r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
            return Ran(r.returncode, r.stdout, r.stderr)
        self.n += 1
        out, err = self.scratch / f"{self.n}.out", self.scratch / f"{self.n}.err"
        req = {"argv": argv, "cwd": str(cwd), "env": env, "stdout": str(out), "stderr": str(err)}
        if kit:
            req["kit"] = kit
        assert self.proc.poll() is None, "the revops fork server stopped"
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"revops {' '.join(argv)} did not finish in {timeout} s"
        rc = json.loads(self.proc.stdout.readline())["rc"]
        return Ran(rc, out.read_text(errors="replace"), err.read_text(errors="replace"))

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def revops(tmp_path_factory):
    server = RevopsServer(tmp_path_factory.mktemp("revops-io"))
    yield server
    server.close()


# ---------------------------------------------------------------------------------------------
# Snapshots
# ---------------------------------------------------------------------------------------------

def snapshot(root: Path) -> dict[str, str]:
    """Every file (hashed), folder and link (its target) under ``root``; links are not followed."""
    root = Path(root)
    if root.is_symlink():
        return {".": "link:" + os.readlink(root)}
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    if not root.exists():
        return {}
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        out[d.relative_to(root).as_posix() + "/"] = "dir"
        for name in dirnames + filenames:
            p = d / name
            key = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[key] = "link:" + os.readlink(p)
            elif p.is_file():
                out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def hidden_leftovers(out: Path) -> list[str]:
    """Hidden files and folders under an output folder (staging, partial, old), but the lock file."""
    return sorted(p.relative_to(out).as_posix() for p in Path(out).rglob(".*") if p.name != ".revops.lock")


# ---------------------------------------------------------------------------------------------
# A previously published report
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def published(tmp_path_factory, revops):
    """The previously published report that every catalog case must leave byte-identical: the real
    data_quality report of the valid frames (one notebook, so the catalog stays out of the slow tests)."""
    base = tmp_path_factory.mktemp("published")
    src = write_folder(valid_frames(), base / "data")
    out, tmpdir = base / "reports", base / "tmp"
    tmpdir.mkdir()
    r = revops("report", "--period", PERIOD, "--source", src, "--out", out, "--notebooks", "data_quality",
               "--jobs", "1", cwd=base, env=base_env(TMPDIR=tmpdir))
    assert r.rc == 0, r
    assert (out / PERIOD / "data_quality.html").is_file() and (out / "index.html").is_file()
    assert (out / PERIOD / "tables" / "data_quality" / "table_overview.csv").is_file()
    return out


# ---------------------------------------------------------------------------------------------
# The catalog
# ---------------------------------------------------------------------------------------------

class Ctx:
    """What a case builds its input in: a folder of its own, the published reports, watched inputs."""

    def __init__(self, tmp: Path, published: Path):
        self.tmp = tmp
        self.published = published
        self.cwd = tmp / "cwd"
        self.cwd.mkdir()
        self.tmpdir = tmp / "tmpdir"
        self.tmpdir.mkdir()
        self.env: dict = {}
        self.watch: list[Path] = []  # inputs that must be unchanged afterwards
        self.cleanups: list[Callable] = []

    def watched(self, path: Path) -> Path:
        self.watch.append(path)
        return path

    def frames(self, change: Callable | None = None, name: str = "data") -> Path:
        """A source folder (Parquet) of ``valid_frames()`` after ``change(frames)``."""
        frames = valid_frames()
        if change:
            change(frames)
        return self.watched(write_folder(frames, self.tmp / name))

    def csv_table(self, table: str, change: Callable | None = None, text: str | None = None) -> Path:
        """A source folder whose ``table`` is a CSV file (the valid rows after ``change(df)``, as text,
        or ``text`` itself); the other tables are Parquet."""
        frames = valid_frames()
        df = frames.pop(table).astype(object)
        path = write_folder(frames, self.tmp / "data")
        if text is None:
            if change:
                change(df)
            text = df.to_csv(index=False)
        (path / f"{table}.csv").write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        return self.watched(path)

    def report(self, src, *extra) -> list:
        return ["report", "--period", PERIOD, "--source", src, "--out", self.published, "--jobs", "1", *extra]

    def validate(self, src, *extra) -> list:
        return ["validate", "--source", src, *extra]


@dataclass
class Case:
    kind: str
    name: str
    build: Callable[[Ctx], list]  # returns the command's arguments
    rc: int
    says: tuple = ()  # what the output must name (table.column, parameter, path …)
    absent: tuple = ()  # what the output must never show (secrets, smuggled values)
    marks: tuple = ()
    after: Callable | None = None  # extra checks: after(ctx, ran)

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.name}"


def setv(table, column, value, row=0):
    """A change of ``valid_frames()``: one cell of a table."""
    def change(frames):
        df = frames[table]
        if isinstance(value, str) and df[column].dtype != object:
            df[column] = df[column].astype(object)
        df.loc[row, column] = value
    return change


def cell(column, value, row=0):
    """A change of a table's object frame before it is written as CSV."""
    def change(df):
        df.loc[row, column] = value
    return change


def both(*changes):
    def change(frames):
        for c in changes:
            c(frames)
    return change


def drop(table, column):
    def change(frames):
        frames[table] = frames[table].drop(columns=[column])
    return change


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def day(text: str):
    return pd.Timestamp(text).date()


def check(tables: str, *changes) -> Callable[[Ctx], list]:
    """`revops validate --tables TABLES` of the valid frames after ``changes`` (Parquet)."""
    return lambda ctx: ctx.validate(ctx.frames(both(*changes)), "--tables", tables)


def check_csv(table: str, column: str, text: str, row: int = 0) -> Callable[[Ctx], list]:
    """`revops validate --tables TABLE` of the valid frames with TABLE as CSV holding ``text`` in one cell."""
    return lambda ctx: ctx.validate(ctx.csv_table(table, cell(column, text, row)), "--tables", table)


def run(*changes) -> Callable[[Ctx], list]:
    """`revops report` into the published reports, from the valid frames after ``changes`` (Parquet)."""
    return lambda ctx: ctx.report(ctx.frames(both(*changes)))


def run_csv(table: str, column: str, text: str, row: int = 0) -> Callable[[Ctx], list]:
    """`revops report` into the published reports, with TABLE as CSV holding ``text`` in one cell."""
    return lambda ctx: ctx.report(ctx.csv_table(table, cell(column, text, row)))


def ieee_nan_mrr(ctx: Ctx) -> list:
    """subscriptions.mrr holding an IEEE NaN in Parquet (pandas would write a null)."""
    path = ctx.frames()
    t = pq.read_table(path / "subscriptions.parquet")
    mrr = pa.array([1000.0, float("nan"), 500.0], type=pa.float64(), from_pandas=False)
    pq.write_table(t.set_column(t.schema.get_field_index("mrr"), "mrr", mrr), path / "subscriptions.parquet")
    return ctx.report(path)


def many_rows(table: str, n: int, **values) -> Callable:
    def change(frames):
        df = frames[table]
        rows = pd.concat([df.iloc[[0]]] * n, ignore_index=True)
        for k, v in values.items():
            rows[k] = v(n) if callable(v) else v
        frames[table] = rows
    return change


def planned_report(ctx: Ctx) -> list:
    """A full data_quality run on data with a subscription that starts next year (into a new --out)."""
    src = ctx.frames(setv("subscriptions", "start_date", pd.Timestamp("2099-01-01").date(), 0))
    return ["report", "--period", PERIOD, "--source", src, "--out", ctx.tmp / "reports", "--notebooks",
            "data_quality", "--jobs", "1"]


def planned_shown(ctx: Ctx, ran: Ran) -> None:
    html = (ctx.tmp / "reports" / PERIOD / "data_quality.html").read_text()
    assert "planned_future" in html and "starts after today (planned)" in html
    assert hidden_leftovers(ctx.tmp / "reports") == []


def spark_folder(ctx: Ctx) -> list:
    path = ctx.frames()
    (path / "leads.parquet").rename(path / "part-00000-x.snappy.parquet")
    (path / "leads.parquet").mkdir()
    (path / "part-00000-x.snappy.parquet").rename(path / "leads.parquet" / "part-00000-x.snappy.parquet")
    (path / "leads.parquet" / "_SUCCESS").touch()
    (path / "leads.parquet" / ".part-00000-x.snappy.parquet.crc").write_bytes(b"crc")
    return ctx.validate(path)


def hive_folder_with_loop(ctx: Ctx) -> list:
    path = ctx.frames()
    part = path / "leads" / "segment=smb"
    part.mkdir(parents=True)
    frames = valid_frames()
    frames["leads"].drop(columns=["segment"]).to_parquet(part / "part-0.parquet", index=False)
    (path / "leads.parquet").unlink()
    (path / "leads" / "loop").symlink_to(path / "leads")  # a link back to the table folder
    return ctx.validate(path)


def layout(make: Callable[[Path], None], command: str = "validate") -> Callable[[Ctx], list]:
    def build(ctx: Ctx) -> list:
        path = ctx.frames()
        make(path)
        return ctx.report(path) if command == "report" else ctx.validate(path, "--tables", "leads")
    return build


def _dir_as_parquet(p: Path) -> None:
    (p / "leads.parquet").unlink()
    (p / "leads.parquet").mkdir()


def _loop(p: Path) -> None:
    (p / "leads.parquet").unlink()
    (p / "leads.parquet").symlink_to(p / "leads.parquet")


def _broken_csv_link(p: Path) -> None:
    (p / "leads.parquet").unlink()
    (p / "leads.csv").symlink_to(p / "nowhere.csv")


def _csv_beside(p: Path) -> None:
    pd.read_parquet(p / "leads.parquet").to_csv(p / "leads.csv", index=False)


def _dir_as_csv(p: Path) -> None:
    (p / "leads.parquet").unlink()
    (p / "leads.csv").mkdir()


def _garbage_parquet(p: Path) -> None:
    (p / "opportunities.parquet").write_bytes(b"PAR1 this is not a parquet file at all \x00\x01\x02" * 20)


def _latin1_csv(p: Path) -> None:
    (p / "leads.parquet").unlink()
    (p / "leads.csv").write_bytes("lead_id,created_at,source\nL1,2026-10-01,caf\xe9\n".encode("latin-1"))


def _fifo(p: Path) -> None:  # reading it would block forever
    (p / "leads.parquet").unlink()
    os.mkfifo(p / "leads.parquet")


def not_duckdb(url: bool) -> Callable[[Ctx], list]:
    def build(ctx: Ctx) -> list:
        f = ctx.watched(ctx.tmp / "crm.duckdb")
        f.write_bytes(b"SQLite format 3\x00" + bytes(4000))
        return ["validate", "--source", f"duckdb://{f}" if url else f]
    return build


def garbage_duckdb(ctx: Ctx) -> list:
    f = ctx.watched(ctx.tmp / "crm.duckdb")
    f.write_bytes(bytes(range(256)) * 20)
    return ["validate", "--source", f]


def _empty_csv(p: Path) -> None:
    (p / "leads.parquet").unlink()
    (p / "leads.csv").write_bytes(b"")


def _header_only_csv(p: Path) -> None:
    (p / "leads.parquet").unlink()
    (p / "leads.csv").write_text("lead_id,created_at,source\n")


def with_header_copy(table: str, column: str, copy: str, command: str = "report") -> Callable[[Ctx], list]:
    """A CSV whose header names ``column`` again (as ``copy``, e.g. another case), with other values."""
    def build(ctx: Ctx) -> list:
        df = valid_frames()[table].astype(object)
        df.insert(len(df.columns), "__copy__", df[column].astype(str) + "x")
        text = df.to_csv(index=False).replace("__copy__", copy, 1)
        src = ctx.csv_table(table, text=text)
        return ctx.report(src) if command == "report" else ctx.validate(src, "--tables", table)
    return build


def params(*pairs, notebooks="data_quality") -> Callable[[Ctx], list]:
    def build(ctx: Ctx) -> list:
        src = ctx.frames()
        extra = [x for name, value in pairs for x in ("-p", name, value)]
        return ctx.report(src, "--notebooks", notebooks, *extra)
    return build


def report_args(*extra) -> Callable[[Ctx], list]:
    def build(ctx: Ctx) -> list:
        return ["report", "--source", ctx.frames(), "--out", ctx.published, *extra]
    return build


def nothing_ran(ctx: Ctx, ran: Ran) -> None:
    """No smuggled `touch pwned` ran: not in the case's folders, the kit's notebooks/ or the checkout."""
    for where in (ctx.tmp, ROOT / "notebooks", ROOT):
        assert not list(Path(where).glob("**/pwned" if where == ctx.tmp else "pwned")), f"pwned file in {where}"


# --- output folders and demo-data targets

def out_file(command):
    def build(ctx: Ctx) -> list:
        f = ctx.watched(ctx.tmp / "notes.txt")
        f.write_text("my notes")
        return out_args(ctx, command, f)
    return build


def out_args(ctx: Ctx, command: str, out) -> list:
    if command == "demo-data":
        return ["demo-data", "--out", out, "--scale", "0.01", "--end", DEMO_END]
    return ["report", "--period", PERIOD, "--source", ctx.frames(), "--out", out, "--jobs", "1"]


def out_user_folder(command):
    def build(ctx: Ctx) -> list:
        d = ctx.watched(ctx.tmp / "my_folder")
        d.mkdir()
        (d / "budget.xlsx").write_bytes(b"PK\x03\x04 not really")
        (d / "notes").mkdir()
        (d / "notes" / "a.txt").write_text("a")
        return out_args(ctx, command, d)
    return build


def out_cwd(command, with_files=True):
    def build(ctx: Ctx) -> list:
        ctx.watched(ctx.cwd)
        if with_files:
            (ctx.cwd / "thesis.tex").write_text("\\documentclass{article}")
        return out_args(ctx, command, ".")
    return build


def out_parent(command):
    def build(ctx: Ctx) -> list:
        (ctx.cwd / "sub").mkdir()
        ctx.cwd = ctx.cwd / "sub"
        (ctx.tmp / "cwd" / "keep.txt").write_text("keep")
        ctx.watched(ctx.tmp / "cwd")
        return out_args(ctx, command, "..")
    return build


def out_home(command):
    def build(ctx: Ctx) -> list:
        home = ctx.watched(ctx.tmp / "home")
        home.mkdir()
        (home / ".bashrc").write_text("# mine")
        ctx.env["HOME"] = home
        return out_args(ctx, command, "~")
    return build


def out_root(command):
    return lambda ctx: out_args(ctx, command, "/")


def read_only(ctx: Ctx, folder: Path) -> None:
    """Make a folder read-only for the user running the tests. Root writes through permission bits, so
    for root the folder is made immutable (``chattr +i``), which the kernel enforces for root too."""
    if IS_ROOT:
        made = shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
        need(made and not made.returncode, "root writes into read-only folders, and this file system has no chattr +i")
        ctx.cleanups.append(lambda: subprocess.run(["chattr", "-i", str(folder)], check=True))
    else:
        folder.chmod(0o555)
        ctx.cleanups.append(lambda: folder.chmod(0o755))


def out_read_only(command):
    def build(ctx: Ctx) -> list:
        d = ctx.watched(ctx.tmp / "ro")
        d.mkdir()
        args = out_args(ctx, command, d)
        read_only(ctx, d)
        return args
    return build


def out_foreign_index(ctx: Ctx) -> list:
    d = ctx.watched(ctx.tmp / "site")
    d.mkdir()
    (d / "index.html").write_text("<html><body>my homepage</body></html>")
    return out_args(ctx, "report", d)


def out_broken_link(command):
    def build(ctx: Ctx) -> list:
        link = ctx.watched(ctx.tmp / "gone")
        link.symlink_to(ctx.tmp / "missing-target")
        return out_args(ctx, command, link)
    return build


def out_source(inside: bool) -> Callable[[Ctx], list]:
    def build(ctx: Ctx) -> list:
        src = ctx.frames()
        return ["report", "--period", PERIOD, "--source", src, "--out", src / "reports" if inside else src]
    return build


def out_below_file(ctx: Ctx) -> list:
    f = ctx.watched(ctx.tmp / "file.txt")
    f.write_text("x")
    return out_args(ctx, "report", f / "reports")


def demo_with_extra_file(ctx: Ctx) -> list:
    d = ctx.tmp / "demo"
    from revops_lib.outdirs import write_demo_marker

    d.mkdir()
    (d / "leads.parquet").write_bytes(b"old demo")
    write_demo_marker(d, seed=1, scale=0.01, end=DEMO_END, months=36)
    (d / "my_analysis.ipynb").write_text("{}")  # added by the user later
    ctx.watched(d)
    return out_args(ctx, "demo-data", d)


def demo_fake_marker(ctx: Ctx) -> list:
    d = ctx.watched(ctx.tmp / "project")
    d.mkdir()
    (d / ".revops-demo").write_text('{"made_by": "someone else", "files": ["thesis.tex"]}')
    (d / "thesis.tex").write_text("x")
    return out_args(ctx, "demo-data", d)


def demo_into_published(ctx: Ctx) -> list:
    return out_args(ctx, "demo-data", ctx.published)


def demo_into_source(ctx: Ctx) -> list:
    return out_args(ctx, "demo-data", ctx.frames())


def no_demo_written(ctx: Ctx, ran: Ran) -> None:
    """Refused before building: no partial demo folder beside the target, no table anywhere."""
    assert not list(ctx.tmp.glob(".*.partial")) and not list(ctx.tmp.rglob("leads.parquet"))


# --- sources and secrets

def secret_report(url: str) -> Callable[[Ctx], list]:
    return lambda ctx: ["report", "--period", PERIOD, "--source", url, "--out", ctx.published, "--jobs", "1"]


def secret_in_env(ctx: Ctx) -> list:
    ctx.env["REVOPS_SOURCE"] = f"postgres://ana:{SECRET}@127.0.0.1:1/crm?connect_timeout=2"
    return ["validate"]


def missing_duckdb(ctx: Ctx) -> list:
    return ["validate", "--source", f"duckdb://{ctx.tmp / 'typo.duckdb'}"]


def duckdb_not_created(ctx: Ctx, ran: Ran) -> None:
    assert not (ctx.tmp / "typo.duckdb").exists(), "a duckdb:// source created a database file"


PG = "postgres://ana:{}@127.0.0.1:1/crm?connect_timeout=2"

CASES = [
    # --- data contract: numbers that are not numbers, broken headers, values of the wrong kind -----------
    Case("data", "csv-amount-NaN", run_csv("opportunities", "amount", "NaN", row=1), 1,
         ("opportunities.amount", "not finite", "no report was built")),
    Case("data", "csv-amount-Infinity", check_csv("opportunities", "amount", "Infinity"), 1,
         ("opportunities.amount", "not finite")),
    Case("data", "csv-amount-1e309", check_csv("opportunities", "amount", "1e309"), 1,
         ("ERROR   opportunities.amount: values that are not finite",)),
    Case("data", "csv-amount-minus-inf", check_csv("transactions", "amount", "-inf"), 1,
         ("ERROR   transactions.amount: values that are not finite",)),
    Case("data", "parquet-amount-inf", run(setv("opportunities", "amount", float("inf"))), 1,
         ("opportunities.amount", "not finite", "no report was built")),
    Case("data", "parquet-mrr-ieee-nan", ieee_nan_mrr, 1, ("subscriptions.mrr", "not finite")),
    Case("data", "amount-1e308", run(setv("opportunities", "amount", 1e308, 2)), 1,
         ("opportunities.amount", "larger than 1,000,000,000,000")),
    Case("data", "amounts-whose-sum-overflows",
         check("opportunities", setv("opportunities", "amount", 1.7e308, 0), setv("opportunities", "amount", 1.7e308, 1)),
         1, ("ERROR   opportunities.amount: values larger than", "2 rows")),
    Case("data", "spend-1e13", check("marketing_spend", setv("marketing_spend", "spend", 1e13)), 1,
         ("marketing_spend.spend", "the money bound")),
    Case("data", "mrr-just-above-bound", check("subscriptions", setv("subscriptions", "mrr", 1.0000001e12)), 1,
         ("subscriptions.mrr", "larger than")),
    Case("data", "target-infinity", check_csv("targets", "target", "inf"), 1, ("targets.target", "not finite")),
    Case("data", "csv-header-names-a-column-twice", with_header_copy("leads", "source", "source"), 1,
         ("leads.source", "names `source` 2 times", "no report was built")),
    Case("data", "csv-header-twice-other-case", with_header_copy("opportunities", "amount", "AMOUNT", "validate"), 1,
         ("opportunities.amount", "2 times")),
    Case("data", "csv-extra-column-twice-is-a-warning",
         lambda c: c.validate(c.csv_table("leads", text="lead_id,created_at,source,notes,notes\n"
                                                        "L1,2026-10-01,web,a,b\n")), 0,
         ("WARNING leads.notes", "2 times", "OK: 0 errors")),
    Case("data", "missing-required-column", run(drop("leads", "source")), 1, ("leads.source", "missing required column")),
    Case("data", "text-in-money", check_csv("opportunities", "amount", "twelve k"), 1,
         ("opportunities.amount", "not a valid float")),
    Case("data", "count-inf", check_csv("web_traffic", "sessions", "inf"), 1, ("web_traffic.sessions", "not a valid int")),
    Case("data", "count-fraction", check_csv("email_campaigns", "clicks", "1.5"), 1,
         ("email_campaigns.clicks", "not a valid int")),
    Case("data", "count-1e30", check_csv("web_traffic", "visitors", "1e30"), 1, ("web_traffic.visitors", "not a valid int")),
    Case("data", "negative-spend", check("marketing_spend", setv("marketing_spend", "spend", -5.0)), 1,
         ("marketing_spend.spend", "negative")),
    Case("data", "rating-out-of-range", check("reviews", setv("reviews", "rating", 9)), 1,
         ("reviews.rating", "outside 1–5")),
    Case("data", "end-before-start", check("subscriptions", setv("subscriptions", "end_date", day("2024-01-01"), 2)), 1,
         ("subscriptions.end_date", "before `start_date`")),
    Case("data", "won-but-not-closed", check("opportunities", setv("opportunities", "is_closed", False)), 1,
         ("opportunities.is_won", "won but not closed")),
    Case("data", "invalid-period-label",
         check("forecast_snapshots", setv("forecast_snapshots", "forecast_period", "2026-13")), 1,
         ("forecast_snapshots.forecast_period", "2026-13")),
    Case("data", "event-in-the-future", run(setv("leads", "created_at", utc("2099-01-01"))), 1,
         ("leads.created_at", "in the future")),
    Case("data", "duplicate-ids-that-are-emails",
         check("leads", setv("leads", "lead_id", "ana@example.com", 0), setv("leads", "lead_id", "ana@example.com", 1)), 1,
         ("leads.lead_id", "duplicate id")),
    Case("data", "null-in-required", check("leads", setv("leads", "source", None, 1)), 1,
         ("leads.source", "null in a required column")),
    Case("data", "timestamp-text-yesterday", check_csv("leads", "created_at", "yesterday"), 1,
         ("leads.created_at", "not a valid timestamp")),
    Case("data", "boolean-maybe", check_csv("opportunities", "is_won", "maybe"), 1,
         ("opportunities.is_won", "not a valid bool")),
    # --- data contract: careless but acceptable (warnings: exit 0, named) ------------------------------------
    Case("warning", "subscription-starts-after-today",
         check("subscriptions", setv("subscriptions", "start_date", day("2099-01-01"))), 0,
         ("WARNING subscriptions.start_date: starts after today (planned)", "OK: 0 errors, 1 warning")),
    Case("warning", "subscription-starts-after-today-report-runs", planned_report, 0,
         ("Validation: 0 errors, 1 warning", "Done: 1 built"), marks=(pytest.mark.notebook, pytest.mark.slow),
         after=planned_shown),
    Case("warning", "1MB-label", check("leads", setv("leads", "source", "<script>alert(1)</script>" + "A" * 1_000_000)), 0,
         ("WARNING leads.source: labels longer than 200 characters", "e.g. L1", "OK: 0 errors"),
         ("A" * 300, "<script>alert(1)</script>AAAA")),
    Case("warning", "orphan-history",
         check("opportunity_history", setv("opportunity_history", "opportunity_id", "O-GONE", 3)), 0,
         ("WARNING opportunity_history.opportunity_id", "not found in `opportunities`")),
    Case("warning", "orphan-opportunity-account",
         check("opportunities", setv("opportunities", "account_id", "A-GONE", 1)), 0,
         ("WARNING opportunities.account_id", "not among the accounts")),
    Case("warning", "orphan-activities", check("activities", setv("activities", "opportunity_id", "O9")), 0,
         ("WARNING activities.opportunity_id",)),
    Case("warning", "unexpected-deal-type", check("opportunities", setv("opportunities", "type", "upsell")), 0,
         ("WARNING opportunities.type", "values other than")),
    Case("warning", "stage-times-out-of-order", check("leads", setv("leads", "mql_at", utc("2026-09-01"))), 0,
         ("WARNING leads.mql_at", "earlier than `created_at`")),
    Case("warning", "header-only-csv", layout(_header_only_csv), 0, ("WARNING leads: the table has no rows",)),
    Case("warning", "emails-as-owner-names",
         check("opportunities", setv("opportunities", "owner", "ana@example.com", 0),
               setv("opportunities", "owner", "bo@example.com", 1)), 0, ("OK: 0 errors, 0 warnings",)),
    Case("warning", "script-and-formula-labels-are-data",
         check("leads,opportunities", setv("leads", "source", "<img src=x onerror=alert(1)>"),
               setv("opportunities", "owner", '=HYPERLINK("http://x","y")')), 0, ("OK: 0 errors, 0 warnings",)),
    # --- folder layouts: weak spots of a folder source ---------------------------------------------------------
    Case("layout", "directory-named-leads.parquet", layout(_dir_as_parquet), 2,
         ("leads.parquet", "directory without Parquet parts")),
    Case("layout", "symlink-loop-named-leads.parquet", layout(_loop, "report"), 2, ("leads.parquet", "symlink loop")),
    Case("layout", "broken-link-named-leads.csv", layout(_broken_csv_link), 2, ("leads.csv", "broken link")),
    Case("layout", "spark-style-part-files", spark_folder, 0, ("leads (3)", "OK: 0 errors")),
    Case("layout", "hive-partitions-and-a-link-loop", hive_folder_with_loop, 0, ("leads (3)", "OK: 0 errors")),
    Case("layout", "leads.csv-beside-leads.parquet", layout(_csv_beside, "report"), 2,
         ("`leads.csv` and `leads.parquet`", "keep one")),
    Case("layout", "folder-named-leads.csv", layout(_dir_as_csv), 2, ("leads.csv", "is a directory")),
    Case("layout", "garbage-named-opportunities.parquet", layout(_garbage_parquet, "report"), 2,
         ("Cannot read table `opportunities`", "opportunities.parquet")),
    Case("layout", "latin-1-csv", layout(_latin1_csv), 2, ("Cannot read table `leads`", "leads.csv")),
    Case("layout", "fifo-named-leads.parquet", layout(_fifo), 2, ("leads.parquet", "not a regular file")),
    Case("layout", "a-sqlite-file-named-.duckdb", not_duckdb(url=False), 2, ("Cannot open DuckDB file", "crm.duckdb"),
         ("http://", "https://")),
    Case("layout", "garbage-named-.duckdb", garbage_duckdb, 2, ("Cannot open DuckDB file", "crm.duckdb")),
    Case("layout", "duckdb-url-to-a-sqlite-file", not_duckdb(url=True), 2, ("Cannot connect to `duckdb://", "crm.duckdb"),
         ("http://", "https://")),  # nothing is fetched from the internet (an extension for SQLite)
    Case("layout", "empty-csv-file", layout(_empty_csv), 1, ("leads.lead_id", "missing required column")),
    Case("layout", "source-missing", lambda c: c.validate(c.tmp / "no_such_folder"), 2,
         ("no_such_folder", "not found")),
    Case("layout", "source-empty-folder", lambda c: c.validate(c.watched(c.tmp)), 2, ("No canonical tables",)),
    Case("layout", "source-a-text-file",
         lambda c: (c.tmp.joinpath("notes.txt").write_text("x"), c.validate(c.watched(c.tmp / "notes.txt")))[1], 2,
         ("notes.txt", "not found")),
    Case("layout", "validate-tables-leadz", lambda c: c.validate(c.frames(), "--tables", "leads,leadz"), 2,
         ("`leadz`", "canonical names are")),
    Case("layout", "validate-tables-empty-name", lambda c: c.validate(c.frames(), "--tables", "leads,,opportunitiez"), 2,
         ("`opportunitiez`",)),
    # --- parameters: code and typos on the command line ------------------------------------------------------
    Case("param", "code-in-a-parameter-name", params(("x=__import__('os').system('touch pwned');y", "1")), 2,
         ("is not a name",), after=nothing_ran),
    Case("param", "code-in-a-parameter-value", params(("currency", "__import__('os').system('touch pwned')")), 2,
         ("`currency`",), after=nothing_ran),
    Case("param", "yaml-object-in-a-list-value",
         params(("stages", '!!python/object/apply:os.system ["touch pwned"]'), notebooks="funnel_conversion"), 2,
         ("`stages`", "is not a list"), after=nothing_ran),
    Case("param", "unknown-name-stale_dayz", params(("stale_dayz", "30")), 2,
         ("`stale_dayz`", "did you mean `stale_days`?")),
    Case("param", "unknown-name-for-the-selected-notebook", params(("confidence", "0.9")), 2,
         ("`confidence`", "no selected notebook declares it")),
    Case("param", "stale_days-abc", params(("stale_days", "abc")), 2,
         ("`stale_days` = 'abc' is not a whole number", "`data_quality`")),
    Case("param", "stale_days-1e309", params(("stale_days", "1e309")), 2, ("`stale_days`", "whole number")),
    Case("param", "stale_days-1.5", params(("stale_days", "1.5")), 2, ("`stale_days`", "whole number")),
    Case("param", "output_dir-set-by-the-runner", params(("output_dir", "/etc")), 2,
         ("`output_dir` is set by the runner", "--out")),
    Case("param", "source-set-by-the-runner", params(("source", "/etc/passwd")), 2, ("`source` is set by the runner",)),
    Case("param", "period-set-by-the-runner", params(("period", "2026-11")), 2, ("`period` is set by the runner",)),
    Case("param", "privacy-nobody", params(("privacy", "nobody")), 2, ("`privacy`", "names, masked")),
    Case("param", "currency-markup", params(("currency", "<script>alert(1)</script>")), 2,
         ("`currency`", "three-letter")),
    Case("param", "as_of-next-tuesday", params(("as_of", "next tuesday")), 2, ("`as_of`", "date / time")),
    Case("param", "confidence-inf", params(("confidence", "inf"), notebooks="funnel_conversion"), 2,
         ("`confidence`", "finite")),
    Case("param", "confidence-nan", params(("confidence", "nan"), notebooks="funnel_conversion"), 2,
         ("`confidence`", "finite")),
    Case("param", "unicode-name", params(("ståle_days", "3")), 2, ("is not a name",)),
    Case("param", "as_of-that-does-not-exist", params(("as_of", "2026-02-30")), 2,
         ("`as_of` = '2026-02-30' is not a date or time that exists",)),
    Case("param", "fiscal-month-13", params(("fiscal_year_start_month", "13")), 2,
         ("`fiscal_year_start_month` = 13", "1 (January) to 12 (December)")),
    Case("param", "period-with-a-shell-command", report_args("--period", "2026-10; touch pwned"), 2,
         ("Cannot read period `2026-10; touch pwned`",), after=nothing_ran),
    Case("param", "period-month-13", report_args("--period", "2026-13"), 2, ("Cannot read period `2026-13`",)),
    Case("param", "from-without-to", report_args("--from", "2026-01"), 2, ("`--from`", "`--to`")),
    Case("param", "from-after-to", report_args("--from", "2026-10", "--to", "2026-01"), 2,
         ("`2026-10` comes after", "`2026-01`")),
    Case("param", "jobs-abc", report_args("--jobs", "abc"), 2, ("--jobs", "invalid int value")),
    # --- --notebooks: only report names run ------------------------------------------------------------------
    Case("notebooks", "absolute-path", report_args("--notebooks", "/some/path/evil"), 2,
         ("`--notebooks` takes report names, not paths", "'/some/path/evil'")),
    Case("notebooks", "relative-path", report_args("--notebooks", "../notebooks/data_quality"), 2, ("not paths",)),
    Case("notebooks", "ipynb-file-name", report_args("--notebooks", "data_quality.ipynb"), 2, ("not paths",)),
    Case("notebooks", "twice", report_args("--notebooks", "data_quality,data_quality"), 2,
         ("`data_quality` more than once",)),
    Case("notebooks", "empty", report_args("--notebooks", ""), 2, ("`--notebooks` names an empty report",)),
    Case("notebooks", "trailing-comma", report_args("--notebooks", "data_quality,"), 2, ("empty report",)),
    Case("notebooks", "typo", report_args("--notebooks", "funnel_conversions"), 2,
         ("Unknown notebook(s) `funnel_conversions`", "funnel_conversion")),
    # --- report --out: never over other data --------------------------------------------------------------------
    Case("out", "a-file", out_file("report"), 2, ("notes.txt", "is a file, not a folder")),
    Case("out", "the-current-folder-with-files", out_cwd("report"), 2, ("`.` is the current folder", "thesis.tex")),
    Case("out", "a-parent-of-the-current-folder", out_parent("report"), 2, ("`..` is an ancestor of the current folder",)),
    Case("out", "the-home-folder", out_home("report"), 2, ("`~` is your home folder",)),
    Case("out", "the-filesystem-root", out_root("report"), 2, ("`/` is the filesystem root",)),
    Case("out", "a-foreign-index.html", out_foreign_index, 2, ("index.html", "revops-kit did not write")),
    Case("out", "a-broken-link", out_broken_link("report"), 2, ("gone", "broken link")),
    Case("out", "below-a-file", out_below_file, 2, ("file.txt", "is a file")),
    Case("out", "empty-string", lambda c: out_args(c, "report", ""), 2, ("`out` must be a folder path",)),
    Case("out", "the-source-folder", out_source(inside=False), 2, ("is the source folder", "never go into the data")),
    Case("out", "inside-the-source-folder", out_source(inside=True), 2, ("is inside the source folder",)),
    Case("out", "read-only", out_read_only("report"), 2, ("ro` is read-only for you",)),
    # --- demo-data --out: never over user folders --------------------------------------------------------------
    Case("demo", "a-user-folder", out_user_folder("demo-data"), 2,
         ("my_folder", "not empty and was not made by `revops demo-data`", "budget.xlsx"), after=no_demo_written),
    Case("demo", "the-current-folder-empty", out_cwd("demo-data", with_files=False), 2, ("`.` is the current folder",)),
    Case("demo", "the-current-folder-with-files", out_cwd("demo-data"), 2, ("`.` is the current folder",)),
    Case("demo", "a-parent-folder", out_parent("demo-data"), 2, ("`..` is an ancestor of the current folder",)),
    Case("demo", "a-file", out_file("demo-data"), 2, ("notes.txt", "is a file, not a folder")),
    Case("demo", "the-home-folder", out_home("demo-data"), 2, ("`~` is your home folder",)),
    Case("demo", "the-filesystem-root", out_root("demo-data"), 2, ("`/` is the filesystem root",)),
    Case("demo", "the-published-reports", demo_into_published, 2, ("reports", "not empty and was not made by")),
    Case("demo", "a-data-source", demo_into_source, 2, ("data", "not empty and was not made by", "activities.parquet")),
    Case("demo", "its-own-folder-with-a-user-file", demo_with_extra_file, 2,
         ("also holds files it did not write", "my_analysis.ipynb")),
    Case("demo", "a-forged-marker", demo_fake_marker, 2, ("project", "not made by `revops demo-data`")),
    Case("demo", "a-broken-link", out_broken_link("demo-data"), 2, ("gone", "broken link")),
    Case("demo", "read-only", out_read_only("demo-data"), 2, ("ro` is read-only for you",)),
    Case("demo", "scale-nan", lambda c: ["demo-data", "--out", c.tmp / "d", "--scale", "nan"], 2, ("`scale`", "nan")),
    Case("demo", "scale-inf", lambda c: ["demo-data", "--out", c.tmp / "d", "--scale", "inf"], 2, ("`scale`",)),
    Case("demo", "end-in-the-future", lambda c: ["demo-data", "--out", c.tmp / "d", "--end", "2099-01-01"], 2,
         ("`end` 2099-01-01 is in the future",)),
    Case("demo", "seed-abc", lambda c: ["demo-data", "--out", c.tmp / "d", "--seed", "abc"], 2, ("--seed",)),
    # --- source URLs: secrets never shown ----------------------------------------------------------------------
    Case("secret", "password-in-url", secret_report(PG.format(SECRET)), 2,
         ("Cannot connect to `postgres://ana:***@127.0.0.1:1/crm",), (SECRET,)),
    Case("secret", "password-with-at-and-colon", secret_report(PG.format(f"p@ss:{SECRET}")), 2,
         ("ana:***@127.0.0.1",), (SECRET, "p@ss")),
    Case("secret", "password-query-parameter",
         secret_report(f"postgres://ana@127.0.0.1:1/crm?connect_timeout=2&password={SECRET}"), 2,
         ("password=***",), (SECRET,)),
    Case("secret", "token-query-parameter",
         lambda c: ["validate", "--source", f"postgres://ana@127.0.0.1:1/crm?connect_timeout=2&sslpassword={SECRET}"],
         2, ("sslpassword=***",), (SECRET,)),
    Case("secret", "password-in-REVOPS_SOURCE", secret_in_env, 2, ("ana:***@127.0.0.1",), (SECRET,)),
    Case("secret", "unparsable-url-with-password",
         lambda c: ["validate", "--source", f"postgres://ana:{SECRET}@[::1/crm"], 2, ("postgres://***",), (SECRET,)),
    Case("secret", "bad-port-with-password",
         lambda c: ["validate", "--source", f"postgres://ana:{SECRET}@db:99999/crm"], 2, ("postgres://***",), (SECRET,)),
    Case("secret", "unknown-scheme", lambda c: ["validate", "--source", f"evil://ana:{SECRET}@x/y"], 2,
         ("Cannot connect to `evil://ana:***@x/y`",), (SECRET,)),
    Case("secret", "duckdb-url-to-a-missing-file", missing_duckdb, 2, ("typo.duckdb", "not found"),
         after=duckdb_not_created),
]


def _case_params():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return [pytest.param(c, id=c.id, marks=list(c.marks)) for c in CASES]


def test_the_catalog_is_large_and_covers_every_kind():
    kinds = {c.kind for c in CASES}
    assert len(CASES) >= 60
    assert kinds == {"data", "warning", "layout", "param", "notebooks", "out", "demo", "secret"}


@pytest.mark.parametrize("case", _case_params())
def test_catalog(case: Case, revops, published, tmp_path):
    ctx = Ctx(tmp_path, published)
    try:
        check_case(case, ctx, revops, published)
    finally:
        for undo in ctx.cleanups:
            undo()


def check_case(case: Case, ctx: Ctx, revops, published: Path) -> None:
    argv = case.build(ctx)
    before_published = snapshot(published)
    before_inputs = {p: snapshot(p) for p in ctx.watch}
    env = base_env(TMPDIR=ctx.tmpdir, **ctx.env)
    ran = revops(*argv, cwd=ctx.cwd, env=env)

    assert ran.rc == case.rc, ran
    assert TRACEBACK not in ran.text, ran
    for words in case.says:
        assert words in ran.text, f"the output does not name {words!r}:\n{ran}"
    for words in case.absent:
        assert words not in ran.text, f"the output shows {words[:40]!r}:\n{ran}"
    assert len(ran.text) < 20_000, "the output is far too long"
    assert snapshot(published) == before_published, "a previously published report changed"
    for p, snap in before_inputs.items():
        assert snapshot(p) == snap, f"the input {p} changed"
    assert sorted(os.listdir(ctx.tmpdir)) == [], "temporary files outlived the run"
    assert not list(ctx.tmp.glob(".*.partial")), "a partial demo folder outlived the run"
    if case.after:
        case.after(ctx, ran)


# ---------------------------------------------------------------------------------------------
# Planted payloads: the five real reports built from demo data with payloads in every label column
# ---------------------------------------------------------------------------------------------

IMG = '<img src=x onerror="window.__pwned=1;alert(1)">'
SCRIPT = "</script><script>window.__pwned=2;alert(2)</script>"
SVG = '"><svg onload="window.__pwned=3;alert(3)">'
HOVER = '<b onmouseover="window.__pwned=4;alert(4)">smb</b>'
IFRAME = '<iframe src="javascript:window.__pwned=5;alert(5)"></iframe>'
ANCHOR = '<a href="http://evil.example/anchor">core</a>'
MDLINK = "[events](http://evil.example/md) ![x](http://evil.example/img.png)"
URL = "http://evil.example/bare"
JS_URL = "javascript:window.__pwned=6;alert(6)"
FORMULA = '=HYPERLINK("http://evil.example/formula","organic")'
OWNER_FORMULA = '=HYPERLINK("http://evil.example/owner","Chloe")'
PLUS = "+email+cmd|' /C calc'!A0"
MINUS = "-partner-cmd|' /C calc'!A0"
AT = "@SUM(1+1)*cmd|' /C calc'!A0"
TEAM_PLUS = "+mid_market_sales"
MATH = r"paid $\undefinedcommand{social}$ $5"
TEMPLATE = "{{7*7}} ${7*7} <%= 7*7 %> mid"
STYLE = "<style>body{display:none}</style>enterprise"
EMAIL = "ben.silva@example.com"
PLATFORM = "<img src=http://evil.example/g2.png>"
KIND = '<details open ontoggle="window.__pwned=8;alert(8)">call</details>'
LONG = "<script>window.__pwned=7</script>" + "A" * 1_000_000  # a 1 MB label
VICTIM = "victim.person@example.com"  # an e-mail address as a lead id

FORMULAS = (FORMULA, OWNER_FORMULA, PLUS, MINUS, AT, TEAM_PLUS)
MARKUP = (IMG, SCRIPT, SVG, HOVER, IFRAME, ANCHOR, STYLE, PLATFORM, KIND)

SOURCES = {"organic_search": FORMULA, "paid_search": IMG, "paid_social": MATH, "email": PLUS, "outbound": AT,
           "events": MDLINK, "referral": URL, "partner": MINUS}
SEGMENTS = {"smb": HOVER, "mid_market": TEMPLATE, "enterprise": STYLE}
OWNERS = {"Ava Garcia": SCRIPT, "Ben Silva": EMAIL, "Chloe Larsen": OWNER_FORMULA}
TEAMS = {"smb_sales": SVG, "mid_market_sales": TEAM_PLUS, "enterprise_sales": IFRAME}
PRODUCTS = {"core": ANCHOR, "analytics": JS_URL}

#: (table, column) -> value map; the same value gets the same payload in every table, so joins still match
PLANTED = {
    ("leads", "source"): SOURCES, ("opportunities", "source"): SOURCES, ("marketing_spend", "channel"): SOURCES,
    ("web_traffic", "source"): SOURCES,
    ("leads", "segment"): SEGMENTS, ("opportunities", "segment"): SEGMENTS, ("subscriptions", "segment"): SEGMENTS,
    ("opportunities", "owner"): OWNERS, ("activities", "owner"): OWNERS,
    ("opportunities", "team"): TEAMS, ("forecast_snapshots", "scope"): TEAMS,
    ("opportunities", "product"): PRODUCTS, ("subscriptions", "product"): PRODUCTS,
    ("reviews", "platform"): {"g2": PLATFORM}, ("activities", "type"): {"call": KIND},
}


def _rewrite(path: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Change a demo Parquet file in pandas and write it back with its own schema."""
    t = pq.read_table(path)
    df = change(t.to_pandas())
    pq.write_table(pa.Table.from_pandas(df, schema=t.schema, preserve_index=False), path)


def plant(folder: Path) -> None:
    """Payloads in every label column of a demo folder, an owner-level forecast scope, a slipped and a stale
    deal owned by a formula, a 1 MB label and an e-mail address as a lead id."""
    planted: set[str] = set()
    by_table: dict[str, list] = {}
    for (table, column), mapping in PLANTED.items():
        by_table.setdefault(table, []).append((column, mapping))
    for table, changes in by_table.items():
        def change(df, changes=changes):
            for column, mapping in changes:
                planted.update(v for k, v in mapping.items() if (df[column] == k).any())
                df[column] = df[column].replace(mapping)
            return df
        _rewrite(folder / f"{table}.parquet", change)
    assert planted == {v for m in PLANTED.values() for v in m.values()}, "a payload found no value to replace"

    def scopes(df):  # forecasts of two owners (a scope that is neither `company` nor a team is an owner)
        team = df[df.scope == SVG]
        return pd.concat([df, team.assign(scope=SCRIPT), team.assign(scope=OWNER_FORMULA)], ignore_index=True)

    _rewrite(folder / "forecast_snapshots.parquet", scopes)

    def deals(df):  # one deal due in the period and pushed out of it, one open deal untouched for months
        row = df.iloc[[0]]
        new = [row.assign(opportunity_id=oid, created_at=utc(created), close_date=day("2026-12-15"), is_closed=False,
                          is_won=False, amount=50_000.0, owner=OWNER_FORMULA, team=TEAM_PLUS, stage="proposal",
                          forecast_category="pipeline", type=kind)
               for oid, created, kind in (("O-SLIP", "2026-08-03", "new_business"), ("O-STALE", "2026-05-04", KIND))]
        return pd.concat([df, *new], ignore_index=True)

    def history(df):
        row = df.iloc[[0]]
        new = [row.assign(opportunity_id=oid, changed_at=utc(at), stage=stage, amount=50_000.0, close_date=day(close),
                          forecast_category="pipeline")
               for oid, at, stage, close in (("O-SLIP", "2026-08-03 10:00", "qualification", "2026-10-20"),
                                             ("O-SLIP", "2026-10-12 10:00", "proposal", "2026-12-15"),
                                             ("O-STALE", "2026-05-04 10:00", "proposal", "2026-12-15"))]
        return pd.concat([df, *new], ignore_index=True)

    _rewrite(folder / "opportunities.parquet", deals)
    _rewrite(folder / "opportunity_history.parquet", history)

    def leads(df):
        df.loc[0, "lead_id"] = VICTIM
        df.loc[0, "segment"] = LONG
        return df

    _rewrite(folder / "leads.parquet", leads)


@pytest.fixture(scope="module")
def planted(tmp_path_factory, revops):
    base = tmp_path_factory.mktemp("planted")
    r = revops("demo-data", "--out", base / "demo", "--scale", "0.05", "--seed", "7", "--end", DEMO_END, cwd=base)
    assert r.rc == 0, r
    plant(base / "demo")
    return base / "demo"


def build(revops, source: Path, out: Path) -> Path:
    """The five real reports of PERIOD (all must succeed); returns the output folder."""
    tmpdir = out.parent / f"{out.name}-tmp"
    tmpdir.mkdir()
    r = revops("report", "--period", PERIOD, "--source", source, "--out", out, "--jobs", "2", cwd=out.parent,
               env=base_env(TMPDIR=tmpdir))
    assert r.rc == 0, r
    assert "Done: 5 built" in r.err, r
    assert "labels longer than 200" not in r.err  # validation details stay in the data_quality report
    assert os.listdir(tmpdir) == [], "temporary files outlived the build"
    return out


@pytest.fixture(scope="module")
def build_a(tmp_path_factory, revops, planted):
    return build(revops, planted, tmp_path_factory.mktemp("build-a") / "reports")


@pytest.fixture(scope="module")
def build_b(tmp_path_factory, revops, planted):
    return build(revops, planted, tmp_path_factory.mktemp("build-b") / "reports")


def report_pages(out: Path) -> list[Path]:
    pages = [out / "index.html", *sorted((out / PERIOD).glob("*.html"))]
    assert len(pages) == 6, pages
    return pages


@pytest.mark.slow
@pytest.mark.notebook
def test_planted_payloads_are_escaped_in_every_report(build_a):
    text = {p.name: p.read_text() for p in report_pages(build_a)}
    for name, html in text.items():
        for payload in MARKUP:
            assert payload not in html, f"{name} carries {payload!r} as markup"
        assert EMAIL not in html and VICTIM not in html, f"{name} shows an e-mail address"
        assert "A" * 250 not in html, f"{name} carries the 1 MB label"
        assert len(html) < 3_000_000
    every = "".join(text.values())
    # the payloads did reach the reports, as text
    assert "&lt;img src=x onerror=" in text["funnel_conversion.html"]
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned=2" in every
    assert "&lt;svg onload=" in text["forecast_accuracy.html"]
    assert "evil.example/md" in text["funnel_conversion.html"] or "evil.example/md" in text["revops_scorecard.html"]


def csv_cells(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.notebook
def test_planted_formulas_are_neutralised_in_every_published_csv(build_a):
    tables = build_a / PERIOD / "tables"
    files = sorted(tables.rglob("*.csv"))
    assert len(files) > 30
    seen: dict[str, set[str]] = {}
    for f in files:
        for row in csv_cells(f):
            for value in row:
                if value.startswith(("=", "+", "-", "@", "\t", "\r")):
                    assert _number(value), f"{f.relative_to(tables)}: a spreadsheet would run {value!r}"
                if value.startswith("'") and value[1:] in FORMULAS:
                    seen.setdefault(f.relative_to(tables).as_posix(), set()).add(value[1:])
    expected = {
        "funnel_conversion/stage_conversion.csv": {FORMULA, PLUS, MINUS, AT},
        "funnel_conversion/stage_timing.csv": {FORMULA},
        "forecast_accuracy/accuracy.csv": {TEAM_PLUS, OWNER_FORMULA},
        "forecast_accuracy/summary_by_scope.csv": {TEAM_PLUS, OWNER_FORMULA},
        "forecast_accuracy/slippage.csv": {TEAM_PLUS, OWNER_FORMULA},
        "data_quality/stale_open_deals.csv": {OWNER_FORMULA},
    }
    for name, formulas in expected.items():
        assert formulas <= seen.get(name, set()), f"{name}: neutralised {seen.get(name)}, expected {formulas}"
    tests = csv_cells(tables / "funnel_conversion" / "source_tests.csv")
    assert any(v.startswith("'") and v[1:] in FORMULAS for row in tests[1:] for v in row), "source_tests.csv"


# --- the same reports in a real browser ----------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

#: Fire every handler an element could carry: a handler from the data would run now.
DISPATCH = """() => {
  const types = ['mouseover', 'mouseenter', 'mousemove', 'pointerover', 'focus', 'focusin', 'load', 'error',
                 'animationstart', 'transitionend', 'toggle', 'wheel'];
  for (const el of document.querySelectorAll('*'))
    for (const t of types) { try { el.dispatchEvent(new Event(t)); } catch (e) {} }
}"""

INSPECT = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('*'))
    for (const a of el.attributes) {
      if (a.name.toLowerCase().startsWith('on')) bad.push(el.tagName + ' ' + a.name + '=' + a.value);
      if (/^\\s*(javascript|vbscript|data:text\\/html)/i.test(a.value)) bad.push(el.tagName + ' ' + a.name + '=' + a.value);
    }
  const count = s => document.querySelectorAll(s).length;
  return {
    pwned: window.__pwned === undefined ? null : String(window.__pwned),
    bad,
    scripts: count('script'), frames: count('iframe, frame, object, embed'), forms: count('form, base'),
    foreignSvg: Array.from(document.querySelectorAll('svg')).filter(s => s.getAttribute('role') !== 'img'
      || Array.from(s.querySelectorAll('*')).some(c => !['title', 'polyline', 'circle'].includes(c.localName))).length,
    details: count('details'),
    refresh: count('meta[http-equiv]'),
    links: Array.from(document.querySelectorAll('[href]')).map(e => e.getAttribute('href')),
    sources: Array.from(document.querySelectorAll('[src], [srcset], [data]'))
      .map(e => e.getAttribute('src') || e.getAttribute('srcset') || e.getAttribute('data')),
    text: document.body ? document.body.innerText.length : 0,
  };
}"""


@pytest.fixture(scope="module")
def browser():
    need(os.path.exists(CHROMIUM), "chromium is not installed (run `make system-deps`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def visit(browser, path: Path) -> dict:
    """Open a page offline, scroll through it with the mouse moving over it, fire every element's handlers;
    return what ran (dialogs, page errors, window.__pwned), what it asked for and what it holds."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen = {"dialogs": [], "errors": [], "external": []}
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))

    def route(r):
        if r.request.url.startswith(("file://", "data:")):
            r.continue_()
        else:
            seen["external"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    seen["pwned_on_load"] = page.evaluate("() => window.__pwned === undefined ? null : String(window.__pwned)")
    height = page.evaluate("() => document.documentElement.scrollHeight")
    for y in range(0, height, 800):  # a real pointer sweeping over every screenful
        page.evaluate(f"window.scrollTo(0, {y})")
        page.mouse.move(10, 50)
        page.mouse.move(1190, 880, steps=6)
    page.evaluate(DISPATCH)
    page.wait_for_timeout(300)
    seen.update(page.evaluate(INSPECT))
    page.close()
    return seen


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.notebook
def test_planted_payloads_never_run_in_chromium(build_a, browser, tmp_path):
    # the check itself: a page with two of the payloads as markup must trip it
    control = tmp_path / "control.html"
    control.write_text(f"<!DOCTYPE html><html><body><p>{IMG}</p><p>{HOVER}</p>{ANCHOR}</body></html>")
    caught = visit(browser, control)
    assert caught["dialogs"] and caught["pwned"] and caught["bad"]
    assert any("evil.example" in h for h in caught["links"])

    from nbformat.v4 import new_notebook

    from revops_lib.runner.export import render_html

    bare = visit(browser, render_html(new_notebook(), tmp_path / "bare.html", meta={"title": "x", "period": PERIOD}))
    for page in report_pages(build_a):
        seen = visit(browser, page)
        where = page.relative_to(build_a)
        assert seen["dialogs"] == [], f"{where}: a dialog opened: {seen['dialogs']}"
        assert seen["pwned_on_load"] is None and seen["pwned"] is None, f"{where}: a planted script ran"
        assert seen["errors"] == [], f"{where}: script errors {seen['errors'][:3]}"
        assert seen["external"] == [], f"{where}: asked other hosts for {seen['external'][:3]}"
        assert seen["bad"] == [], f"{where}: handlers or script URLs in attributes: {seen['bad'][:5]}"
        assert seen["scripts"] == bare["scripts"], f"{where}: {seen['scripts']} script elements"
        assert seen["frames"] == seen["forms"] == seen["refresh"] == seen["details"] == 0, where
        assert seen["foreignSvg"] == 0, f"{where}: an SVG that is not one of the kit's sparklines"
        assert not [h for h in seen["links"] if "evil.example" in h or ":" in h.split("/")[0]], \
            f"{where}: links from the data: {seen['links']}"
        assert all(s.startswith("data:image/") for s in seen["sources"]), f"{where}: sources {seen['sources'][:3]}"
        assert seen["text"] > 200, f"{where} is empty"


# --- determinism ---------------------------------------------------------------------------------------------

GENERATED = re.compile(rb"Generated <b>[^<]*</b>")


@pytest.mark.slow
@pytest.mark.notebook
def test_two_builds_give_identical_tables_and_html_but_the_generation_time(build_a, build_b):
    a, b = build_a / PERIOD, build_b / PERIOD
    ta, tb = snapshot(a / "tables"), snapshot(b / "tables")
    assert sorted(ta) == sorted(tb)
    differ = sorted(k for k in ta if ta[k] != tb[k])
    assert differ == [], f"tables that differ between two builds of the same data: {differ}"
    for page in sorted(a.glob("*.html")):
        one, two = page.read_bytes(), (b / page.name).read_bytes()
        assert len(GENERATED.findall(one)) == 1
        if GENERATED.sub(b"", one) != GENERATED.sub(b"", two):
            import difflib

            lines = difflib.unified_diff(GENERATED.sub(b"", one).decode().splitlines(),
                                         GENERATED.sub(b"", two).decode().splitlines(), lineterm="", n=0)
            diff = "\n".join(line[:200] for line in list(lines)[:12])
            pytest.fail(f"{page.name} differs between two builds of the same data:\n{diff}")


# ---------------------------------------------------------------------------------------------
# Runs that collide or vanish (the tiny notebooks of tests/test_report.py through the real cli.main)
# ---------------------------------------------------------------------------------------------

#: A cell that, when HOSTILE_SIGNALS names a folder, says it started (with the kernel's pid) and waits
#: there until `release` appears: a run held in the middle of a notebook.
WAIT_CELL = """import os as _os, pathlib as _pl, time as _time
_d = _pl.Path(_os.environ.get("HOSTILE_SIGNALS", "/nonexistent"))
if _d.is_dir():
    (_d / "started").write_text(str(_os.getpid()))
    _t0 = _time.time()
    while not (_d / "release").exists() and _time.time() - _t0 < 120:
        _time.sleep(0.05)"""


@dataclass
class Tiny:
    root: Path
    nbs: Path
    prm: Path
    src: Path
    out: Path
    signals: Path
    tmpdir: Path
    kit: dict = field(default_factory=dict)

    def args(self, *extra, source=None) -> list:
        return ["report", "--period", PERIOD, "--source", source or self.src, "--out", self.out, "--jobs", "1", *extra]

    def env(self, **extra) -> dict:
        return base_env(TMPDIR=self.tmpdir, **extra)

    def start(self, *argv) -> subprocess.Popen:
        """A run in a process of its own (to signal or collide with), held in alpha's waiting cell."""
        cmd = [sys.executable, "-c", KIT_MAIN, str(self.nbs), str(self.prm), *map(str, argv)]
        proc = subprocess.Popen(cmd, cwd=self.root, env=self.env(HOSTILE_SIGNALS=self.signals),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 180
        while not (self.signals / "started").exists():
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                _, err = proc.communicate()
                pytest.fail(f"the held run did not start its notebook (exit {proc.returncode}):\n{err[-3000:]}")
            time.sleep(0.05)
        time.sleep(0.1)
        return proc

    def kernel_pid(self) -> int:
        return int((self.signals / "started").read_text())


@pytest.fixture(scope="module")
def tiny_kit(tmp_path_factory, revops):
    """The two tiny notebooks (alpha holds when asked), valid data and one good build of both."""
    root = tmp_path_factory.mktemp("tiny")
    nbs, prm = root / "notebooks", root / "parameters"
    nbs.mkdir()
    prm.mkdir()
    make_notebook(nbs, "alpha")
    make_notebook(nbs, "beta")
    nb = nbformat.read(str(nbs / "alpha.ipynb"), as_version=4)
    nb.cells.append(new_code_cell(WAIT_CELL))
    nbformat.write(nb, str(nbs / "alpha.ipynb"))
    (prm / "default.yaml").write_text("currency: EUR\n")
    kit = {"notebooks": str(nbs), "parameters": str(prm), "reports": {"alpha": "Alpha report", "beta": "Beta report"}}
    src = write_folder(valid_frames(), root / "data")
    good, tmpdir = root / "good", root / "tmp"
    tmpdir.mkdir()
    r = revops("report", "--period", PERIOD, "--source", src, "--out", good, "--jobs", "1", cwd=root,
               env=base_env(TMPDIR=tmpdir), kit=kit)
    assert r.rc == 0, r
    return {"nbs": nbs, "prm": prm, "src": src, "good": good, "kit": kit}


@pytest.fixture
def tiny(tiny_kit, tmp_path):
    """A copy of the good build to run into, with folders of its own for signals and TMPDIR."""
    out = tmp_path / "reports"
    shutil.copytree(tiny_kit["good"], out, symlinks=True)
    t = Tiny(tmp_path, tiny_kit["nbs"], tiny_kit["prm"], tiny_kit["src"], out, tmp_path / "signals",
             tmp_path / "tmpdir", tiny_kit["kit"])
    t.signals.mkdir()
    t.tmpdir.mkdir()
    return t


def _gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie child of ours counts as gone
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def _end_kernel(t: Tiny) -> None:
    """Let a held kernel go, and stop it if it outlived its run (it is ours: its pid is in `started`)."""
    (t.signals / "release").touch()
    if (t.signals / "started").exists():
        pid = t.kernel_pid()
        if not _gone(pid, 5):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.notebook
def test_two_runs_into_one_out_the_second_stops_with_75(tiny, revops):
    t = tiny
    published = {k for k in snapshot(t.out) if not Path(k).name.startswith(".")}
    beta = (t.out / PERIOD / "beta.html").read_bytes()
    first = t.start(*t.args("--notebooks", "alpha", "--force"))
    try:
        during = {k: v for k, v in snapshot(t.out).items() if "/." not in "/" + k}
        second = revops(*t.args("--notebooks", "beta", "--force"), cwd=t.root, env=t.env(), kit=t.kit)
        assert second.rc == 75, second
        assert f"Another report run is writing into `{t.out}`" in second.err, second
        assert f"pid {first.pid}, started" in second.err and "Nothing was changed" in second.err, second
        assert TRACEBACK not in second.text
        assert {k: v for k, v in snapshot(t.out).items() if "/." not in "/" + k} == during
    finally:
        (t.signals / "release").touch()
        _, err = first.communicate(timeout=180)
        _end_kernel(t)
    assert first.returncode == 0, err
    after = snapshot(t.out)
    assert published <= set(after), f"published files disappeared: {sorted(published - set(after))}"
    assert (t.out / PERIOD / "beta.html").read_bytes() == beta
    assert hidden_leftovers(t.out) == []
    assert os.listdir(t.tmpdir) == []


@pytest.mark.slow
@pytest.mark.notebook
def test_sigterm_stops_the_run_with_143_and_keeps_the_last_good_report(tiny, revops):
    t = tiny
    d = t.out / PERIOD
    good, tables = (d / "alpha.html").read_bytes(), snapshot(d / "tables")
    proc = t.start(*t.args("--notebooks", "alpha", "--force"))
    kernel = t.kernel_pid()
    try:
        assert [p.name for p in d.glob(".staging-alpha-*")], "the held run has no staging folder"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        _end_kernel(t)
    assert proc.returncode == 143, err
    assert "revops report: terminated (SIGTERM): stopped; the last good reports are kept." in err
    assert TRACEBACK not in out + err, err
    assert (d / "alpha.html").read_bytes() == good
    assert snapshot(d / "tables") == tables
    assert json.loads((d / "manifest.json").read_text())["alpha"]["status"] == "ok"
    assert hidden_leftovers(t.out) == [], "staging or partial files left"
    assert not (d / "alpha.failed.ipynb").exists(), "a stopped notebook is not a failed one"
    assert [p.name for p in t.tmpdir.iterdir()] == [], "the run's temporary folder outlived it"
    assert _gone(kernel), "the kernel outlived the run"


@pytest.mark.slow
@pytest.mark.notebook
def test_no_temporary_file_outlives_a_run(tiny, revops):
    t = tiny

    def clean(what: str) -> None:
        assert os.listdir(t.tmpdir) == [], f"{what}: left {os.listdir(t.tmpdir)} in TMPDIR"
        assert hidden_leftovers(t.out) == [], f"{what}: left {hidden_leftovers(t.out)} in --out"

    ok = revops(*t.args("--force"), cwd=t.root, env=t.env(), kit=t.kit)
    assert ok.rc == 0 and "Done: 2 built" in ok.err, ok
    clean("a successful run")
    same = revops(*t.args(), cwd=t.root, env=t.env(), kit=t.kit)
    assert same.rc == 0 and "2 unchanged" in same.err, same
    clean("a run with nothing to do")
    frames = valid_frames()
    frames["opportunities"].loc[0, "amount"] = -1.0
    bad = revops(*t.args(source=write_folder(frames, t.root / "bad")), cwd=t.root, env=t.env(), kit=t.kit)
    assert bad.rc == 1 and "opportunities.amount: negative values" in bad.err, bad
    clean("a run stopped by validation")
    failing = revops(*t.args("--notebooks", "alpha", "-p", "fail", "true"), cwd=t.root, env=t.env(), kit=t.kit)
    assert failing.rc == 1 and "boom: this notebook fails on purpose" in failing.err, failing
    clean("a run with a failing notebook")

    # kill -9: nothing can clean up, so the next run must
    proc = t.start(*t.args("--notebooks", "alpha", "--force"))
    try:
        proc.kill()
        proc.communicate(timeout=60)
    finally:
        _end_kernel(t)
    assert [p.name for p in t.tmpdir.iterdir() if p.name.startswith("revops-run-")], "nothing to sweep"
    assert hidden_leftovers(t.out), "nothing to sweep"
    again = revops(*t.args("--notebooks", "beta", "--force"), cwd=t.root, env=t.env(), kit=t.kit)
    assert again.rc == 0, again
    clean("the run after a killed one")


# ---------------------------------------------------------------------------------------------
# A password in the source URL: never in a report, an executed notebook, a manifest or a temp file
# ---------------------------------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.notebook
@pytest.mark.slow
def test_a_source_password_never_reaches_a_file(pg_url, revops, tmp_path):
    from conftest import load_postgres

    url = load_postgres(pg_url, valid_frames(), "hostile")
    assert url.startswith("postgres://postgres@")
    secret_url = url.replace("postgres://postgres@", f"postgres://postgres:p@ss:{SECRET}@", 1)
    out, tmpdir = tmp_path / "reports", tmp_path / "tmpdir"
    tmpdir.mkdir()
    r = revops("report", "--period", PERIOD, "--source", secret_url, "--out", out, "--notebooks", "data_quality",
               "--jobs", "1", cwd=tmp_path, env=base_env(TMPDIR=tmpdir))
    assert r.rc == 0, r
    assert SECRET not in r.text and "p@ss" not in r.text
    written = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"data_quality.html", "data_quality.ipynb", "manifest.json", "index.html"}
    for p in written:
        data = p.read_bytes()
        assert SECRET.encode() not in data and b"p@ss" not in data, f"the password is in {p.relative_to(out)}"
    assert b"postgres://postgres@127.0.0.1" in (out / PERIOD / "data_quality.ipynb").read_bytes()
    assert os.listdir(tmpdir) == []
