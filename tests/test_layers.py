"""The library's layers import only downward, and nothing imports in a circle.

Every ``import`` and ``from … import`` of every module is read with ``ast`` — at module level and
inside functions alike — and checked against the layers of ``revops_lib/__init__.py``:

1. foundations (errors, version, periods, schema, sources, spark, slices, validation, stats, files, outdirs, demo,
   importers; a package's modules, such as ``revops_lib.demo.crm``, are in its layer)
2. metrics (``revops_lib.metrics``)
3. presentation (``revops_lib.present``)
4. runner (``revops_lib.runner``)
5. CLI (``revops_lib.cli``)

The package root (``revops_lib/__init__.py``) is the public API over all of them.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "revops_lib"
FOUNDATIONS = {"errors", "version", "periods", "schema", "sources", "slices", "validation", "stats", "files",
               "outdirs", "demo", "importers", "spark"}
LAYER_NAMES = {1: "foundations", 2: "metrics", 3: "presentation", 4: "runner", 5: "CLI", 6: "public API"}


def layer(module: str) -> int:
    parts = module.split(".")
    if parts == [PACKAGE]:
        return 6
    top = parts[1]
    if top in FOUNDATIONS:
        return 1
    return {"metrics": 2, "present": 3, "runner": 4, "cli": 5}[top]


def modules(package_dir: Path) -> dict[str, Path]:
    out = {}
    for f in package_dir.rglob("*.py"):
        rel = f.relative_to(package_dir.parent).with_suffix("")
        name = ".".join(rel.parts)
        out[name[: -len(".__init__")] if name.endswith(".__init__") else name] = f
    return out


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """The package modules ``name`` imports (with line numbers), at any depth of the file."""
    found = []
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in known and t != name:
                found.append((t, node.lineno))
    return found


def check(package_dir: Path) -> list[str]:
    """Every upward import and every import cycle, as messages (empty when the layers hold)."""
    mods = modules(package_dir)
    known = set(mods)
    problems = []
    graph: dict[str, set[str]] = {}
    for name, path in sorted(mods.items()):
        graph[name] = set()
        for target, line in imports(name, path, known):
            if target == PACKAGE or name.startswith(target + "."):
                continue  # the package root and a module's own parent packages are not dependencies
            graph[name].add(target)
            if layer(target) > layer(name):
                problems.append(f"{path.relative_to(package_dir.parent)}:{line}: {name} ({LAYER_NAMES[layer(name)]}) "
                                f"imports {target} ({LAYER_NAMES[layer(target)]}), a layer above it")
    # cycles: strongly connected components with more than one module (Tarjan)
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    problems += [f"import cycle: {' ⇄ '.join(c)}" for c in sccs]
    return problems


def test_every_import_of_the_library_goes_down_a_layer_and_none_is_circular():
    assert check(ROOT / PACKAGE) == []


def test_every_module_has_a_layer():
    for name in modules(ROOT / PACKAGE):
        assert layer(name) in LAYER_NAMES, name


@pytest.fixture
def copy(tmp_path):
    dst = tmp_path / PACKAGE
    shutil.copytree(ROOT / PACKAGE, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def plant(path: Path, code: str) -> None:
    path.write_text(path.read_text() + "\n\n" + code + "\n")


def test_a_planted_upward_import_inside_a_function_is_caught(copy):
    plant(copy / "metrics" / "common.py", "def _sneaky():\n    from revops_lib.present.format import fmt_money\n"
                                           "    return fmt_money")
    problems = check(copy)
    assert len(problems) == 1
    assert "revops_lib.metrics.common (metrics) imports revops_lib.present.format (presentation)" in problems[0]


def test_a_planted_import_of_the_runner_from_a_chart_is_caught(copy):
    plant(copy / "present" / "charts" / "base.py", "import revops_lib.runner.build")
    assert any("revops_lib.present.charts.base (presentation) imports revops_lib.runner.build (runner)" in p
               for p in check(copy))


def test_a_planted_cycle_inside_one_layer_is_caught(copy):
    plant(copy / "metrics" / "targets.py", "def _back():\n    from revops_lib.metrics import scorecard\n"
                                            "    return scorecard")
    problems = check(copy)
    assert any(p.startswith("import cycle:") and "revops_lib.metrics.scorecard" in p
               and "revops_lib.metrics.targets" in p for p in problems), problems


def missing(package_dir: Path) -> list[str]:
    """Imports of library modules that do not exist, and dotted names in strings (a kernel client class,
    a kernel's warm-up code) that point to no module — an import inside a function fails only when it runs."""
    import re

    mods = modules(package_dir)
    known = set(mods)
    dotted = re.compile(rf"\b{PACKAGE}(?:\.\w+)+")
    # the names the package root offers: every name it binds or lists (its __all__, its lazy table)
    public = {n.value for n in ast.walk(ast.parse((package_dir / "__init__.py").read_text()))
              if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    problems = []
    for name, path in sorted(mods.items()):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(package_dir.parent)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                wanted = [a.name for a in node.names if a.name.startswith(PACKAGE)]
                problems += [f"{where}: import {w}: no such module" for w in wanted if w not in known]
            elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith(PACKAGE):
                if node.module not in known:
                    problems.append(f"{where}: from {node.module} import …: no such module")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                for ref in dotted.findall(node.value):
                    parent, grandparent = ref.rsplit(".", 1)[0], ref.rsplit(".", 2)[0]
                    if not (ref in known or (parent in known and (parent != PACKAGE or ref.split(".")[1] in public))
                            or (grandparent in known and grandparent != PACKAGE)):
                        problems.append(f"{where}: {ref!r} names no module of the library")
    return problems


def test_every_library_module_named_in_an_import_or_a_dotted_string_exists():
    assert missing(ROOT / PACKAGE) == []


def test_a_planted_import_of_a_moved_module_is_caught(copy):
    plant(copy / "runner" / "kernels.py", "def _old():\n    from revops_lib._kernel_client import QuickReadyClient\n"
                                          "    return 'revops_lib._kernel_client.QuickReadyClient'")
    problems = missing(copy)
    assert len(problems) == 2 and all("_kernel_client" in p for p in problems), problems
