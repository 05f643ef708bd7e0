"""Charts of the forecast_accuracy report (frames of :mod:`revops_lib.metrics.forecast` and
:mod:`revops_lib.metrics.pipeline`)."""

from __future__ import annotations

import matplotlib.ticker as mticker
import pandas as pd
import seaborn as sns

from revops_lib.present.charts.base import PALETTE, ax_or_new, money_axis
from revops_lib.present.format import fmt_money, fmt_pct
from revops_lib.present.labels import label

__all__ = ['plot_forecast_convergence', 'plot_bias_by_scope', 'plot_forecast_vs_actual', 'plot_coverage',
           'plot_pipeline_waterfall']


_CATEGORY_COLORS = {"commit": PALETTE[0], "best_case": PALETTE[1], "baseline": PALETTE[5]}


def _category_palette(categories) -> dict:
    extra = iter(c for c in PALETTE if c not in _CATEGORY_COLORS.values())
    return {c: _CATEGORY_COLORS.get(c) or next(extra, "#555555") for c in categories}


def plot_forecast_convergence(by_week: pd.DataFrame, *, kind: str | None = None, level: float = 0.9, ax=None):
    """Median accuracy by week of the period, one line per forecast category.

    ``by_week``: ``kind, category, week_of_period, n, median_accuracy`` (see
    :func:`revops_lib.metrics.forecast.accuracy_by_week`); ``kind`` picks month,
    quarter or week forecasts (default: the first present).
    """
    ax = ax_or_new(ax)
    data = by_week[by_week["week_of_period"] >= 1]
    if kind is None and len(data):
        kind = data["kind"].iloc[0]
    data = data[data["kind"] == kind].dropna(subset=["median_accuracy"])
    cats = list(dict.fromkeys(data["category"]))
    sns.lineplot(data=data, x="week_of_period", y="median_accuracy", hue="category", hue_order=cats,
                 palette=_category_palette(cats), marker="o", ax=ax)
    ax.axhline(level, color="#999999", lw=1, ls="--")
    ax.text(data["week_of_period"].max() if len(data) else 1, level, f"{fmt_pct(level, 0)} accuracy ",
            va="top", ha="right", fontsize=8, color="#666666")
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_pct(v, 0)))
    ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    ax.set_ylim(max(0.0, min(0.5, data["median_accuracy"].min() - 0.05) if len(data) else 0.0), 1.01)
    ax.set_xlabel(f"week of the {kind}")
    ax.set_ylabel("median accuracy (1 − APE)")
    ax.set_title(f"When the {kind}ly call becomes right: accuracy by week of the {kind}")
    ax.legend(title="", frameon=False)
    return ax


def plot_bias_by_scope(summary: pd.DataFrame, *, category: str = "commit", threshold: float = 0.05, ax=None):
    """Bias per scope for one category: right of zero over-forecasts (optimistic), left sandbags.

    ``summary``: ``scope, category, bias`` (see :func:`revops_lib.metrics.forecast.bias_by_scope`).
    """
    data = summary[(summary["category"] == category) & summary["bias"].notna()].copy()
    data = data.sort_values("bias")
    ax = ax_or_new(ax, figsize=(9, 0.5 * max(len(data), 2) + 1.4))
    colors = [PALETTE[3] if b > threshold else PALETTE[0] if b < -threshold else PALETTE[5] for b in data["bias"]]
    ax.barh(data["scope"], data["bias"], color=colors, height=0.6)
    ax.axvline(0, color="#333333", lw=1)
    ax.axvspan(-threshold, threshold, color="#dddddd", alpha=0.5, lw=0)
    span = max(data["bias"].abs().max() if len(data) else 0.1, threshold) * 1.35
    ax.set_xlim(-span, span)
    for y, b in enumerate(data["bias"]):
        ax.text(b + (0.01 * span if b >= 0 else -0.01 * span), y, ("+" if b > 0 else "") + fmt_pct(b),
                va="center", ha="left" if b >= 0 else "right", fontsize=9)
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: ("+" if v > 0 else "") + fmt_pct(v, 0)))
    ax.set_xlabel(f"bias of the {category} call: Σ(forecast − actual) / Σ actual")
    ax.set_ylabel("")
    ax.set_title(f"Who sandbags (left, blue) and who is optimistic (right, red) — {category}")
    return ax


def plot_forecast_vs_actual(calls: pd.DataFrame, *, call: str = "first", currency: str = "USD", ax=None):
    """Each period's actual (bars) and the calls made in its first week (lines), oldest period first.

    ``calls``: ``forecast_period, category, call, forecast, actual`` (see
    :func:`revops_lib.metrics.forecast.forecast_vs_actual`).
    """
    ax = ax_or_new(ax)
    data = calls[calls["call"] == call]
    periods = list(dict.fromkeys(data["forecast_period"]))
    x = {p: i for i, p in enumerate(periods)}
    actual = data.drop_duplicates("forecast_period").set_index("forecast_period")["actual"].reindex(periods)
    ax.bar(range(len(periods)), actual.to_numpy(), color="#d9dee5", width=0.7, label="actual")
    cats = list(dict.fromkeys(data["category"]))
    pal = _category_palette(cats)
    for cat in cats:
        d = data[data["category"] == cat]
        ax.plot([x[p] for p in d["forecast_period"]], d["forecast"], marker="o", color=pal[cat],
                label=f"{label(cat)} ({call} call)", lw=1.8)
    ax.set_xticks(range(len(periods)), periods, rotation=45 if len(periods) > 8 else 0,
                  ha="right" if len(periods) > 8 else "center")
    money_axis(ax.yaxis, currency)
    ax.set_xlabel("")
    ax.set_ylabel("won amount")
    ax.set_title(f"Forecast vs actual: the call made in each period's {call} week against what was won")
    # beside the axes: across the top it covered the highest calls
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


def plot_coverage(coverage: pd.DataFrame, *, ax=None):
    """Pipeline coverage per period (bars, labelled with the share of target won when complete).

    ``coverage``: ``period, coverage, attainment, complete`` (see :func:`revops_lib.metrics.pipeline.coverage`).
    """
    ax = ax_or_new(ax)
    data = coverage.reset_index(drop=True)
    colors = [PALETTE[0] if c else PALETTE[1] for c in data["complete"]]
    vals = data["coverage"].fillna(0.0)
    ax.bar(range(len(data)), vals, color=colors, width=0.65)
    for i, r in data.iterrows():
        if pd.isna(r["coverage"]):
            ax.text(i, 0, "no target", ha="center", va="bottom", fontsize=8, color="#666666")
            continue
        text = fmt_pct(r["coverage"], 0)
        if r["complete"] and not pd.isna(r["attainment"]):
            text += f"\n{fmt_pct(r['attainment'], 0)} won"
        ax.text(i, r["coverage"], text, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(data)), data["period"])
    ax.set_ylim(0, (vals.max() or 1) * 1.3)
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_pct(v, 0)))
    ax.set_ylabel("open pipeline / target")
    ax.set_title("Coverage at the start of each period (orange: the next period, at the cut-off)")
    return ax


def plot_pipeline_waterfall(waterfall: pd.DataFrame, *, currency: str = "USD", period: str = "", ax=None):
    """The pipeline waterfall: starting, what came in and went out, ending.

    ``waterfall``: ``step, amount`` (see :func:`revops_lib.metrics.pipeline.pipeline_waterfall`).
    """
    ax = ax_or_new(ax)
    a = waterfall.set_index("step")["amount"]
    steps = list(waterfall["step"])
    sign = {"new": 1, "pulled_in": 1, "increased": 1, "won": -1, "lost": -1, "decreased": -1, "pushed_out": -1}
    level, bottoms, heights, colors = 0.0, [], [], []
    for s in steps:
        v = float(a[s])
        if s in ("starting", "ending"):
            bottoms.append(0.0)
            heights.append(v)
            colors.append(PALETTE[0])
            level = v if s == "starting" else level
        else:
            d = sign[s] * v
            bottoms.append(level if d >= 0 else level + d)
            heights.append(abs(d))
            colors.append({"won": PALETTE[2]}.get(s, PALETTE[1] if d >= 0 else PALETTE[3]))
            level += d
    ax.bar(range(len(steps)), heights, bottom=bottoms, color=colors, width=0.65)
    top = max(b + h for b, h in zip(bottoms, heights)) if steps else 1.0
    for i, (s, b, h) in enumerate(zip(steps, bottoms, heights)):
        txt = fmt_money(a[s], currency)
        if s in sign:
            txt = ("+" if sign[s] > 0 else "-") + txt
        ax.text(i, b + h + top * 0.01, txt, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(steps)), [label(s).replace(" ", "\n") for s in steps])  # "Pulled\nin", as the table
    ax.set_ylim(0, top * 1.12)
    money_axis(ax.yaxis, currency)
    ax.set_ylabel("open pipeline due in the period")
    ax.set_title(f"Pipeline waterfall{' ' + period if period else ''}: from the start of the period to the cut-off "
                 "(green: won)")
    return ax
