"""Killed / survived per module after `mutmut run` (used by `make mutation`).

Reads mutmut's own result files (``mutants/<path>.py.meta``, one per mutated module), prints one line per
module and the total, lists the surviving mutants (``mutmut show NAME`` prints one as a diff) and exits
non-zero when fewer than ``--target`` percent of the checked mutants were killed.

    python tests/tools/mutation_summary.py [--target 90] [--mutants mutants] [--sample mutants/sample.txt]

With a sample (tests/tools/mutation_sample.py writes ``mutants/sample.txt``) only its mutants count, and the
killed share comes with its 95 % Wilson interval (an estimate for all the mutants).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py): 1 and 3 are a failing test run, 37 a type checker's catch
KILLED = {1, 3, 37}
SURVIVED = {0}
TIMEOUT = {24, -24, 36, 152, 255}
NO_TESTS = {5, 33}
NOT_CHECKED = {None}


def status(code) -> str:
    if code in KILLED:
        return "killed"
    if code in SURVIVED:
        return "survived"
    if code in TIMEOUT:
        return "timeout"  # an endless loop or a far slower run: counted as detected, as mutmut does
    if code in NO_TESTS:
        return "no tests"
    if code in NOT_CHECKED:
        return "not checked"
    return "suspicious"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", default="mutants", help="mutmut's working folder (default: mutants)")
    ap.add_argument("--target", type=float, default=90.0, help="percent of checked mutants that must be killed")
    ap.add_argument("--sample", default=None, help="file of the sampled mutant names (default: "
                    "<mutants>/sample.txt when it exists; else every mutant)")
    args = ap.parse_args(argv)
    root = Path(args.mutants)
    sample_file = Path(args.sample) if args.sample else root / "sample.txt"
    sample = set(sample_file.read_text().split()) if sample_file.is_file() else None
    metas = sorted(root.rglob("*.py.meta"))
    if not metas:
        print(f"no mutmut results under {root}/ — run `make mutation` first", file=sys.stderr)
        return 2
    rows, survivors, total = [], [], Counter()
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if sample is not None:
            codes = {k: v for k, v in codes.items() if k in sample}
        if not codes:
            continue
        module = str(meta.relative_to(root))[: -len(".meta")]
        counts = Counter(status(c) for c in codes.values())
        total.update(counts)
        rows.append((module, counts))
        survivors += sorted(name for name, c in codes.items() if status(c) in ("survived", "no tests"))
    width = max(len(m) for m, _ in rows)
    print(f"{'module':<{width}}  {'mutants':>7}  {'killed':>6}  {'timeout':>7}  {'survived':>8}  {'no tests':>8}  {'killed %':>8}")

    def line(name, c):
        checked = c["killed"] + c["timeout"] + c["survived"] + c["no tests"]
        pct = 100.0 * (c["killed"] + c["timeout"]) / checked if checked else float("nan")
        print(f"{name:<{width}}  {sum(c.values()):>7}  {c['killed']:>6}  {c['timeout']:>7}  {c['survived']:>8}  "
              f"{c['no tests']:>8}  {pct:>7.1f}%")
        return pct

    for module, counts in rows:
        line(module, counts)
    pct = line("total", total)
    if total["not checked"] or total["suspicious"]:
        print(f"(not checked: {total['not checked']}, suspicious: {total['suspicious']})")
    if survivors:
        print(f"\nsurviving mutants ({len(survivors)}; `mutmut show NAME` prints one):")
        for name in survivors:
            print("  " + name)
    ok = pct >= args.target
    checked = total["killed"] + total["timeout"] + total["survived"] + total["no tests"]
    if sample is not None and checked:
        from statsmodels.stats.proportion import proportion_confint

        low, high = proportion_confint(total["killed"] + total["timeout"], checked, alpha=0.05, method="wilson")
        print(f"\nsample of {len(sample)} mutants ({sample_file}); 95% Wilson interval of the killed share: "
              f"{100 * low:.1f}% – {100 * high:.1f}%")
    print(f"\n{pct:.1f}% killed — target {args.target:.0f}%: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
