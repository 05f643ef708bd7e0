"""Benchmark: build 12 notebook-periods with `revops report` vs a plain papermill + nbconvert CLI loop.

Usage: python bench/report_build.py [--n 12] [--jobs 2] [--skip-cli]
       python bench/report_build.py --scale 100 [--jobs 2] [--period 2026-10]

Both variants run in this one invocation on the same demo data (scale 1, built
in /tmp/revops-bench/scale1 when absent). Printed: seconds per notebook-period
for each and the ratio. Target (issue 3): at most 1.5 s per notebook-period on
2 cores, at least 6x faster than the CLI loop.

With ``--scale S`` (issue 16): the five reports of one month built by ``revops report --jobs 2`` (a fresh
process and output folder, validation and export included) on demo data at scale 1, 10 and S (built in
/tmp/revops-bench/scaleN when absent: scale 100 is 5 M leads, 17 M rows, ~25 s to build once). Printed per
scale: wall seconds, each report's seconds (as the run's manifest records them), the peak resident memory
of any one process of the run (the runner and its kernels, sampled every 50 ms with psutil) and the growth
from scale 10 to S; and the CPU seconds of the run (every process), divided by the cores: the shortest wall
time any schedule of that work could take. Targets: <= 12 s at scale 100, every process < 1 GiB, growth
10 -> 100 < 4x.
"""

from __future__ import annotations

import argparse
import os
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
    ap.add_argument("--scale", type=float, default=None,
                    help="build one month's five reports at demo scale 1, 10 and this scale (e.g. 100)")
    ap.add_argument("--period", default="2026-10", help="the month built with --scale (default 2026-10)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per scale with --scale (the best counts)")
    ap.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                    help="with --scale: the engine of the reports (spark: a local Spark Connect server started by "
                         "the run, its JVM counted in the peak memory)")
    ap.add_argument("--only", default=None, metavar="S1,S2",
                    help="with --scale: these scales instead of 1, 10 and --scale (e.g. 1,100)")
    args = ap.parse_args()
    if args.scale is not None:
        return scales(args)

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


def _data(scale: float) -> Path:
    from revops_lib import demo

    folder = Path(f"/tmp/revops-bench/scale{scale:g}")
    if not (folder / "leads.parquet").exists():
        print(f"building demo data at scale {scale:g} in {folder} …", flush=True)
        demo.build(folder, scale=scale, end=END)
    return folder


END = "2026-11-01"  # the demo's end: the same data whatever the day the benchmark runs


def _one_build(data: Path, period: str, jobs: int, engine: str = "duckdb") -> tuple[float, int, dict, tuple]:
    """Wall seconds, peak RSS (bytes) of any one process of the run, each report's seconds, and the CPU seconds
    ``(all processes, the runner alone)``: all from ``getrusage(RUSAGE_CHILDREN)`` (the runner and every process
    it waited for: kernels, a Spark server), the runner's own from its last 50 ms sample."""
    import json
    import resource

    import psutil

    out = Path(tempfile.mkdtemp(prefix="revops-bench-")) / "reports"
    try:
        cmd = [sys.executable, "-m", "revops_lib.cli", "report", "--source", str(data), "--period", period,
               "--jobs", str(jobs), "--out", str(out), "--engine", engine]
        peak: dict[int, int] = {}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        runner_cpu = 0.0
        t0 = time.perf_counter()
        proc = psutil.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while proc.poll() is None:
            try:
                t = proc.cpu_times()
                runner_cpu = t.user + t.system
            except psutil.Error:
                pass
            try:
                procs = [proc] + proc.children(recursive=True)
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    peak[p.pid] = max(peak.get(p.pid, 0), p.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        err = proc.stderr.read().decode()
        if proc.returncode:
            raise SystemExit(f"revops report failed ({proc.returncode}):\n{err[-3000:]}")
        manifest = json.loads((out / period / "manifest.json").read_text())
        seconds = {n: m.get("seconds") for n, m in manifest.items() if isinstance(m, dict)}
        return wall, max(peak.values(), default=0), seconds, (cpu, runner_cpu)
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def scales(args) -> None:
    sizes = (sorted({float(x) for x in args.only.split(",")}) if args.only
             else sorted({1.0, 10.0, float(args.scale)}))
    print(f"one month ({args.period}), five reports, revops report --jobs {args.jobs} --engine {args.engine}; "
          f"best of {args.repeat}", flush=True)
    rows = {}
    for s in sizes:
        data = _data(s)
        best = None
        for _ in range(args.repeat):
            r = _one_build(data, args.period, args.jobs, args.engine)
            best = r if best is None or r[0] < best[0] else best
        wall, rss, secs, (cpu, runner_cpu) = best
        rows[s] = wall
        parts = ", ".join(f"{n} {v:.1f}" for n, v in sorted(secs.items(), key=lambda x: -(x[1] or 0)) if v)
        print(f"scale {s:>5g}: {wall:6.1f} s wall, peak RSS of one process {rss / 2**30:5.2f} GiB  ({parts})",
              flush=True)
        cores = os.cpu_count() or 1
        print(f"             CPU {cpu:6.1f} s in all (the runner {runner_cpu:.1f}, its kernels and servers "
              f"{cpu - runner_cpu:.1f}): no schedule of it takes less than {cpu / cores:.1f} s wall on {cores} cores",
              flush=True)
    if 10.0 in rows and args.scale > 10 and float(args.scale) in rows:
        print(f"growth scale 10 -> {args.scale:g}: {rows[float(args.scale)] / rows[10.0]:.2f}x")


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
