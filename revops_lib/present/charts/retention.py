"""Charts (and the shaded cohort tables) of the cohort_retention report."""

from __future__ import annotations

import math

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd

from revops_lib.present.charts.base import PALETTE, ax_or_new, money_axis, pct_axis
from revops_lib.present.format import fmt_money, fmt_pct
from revops_lib.present.tables import stable_id, style_table

__all__ = ['cohort_heatmap_table', 'plot_retention_curves', 'plot_survival', 'plot_mrr_movements', 'plot_arr_bridge',
           'plot_nrr_trend']


def _cohort_grid(cohorts: pd.DataFrame, value: str, average: pd.DataFrame | None):
    """Cohort × age grid of ``value`` (plus the ``average`` row) and its colour scale: ``(grid, norm, cmap)``.

    Logo retention and GRR: sequential, from the lowest value (rounded down to 10 %, at most 90 %)
    to 100 % (darkest). NRR: diverging, centred on 100 %.
    """
    from matplotlib.colors import Normalize, TwoSlopeNorm

    grid = cohorts.pivot(index="cohort", columns="age", values=value).sort_index()
    if average is not None and len(average):
        grid.loc["average"] = average.set_index("age")[value].reindex(grid.columns).to_numpy()
    data = grid.to_numpy(dtype=float)
    finite = data[np.isfinite(data)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    if value == "nrr":
        return grid, TwoSlopeNorm(vmin=min(lo, 0.95), vcenter=1.0, vmax=max(hi, 1.05)), "RdYlGn"
    return grid, Normalize(vmin=max(0.0, min(math.floor(lo * 10) / 10, 0.9)), vmax=1.0), "YlGnBu"


def cohort_heatmap_table(cohorts: pd.DataFrame, *, value: str = "retention", average: pd.DataFrame | None = None,
                         title: str | None = None):
    """Cohort × age heatmap as a shaded HTML table (a pandas Styler) of ``retention``, ``nrr`` or ``grr``.

    Rows are cohorts (oldest on top) plus the weighted-average row at the bottom
    (under a rule); columns are ages in months; cells past the cut-off stay
    blank. The numbers are text, so they stay sharp and can be copied. Logo
    retention and GRR use a sequential scale from the lowest value to 100 %
    (darkest); NRR a diverging scale centred on 100 % (green: the cohort pays
    more than in its first month). A table rather than an image: with 24
    cohorts an annotated image shrinks its numbers to unreadable, and renders
    ten times slower.
    """
    from matplotlib import colormaps

    caption = title or f"{value} by cohort and age"
    if cohorts.empty:
        return style_table(pd.DataFrame({caption: ["No cohort yet"]}))
    grid, norm, cmap_name = _cohort_grid(cohorts, value, average)
    has_avg = "average" in grid.index
    data = grid.to_numpy(dtype=float)
    cmap = colormaps[cmap_name]
    if value == "nrr":
        scale = "colour: red below 100 %, yellow at 100 %, green above"
    else:
        scale = f"colour: from light ({fmt_pct(norm.vmin, 0)} or less) to dark (100 %)"
    rgba = cmap(norm(np.where(np.isfinite(data), data, norm.vmax)))
    light = (0.299 * rgba[..., 0] + 0.587 * rgba[..., 1] + 0.114 * rgba[..., 2]) > 0.55
    css = np.full(data.shape, "", dtype=object)
    for (i, j), v in np.ndenumerate(data):
        if np.isfinite(v):
            r, g, b = (int(round(255 * c)) for c in rgba[i, j, :3])
            css[i, j] = f"background-color: #{r:02x}{g:02x}{b:02x}; color: {'#1a1a1a' if light[i, j] else 'white'}"
    if has_avg:
        css[-1, :] = [c + "; border-top: 2px solid #333; font-weight: bold" for c in css[-1, :]]
    shown = grid.copy()
    shown.columns = pd.Index([f"M{a}" for a in grid.columns], name="Cohort")
    shown.index = pd.Index(["Average" if x == "average" else x for x in grid.index])  # headers as the tables'
    shown.index.name = None
    styles = pd.DataFrame(css, index=shown.index, columns=shown.columns)
    from pandas.io.formats.style import Styler

    from revops_lib.present.text import esc

    uuid = stable_id(caption, value, grid.to_csv(float_format="%.12g"))
    styler = Styler(shown, uuid=uuid, cell_ids=False).format(lambda v: "" if pd.isna(v) else f"{100 * v:.0f}%")
    styler = styler.apply(lambda _: styles, axis=None)
    styler = styler.set_caption(f"<b>{esc(caption)}</b><br><span style='font-weight:normal'>Rows: cohort (first paid "
                                f"month); columns: months since then; {scale}.</span>")
    return styler.set_table_styles([
        {"selector": "", "props": [("border-collapse", "collapse"), ("font-size", "11px")]},
        {"selector": "caption", "props": [("caption-side", "top"), ("text-align", "left"), ("padding-bottom", "6px")]},
        {"selector": "td", "props": [("padding", "2px 4px"), ("text-align", "right"), ("border", "1px solid white"),
                                     ("min-width", "2.6em")]},
        {"selector": "th", "props": [("padding", "2px 4px"), ("font-weight", "normal"), ("white-space", "nowrap")]},
    ], overwrite=False)


def plot_retention_curves(average: pd.DataFrame, *, ax=None):
    """Weighted-average logo retention, NRR and GRR by age (``cohort_average`` output)."""
    ax = ax_or_new(ax)
    if average.empty:
        ax.text(0.5, 0.5, "No cohort yet", ha="center", va="center", transform=ax.transAxes)
        return ax
    a = average.sort_values("age")
    ax.plot(a["age"], a["nrr"], marker="o", markersize=3, color=PALETTE[2], label="NRR (revenue kept, with expansion)")
    ax.plot(a["age"], a["grr"], marker="o", markersize=3, color=PALETTE[1], label="GRR (revenue kept, no expansion)")
    ax.plot(a["age"], a["retention"], marker="o", markersize=3, color=PALETTE[0], label="logo retention (customers)")
    ax.axhline(1.0, color="#999999", linewidth=0.8, linestyle="--")
    pct_axis(ax.yaxis)
    ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    ax.set_xlabel("months since first paid month")
    ax.set_ylabel("share of the cohorts' start")
    ax.set_title("Average cohort: how much of the starting customers and MRR remain")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_survival(survival: pd.DataFrame, *, by: str | None = None, ax=None):
    """Kaplan–Meier curves (``survival`` output) with their 95 % bands, one line per group."""
    ax = ax_or_new(ax)
    if survival.empty:
        ax.text(0.5, 0.5, "No customer yet", ha="center", va="center", transform=ax.transAxes)
        return ax
    groups = list(dict.fromkeys(survival["group"]))
    for i, g in enumerate(groups):
        s = survival[survival["group"] == g].sort_values("age")
        color = "#333333" if g == "all" else PALETTE[(i - 1) % len(PALETTE)]
        width = 2.2 if g == "all" else 1.4
        ax.step(s["age"], s["survival"], where="post", color=color, linewidth=width,
                label="all customers" if g == "all" else str(g))
        ax.fill_between(s["age"], s["ci_low"], s["ci_high"], step="post", color=color, alpha=0.15, linewidth=0)
    pct_axis(ax.yaxis)
    ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    ax.set_ylim(max(0.0, float(survival["ci_low"].min()) - 0.05), 1.01)
    ax.set_xlabel("months since first paid month")
    ax.set_ylabel("still paying (no interruption)")
    label = f" by {by.replace('_', ' ')}" if by else ""
    ax.set_title(f"Customer survival{label} (Kaplan–Meier, 95% band)")
    ax.legend(frameon=False, fontsize=8, loc="lower left")
    return ax


def plot_mrr_movements(movements: pd.DataFrame, *, currency: str = "USD", ax=None):
    """MRR gained (new, expansion, reactivation) above zero and lost (contraction, churned) below, per month."""

    ax = ax_or_new(ax, figsize=(9, 4.4))
    m = movements
    x = np.arange(len(m))
    bottom = np.zeros(len(m))
    for col, color, label in (("new", PALETTE[0], "new"), ("expansion", PALETTE[2], "expansion"),
                              ("reactivation", PALETTE[4], "reactivation")):
        ax.bar(x, m[col], bottom=bottom, color=color, width=0.7, label=label)
        bottom = bottom + m[col].to_numpy()
    bottom = np.zeros(len(m))
    for col, color, label in (("contraction", PALETTE[6], "contraction"), ("churned", PALETTE[3], "churned")):
        ax.bar(x, -m[col], bottom=bottom, color=color, width=0.7, label=label)
        bottom = bottom - m[col].to_numpy()
    net = m["ending_mrr"] - m["starting_mrr"]
    ax.plot(x, net, color="#222222", marker="D", markersize=4, linewidth=1.2, label="net change")
    ax.axhline(0, color="#555555", linewidth=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels(m["month"], rotation=45, ha="right", fontsize=8)
    money_axis(ax.yaxis, currency)
    ax.set_ylabel("MRR change per month")
    ax.set_title("MRR movements: gains above zero, losses below, net change as a line")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_arr_bridge(bridge: pd.DataFrame, *, currency: str = "USD", ax=None):
    """Waterfall from starting to ending ARR (``arr_bridge`` output)."""
    ax = ax_or_new(ax, figsize=(9, 4.4))
    if bridge.empty:
        ax.text(0.5, 0.5, "No MRR yet", ha="center", va="center", transform=ax.transAxes)
        return ax
    level = 0.0
    colors = {"starting": PALETTE[5], "ending": PALETTE[5], "new": PALETTE[0], "expansion": PALETTE[2],
              "reactivation": PALETTE[4], "contraction": PALETTE[6], "churned": PALETTE[3]}
    top = 0.0
    for i, (step, v) in enumerate(zip(bridge["step"], bridge["arr"])):
        if step in ("starting", "ending"):
            base, height, level = 0.0, v, v
        else:
            base, height = (level, v) if v >= 0 else (level + v, -v)
            level += v
        ax.bar(i, height, bottom=base, color=colors.get(step, PALETTE[0]), width=0.65)
        sign = "" if step in ("starting", "ending") else ("+" if v >= 0 else "-")
        ax.text(i, base + height, f"{sign}{fmt_money(abs(v), currency)}", ha="center", va="bottom", fontsize=8)
        top = max(top, base + height)
    ax.set_xticks(range(len(bridge)))
    ax.set_xticklabels(bridge["step"])
    ax.set_ylim(0, top * 1.12)
    money_axis(ax.yaxis, currency)
    ax.set_ylabel("ARR (12 × MRR)")
    ax.set_title(f"ARR bridge {bridge['from_month'].iloc[0]} to {bridge['to_month'].iloc[-1]}: "
                 "where the growth came from")
    return ax


def plot_nrr_trend(trailing: pd.DataFrame, *, ax=None):
    """Trailing-12-month NRR, GRR and logo retention by month (``trailing_retention`` output)."""
    ax = ax_or_new(ax)
    t = trailing
    if t.empty or t["nrr"].isna().all():
        ax.text(0.5, 0.5, "Not enough history yet: no customer paid 12 months before these months",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    ax.plot(t["month"], t["nrr"], marker="o", markersize=3, color=PALETTE[2], label="NRR 12m")
    ax.plot(t["month"], t["grr"], marker="o", markersize=3, color=PALETTE[1], label="GRR 12m")
    ax.plot(t["month"], t["logo_retention"], marker="o", markersize=3, color=PALETTE[0], label="logo retention 12m")
    ax.axhline(1.0, color="#999999", linewidth=0.8, linestyle="--")
    span = float(t[["nrr", "grr", "logo_retention"]].max().max() - t[["nrr", "grr", "logo_retention"]].min().min())
    ax.yaxis.set_major_locator(mticker.MultipleLocator(0.02 if span < 0.15 else 0.05 if span < 0.4 else 0.1))
    pct_axis(ax.yaxis)
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    ax.set_ylabel("vs the same customers 12 months earlier")
    ax.set_title("Trailing-12-month retention: above 100% NRR, expansion outgrows churn")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax
