"""Charts of the funnel_conversion report (frames of :mod:`revops_lib.metrics.lead_funnel` and
:mod:`revops_lib.metrics.deals`)."""

from __future__ import annotations

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

from revops_lib.present.charts.base import PALETTE, ax_or_new, no_data
from revops_lib.present.format import fmt_int, fmt_pct, pair_label, stage_label
from revops_lib.present.labels import label

__all__ = ['plot_funnel', 'plot_funnel_by_source', 'plot_rate_heatmap', 'plot_cohort_trend', 'plot_time_to_convert',
           'plot_deal_funnel']


def _stage_names(df):
    
    stages = list(df["from_stage"].iloc[:1]) + list(df["to_stage"])
    return stages, [stage_label(s) for s in stages]


def _funnel_bars(ax, labels, counts, noun):
    y = range(len(counts))[::-1]
    top = max(counts) if counts and max(counts) > 0 else 1
    ax.barh(list(y), counts, color=PALETTE[0], height=0.62)
    for i, (yy, n) in enumerate(zip(y, counts)):
        frac = n / counts[0] if counts[0] else 0.0
        share = f"{fmt_pct(frac, 1 if frac >= 0.01 or frac == 0 else 2)} of {noun}" if counts[0] else ""
        step = f"  ·  {n / counts[i - 1]:.0%} of previous stage" if i and counts[i - 1] else ""
        ax.text(n + top * 0.01, yy, f"{fmt_int(n)}  ({share}{step})" if i else f"{fmt_int(n)} {noun}",
                va="center", fontsize=8.5)
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels)
    ax.set_xlim(0, top * 1.75)
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_int(v)))
    ax.grid(axis="y", visible=False)
    return ax


def plot_funnel(conversion: pd.DataFrame, *, group: str = "all", by: str = "source", ax=None):
    """Leads of the cohort reaching each stage (bars), with the share of the cohort and of the previous stage.

    ``conversion``: :func:`revops_lib.metrics.lead_funnel.stage_conversion` (``[by], from_stage, to_stage, entered,
    converted``); ``group`` picks the rows (default ``all``).
    """
    ax = ax_or_new(ax, figsize=(9, 3.4))
    rows = conversion[conversion[by] == group] if by in conversion.columns else conversion
    if rows.empty:
        return no_data(ax, "No leads in this cohort")
    _, labels = _stage_names(rows)
    counts = [int(rows["entered"].iloc[0])] + [int(x) for x in rows["converted"]]
    _funnel_bars(ax, labels, counts, "leads")
    period = conversion.attrs.get("period", "")
    ax.set_title(f"Lifecycle funnel of the leads created in {period}".strip())
    ax.set_xlabel("leads")
    return ax


