"""The report runner's promises, each checked end to end on the tiny notebooks of ``test_report.kit``.

Runs use one worker (``jobs=1``) where the order of the notebooks matters or one kernel is enough.
"""

from __future__ import annotations

import json
import os

import pytest

from revops_lib import report
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
    monkeypatch.setattr(report, "WARMUP_CODE", "raise ImportError('the kit cannot be imported here')")
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
