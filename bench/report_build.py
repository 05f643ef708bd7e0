"""Benchmark: build 12 notebook-periods with `revops report` vs a plain papermill + nbconvert CLI loop.

Usage: python bench/report_build.py [--n 12] [--jobs 2] [--skip-cli]

Both variants run in this one invocation on the same demo data (scale 1, built
in /tmp/revops-bench/scale1 when absent). Printed: seconds per notebook-period
for each and the ratio. Target (issue 3): at most 1.5 s per notebook-period on
2 cores, at least 6x faster than the CLI loop.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/tmp/revops-bench/scale1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=12, help="notebook-periods to build (default 12)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel notebooks for revops report (default 2)")
    ap.add_argument("--skip-cli", action="store_true", help="only time revops report")
    args = ap.parse_args()

    from revops_lib import demo
    from revops_lib.periods import default_period
    from revops_lib.runner import registry

    if not (DATA / "leads.parquet").exists():
        print(f"building demo data in {DATA} …", flush=True)
        demo.build(DATA, scale=1)
    notebooks = registry.notebook_names()
    months = default_period().trailing(args.n)
    tasks = [(notebooks[i % len(notebooks)], months[i].label) for i in range(args.n)]
    print(f"{args.n} notebook-periods: " + ", ".join(f"{n}@{p}" for n, p in tasks), flush=True)

    out = Path(tempfile.mkdtemp(prefix="revops-bench-"))
    try:
        # --- revops report: one process, warm kernels, parallel -------------------------
        by_period: dict[str, list[str]] = {}
        for n, p in tasks:
            by_period.setdefault(p, []).append(n)
        t0 = time.perf_counter()
        cmd = [sys.executable, "-c", _RUN, str(DATA), str(out / "kit"), str(args.jobs), repr(tasks)]
        subprocess.run(cmd, check=True, cwd=ROOT)
        kit = time.perf_counter() - t0
        print(f"revops report  : {kit:7.1f} s total, {kit / args.n:5.2f} s per notebook-period "
              f"(jobs={args.jobs}, process start and imports included)", flush=True)

        if args.skip_cli:
            return
        # --- plain CLI loop: papermill then jupyter nbconvert per notebook-period --------
        bin_dir = Path(sys.executable).parent
        cli_out = out / "cli"
        cli_out.mkdir()
        t0 = time.perf_counter()
        for n, p in tasks:
            executed = cli_out / f"{n}-{p}.ipynb"
            subprocess.run([str(bin_dir / "papermill"), str(ROOT / "notebooks" / f"{n}.ipynb"), str(executed),
                            "-p", "period", p, "-p", "source", str(DATA), "--cwd", str(ROOT / "notebooks"),
                            "--no-progress-bar", "-k", "python3"], check=True, capture_output=True)
            subprocess.run([str(bin_dir / "jupyter"), "nbconvert", "--to", "html", "--no-input", str(executed)],
                           check=True, capture_output=True)
        cli = time.perf_counter() - t0
        print(f"CLI loop       : {cli:7.1f} s total, {cli / args.n:5.2f} s per notebook-period", flush=True)
        print(f"ratio          : {cli / kit:5.1f}x faster (target >= 6x, <= 1.5 s per notebook-period)")
    finally:
        shutil.rmtree(out, ignore_errors=True)


_RUN = r"""
import sys, ast
from revops_lib.runner import build
data, out, jobs, tasks = sys.argv[1], sys.argv[2], int(sys.argv[3]), ast.literal_eval(sys.argv[4])
periods = sorted({p for _, p in tasks})
notebooks = sorted({n for n, _ in tasks})
# one run: every requested notebook for every period in the list (filtered to the exact tasks)
status = build.run(source=data, out=out, jobs=jobs, force=True, periods=periods, notebooks=notebooks,
                    progress=lambda m: None, only=set(map(tuple, tasks)))
sys.exit(status)
"""

if __name__ == "__main__":
    main()
