"""Run mutmut on a random sample of the mutants (used by `make mutation`).

The metric and statistics modules give about 13,000 mutants; each one runs the fast tests that reach
its function (mutmut's own test selection), so testing all of them takes many hours on two cores. A
random sample, stratified by module and drawn with a fixed seed, estimates the killed share with a
stated uncertainty (tests/tools/mutation_summary.py prints a Wilson interval) in well under an hour.
``--sample 0`` runs every mutant.

    python tests/tools/mutation_sample.py [--sample 400] [--seed 2026] [--jobs 2]

Steps: generate the mutants when ``mutants/`` holds none (mutmut's own generator, the step `mutmut run`
starts with), draw the sample into ``mutants/sample.txt``, run ``mutmut run NAME …`` on it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

MUTANTS = Path("mutants")
SAMPLE_FILE = MUTANTS / "sample.txt"


def generate() -> None:
    """mutmut's mutant generation alone (the first step of `mutmut run`, which has no command of its own)."""
    from mutmut.__main__ import create_mutants, store_lines_covered_by_tests
    from mutmut.mutation.trampoline import set_mutant_under_test
    from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, setup_source_paths

    set_mutant_under_test("mutant_generation")
    MUTANTS.mkdir(exist_ok=True)
    copy_src_dir()
    copy_also_copy_files()
    setup_source_paths()
    store_lines_covered_by_tests()
    print(create_mutants(os.cpu_count() or 2), flush=True)


def all_mutants() -> dict[str, list[str]]:
    """Mutant names by module, from mutmut's result files."""
    out = defaultdict(list)
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        out[str(meta.relative_to(MUTANTS))[: -len(".meta")]] += sorted(json.loads(meta.read_text())["exit_code_by_key"])
    return {k: v for k, v in out.items() if v}


def draw(by_module: dict[str, list[str]], n: int, seed: int) -> list[str]:
    """A sample of about ``n`` names, each module's share proportional to its mutants (at least 5 each)."""
    total = sum(len(v) for v in by_module.values())
    rng = random.Random(seed)
    chosen = []
    for module, names in sorted(by_module.items()):
        k = min(len(names), max(5, round(n * len(names) / total)))
        chosen += rng.sample(names, k)
    return sorted(chosen)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=400, help="mutants to test (0: all of them; default 400)")
    ap.add_argument("--seed", type=int, default=2026, help="seed of the draw (default 2026)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    args = ap.parse_args(argv)
    if not all_mutants():
        print("generating mutants …", flush=True)
        subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'tests/tools'); "
                        "import mutation_sample as m; m.generate()"], check=True)
    by_module = all_mutants()
    total = sum(len(v) for v in by_module.values())
    names = [n for v in by_module.values() for n in v] if args.sample <= 0 else draw(by_module, args.sample, args.seed)
    SAMPLE_FILE.write_text("\n".join(names) + "\n")
    print(f"{len(names)} of {total} mutants (seed {args.seed}) → {SAMPLE_FILE}", flush=True)
    mutmut = Path(sys.executable).with_name("mutmut")
    return subprocess.run([str(mutmut), "run", "--max-children", str(args.jobs), *names]).returncode


if __name__ == "__main__":
    sys.exit(main())
