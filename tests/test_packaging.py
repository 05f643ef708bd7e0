"""Standing promises of the repository: setup files in sync, notebooks clean, parameters declared."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import nbformat
import papermill as pm
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from conftest import ROOT

# pip name -> conda-forge name, where they differ
CONDA_NAMES = {"ibis-framework": "ibis-framework-core"}
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _pip_requirements():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["test"]
    out = {}
    for r in map(Requirement, reqs):
        name = CONDA_NAMES.get(r.name, r.name)
        out.setdefault(name, set()).add(str(r.specifier))
    return out


def _conda_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep.get("pip", [])
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", dep)
        out[m.group(1)] = m.group(2).replace(" ", "")
    return env, out, pip


def test_environment_yml_mirrors_pyproject():
    env, conda, pip = _conda_requirements()
    pip_reqs = _pip_requirements()
    assert env["channels"] == ["conda-forge"]
    assert pip == ["-e ."], "environment.yml must end with pip: [-e .]"
    conda.pop("pip"), conda.pop("python")
    assert set(conda) == set(pip_reqs), "packages differ between environment.yml and pyproject.toml"
    for name, specs in pip_reqs.items():
        assert SpecifierSet(conda[name]) in {SpecifierSet(x) for x in specs}, f"{name}: environment.yml says {conda[name]!r}, pyproject {specs}"


def test_environment_yml_names_the_spark_extra_in_its_comment():
    """The optional Spark extra stays out of the default conda environment, as a commented block mirroring
    pyproject's `spark` extra (same names, same versions)."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["spark"]
    text = (ROOT / "environment.yml").read_text()
    block = text.split("# spark (optional", 1)[1].split("\n", 1)[1]
    commented = {}
    for line in block.splitlines():
        m = re.match(r"^\s*#\s*-\s*([A-Za-z0-9_.\-]+)\s*(\S*)\s*$", line)
        if not m:
            break
        commented[m.group(1)] = SpecifierSet(m.group(2))
    wanted = {r.name: r.specifier for r in map(Requirement, extra)}
    assert commented == wanted
    assert wanted["pyspark"].contains("4.0.5") and not wanted["pyspark"].contains("4.1.0")  # Ibis 12: < 4.1
    assert {r.name for r in map(Requirement, extra)} >= {"grpcio", "grpcio-status", "googleapis-common-protos"}


def test_make_test_installs_the_spark_extra_and_java():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*-e '\.\[[a-z,]*\btest\b[a-z,]*\bspark\b[a-z,]*\]'", makefile)
    assert "openjdk-17-jre-headless" in (ROOT / ".ci" / "system-deps").read_text()


def test_mutation_testing_runs_each_metric_module_against_its_own_tests():
    """`make mutation` mutates every metric module; mutmut offers a mutant only the tests of its selection, so a
    module whose test file is left out there has its mutants met by other modules' tests alone (they survive)."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert "revops_lib/metrics/*" in conf["only_mutate"]
    selected = set(conf["pytest_add_cli_args_test_selection"])
    assert all((ROOT / t).is_file() for t in selected), sorted(t for t in selected if not (ROOT / t).is_file())
    own = {f"tests/test_{m.stem}.py" for m in (ROOT / "revops_lib" / "metrics").glob("*.py")
           if (ROOT / "tests" / f"test_{m.stem}.py").is_file()}
    assert len(own) >= 8 and own <= selected, sorted(own - selected)
    # the period rules and the formatters are mutated too, against their own tests and every docstring example
    assert {"revops_lib/periods.py", "revops_lib/present/format.py", "revops_lib/stats.py"} <= set(conf["only_mutate"])
    assert {"tests/test_periods.py", "tests/test_rules.py", "tests/test_docstrings.py"} <= selected


def test_mutation_testing_s_test_selection_collects_with_its_own_arguments():
    """mutmut runs its selection with its own pytest arguments: they must collect cleanly (``-p no:warnings``
    unregistered the ``filterwarnings`` mark that a test uses, so under ``--strict-markers`` every run stopped at
    collection: "failed to collect stats")."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", *conf["pytest_add_cli_args"],
                          *conf["pytest_add_cli_args_test_selection"]],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    collected = re.search(r"^(\d+)(?:/\d+)? tests? collected", run.stdout, re.M)
    assert collected and int(collected.group(1)) >= 500, run.stdout[-500:]


def test_python_version_matches():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env, conda, _ = _conda_requirements()
    assert meta["requires-python"] == ">=3.11" and conda["python"] == ">=3.11"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name} is stored with outputs"
            assert not re.search(r"^\s*(def|class) ", cell.source, re.M), "logic belongs in revops_lib"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_is_fully_readable_by_papermill(path):
    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    declared = pm.inspect_notebook(str(path))
    lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(declared) == len(lines), "papermill could not read every parameter line (avoid '=' in comments)"
    for name, info in declared.items():
        assert info["inferred_type_name"] != "None", f"{name} has no type annotation"
        assert info["help"], f"{name} has no help comment"
    assert {"period", "source", "as_of"} <= set(declared)


def _applies_to(yaml_path):
    stem = yaml_path.stem
    if stem == "default":
        return NOTEBOOKS
    if (ROOT / "notebooks" / f"{stem}.ipynb").exists():
        return [ROOT / "notebooks" / f"{stem}.ipynb"]
    return NOTEBOOKS  # a period file applies to every notebook


@pytest.mark.parametrize("yaml_path", sorted((ROOT / "parameters").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_parameter_file_key_is_declared_in_its_notebooks(yaml_path):
    keys = set((yaml.safe_load(yaml_path.read_text()) or {}).keys())
    for nb in _applies_to(yaml_path):
        declared = set(pm.inspect_notebook(str(nb)))
        missing = keys - declared
        assert not missing, f"{yaml_path.name}: {sorted(missing)} not declared in {nb.name}'s parameters cell"


def test_makefile_help_lists_every_target_with_a_description():
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for target in ("setup", "reports", "test", "lab", "clean", "demo-data", "validate"):
        assert re.search(rf"\b{target}\b\S*\s+\S", out), f"`make help` does not describe {target}"


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make reports" in first_block and "make test" in first_block
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert commands[-1] == "make test"


def test_gitignore_keeps_generated_files_out():
    text = (ROOT / ".gitignore").read_text()
    for pattern in (".venv/", "/data/", "/reports/*"):
        assert pattern in text
