"""The report runner's promises, each checked end to end on the tiny notebooks of ``test_report.kit``.

Runs use one worker (``jobs=1``) where the order of the notebooks matters or one kernel is enough.
"""

from __future__ import annotations

import json
import os

import pytest

from revops_lib.runner import build, kernels, registry

from test_report import kit  # noqa: F401  (fixture reuse)

pytestmark = pytest.mark.notebook


def manifest(kit, period="2026-10"):  # noqa: F811
    return json.loads((kit["out"] / period / "manifest.json").read_text())


def files(kit, notebook="alpha", period="2026-10"):  # noqa: F811
    """The published files of one report (HTML, executed notebook, tables) with their bytes."""
    d = kit["out"] / period
    paths = [d / f"{notebook}.html", d / f"{notebook}.ipynb", *sorted((d / "tables" / notebook).glob("*"))]
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in paths}


# --------------------------------------------------------------------------- a kernel that does not start

def test_a_kernel_that_fails_to_start_fails_the_run_clearly_and_keeps_the_last_good_report(kit, monkeypatch):  # noqa: F811
    assert kit["run"](notebooks=["alpha"], jobs=1) == 0
    good = files(kit)
    kit["messages"].clear()
    monkeypatch.setattr(kernels, "warmup_code", lambda: "raise ImportError('the kit cannot be imported here')")
    assert kit["run"](notebooks=["alpha"], jobs=1, force=True) == 1
    said = "The Jupyter kernel did not start: ImportError: the kit cannot be imported here"
    assert f"  FAILED 2026-10 alpha: {said}" in kit["messages"], kit["messages"]
    assert files(kit) == good
    entry = manifest(kit)["alpha"]
    assert (entry["status"], entry["error"], entry["last_ok"]["status"]) == ("failed", said, "ok")
    index = (kit["out"] / "index.html").read_text()
    assert said in index and 'href="2026-10/alpha.html"' in index
    assert not (kit["out"] / "2026-10" / "alpha.failed.ipynb").exists()  # nothing ran