def plot_funnel_by_source(conversion: pd.DataFrame, *, min_sample: int = 30, by: str = "source", ax=None):
    """Share of each source's cohort reaching each stage (log scale): the funnel by source.

    Sources with fewer than ``min_sample`` leads in the cohort are left out (named in the legend title).
    """
    ax = ax_or_new(ax, figsize=(9, 4.6))
    data = conversion[conversion[by] != "all"] if by in conversion.columns else conversion
    if data.empty:
        return no_data(ax, "No leads in this cohort")
    total = conversion[conversion[by] == "all"] if by in conversion.columns else data
    stages, labels = _stage_names(total if len(total) else data)
    pos = {s: i for i, s in enumerate(stages)}
    sizes = data.groupby(by)["entered"].max()
    small = sorted(sizes[sizes < min_sample].index)
    order = list(sizes[sizes >= min_sample].sort_values(ascending=False).index)
    lowest = 1.0
    for k, src in enumerate(order):
        d = data[data[by] == src]
        xs = [0] + [pos[s] for s in d["to_stage"]]
        ys = [1.0] + list(d["cumulative_rate"])
        xs_pos = [x for x, y in zip(xs, ys) if y > 0]
        ys_pos = [y for y in ys if y > 0]
        lowest = min([lowest] + ys_pos)
        ax.plot(xs_pos, ys_pos, marker="o", markersize=4, lw=1.6, color=PALETTE[k % len(PALETTE)],
                ls="-" if k < len(PALETTE) else "--", label=f"{label(src)} ({fmt_int(sizes[src])})")
    if len(total):
        ys = [1.0] + list(total["cumulative_rate"])
        xs = [0] + [pos[s] for s in total["to_stage"]]
        ys_pos = [y for y in ys if y > 0]
        lowest = min([lowest] + ys_pos)
        ax.plot([x for x, y in zip(xs, ys) if y > 0], ys_pos, color="black", lw=2.2, ls=(0, (4, 2)),
                label="all sources", zorder=4)
    ax.set_yscale("log")
    ax.set_ylim(max(lowest * 0.6, 1e-4), 1.3)
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_pct(v, 0 if v >= 0.01 else 2)))
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels)
    ax.set_ylabel("share of the source's leads (log scale)")
    ax.set_title("Funnel by source — share of each source's new leads reaching each stage")
    title = "source (leads)"
    if small:
        title += f"\nnot shown, < {min_sample} leads:\n" + ", ".join(label(x) for x in small)
    ax.legend(title=title, frameon=False, fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


def plot_rate_heatmap(conversion: pd.DataFrame, *, min_sample: int = 30, by: str = "source", ax=None):
    """Stage-to-stage rate per source and stage, annotated with ± the interval's half-width.

    Cells with fewer than ``min_sample`` leads entering are grey and show their count instead.
    """

    
    data = conversion.copy()
    if data.empty:
        return no_data(ax_or_new(ax), "No leads in this cohort")
    data["stage"] = [pair_label(a, b) for a, b in zip(data["from_stage"], data["to_stage"])]
    cols = list(dict.fromkeys(data["stage"]))
    rows = list(dict.fromkeys(data[by]))
    ax = ax_or_new(ax, figsize=(9, 0.42 * len(rows) + 1.6))
    rate = data.pivot(index=by, columns="stage", values="rate").reindex(index=rows, columns=cols)
    entered = data.pivot(index=by, columns="stage", values="entered").reindex(index=rows, columns=cols)
    half = ((data["ci_high"] - data["ci_low"]) / 2).to_numpy()
    half = data.assign(h=half).pivot(index=by, columns="stage", values="h").reindex(index=rows, columns=cols)
    small = entered.fillna(0) < min_sample
    annot = np.empty(rate.shape, dtype=object)
    for i in range(rate.shape[0]):
        for j in range(rate.shape[1]):
            r, n, h = rate.iat[i, j], entered.iat[i, j], half.iat[i, j]
            if pd.isna(r):
                annot[i, j] = ""
            elif small.iat[i, j]:
                annot[i, j] = f"n={int(n)}"
            else:
                annot[i, j] = f"{100 * r:.0f}% ±{100 * h:.0f}"
    shown = rate.mask(small)
    vmax = float(np.nanmax(shown.to_numpy())) if shown.notna().any().any() else 1.0
    sns.heatmap(rate.mask(~small).notna().astype(float).where(small), ax=ax, cmap=["#ececec"], cbar=False,
                linewidths=0.8, linecolor="white")
    sns.heatmap(shown, ax=ax, cmap="Blues", vmin=0, vmax=max(vmax, 0.05), annot=annot, fmt="",
                annot_kws={"fontsize": 8.5}, linewidths=0.8, linecolor="white",
                cbar_kws={"format": mticker.FuncFormatter(lambda v, _: fmt_pct(v, 0)), "shrink": 0.8,
                          "label": "rate"})
    for i in range(rate.shape[0]):  # grey cells: count in dark text
        for j in range(rate.shape[1]):
            if small.iat[i, j] and annot[i, j]:
                ax.text(j + 0.5, i + 0.5, annot[i, j], ha="center", va="center", fontsize=8, color="#777")
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="y", rotation=0)
    ax.tick_params(axis="x", rotation=0, labelsize=8.5)
    ax.set_title(f"Stage-to-stage conversion by {by} (± half-width of the interval; grey: < {min_sample} leads)")
    return ax


