"""Benchmark: cohort retention tables and MRR movements, the library (Ibis → DuckDB) vs straightforward pandas.

    .venv/bin/python bench/retention.py                 # demo scale 100 in /tmp/revops-bench/scale100
    .venv/bin/python bench/retention.py --scale 550     # ~1 million customers (built once, ~2 minutes)

Four variants, each in fresh subprocesses (so peak memory is its own), timed
after the imports and the data generation; ``--rounds`` rounds run every
variant in turn, ``--repeat`` timed runs per process, the best run counts:

- ``lib_cohorts``: logo + revenue cohort tables (last 24 cohorts) from a
  customer-months Parquet file (``customer_id, month, mrr``), with
  :func:`revops_lib.metrics.cohorts.cohort_retention`;
- ``pandas_cohorts``: the same tables with idiomatic pandas from the same file;
- ``lib_chain``: the whole chain from ``subscriptions.parquet``: month-end
  MRR per customer, the cohort tables and 12 months of MRR movements;
- ``pandas_chain``: the same chain in pandas (expand every subscription to
  its months, group, cohort matrix, movements with ``shift``).

The results are checked equal (in integer cents) before the timings are
printed. Targets (issue 6): cohort tables >= 6x faster than pandas and
< 0.6 s; whole chain < 2 s; peak memory < 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from revops_lib.metrics import cohorts, mrr

PERIOD = "2026-10"
END = "2026-11-01"
LAST = 2026 * 12 + 9  # month index of 2026-10
COHORTS = 24
MONTHS = 12


# ---------------------------------------------------------------------------
# Variants (run in a child process)
# ---------------------------------------------------------------------------


def lib_cohorts(data: Path, cm_path: Path):
    import ibis


    con = ibis.duckdb.connect()

    def run():
        cm = con.read_parquet(str(cm_path))
        return {"cohorts": cohorts.cohort_retention(cm, period=PERIOD, cohorts=COHORTS)}

    return run


def pandas_cohorts(data: Path, cm_path: Path):
    import numpy as np
    import pandas as pd

    def run():
        cm = pd.read_parquet(cm_path)
        cm["m"] = cm["month"].dt.year * 12 + cm["month"].dt.month - 1
        cm["cents"] = (cm["mrr"] * 100).round().astype("int64")
        cm = cm[(cm["cents"] > 0) & (cm["m"] <= LAST)]
        cm["cohort"] = cm.groupby("customer_id")["m"].transform("min")
        cm = cm[cm["cohort"] > LAST - COHORTS]
        first = cm.loc[cm["m"] == cm["cohort"], ["customer_id", "cents"]].rename(columns={"cents": "cents0"})
        cm = cm.merge(first, on="customer_id")
        cm["age"] = cm["m"] - cm["cohort"]
        cm["capped"] = np.minimum(cm["cents"], cm["cents0"])
        cells = cm.groupby(["cohort", "age"]).agg(active=("cents", "size"), mrr=("cents", "sum"),
                                                  capped=("capped", "sum")).reset_index()
        return {"cohorts": _pandas_cohort_table(cells)}

    return run


def lib_chain(data: Path, cm_path: Path):
    from revops_lib.sources import open_source

    def run():
        src = open_source(str(data))
        with mrr.customer_mrr(src.table("subscriptions"), period=PERIOD) as cm:  # cached in DuckDB
            table = cohorts.cohort_retention(cm, cohorts=COHORTS)
            movements = mrr.mrr_movements(cm, months=MONTHS)
        return {"cohorts": table, "movements": movements}

    return run


def pandas_chain(data: Path, cm_path: Path):
    import numpy as np
    import pandas as pd

    def run():
        s = pd.read_parquet(data / "subscriptions.parquet", columns=["customer_id", "start_date", "mrr", "end_date"])
        start = pd.to_datetime(s["start_date"])
        end = pd.to_datetime(s["end_date"])
        s["m0"] = start.dt.year * 12 + start.dt.month - 1
        s["m1"] = (end.dt.year * 12 + end.dt.month - 2).fillna(LAST).clip(upper=LAST).astype("int64")
        s["cents"] = (s["mrr"] * 100).round().astype("int64")
        s = s[(s["m1"] >= s["m0"]) & (s["cents"] > 0)]
        # month-end MRR: one row per subscription and month it is active on the last day
        rep = s.loc[s.index.repeat(s["m1"] - s["m0"] + 1), ["customer_id", "m0", "cents"]]
        rep["m"] = rep["m0"] + rep.groupby(level=0).cumcount()
        cm = rep.groupby(["customer_id", "m"], as_index=False)["cents"].sum()
        # cohorts
        cm["cohort"] = cm.groupby("customer_id")["m"].transform("min")
        first = cm.loc[cm["m"] == cm["cohort"], ["customer_id", "cents"]].rename(columns={"cents": "cents0"})
        cm = cm.merge(first, on="customer_id")
        recent = cm[cm["cohort"] > LAST - COHORTS]
        cells = (recent.assign(age=recent["m"] - recent["cohort"],
                               capped=np.minimum(recent["cents"], recent["cents0"]))
                 .groupby(["cohort", "age"]).agg(active=("cents", "size"), mrr=("cents", "sum"),
                                                 capped=("capped", "sum")).reset_index())
        # movements
        cm = cm.sort_values(["customer_id", "m"])
        g = cm.groupby("customer_id")
        prev_m, prev_c, next_m = g["m"].shift(1), g["cents"].shift(1), g["m"].shift(-1)
        first_row = prev_m.isna()
        cont = prev_m == cm["m"] - 1
        delta = cm["cents"] - prev_c
        moves = pd.DataFrame({
            "m": cm["m"],
            "new": cm["cents"].where(first_row, 0),
            "reactivation": cm["cents"].where(~first_row & ~cont, 0),
            "expansion": delta.where(cont & (delta > 0), 0),
            "contraction": (-delta).where(cont & (delta < 0), 0),
        }).groupby("m").sum()
        gone = (next_m != cm["m"] + 1) & (cm["m"] < LAST)
        churn = cm.loc[gone].assign(m=cm["m"] + 1).groupby("m")["cents"].sum().rename("churned")
        ending = cm.groupby("m")["cents"].sum().rename("ending")
        mv = pd.concat([moves, churn, ending], axis=1).fillna(0).astype("int64")
        mv = mv.reindex(range(mv.index.min(), LAST + 1), fill_value=0)
        mv["starting"] = mv["ending"].shift(1, fill_value=0)
        mv = mv.loc[LAST - MONTHS + 1:]
        return {"cohorts": _pandas_cohort_table(cells), "movements": mv}

    return run


VARIANTS = {"lib_cohorts": lib_cohorts, "pandas_cohorts": pandas_cohorts, "lib_chain": lib_chain,
            "pandas_chain": pandas_chain}


def _pandas_cohort_table(cells):
    """Cells in cents -> the comparable key columns (cohort, age, size, active, starting, mrr, capped)."""
    size = cells[cells["age"] == 0].set_index("cohort")
    out = cells.assign(cohort_size=cells["cohort"].map(size["active"]), starting=cells["cohort"].map(size["mrr"]))
    return out


def _normalise(result: dict) -> dict:
    """Comparable integer frames from library or pandas results."""
    import pandas as pd

    out = {}
    c = result["cohorts"]
    if "retention" in c.columns:  # library output
        t = pd.DataFrame({
            "cohort": [int(x[:4]) * 12 + int(x[5:]) - 1 for x in c["cohort"]], "age": c["age"],
            "cohort_size": c["cohort_size"], "active": c["active"],
            "starting": (c["starting_mrr"] * 100).round(), "mrr": (c["mrr"] * 100).round(),
            "capped": (c["capped_mrr"] * 100).round()})
        t = t[t["active"] > 0]  # pandas has no rows for ages where nobody paid
    else:
        t = c[["cohort", "age", "cohort_size", "active", "starting", "mrr", "capped"]]
    out["cohorts"] = t.astype("int64").sort_values(["cohort", "age"], ignore_index=True)
    if "movements" in result:
        mv = result["movements"]
        if "month" in mv.columns:  # library output
            mv = pd.DataFrame({
                "m": [int(x[:4]) * 12 + int(x[5:]) - 1 for x in mv["month"]],
                **{k: (mv[c] * 100).round() for k, c in (("starting", "starting_mrr"), ("new", "new"),
                                                         ("expansion", "expansion"), ("reactivation", "reactivation"),
                                                         ("contraction", "contraction"), ("churned", "churned"),
                                                         ("ending", "ending_mrr"))}})
        else:
            mv = mv.reset_index().rename(columns={"index": "m"})
        cols = ["m", "starting", "new", "expansion", "reactivation", "contraction", "churned", "ending"]
        out["movements"] = mv[cols].astype("int64").reset_index(drop=True)
    return out


def _peak_rss() -> int:
    """Peak resident memory of this process in bytes.

    VmHWM belongs to the process image, so it starts afresh at exec; ``ru_maxrss`` does not (Linux keeps
    the parent's peak across fork + exec, which inflated the children's figures after a large data build).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def child(name: str, data: Path, cm_path: Path, repeat: int, out: Path) -> None:
    run = VARIANTS[name](data, cm_path)  # imports happen here, outside the timing
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
    peak = _peak_rss()
    with open(out, "wb") as f:
        pickle.dump({"times": times, "peak": peak, "result": _normalise(result)}, f)


