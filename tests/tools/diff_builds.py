"""Build the five reports for a few periods, and diff two such builds table by table.

Used to show that a refactoring changes no published number (issue "One home for every number"):

    python tests/tools/diff_builds.py build /tmp/before --source data/demo
    ... change the library ...
    python tests/tools/diff_builds.py build /tmp/after --source data/demo
    python tests/tools/diff_builds.py diff /tmp/before /tmp/after

``build`` runs ``revops report`` for a month, a quarter and an ISO week (``--periods``) with
``--force``; ``diff`` compares every published CSV (``<period>/tables/<report>/<name>.csv``) byte for
byte and, where two differ, prints the cells that differ (up to ``--cells`` per table). Exit status 1
when anything differs.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

PERIODS = "2026-10,2026-Q3,2026-W40"


def build(out: Path, source: str, periods: str, jobs: int) -> int:
    status = 0
    for p in periods.split(","):
        cmd = [sys.executable, "-m", "revops_lib.cli", "report", "--period", p, "--source", source,
               "--out", str(out), "--force", "--jobs", str(jobs)]
        print("$", " ".join(cmd), flush=True)
        status |= subprocess.call(cmd)
    return status


def _tables(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.glob("*/tables/*/*.csv"))}


def diff(a: Path, b: Path, cells: int) -> int:
    import pandas as pd

    ta, tb = _tables(a), _tables(b)
    differ = 0
    for name in sorted(set(ta) | set(tb)):
        if name not in ta or name not in tb:
            print(f"{name}: only in {'after' if name not in ta else 'before'}")
            differ += 1
            continue
        x, y = ta[name].read_bytes(), tb[name].read_bytes()
        if x == y:
            continue
        differ += 1
        da = pd.read_csv(io.BytesIO(x), keep_default_na=False, dtype=str)
        db = pd.read_csv(io.BytesIO(y), keep_default_na=False, dtype=str)
        if list(da.columns) != list(db.columns) or len(da) != len(db):
            print(f"{name}: shape {da.shape} {list(da.columns)} -> {db.shape} {list(db.columns)}")
            continue
        mask = da.ne(db)
        shown = 0
        print(f"{name}: {int(mask.to_numpy().sum())} cell(s) differ")
        for i, j in zip(*mask.to_numpy().nonzero()):
            if shown >= cells:
                break
            print(f"    row {i} {da.columns[j]}: {da.iat[i, j]!r} -> {db.iat[i, j]!r}   ({da.iloc[i, 0]!r})")
            shown += 1
    print(f"{len(set(ta) | set(tb))} tables compared, {differ} differ")
    return 1 if differ else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the reports of --periods into OUT")
    b.add_argument("out", type=Path)
    b.add_argument("--source", default="data/demo")
    b.add_argument("--periods", default=PERIODS)
    b.add_argument("--jobs", type=int, default=2)
    d = sub.add_parser("diff", help="compare the published tables of two builds")
    d.add_argument("before", type=Path)
    d.add_argument("after", type=Path)
    d.add_argument("--cells", type=int, default=5)
    args = ap.parse_args(argv)
    if args.cmd == "build":
        return build(args.out, args.source, args.periods, args.jobs)
    return diff(args.before, args.after, args.cells)


if __name__ == "__main__":
    sys.exit(main())
