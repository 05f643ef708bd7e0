"""Benchmark: the funnel library (DuckDB via Ibis) against a straightforward pandas version, same run.

What is timed (imports and data generation excluded, opening the source and reading the Parquet file
included): the cohort
funnel by source with the Wilson intervals, the stage timing (median and 90th percentile days) and the
cohort trend (the last 12 cohorts, conversions within the cadence's window, maturity), for one month
and one quarter of the demo company at scale 100 (about 5 million leads; the quarterly trend covers
all of them). Each measurement runs in a fresh subprocess (so peak memory is its own): it imports,
notes its resident memory, computes ``--repeat`` times and reports the seconds, the CPU seconds and
the peak resident memory above that baseline. Library and pandas subprocesses alternate for
``--rounds`` rounds, so both see the same load from whatever else runs on the machine; the table
shows the best and the median wall time. The parent checks that both variants give the same numbers.

    .venv/bin/python bench/funnel.py [--data /tmp/revops-bench/scale100] [--rounds 3] [--repeat 2]

Targets (issue 4): at least 4x faster than pandas, under 0.6 s, peak memory under 1 GiB.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from revops_lib.metrics import lead_funnel

DEFAULT_DATA = Path("/tmp/revops-bench/scale100")
STAGES = ["created_at", "mql_at", "sql_at", "opportunity_at", "customer_at"]
PERIODS = ["2026-10", "2026-Q3"]


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the peak is measured from here."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


# ---------------------------------------------------------------------------
# The two variants
# ---------------------------------------------------------------------------


def library_variant(data: Path, period: str):
    from revops_lib.sources import open_source

    src = open_source(data)
    ft = lead_funnel.funnel_tables(src, period=period, by="source")
    trend = lead_funnel.cohort_trend(src, period=period)
    return ft.conversion, ft.timing, trend


def pandas_variant(data: Path, period: str):
    """The numbers of METRICS.md written the obvious way in pandas."""
    import pandas as pd

    from revops_lib.metrics.lead_funnel import default_trend_window
    from revops_lib.periods import parse_period
    from revops_lib.stats import wilson_interval

    p = parse_period(period)
    as_of = p.end_naive
    leads = pd.read_parquet(data / "leads.parquet", columns=["source", *STAGES])
    times = pd.DataFrame({s: leads[s].dt.tz_convert(None) for s in STAGES})
    times = times.where(times < as_of)
    reach = times.bfill(axis=1)  # a skipped stage is reached at the time of the next stage reached
    pairs = list(zip(STAGES[:-1], STAGES[1:]))

    # cohort funnel and stage timing by source (and all)
    cohort = reach[(reach[STAGES[0]] >= p.start_naive) & (reach[STAGES[0]] < as_of)]
    source = leads.loc[cohort.index, "source"].fillna("unknown")
    conv_rows, time_rows = [], []
    for a, b in pairs:
        entered = cohort[a].notna()
        converted = cohort[b].notna()
        days = (cohort[b] - cohort[a]).dt.total_seconds() / 86400
        frame = pd.DataFrame({"source": source, "entered": entered, "converted": converted, "days": days})
        for name, g in [("all", frame)] + list(frame.groupby("source")):
            e, c = int(g["entered"].sum()), int(g["converted"].sum())
            if e == 0:
                continue
            d = g.loc[g["converted"], "days"]
            conv_rows.append((name, a, b, e, c))
            time_rows.append((name, a, b, c, d.quantile(0.5), d.quantile(0.9)))
    conversion = pd.DataFrame(conv_rows, columns=["source", "from_stage", "to_stage", "entered", "converted"])
    conversion["rate"] = conversion["converted"] / conversion["entered"]
    conversion["ci_low"], conversion["ci_high"] = wilson_interval(conversion["converted"], conversion["entered"])
    timing = pd.DataFrame(time_rows, columns=["source", "from_stage", "to_stage", "n", "median_days", "p90_days"])

    # cohort trend: the last 12 cohorts, conversions within the window, maturity
    window = pd.Timedelta(days=default_trend_window(p.kind))
    periods = p.trailing(12)
    edges = [q.start_naive for q in periods] + [periods[-1].end_naive]
    first = reach[STAGES[0]]
    in_trend = reach[(first >= edges[0]) & (first < as_of)]
    k = pd.cut(in_trend[STAGES[0]], bins=edges, right=False, labels=[q.label for q in periods])
    trend_rows = []
    for a, b in pairs:
        frame = pd.DataFrame({"cohort": k, "entered": in_trend[a].notna(),
                              "converted": in_trend[b].notna() & (in_trend[b] - in_trend[a] <= window),
                              "pending": in_trend[a] + window > as_of})
        g = frame.groupby("cohort", observed=True).agg(entered=("entered", "sum"), converted=("converted", "sum"),
                                                        pending=("pending", "sum"))
        for label, r in g.iterrows():
            if r["entered"] == 0:
                continue
            end = next(q.end_naive for q in periods if q.label == label)
            trend_rows.append((label, a, b, int(r["entered"]), int(r["converted"]),
                               bool(end <= as_of and r["pending"] <= 0.01 * r["entered"])))
    trend = pd.DataFrame(trend_rows, columns=["cohort", "from_stage", "to_stage", "entered", "converted", "mature"])
    trend["rate"] = trend["converted"] / trend["entered"]
    return conversion, timing, trend


VARIANTS = {"library": library_variant, "pandas": pandas_variant}


def worker(variant: str, data: Path, period: str, repeat: int, out: Path) -> None:
    fn = VARIANTS[variant]
    # imports are not part of the measure: the same modules for both variants, including those the
    # first call would import lazily (scipy.stats for the Wilson z, the Ibis DuckDB backend, pyarrow's
    # Parquet reader); without this the first of the repeats carries about 0.8 s of imports
    import ibis.backends.duckdb  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import scipy.stats  # noqa: F401

    import revops_lib.metrics.lead_funnel  # noqa: F401
    base = _rss_kib("VmRSS")
    _reset_peak()
    seconds, cpu = [], []
    result = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn(data, period)
        seconds.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    peak = _rss_kib("VmHWM")
    out.write_bytes(pickle.dumps({"seconds": seconds, "cpu": cpu, "peak_mib": (peak - base) / 1024,
                                  "result": result}))


# ---------------------------------------------------------------------------
# The parent: data, subprocesses, checks, table
# ---------------------------------------------------------------------------


def ensure_data(data: Path) -> None:
    if (data / "leads.parquet").is_file():
        return
    from revops_lib import demo

    print(f"building the demo company at scale 100 in {data} (once) …", flush=True)
    demo.build(data, seed=42, scale=100, end="2026-11-01")


def run_variant(variant: str, data: Path, period: str, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.pkl"
        subprocess.run([sys.executable, __file__, "--worker", variant, "--data", str(data), "--period", period,
                        "--repeat", str(repeat), "--out", str(out)], check=True)
        return pickle.loads(out.read_bytes())


def check_equal(lib, ref) -> None:
    import pandas as pd

    conv, timing, trend = lib
    rconv, rtiming, rtrend = ref
    key = ["source", "from_stage", "to_stage"]
    a = conv[key + ["entered", "converted", "rate", "ci_low", "ci_high"]].sort_values(key, ignore_index=True)
    b = rconv.sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-12)
    a = timing.sort_values(key, ignore_index=True)
    b = rtiming.sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9, atol=1e-9)
    key = ["cohort", "from_stage", "to_stage"]
    cols = key + ["entered", "converted", "rate", "mature"]
    a = trend[cols].sort_values(key, ignore_index=True)
    b = rtrend[cols].sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-12)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=2, help="computations per subprocess")
    ap.add_argument("--rounds", type=int, default=3, help="alternating subprocesses per variant")
    ap.add_argument("--period", action="append", help="period(s) to measure (default: 2026-10 and 2026-Q3)")
    ap.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.data, args.period[0], args.repeat, args.out)
        return 0
    ensure_data(args.data)
    import pyarrow.parquet as pq

    n = pq.ParquetFile(args.data / "leads.parquet").metadata.num_rows
    print(f"funnel benchmark: {n:,} leads in {args.data}; {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.2f}; {args.rounds} alternating rounds x {args.repeat} runs per variant")
    rows, ok = [], True
    for period in args.period or PERIODS:
        runs = {"library": [], "pandas": []}
        for _ in range(args.rounds):
            for variant in runs:
                runs[variant].append(run_variant(variant, args.data, period, args.repeat))
        try:
            check_equal(runs["library"][-1]["result"], runs["pandas"][-1]["result"])
            same = "yes"
        except AssertionError as exc:
            same, ok = f"NO: {str(exc).splitlines()[0]}", False
        stats = {}
        for variant, rs in runs.items():
            secs = [x for r in rs for x in r["seconds"]]
            cpu = [x for r in rs for x in r["cpu"]]
            stats[variant] = (min(secs), statistics.median(secs), min(cpu), max(r["peak_mib"] for r in rs))
        lib, ref = stats["library"], stats["pandas"]
        rows.append((period, "library (DuckDB via Ibis)", *lib, "", "", same))
        rows.append((period, "pandas", *ref, f"{ref[0] / lib[0]:.1f}x", f"{ref[1] / lib[1]:.1f}x", ""))
    print(f"\n{'period':<9} {'variant':<26} {'best s':>7} {'median s':>9} {'cpu s':>6} {'peak MiB':>9} "
          f"{'x (best)':>9} {'x (median)':>11}  same result")
    for period, name, best, med, cpu, mib, r1, r2, same in rows:
        print(f"{period:<9} {name:<26} {best:>7.3f} {med:>9.3f} {cpu:>6.2f} {mib:>9.0f} {r1:>9} {r2:>11}  {same}")
    print(f"\ntargets: library >= 4x faster than pandas, < 0.6 s, peak < 1024 MiB (computation only); "
          f"load average now {os.getloadavg()[0]:.2f} (other work on the machine slows the library's threads)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