# ---------------------------------------------------------------------------
# Parent: data, variants, checks, table
# ---------------------------------------------------------------------------


def ensure_data(scale: float, folder: Path | None) -> Path:
    from revops_lib import demo

    path = folder or Path(f"/tmp/revops-bench/scale{scale:g}")
    if not (path / "subscriptions.parquet").is_file():
        print(f"Building demo data at scale {scale:g} in {path} …", flush=True)
        demo.build(path, seed=42, scale=scale, end=END)
    return path


def ensure_customer_months(data: Path) -> Path:
    """The customer-months input of the cohort-table variants, written once by the library (not timed)."""
    from revops_lib.sources import open_source

    path = Path(tempfile.gettempdir()) / "revops-bench" / f"customer_months_{data.name}.parquet"
    src_file = data / "subscriptions.parquet"
    if not path.is_file() or path.stat().st_mtime < src_file.stat().st_mtime:
        path.parent.mkdir(parents=True, exist_ok=True)
        src = open_source(str(data))
        cm = mrr.customer_months(src.table("subscriptions"), period=PERIOD)
        cm = cm.mutate(month=cm.month.cast("timestamp")).order_by(["customer_id", "month"])
        tmp = path.with_suffix(".partial")
        src.con.to_parquet(cm, str(tmp))
        os.replace(tmp, path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=100)
    ap.add_argument("--data", type=Path, default=None, help="demo folder (default /tmp/revops-bench/scale<scale>)")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per process")
    ap.add_argument("--rounds", type=int, default=2, help="processes per variant, run in turn")
    ap.add_argument("--variant", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    ap.add_argument("--cm", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        child(args.variant, args.data, args.cm, args.repeat, args.out)
        return 0

    import duckdb
    import pandas as pd

    data = ensure_data(args.scale, args.data)
    cm_path = ensure_customer_months(data)
    n_subs, n_cust = duckdb.sql(f"select count(*), count(distinct customer_id) from "
                                f"'{data / 'subscriptions.parquet'}'").fetchone()
    n_cm = duckdb.sql(f"select count(*) from '{cm_path}'").fetchone()[0]
    print(f"data: {data} — {n_subs:,} subscriptions, {n_cust:,} customers, {n_cm:,} customer-months; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; best of {args.rounds} x {args.repeat} runs")

    # rounds of every variant in turn (a fresh process each): a busy machine slows all variants alike
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for name in VARIANTS:
                out = Path(tmp) / f"{name}.{rnd}.pkl"
                subprocess.run([sys.executable, __file__, "--variant", name, "--data", str(data), "--cm",
                                str(cm_path), "--repeat", str(args.repeat), "--out", str(out)], check=True)
                with open(out, "rb") as f:
                    got = pickle.load(f)
                if name in res:
                    res[name]["times"] += got["times"]
                    res[name]["peak"] = max(res[name]["peak"], got["peak"])
                else:
                    res[name] = got

    # the same numbers, to the cent
    for a, b, parts in (("lib_cohorts", "pandas_cohorts", ["cohorts"]),
                        ("lib_chain", "pandas_chain", ["cohorts", "movements"]),
                        ("lib_chain", "lib_cohorts", ["cohorts"])):
        for part in parts:
            pd.testing.assert_frame_equal(res[a]["result"][part], res[b]["result"][part], obj=f"{a} vs {b}: {part}")
    print("results equal: lib_cohorts = pandas_cohorts = lib_chain = pandas_chain "
          "(cohort cells and movements, in cents)")

    gib = 2**30
    best = {k: min(v["times"]) for k, v in res.items()}
    rows = [(k, best[k], v["peak"] / gib, " ".join(f"{t:.3f}" for t in v["times"])) for k, v in res.items()]
    print(f"\n{'variant':<16}{'best s':>9}{'peak GiB':>10}   runs (s)")
    for k, s, m, runs in rows:
        print(f"{k:<16}{s:>9.3f}{m:>10.2f}   {runs}")
    r_coh = best["pandas_cohorts"] / best["lib_cohorts"]
    r_chain = best["pandas_chain"] / best["lib_chain"]
    lib_peak = max(res["lib_cohorts"]["peak"], res["lib_chain"]["peak"]) / gib
    checks = [
        ("cohort tables from customer-months >= 6x faster than pandas", f"{r_coh:.1f}x", r_coh >= 6),
        ("cohort tables from customer-months < 0.6 s", f"{best['lib_cohorts']:.3f} s", best["lib_cohorts"] < 0.6),
        ("whole chain from subscriptions < 2 s", f"{best['lib_chain']:.3f} s", best["lib_chain"] < 2),
        ("library peak memory < 1 GiB", f"{lib_peak:.2f} GiB", lib_peak < 1),
    ]
    print(f"\nspeed-up vs pandas: cohort tables {r_coh:.1f}x, whole chain {r_chain:.1f}x")
    for label, value, ok in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {label}: {value}")
    print(json.dumps({"scale": args.scale, "customers": n_cust, "customer_months": n_cm,
                      "best_seconds": {k: round(v, 3) for k, v in best.items()},
                      "peak_gib": {k: round(v["peak"] / gib, 3) for k, v in res.items()}}))
    return 0 if all(ok for _, _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
