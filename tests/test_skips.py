"""No silent skips: a test that needs something missing skips outside CI (saying so) and fails under CI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_outdirs import make_copy  # noqa: F401  (fixture reuse)

from conftest import in_ci

TESTS = Path(__file__).resolve().parent

SAMPLE = '''
from conftest import need


def test_needs_a_server_that_is_missing():
    need(False, "the frobnicator server is not installed")


def test_needs_what_is_there():
    need(True, "never shown")
'''


def run_sample(tmp_path, ci):
    """pytest on SAMPLE with this suite's conftest, ``CI`` unset (None) or set to ``ci``."""
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_missing_need_skips_outside_ci_and_the_summary_says_so(tmp_path):
    r = run_sample(tmp_path, None)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^SKIPPED \[1\] .*: the frobnicator server is not installed$", r.stdout, re.M)
    last = r.stdout.strip().splitlines()
    assert "1 test SKIPPED (reasons above): not a full run. `make test` runs every test (CI=true)" in last[-2]
    assert "1 passed, 1 skipped" in last[-1]


def test_a_missing_need_fails_under_ci(tmp_path):
    r = run_sample(tmp_path, "true")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED test_sample.py::test_needs_a_server_that_is_missing" in r.stdout
    assert "the frobnicator server is not installed — CI=true" in r.stdout
    assert "1 failed, 1 passed" in r.stdout and "SKIPPED" not in r.stdout


@pytest.mark.parametrize("value,ci", [("", False), ("0", False), ("false", False), ("False", False), ("no", False),
                                      ("true", True), ("1", True), ("yes", True)])
def test_ci_counts_as_set_unless_empty_or_false(monkeypatch, value, ci):
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_every_skip_in_the_tests_goes_through_need():
    bare = re.compile(r"pytest\.skip\b|importorskip|mark\.skip|mark\.xfail|pytest\.xfail")
    found = [(p.name, line.strip()) for p in sorted(TESTS.glob("*.py")) if p.name != Path(__file__).name
             for line in p.read_text().splitlines() if bare.search(line)]
    assert found == [("conftest.py", "pytest.skip(reason)")], "skip with need(condition, reason) from conftest"


def test_make_test_runs_the_suite_with_ci_set_and_test_fast_without(make_copy):  # noqa: F811
    (make_copy / ".ci").mkdir()
    (make_copy / ".ci" / "system-deps").write_text("exit 0\n")
    python = make_copy / ".venv" / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "CI=${{CI-unset}} $*" >> "{make_copy}/calls.log"\n'
                      f'[ -d "${{REVOPS_TEST_SHARED:-/nonexistent}}" ] && '
                      f'echo "$REVOPS_TEST_SHARED" >> "{make_copy}/shared.log"\n'
                      'exit 0\n')
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "REVOPS_TEST_SHARED")}
    for target in ("test", "test-fast"):
        r = subprocess.run(["make", "-s", target], cwd=make_copy, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    # make test: every test but Spark's in parallel, then the Spark ones alone (one JVM)
    assert (make_copy / "calls.log").read_text().splitlines() == [
        "CI=true -m pytest -n auto --dist worksteal -m not spark", "CI=true -m pytest -m spark",
        "CI=unset -m pytest -n auto --dist worksteal -m not slow"]
    # both runs of make test share one fresh folder (the demo reports are built once), removed at the end
    shared = (make_copy / "shared.log").read_text().splitlines()
    assert len(shared) == 2 and shared[0] == shared[1] and not Path(shared[0]).exists()
    # a failure in the first run still runs the Spark tests, and make test fails
    (make_copy / "calls.log").unlink()
    python.write_text(f'#!/bin/sh\necho "CI=${{CI-unset}} $*" >> "{make_copy}/calls.log"\n'
                      'case "$*" in *"not spark"*) exit 1;; esac\n')
    r = subprocess.run(["make", "-s", "test"], cwd=make_copy, env=env, capture_output=True, text=True)
    assert r.returncode != 0
    assert [line.split(" -m ")[-1] for line in (make_copy / "calls.log").read_text().splitlines()] == [
        "not spark", "spark"]
    ci_run = (TESTS.parent / ".ci" / "run").read_text().strip().splitlines()
    assert ci_run[-1] == "make test"  # CI runs exactly what a developer runs


def test_a_shared_build_runs_once_and_a_failed_one_is_tried_again(tmp_path, monkeypatch, tmp_path_factory):
    from conftest import SHARED_ENV, built_once

    monkeypatch.setenv(SHARED_ENV, str(tmp_path / "shared"))
    calls = []

    def build(path):
        calls.append(path)
        (path / "x.txt").write_text(str(len(calls)))

    first = built_once(tmp_path_factory, "thing", build)
    assert built_once(tmp_path_factory, "thing", build) == first and len(calls) == 1
    assert (first / "x.txt").read_text() == "1" and first.parent == tmp_path / "shared"

    def broken(path):
        (path / "half.txt").write_text("")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError):
        built_once(tmp_path_factory, "other", broken)
    built_once(tmp_path_factory, "other", build)  # tried again, in a clean folder
    assert sorted(p.name for p in (tmp_path / "shared" / "other").iterdir()) == ["x.txt"]
    monkeypatch.delenv(SHARED_ENV)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    alone = built_once(tmp_path_factory, "thing", build)  # one process, no shared folder: its own build
    assert alone != first and len(calls) == 3
