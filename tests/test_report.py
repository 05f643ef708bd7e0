"""The report runner: layered parameters, isolation of failures, atomic outputs, incremental builds, index."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from revops_lib.errors import ParameterError
from revops_lib.runner import build, registry

from conftest import valid_frames, write_folder

pytestmark = pytest.mark.notebook

PARAMS = '''period: str = ""  # period label
source: str = ""  # data source
as_of: str = ""  # cut-off
output_dir: str = ""  # published tables
currency: str = "USD"  # money label
fiscal_year_start_month: int = 1  # fiscal year start
fail: bool = False  # raise on purpose
greeting: str = "hello"  # layered value'''

BODY = '''from revops_lib.present.context import context
from revops_lib.present.publish import publish, headline
import pandas as pd
ctx = context(period=period, as_of=as_of, source=source, output_dir=output_dir)
if fail:
    raise RuntimeError("boom: this notebook fails on purpose")
headline("Greeting", greeting)
publish(pd.DataFrame({"period": [ctx.period.label], "greeting": [greeting], "x": [1.5]}), "demo_table")'''

PLOT = '''import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(3, 2)); ax.plot([1, 2, 3], [1, 4, 2]); ax.set_title("a chart")'''


def make_notebook(path, name):
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    params = new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell(f"# {name}\n\nA test report."), params, new_code_cell(BODY), new_code_cell(PLOT)]
    nbformat.write(nb, str(path / f"{name}.ipynb"))


@pytest.fixture
def kit(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    make_notebook(nbs, "alpha")
    make_notebook(nbs, "beta")
    prm = tmp_path / "parameters"
    prm.mkdir()
    (prm / "default.yaml").write_text("currency: EUR\n")
    src = write_folder(valid_frames(), tmp_path / "data")
    out = tmp_path / "reports"
    messages = []

    def run(**kw):
        kw.setdefault("period", "2026-10")
        kw.setdefault("jobs", 2)
        return build.run(source=src, out=out, notebooks_dir=nbs, parameters_dir=prm,
                          progress=messages.append, **kw)

    return dict(run=run, out=out, nbs=nbs, prm=prm, src=src, messages=messages)


def test_layered_parameters_order(tmp_path):
    (tmp_path / "default.yaml").write_text("a: 1\nb: 1\nc: 1\nd: 1\n")
    (tmp_path / "nb.yaml").write_text("b: 2\nc: 2\nd: 2\n")
    (tmp_path / "2026-10.yaml").write_text("c: 3\nd: 3\n")
    got = build.layered_parameters("nb", "2026-10", {"d": 4}, parameters_dir=tmp_path)
    assert got == {"a": 1, "b": 2, "c": 3, "d": 4, "period": "2026-10"}
    other = build.layered_parameters("other", "2026-Q4", None, parameters_dir=tmp_path)
    assert other == {"a": 1, "b": 1, "c": 1, "d": 1, "period": "2026-Q4"}


def test_bad_parameter_file_is_named(tmp_path):
    (tmp_path / "default.yaml").write_text("- a list\n")
    with pytest.raises(ParameterError, match=r"must hold a mapping of name: value"):
        build.layered_parameters("nb", "2026-10", None, parameters_dir=tmp_path)


def test_report_end_to_end_outputs(kit):
    (kit["prm"] / "2026-10.yaml").write_text('greeting: "from the period file"\n')
    assert kit["run"](params={"as_of": "2026-10-20"}) == 0
    d = kit["out"] / "2026-10"
    html = (d / "alpha.html").read_text()
    assert "from the period file" in html  # period layer reached the notebook
    assert "2026-10-20 00:00 UTC" in html  # header shows as_of
    assert "revops-kit" in html and "Source" in html
    assert "ctx = context(" not in html and "fig, ax = plt.subplots" not in html  # no code
    assert "data:image/png;base64," in html  # chart inline
    # what nbconvert's own BeautifulSoup pass would add: alt text on images, focusable outputs
    assert "<img " in html and not re.search(r"<img(?![^>]*\salt=)", html)
    assert 'jp-OutputArea-output' in html and 'tabindex="0"' in html
    table = pd.read_csv(d / "tables" / "alpha" / "demo_table.csv")
    assert table.to_dict("records") == [{"period": "2026-10", "greeting": "from the period file", "x": 1.5}]
    executed = nbformat.read(str(d / "alpha.ipynb"), as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    index = (kit["out"] / "index.html").read_text()
    assert 'href="2026-10/alpha.html"' in index and "Greeting: <b>from the period file</b>" in index
    assert not list(d.glob(".*")), "temporary files left behind"


def test_longest_notebooks_start_first_by_their_last_build_else_a_typical_time(tmp_path):
    p = build.parse_period("2026-10")
    (tmp_path / "2026-10").mkdir()
    (tmp_path / "2026-10" / "manifest.json").write_text('{"data_quality": {"status": "ok", "seconds": 9.5}}')
    assert build._expected_seconds(tmp_path, (p, "data_quality", {})) == 9.5
    assert build._expected_seconds(tmp_path, (p, "funnel_conversion", {})) == registry.REPORTS["funnel_conversion"].typical_seconds
    assert build._expected_seconds(tmp_path, (p, "someone_elses", {})) == 2.0


def test_the_runner_keeps_the_slow_iri_checker_out_and_notebooks_still_validate():
    # in a fresh process, as `revops report` runs: jsonschema must treat rfc3987_syntax as absent
    code = ("import sys; from revops_lib.runner import build; build._skip_slow_optional_imports(); "
            "import nbformat, jsonschema; assert sys.modules['rfc3987_syntax'] is None; "
            "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1')]); nbformat.validate(nb); "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=registry.ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_failing_notebook_is_isolated_and_keeps_last_good_html(kit):
    assert kit["run"]() == 0
    good = (kit["out"] / "2026-10" / "alpha.html").read_bytes()
    good_table = (kit["out"] / "2026-10" / "tables" / "alpha" / "demo_table.csv").read_bytes()
    kit["messages"].clear()
    status = kit["run"](notebooks=["alpha", "beta"], params={"fail": True, "greeting": "changed"}, force=True)
    assert status == 1
    d = kit["out"] / "2026-10"
    assert (d / "alpha.html").read_bytes() == good
    assert (d / "tables" / "alpha" / "demo_table.csv").read_bytes() == good_table
    assert (d / "alpha.failed.ipynb").is_file()
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["alpha"]["status"] == "failed"
    assert "RuntimeError: boom: this notebook fails on purpose" in manifest["alpha"]["error"]
    index = (kit["out"] / "index.html").read_text()
    assert "boom: this notebook fails on purpose" in index and 'href="2026-10/alpha.failed.ipynb"' in index
    assert any("FAILED 2026-10 alpha" in m for m in kit["messages"])


def test_one_failure_does_not_stop_the_others(kit):
    nb = nbformat.read(str(kit["nbs"] / "beta.ipynb"), as_version=4)
    nb.cells[2].source = "raise ValueError('beta is broken')"
    nbformat.write(nb, str(kit["nbs"] / "beta.ipynb"))
    assert kit["run"]() == 1
    m = json.loads((kit["out"] / "2026-10" / "manifest.json").read_text())
    assert m["alpha"]["status"] == "ok" and m["beta"]["status"] == "failed"
    assert (kit["out"] / "2026-10" / "alpha.html").is_file()
    assert not (kit["out"] / "2026-10" / "beta.html").exists()


def test_unchanged_reports_are_skipped_and_force_rebuilds(kit):
    assert kit["run"]() == 0
    first = (kit["out"] / "2026-10" / "alpha.html").stat().st_mtime_ns
    kit["messages"].clear()
    assert kit["run"]() == 0
    assert sum("skip" in m for m in kit["messages"]) == 2
    assert (kit["out"] / "2026-10" / "alpha.html").stat().st_mtime_ns == first
    assert "skipped-unchanged" in (kit["out"] / "index.html").read_text()
    # a parameter change rebuilds
    kit["messages"].clear()
    assert kit["run"](params={"greeting": "new"}, notebooks=["alpha"]) == 0
    assert any("ok     2026-10 alpha" in m for m in kit["messages"])
    # --force rebuilds
    kit["messages"].clear()
    assert kit["run"](params={"greeting": "new"}, notebooks=["alpha"], force=True) == 0
    assert any("start  2026-10 alpha" in m for m in kit["messages"])
    # a data change rebuilds
    kit["messages"].clear()
    valid_frames()["leads"].iloc[:2].to_parquet(kit["src"] / "leads.parquet", index=False)
    assert kit["run"](params={"greeting": "new"}, notebooks=["alpha"]) == 0
    assert any("start  2026-10 alpha" in m for m in kit["messages"])


def test_several_periods_and_index_newest_first(kit):
    assert kit["run"](period=None, periods=["2026-08", "2026-09", "2026-10"], notebooks=["alpha"]) == 0
    index = (kit["out"] / "index.html").read_text()
    assert index.index("2026-10/alpha.html") < index.index("2026-09/alpha.html") < index.index("2026-08/alpha.html")


def test_invalid_data_stops_before_any_notebook(kit):
    frames = valid_frames()
    frames["leads"] = frames["leads"].drop(columns=["source"])
    write_folder(frames, kit["src"])
    assert kit["run"]() == 1
    assert not (kit["out"] / "2026-10").exists()
    assert any("missing required column `source`" in m for m in kit["messages"])


@pytest.mark.slow
def test_interrupted_run_leaves_the_good_report_in_place(kit, tmp_path):
    """Ctrl-C (SIGINT) in the middle of a run: no partial HTML replaces the last good one."""
    import signal
    import subprocess
    import sys
    import time

    assert kit["run"](notebooks=["alpha"]) == 0
    d = kit["out"] / "2026-10"
    good = (d / "alpha.html").read_bytes()
    nb = nbformat.read(str(kit["nbs"] / "alpha.ipynb"), as_version=4)
    nb.cells.append(new_code_cell("import time\nopen(output_dir + '/../started', 'w').close()\ntime.sleep(60)"))
    nbformat.write(nb, str(kit["nbs"] / "alpha.ipynb"))
    code = (
        # Ctrl-C as in a terminal: a test process may hand its children SIGINT ignored or blocked
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])\n"
        "import sys; from revops_lib.runner import build; from pathlib import Path\n"
        f"sys.exit(build.run(period='2026-10', source={str(kit['src'])!r}, out={str(kit['out'])!r}, "
        f"notebooks=['alpha'], notebooks_dir=Path({str(kit['nbs'])!r}), parameters_dir=Path({str(kit['prm'])!r}), "
        "jobs=1, force=True))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not (d / "started").exists():
        assert time.time() < deadline and proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert (d / "alpha.html").read_bytes() == good
    assert json.loads((d / "manifest.json").read_text())["alpha"]["status"] == "ok"
    assert not [p.name for p in d.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_a_ctrl_c_that_lands_in_another_thread_stops_the_wait_at_once():
    """Linux may deliver SIGINT to any thread of the runner; Python raises it in the main thread only when that
    thread runs again. The runner's wait for its notebooks wakes every quarter second, so the KeyboardInterrupt
    comes at once, not when the running notebook ends."""
    import signal
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from revops_lib.runner.build import _result

    ident, release = [], threading.Event()
    # Ctrl-C as in a terminal while the test runs (the test process's handler or mask may be another's)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])

    def notebook():
        ident.append(threading.get_ident())
        release.wait(20)
        return "done"

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(notebook)
        while not ident:
            time.sleep(0.01)
        threading.Timer(0.3, signal.pthread_kill, (ident[0], signal.SIGINT)).start()
        threading.Timer(10, release.set).start()  # (the notebook's end, for an old wait that never woke)
        t0 = time.monotonic()
        try:
            with pytest.raises(KeyboardInterrupt):
                _result(future)
            assert time.monotonic() - t0 < 5
        finally:
            release.set()
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            signal.signal(signal.SIGINT, handler)
    assert _result(future) == "done"


def test_reused_kernel_starts_each_notebook_with_a_clean_namespace(kit):
    """Two notebooks on one warm kernel: the second must not see the first one's variables."""
    nb = nbformat.read(str(kit["nbs"] / "alpha.ipynb"), as_version=4)
    nb.cells.append(new_code_cell("leaked_from_alpha = 42"))
    nbformat.write(nb, str(kit["nbs"] / "alpha.ipynb"))
    nb = nbformat.read(str(kit["nbs"] / "beta.ipynb"), as_version=4)
    nb.cells.append(new_code_cell("assert 'leaked_from_alpha' not in dir(), 'state leaked between notebooks'\n"
                                  "assert 'ctx' in dir()"))
    nbformat.write(nb, str(kit["nbs"] / "beta.ipynb"))

    messages = []
    status = build.run(period="2026-10", source=kit["src"], out=kit["out"], notebooks=["alpha", "beta"],
                   notebooks_dir=kit["nbs"], parameters_dir=kit["prm"], jobs=1, progress=messages.append)
    assert status == 0, "\n".join(messages)


def test_relative_output_folder_gets_tables_and_nothing_lands_in_notebooks(kit, monkeypatch):
    """`make reports` passes `--out reports` (relative); kernels run in notebooks/."""
    monkeypatch.chdir(kit["out"].parent)

    status = build.run(period="2026-10", source=kit["src"], out="reports_rel", notebooks=["alpha"],
                   notebooks_dir=kit["nbs"], parameters_dir=kit["prm"], jobs=1, progress=lambda m: None)
    assert status == 0
    assert (kit["out"].parent / "reports_rel" / "2026-10" / "tables" / "alpha" / "demo_table.csv").is_file()
    assert not (kit["nbs"] / "reports_rel").exists()