def plot_cohort_trend(trend: pd.DataFrame, *, ax=None):
    """Rate per stage pair over the last cohorts with the interval as a band; hollow markers: not yet mature."""
    
    ax = ax_or_new(ax, figsize=(9, 4.4))
    if trend.empty:
        return no_data(ax, "No cohorts to show")
    cohorts = list(dict.fromkeys(trend["cohort"]))
    x_of = {c: i for i, c in enumerate(cohorts)}
    pairs = list(dict.fromkeys(zip(trend["from_stage"], trend["to_stage"])))
    for k, (a, b) in enumerate(pairs):
        d = trend[(trend["from_stage"] == a) & (trend["to_stage"] == b)]
        x = [x_of[c] for c in d["cohort"]]
        color = PALETTE[k % len(PALETTE)]
        mature = d["mature"].to_numpy(dtype=bool)
        rate, low, high = (d[c].to_numpy(dtype=float) for c in ("rate", "ci_low", "ci_high"))
        xs = np.asarray(x)
        # mature cohorts: a solid line and the interval band; the unfinished ones apart, dashed and hollow
        ax.fill_between(xs[mature], low[mature], high[mature], color=color, alpha=0.15, lw=0)
        ax.plot(xs[mature], rate[mature], color=color, lw=1.8, label=pair_label(a, b))
        if (~mature).any():
            tail = np.flatnonzero(~mature)
            start = [tail[0] - 1] if tail[0] > 0 and mature[tail[0] - 1] else []
            seg = np.array(start + list(tail))
            ax.plot(xs[seg], rate[seg], color=color, lw=1.2, ls=(0, (3, 3)), alpha=0.8)
        ax.scatter([xx for xx, m in zip(x, mature) if m], d["rate"][mature], color=color, s=22, zorder=3)
        ax.scatter([xx for xx, m in zip(x, mature) if not m], d["rate"][~mature], facecolor="white",
                   edgecolor=color, s=26, zorder=3, lw=1.4)
    ax.set_xticks(range(len(cohorts)))
    ax.set_xticklabels(cohorts, rotation=45 if len(cohorts) > 8 else 0, ha="right" if len(cohorts) > 8 else "center",
                       fontsize=8.5)
    ax.set_ylim(0, min(1.0, max(0.1, float(trend["ci_high"].max()) * 1.1)))
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_pct(v, 0)))
    days = trend.attrs.get("window_days")
    within = f" within {days:g} days of the previous stage" if days else ""
    ax.set_title(f"Stage-to-stage conversion{within}, by cohort — hollow, dashed: not yet mature")
    ax.set_ylabel("rate (band: interval)")
    ax.set_xlabel("cohort (period the leads were created)")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


def plot_time_to_convert(distribution: pd.DataFrame, *, timing: pd.DataFrame | None = None, ax=None):
    """Share of converted leads that converted within N days, per stage pair (cumulative curves).

    ``distribution``: :func:`revops_lib.metrics.lead_funnel.time_to_convert`; ``timing`` (optional,
    :func:`revops_lib.metrics.lead_funnel.stage_timing`) adds the median of each pair as a dot.
    """
    
    ax = ax_or_new(ax, figsize=(9, 4.0))
    data = distribution.dropna(subset=["share"])
    if data.empty:
        return no_data(ax, "No conversions in this cohort yet")
    pairs = list(dict.fromkeys(zip(data["from_stage"], data["to_stage"])))
    for k, (a, b) in enumerate(pairs):
        d = data[(data["from_stage"] == a) & (data["to_stage"] == b)]
        n = int(d["leads"].max())
        color = PALETTE[k % len(PALETTE)]
        ax.step(d["days"], d["share"], where="post", color=color, lw=1.8,
                label=f"{pair_label(a, b)} ({fmt_int(n)} lead{'' if n == 1 else 's'})")
        if timing is not None and len(timing):
            t = timing[(timing["from_stage"] == a) & (timing["to_stage"] == b)]
            if "source" in t.columns:
                t = t[t["source"] == "all"]
            if len(t) and not pd.isna(t["median_days"].iloc[0]):
                ax.plot([t["median_days"].iloc[0]], [0.5], marker="o", color=color, ms=5)
    ax.axhline(0.5, color="#999", lw=0.8, ls=":")
    ax.set_ylim(0, 1.02)
    # fitted to the data: up to the day by which every curve is done (share 1), not the window's end
    done = [d.loc[d["share"] >= 1 - 1e-12, "days"].min() for _, d in data.groupby(["from_stage", "to_stage"])]
    right = max((x for x in done if not pd.isna(x)), default=data["days"].max())
    right = data["days"].max() if any(pd.isna(x) for x in done) else right
    ax.set_xlim(0, max(1, int(np.ceil(float(right) * 1.05))))
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_pct(v, 0)))
    ax.set_xlabel("days after reaching the previous stage")
    ax.set_ylabel("share of converted leads")
    ax.set_title("Time to convert — share of the conversions done within N days (dot: median)")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return ax


def plot_deal_funnel(deals: pd.DataFrame, *, ax=None):
    """Opportunities created in the period reaching each deal stage (bars, with stage-to-stage rates)."""
    ax = ax_or_new(ax, figsize=(9, 3.2))
    if deals is None or deals.empty or int(deals["entered"].iloc[0]) == 0:
        return no_data(ax, "No opportunities created in this period")
    _, labels = _stage_names(deals)
    counts = [int(deals["entered"].iloc[0])] + [int(x) for x in deals["converted"]]
    _funnel_bars(ax, labels, counts, "deals")
    period = deals.attrs.get("period", "")
    ax.set_title(f"Deal-stage funnel of the opportunities created in {period}".strip())
    ax.set_xlabel("opportunities")
    return ax
