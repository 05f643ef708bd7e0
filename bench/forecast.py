"""Benchmark: point-in-time pipeline at every weekly snapshot over 3 years, and the baseline forecast.

Demo data at scale 100 (~575k opportunities, ~2.5M history rows) in
/tmp/revops-bench/scale100 (built with ``revops_lib.demo.build`` when absent).
Snapshots: every Monday of the data's 36 months (~156). For each snapshot:
the open pipeline (deals, amount) and the baseline forecast of the month and
of the quarter holding it (company scope: won to date + open pipeline due in
the period x historical stage win rates, from deals closed before the
snapshot).

Two implementations of the same numbers, each timed in a fresh subprocess
(imports and data generation excluded, reading the Parquet files included):

- ``library``: revops_lib.metrics.pipeline and .forecast (Ibis -> DuckDB): ``prepare`` +
  ``pipeline_snapshots`` + ``baseline_forecast``;
- ``pandas``: a straightforward pandas loop over the snapshots (each row's
  validity interval computed once, then a boolean mask per snapshot).

The results are checked equal (to 1e-6 relative), then a table prints
seconds (best of ``--repeat``), CPU seconds, peak RSS of the process and the
speed ratio. Targets: library at least 5x faster than pandas, under 5 s on
2 cores.

    .venv/bin/python bench/forecast.py [--data DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from revops_lib.metrics import deal_history, pipeline
from revops_lib.metrics import forecast as fc

DATA = Path("/tmp/revops-bench/scale100")
FAR = "2999-12-31"


def calendar(data: Path):
    """Every Monday of the data window, with the month and quarter holding it."""
    import pandas as pd

    from revops_lib.periods import period_of

    h = pd.read_parquet(data / "opportunity_history.parquet", columns=["changed_at"])
    first, last = h["changed_at"].min().tz_convert(None), h["changed_at"].max().tz_convert(None)
    mondays = pd.date_range(first.normalize(), last, freq="W-MON")
    rows = []
    for d in mondays:
        for kind in ("month", "quarter"):
            p = period_of(d, kind)
            rows.append((d.date(), p.label, p.start_date, p.end_date))
    snaps = pd.DataFrame(rows, columns=["snapshot_date", "forecast_period", "start", "end"])
    return list(mondays), snaps


def run_library(data: Path, mondays, snaps):
    from revops_lib.sources import open_source

    src = open_source(data)
    with deal_history.prepare(src, scopes=False) as deals:
        pipe = pipeline.pipeline_snapshots(deals, dates=mondays)
        base = fc.baseline_forecast(deals, snapshots=snaps[["snapshot_date", "forecast_period"]])
    return pipe, base


def run_pandas(data: Path, mondays, snaps, won=("closed_won",), lost=("closed_lost",)):
    import numpy as np
    import pandas as pd

    h = pd.read_parquet(data / "opportunity_history.parquet",
                        columns=["opportunity_id", "changed_at", "stage", "amount", "close_date"])
    o = pd.read_parquet(data / "opportunities.parquet",
                        columns=["opportunity_id", "created_at", "close_date", "is_closed", "is_won", "amount",
                                 "stage"])
    h["changed_at"] = h["changed_at"].dt.tz_convert(None)
    o["created_at"] = o["created_at"].dt.tz_convert(None)
    # deals without history: open from created_at, closed from the end of their close date
    nh = o[~o["opportunity_id"].isin(h["opportunity_id"])]
    if len(nh):
        end = pd.to_datetime(nh["close_date"]) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        openrows = nh.assign(changed_at=nh["created_at"], stage=nh["stage"].where(~nh["is_closed"]))
        closerows = nh[nh["is_closed"]].assign(changed_at=np.maximum(nh["created_at"], end),
                                               stage=np.where(nh["is_won"], "closed_won", "closed_lost"))
        h = pd.concat([h, openrows[h.columns], closerows[h.columns]], ignore_index=True)
    h["close_date"] = pd.to_datetime(h["close_date"])
    h = h.sort_values(["opportunity_id", "changed_at"], kind="stable", ignore_index=True)
    h["valid_to"] = h.groupby("opportunity_id")["changed_at"].shift(-1).fillna(pd.Timestamp(FAR))
    h["closed"] = h["stage"].isin(won + lost)
    h["won"] = h["stage"].isin(won)
    closed = h[h["closed"]][["opportunity_id", "changed_at", "valid_to", "won"]]
    firsts = h[~h["closed"] & h["stage"].notna()].groupby(["opportunity_id", "stage"], as_index=False)[
        "changed_at"].min()
    spans = closed.merge(firsts.rename(columns={"changed_at": "first"}), on="opportunity_id")
    spans["start"] = np.maximum(spans["changed_at"], spans["first"])
    spans = spans[spans["start"] < spans["valid_to"]]
    pipe_rows, base_rows = [], []
    for t in mondays:
        state = h[(h["changed_at"] < t) & (h["valid_to"] >= t)]
        opn = state[~state["closed"]]
        pipe_rows.append((t, len(opn), float(opn["amount"].sum())))
        cl = closed[(closed["changed_at"] < t) & (closed["valid_to"] >= t)]
        overall = cl["won"].mean() if len(cl) else 0.0
        sp = spans[(spans["start"] < t) & (spans["valid_to"] >= t)]
        rates = sp.groupby("stage")["won"].mean()
        won_state = state[state["won"]]
        for s in snaps[snaps["snapshot_date"] == t.date()].itertuples():
            lo, hi = pd.Timestamp(s.start), pd.Timestamp(s.end)
            due = opn[(opn["close_date"] >= lo) & (opn["close_date"] < hi)]
            weight = due["stage"].map(rates).astype(float).fillna(overall)
            wtd = won_state.loc[(won_state["close_date"] >= lo) & (won_state["close_date"] < hi), "amount"].sum()
            base_rows.append((s.snapshot_date, s.forecast_period, float(wtd), float(due["amount"].sum()),
                              float(wtd + (due["amount"] * weight).sum())))
    pipe = pd.DataFrame(pipe_rows, columns=["snapshot_date", "deals", "amount"])
    base = pd.DataFrame(base_rows, columns=["snapshot_date", "forecast_period", "won_to_date", "open_pipeline",
                                            "forecast"])
    return pipe, base


def child(variant: str, data: Path, out: Path, repeat: int) -> None:
    """Run one variant ``repeat`` times in this (fresh) process; write its results and timings."""
    import pandas as pd

    mondays, snaps = calendar(data)
    rss_ready = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn = run_library if variant == "library" else run_pandas
    times, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        pipe, base = fn(data, mondays, snaps)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    pipe["snapshot_date"] = pd.to_datetime(pipe["snapshot_date"])
    base["snapshot_date"] = pd.to_datetime(base["snapshot_date"])
    pipe.to_parquet(out / f"{variant}_pipe.parquet")
    base[["snapshot_date", "forecast_period", "won_to_date", "open_pipeline", "forecast"]].to_parquet(
        out / f"{variant}_base.parquet")
    (out / f"{variant}.json").write_text(json.dumps({
        "seconds": min(times), "all_seconds": times, "cpu": cpus[times.index(min(times))],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss_ready / 1024, "snapshots": len(mondays), "baselines": len(snaps)}))


def ensure_data(path: Path) -> None:
    if (path / "opportunity_history.parquet").is_file():
        return
    from revops_lib import demo

    print(f"building demo data at scale 100 in {path} (once) …", flush=True)
    demo.build(path, scale=100, seed=42)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--repeat", type=int, default=3, help="runs per variant; the best is reported")
    ap.add_argument("--child", choices=["library", "pandas"], help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data, args.out, args.repeat)
        return 0
    import pandas as pd

    ensure_data(args.data)
    out = Path(tempfile.mkdtemp(prefix="bench-forecast-"))
    res = {}
    for variant, rep in (("library", args.repeat), ("pandas", max(1, min(args.repeat, 2)))):
        print(f"running {variant} ({rep} run{'s' if rep > 1 else ''}) …", flush=True)
        subprocess.run([sys.executable, __file__, "--child", variant, "--data", str(args.data), "--out", str(out),
                        "--repeat", str(rep)], check=True)
        res[variant] = json.loads((out / f"{variant}.json").read_text())
    # the same numbers?
    lp, pp = pd.read_parquet(out / "library_pipe.parquet"), pd.read_parquet(out / "pandas_pipe.parquet")
    lb, pb = pd.read_parquet(out / "library_base.parquet"), pd.read_parquet(out / "pandas_base.parquet")
    lp["deals"] = lp["deals"].astype("int64")
    pp["deals"] = pp["deals"].astype("int64")
    key = ["snapshot_date", "forecast_period"]
    pd.testing.assert_frame_equal(lp.reset_index(drop=True), pp.reset_index(drop=True), check_dtype=False,
                                  rtol=1e-6)
    pd.testing.assert_frame_equal(lb.sort_values(key, ignore_index=True), pb.sort_values(key, ignore_index=True),
                                  check_dtype=False, rtol=1e-6)
    lib, pan = res["library"], res["pandas"]
    print(f"\nforecast: {lib['snapshots']} weekly snapshots, {lib['baselines']} baselines (month + quarter), "
          f"data {args.data} ({os.cpu_count()} cores); results equal: yes")
    print(f"{'variant':<10}{'seconds':>10}{'cpu s':>9}{'peak RSS':>12}{'RSS ready':>12}")
    for name, r in (("library", lib), ("pandas", pan)):
        print(f"{name:<10}{r['seconds']:>10.2f}{r['cpu']:>9.2f}{r['peak_rss_mb']:>9.0f} MB{r['rss_before_mb']:>9.0f} MB")
    ratio = pan["seconds"] / lib["seconds"]
    print(f"speed-up: {ratio:.1f}x (target >= 5x); library {lib['seconds']:.2f} s (target < 5 s); "
          f"library runs: {', '.join(f'{s:.2f}' for s in lib['all_seconds'])} s")
    return 0 if ratio >= 5 and lib["seconds"] < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