def test_a_kernel_process_that_dies_at_start_is_reported_with_its_log(kit, monkeypatch, tmp_path):  # noqa: F811
    """A broken environment: the kernel's Python exits at once, saying why on stderr."""
    fake = tmp_path / "broken_env"
    fake.mkdir()
    (fake / "ipykernel_launcher.py").write_text(
        "import sys\nsys.stderr.write('ipykernel cannot start: broken environment\\n')\nsys.exit(3)\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(fake), os.environ.get("PYTHONPATH")])))
    assert kit["run"](notebooks=["alpha"], jobs=1) == 1
    error = manifest(kit)["alpha"]["error"]
    assert error.startswith("The Jupyter kernel did not start: ")
    assert error.endswith("(kernel log: ipykernel cannot start: broken environment)")
    assert not (kit["out"] / "2026-10" / "alpha.html").exists()


# --------------------------------------------------------------------------- incremental builds

def started(kit):  # noqa: F811
    """(period, notebook) of each notebook started, in order (from the progress lines)."""
    return [tuple(m.split()[1:3]) for m in kit["messages"] if m.startswith("  start  ")]


def skipped(kit):  # noqa: F811
    return [tuple(m.split()[1:3]) for m in kit["messages"] if m.startswith("  skip   ")]


def rerun(kit, **kw):  # noqa: F811
    kit["messages"].clear()
    assert kit["run"](jobs=1, **kw) == 0, kit["messages"]
    return started(kit)


@pytest.mark.slow  # four report runs
def test_each_input_of_the_build_key_rebuilds_only_the_reports_it_changes(kit, monkeypatch):  # noqa: F811
    import nbformat
    from nbformat.v4 import new_markdown_cell

    assert rerun(kit) == [("2026-10", "alpha"), ("2026-10", "beta")]
    # the notebook
    nb = nbformat.read(str(kit["nbs"] / "alpha.ipynb"), as_version=4)
    nb.cells.append(new_markdown_cell("A sentence added to the notebook."))
    nbformat.write(nb, str(kit["nbs"] / "alpha.ipynb"))
    assert rerun(kit) == [("2026-10", "alpha")], "a changed notebook was not rebuilt"
    assert skipped(kit) == [("2026-10", "beta")]
    # a parameter file
    (kit["prm"] / "beta.yaml").write_text("greeting: from beta.yaml\n")
    assert rerun(kit) == [("2026-10", "beta")], "a changed parameter file did not rebuild its notebook"
    # the library
    monkeypatch.setattr(build, "_code_fingerprint", lambda: "a changed library")
    assert sorted(rerun(kit)) == [("2026-10", "alpha"), ("2026-10", "beta")], "a library change did not rebuild"
    assert skipped(kit) == []


def test_the_code_fingerprint_follows_every_library_and_template_file(tmp_path):
    import shutil

    lib = tmp_path / "revops_lib"
    shutil.copytree(registry.ROOT / "revops_lib", lib, ignore=shutil.ignore_patterns("__pycache__"))
    first = build._code_fingerprint(lib)
    assert build._code_fingerprint(lib) == first
    assert first == build._code_fingerprint()  # the copy is the library
    for changed in (lib / "metrics" / "lead_funnel.py", lib / "templates" / "revops" / "index.html.j2"):
        text = changed.read_text()
        changed.write_text(text + "\n")
        assert build._code_fingerprint(lib) != first, f"{changed.name} is not in the fingerprint"
        changed.write_text(text)
        assert build._code_fingerprint(lib) == first
    (lib / "__pycache__").mkdir()
    (lib / "__pycache__" / "lead_funnel.cpython-311.pyc").write_bytes(b"compiled")
    assert build._code_fingerprint(lib) == first  # compiled files are not sources


@pytest.mark.slow  # three runs, one failing
def test_a_failed_report_keeps_the_last_good_one_and_the_next_plain_run_rebuilds_it(kit, tmp_path):  # noqa: F811
    """The failure comes from outside the build key (a flag file), so only the failure itself forces the rebuild."""
    import nbformat
    from nbformat.v4 import new_code_cell

    flag = tmp_path / "fail-now"
    nb = nbformat.read(str(kit["nbs"] / "alpha.ipynb"), as_version=4)
    nb.cells.append(new_code_cell(f"import os\nif os.path.exists({str(flag)!r}):\n"
                                  "    raise RuntimeError('the flag says fail')"))
    nbformat.write(nb, str(kit["nbs"] / "alpha.ipynb"))
    assert rerun(kit, notebooks=["alpha"]) == [("2026-10", "alpha")]
    good = files(kit)
    good_written = (kit["out"] / "2026-10" / "alpha.html").stat().st_mtime_ns
    flag.touch()
    kit["messages"].clear()
    assert kit["run"](notebooks=["alpha"], jobs=1, force=True) == 1
    assert files(kit) == good, "a failed run replaced the last good report"
    entry = manifest(kit)["alpha"]
    assert entry["status"] == "failed" and entry["last_ok"]["status"] == "ok"
    assert (kit["out"] / "2026-10" / "alpha.failed.ipynb").is_file()
    flag.unlink()
    assert rerun(kit, notebooks=["alpha"]) == [("2026-10", "alpha")], "the failed report was not rebuilt"
    assert manifest(kit)["alpha"]["status"] == "ok"
    # a new build: the page was written again (its bytes may be the same: builds are deterministic)
    assert (kit["out"] / "2026-10" / "alpha.html").stat().st_mtime_ns > good_written
    assert not (kit["out"] / "2026-10" / "alpha.failed.ipynb").exists()
    assert '<span class="st ok">ok</span>' in (kit["out"] / "index.html").read_text()


# --------------------------------------------------------------------------- what runs, in which order

def test_only_builds_just_the_listed_notebook_period_pairs(kit):  # noqa: F811
    assert rerun(kit, period=None, periods=["2026-09", "2026-10"], only={("beta", "2026-09")}) == [
        ("2026-09", "beta")]
    assert list(manifest(kit, "2026-09")) == ["beta"]
    assert not (kit["out"] / "2026-10").exists()
    assert not (kit["out"] / "2026-09" / "alpha.html").exists()


def test_longest_notebooks_start_first_by_their_last_build(kit):  # noqa: F811
    d = kit["out"] / "2026-10"
    d.mkdir(parents=True)
    # earlier builds (without a build key, so both rebuild): beta took far longer than alpha
    (d / "manifest.json").write_text(json.dumps({"alpha": {"status": "ok", "seconds": 0.5},
                                                 "beta": {"status": "ok", "seconds": 30.0}}))
    assert rerun(kit) == [("2026-10", "beta"), ("2026-10", "alpha")]


def test_a_period_after_the_datas_latest_event_is_built_as_no_data(kit):  # noqa: F811
    """The period with data is built; the one after the latest event gets one short page and its own status."""
    # the kit's data end with a transaction on 2026-10-21: 2026-10 has data, 2026-11 none
    assert rerun(kit, period=None, periods=["2026-10", "2026-11"], notebooks=["alpha"]) == [("2026-10", "alpha")]
    notes = [m for m in kit["messages"] if m.startswith("No data:")]
    assert notes == ["No data: the source's latest event (2026-10-21) is before period 2026-11 "
                     "(2026-11-01 to 2026-11-30); its reports are marked 'no data'. Pick an earlier --period."]
    assert any("0 failed, 1 with no data" in m for m in kit["messages"])
    later = kit["out"] / "2026-11"
    assert not (later / "alpha.html").exists()  # no report of zeros
    page = (later / "no-data.html").read_text()
    assert "No data yet for 2026-11" in page and "2026-10-21" in page
    entry = manifest(kit, "2026-11")["alpha"]
    assert entry["status"] == "no data" and entry["page"] == "no-data.html"
    index = (kit["out"] / "index.html").read_text()
    assert '<a href="2026-11/no-data.html">' in index and '<span class="st nodata">no data</span>' in index


# --------------------------------------------------------------------------- kernels and parameters

def test_kernels_are_replaced_after_max_uses_notebooks(kit, monkeypatch):  # noqa: F811
    import nbformat
    from nbformat.v4 import new_code_cell

    monkeypatch.setattr(kernels, "MAX_USES", 2)
    nb = nbformat.read(str(kit["nbs"] / "alpha.ipynb"), as_version=4)
    nb.cells.append(new_code_cell('import os\nheadline("Kernel pid", os.getpid())'))
    nbformat.write(nb, str(kit["nbs"] / "alpha.ipynb"))
    periods = ["2026-08", "2026-09", "2026-10"]
    assert rerun(kit, period=None, periods=periods, notebooks=["alpha"]) == [(p, "alpha") for p in periods]
    pids = [{h["label"]: h["value"] for h in manifest(kit, p)["alpha"]["headlines"]}["Kernel pid"] for p in periods]
    assert pids[0] == pids[1], "a warm kernel was not reused"
    assert pids[2] != pids[1], f"a kernel ran more than MAX_USES notebooks: {pids}"


def test_default_yaml_values_reach_every_notebook_and_a_notebook_file_overrides_them(kit):  # noqa: F811
    import pandas as pd

    (kit["prm"] / "default.yaml").write_text("currency: EUR\ngreeting: from default.yaml\n")
    (kit["prm"] / "alpha.yaml").write_text("greeting: from alpha.yaml\n")
    rerun(kit)
    got = {n: pd.read_csv(kit["out"] / "2026-10" / "tables" / n / "demo_table.csv")["greeting"].tolist()
           for n in ("alpha", "beta")}
    assert got == {"alpha": ["from alpha.yaml"], "beta": ["from default.yaml"]}
    import nbformat

    executed = nbformat.read(str(kit["out"] / "2026-10" / "beta.ipynb"), as_version=4)
    injected = next(c.source for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'currency = "EUR"' in injected


def test_a_closed_pool_starts_no_kernel_and_a_waiting_worker_is_told_at_once(tmp_path):
    """Ctrl-C while a failed notebook's kernel is being replaced: close() used to find that replacement's
    thread listed but not yet started ("cannot join thread before it is started"), so it stopped before
    killing the running kernels, and the run waited for their notebooks. A closed pool starts no kernel, and a
    worker waiting for one gets an error instead of waiting forever."""
    from revops_lib.runner.kernels import KernelPool, KernelStartError

    pool = KernelPool(0, tmp_path, rundir=tmp_path)
    pool.close()
    pool._spawn()  # what release() of a failed kernel does
    assert pool._starting == [] and pool._all == []
    with pytest.raises(KernelStartError, match="the run is stopping"):
        pool.acquire()
    with pytest.raises(KernelStartError, match="the run is stopping"):  # and the next waiter too
        pool.acquire()


@pytest.mark.notebook
def test_a_kernel_stopped_from_two_threads_at_once_is_stopped_once(tmp_path):
    """On Ctrl-C the pool's close() and the worker whose notebook broke both stop the same kernel: its manager
    shuts it down once (two shutdowns of one manager on two event loops at a time are not safe)."""
    import threading

    from revops_lib.runner.kernels import KernelPool

    pool = KernelPool(1, tmp_path, rundir=tmp_path)
    try:
        k = pool.acquire()
        process = k.km.provisioner.process
        calls, real = [], k.km.shutdown_kernel

        async def counted(**kw):
            calls.append(kw)
            return await real(**kw)

        k.km.shutdown_kernel = counted
        stops = [threading.Thread(target=k.shutdown) for _ in range(2)]
        for t in stops:
            t.start()
        for t in stops:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in stops) and calls == [{"now": True}]
        assert process.poll() is not None
    finally:
        pool.close()


@pytest.mark.notebook
def test_kernels_spill_into_the_run_folder(tmp_path):
    """A report kernel's DuckDB spills into the run's private folder (removed with the run), one folder per process,
    and the kernel's other temporary files go there too (its TMPDIR)."""
    from revops_lib.runner.kernels import KernelPool

    pool = KernelPool(1, tmp_path, rundir=tmp_path)
    try:
        k = pool.acquire()
        k._run_cells(["import os, tempfile, revops_lib.sources as s\n"
                      "open(os.path.join(os.environ[s.ENGINE_TMP_ENV], 'seen.txt'), 'w')"
                      ".write(s.duckdb_config()['temp_directory'] + '|' + str(os.getpid()) + '|' + "
                      "tempfile.gettempdir())"])
        pool.release(k)
    finally:
        pool.close()
    folder, pid, tmp = (tmp_path / "seen.txt").read_text().split("|")
    assert folder == str(tmp_path / f"revops-engine-{pid}")
    assert tmp == str(tmp_path)  # any other temporary file of the kernel too


@pytest.mark.notebook
def test_a_kernel_draws_charts_only_to_make_their_png(tmp_path):
    """A chart shown by a report kernel is drawn only while its PNG is made: pyplot's after-cell hook, which
    drew every figure before the inline backend drew it again, is removed by the warm-up (about 40 % of a
    chart's time), and the chart is still shown."""
    from revops_lib.runner.kernels import KernelPool

    pool = KernelPool(1, tmp_path, rundir=tmp_path)
    try:
        k = pool.acquire()
        k._run_cells([
            "import matplotlib.pyplot as plt\n"
            "draws = []\n"
            "fig, ax = plt.subplots()\n"
            "ax.plot([1, 2, 3])\n"
            "fig.canvas.mpl_connect('draw_event', lambda e: draws.append(e.canvas.is_saving()))\n"
            "shown = []\n"
            "_publish = get_ipython().display_pub.publish\n"
            "get_ipython().display_pub.publish = lambda data, *a, **kw: (shown.append(sorted(data)), "
            "_publish(data, *a, **kw))",
            "open('draws.txt', 'w').write(f'{set(draws)} {shown}')",
        ])
        pool.release(k)
    finally:
        pool.close()
    assert (tmp_path / "draws.txt").read_text() == "{True} [['image/png', 'text/plain']]"


def test_runner_process_does_not_import_the_charting_stack():
    """The runner checks parameters with ``present.context`` and imports every report's section (to see which
    parts the tables allow) but never draws: seaborn, SciPy and pyplot stay out of its process (they cost about
    2–3 s of every run, before validation and between it and the first notebook)."""
    import subprocess
    import sys

    code = ("import sys, revops_lib.cli, revops_lib.runner.build, revops_lib.runner.parameters, "
            "revops_lib.present.context\n"
            "from revops_lib.runner import registry\n"
            "assert all(registry.section_class(n).report == n for n in registry.REPORTS)\n"
            "print(sorted(m for m in ('seaborn', 'scipy.stats', 'matplotlib.pyplot') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
