"""Charts of channel economics, time in deal stage and rep performance (frames of :mod:`revops_lib.metrics.channels`,
:mod:`revops_lib.metrics.stage_time` and :mod:`revops_lib.metrics.reps`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd

from revops_lib.present.charts.base import PALETTE, ax_or_new, money_axis, no_data, pct_axis
from revops_lib.present.format import fmt_money, fmt_pct, stage_label

__all__ = ["plot_channel_economics", "plot_time_in_stage", "plot_rep_performance"]

_OUTCOME_COLORS = {"won": PALETTE[2], "lost": PALETTE[3], "open": PALETTE[5]}


def plot_channel_economics(channels: pd.DataFrame, *, currency: str = "USD", axes=None):
    """CAC (left) and ROAS (right) per source with spend, the blended figure as a dashed line.

    ``channels``: :func:`revops_lib.metrics.channels.channel_economics` (``source, cac, roas``; the ``all`` row is
    the blended figure). Sources without spend (or without new customers, for CAC) have no bar.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 0.42 * max(len(channels), 4) + 1.4), sharey=True)
    rows = channels[(channels["source"] != "all") & ~channels["source"].astype(str).str.startswith("unattributed:")]
    rows = rows[rows["spend"].notna() & (rows["spend"] > 0)].sort_values("source", ascending=False)
    total = channels[channels["source"] == "all"]
    if rows.empty:
        for ax in axes:
            no_data(ax, "No spend mapped to a source in this period")
        return axes
    y = np.arange(len(rows))
    for ax, col, title, fmt in ((axes[0], "cac", "CAC (spend / new customers)", lambda v: fmt_money(v, currency)),
                                (axes[1], "roas", "ROAS (new-business revenue / spend)", lambda v: f"{v:,.2f}×")):
        vals = rows[col].astype("float64").to_numpy()
        ax.barh(y, np.nan_to_num(vals), color=PALETTE[0] if col == "cac" else PALETTE[2], height=0.6)
        top = np.nanmax(vals) if np.isfinite(vals).any() else 1.0
        for yy, v in zip(y, vals):
            ax.text((0 if np.isnan(v) else v) + top * 0.02, yy, "—" if np.isnan(v) else fmt(v), va="center",
                    fontsize=8.5)
        if len(total) and pd.notna(total[col].iloc[0]):
            ax.axvline(float(total[col].iloc[0]), color="#333333", lw=1, ls="--")
            ax.text(float(total[col].iloc[0]), -0.55, " blended", fontsize=8, color="#333333", va="top")
        ax.set_xlim(0, top * 1.35 if top > 0 else 1)
        ax.set_ylim(-0.9, len(rows) - 0.4)
        ax.xaxis.set_major_locator(mticker.MaxNLocator(4))
        ax.set_title(title)
        ax.grid(axis="y", visible=False)
        if col == "cac":
            money_axis(ax.xaxis, currency)
        else:
            ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}×"))
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(rows["source"].tolist())
    return axes


def plot_time_in_stage(times: pd.DataFrame, *, ax=None):
    """Median days in each deal stage by outcome (bars), the 90th percentile as a tick on each bar.

    ``times``: :func:`revops_lib.metrics.stage_time.time_in_stage` (``stage, outcome, n, median_days, p90_days``).
    """
    data = times[times["outcome"].isin(list(_OUTCOME_COLORS))]
    stages = list(dict.fromkeys(times["stage"]))
    ax = ax_or_new(ax, figsize=(9, 0.8 * max(len(stages), 2) + 1.2))
    if data.empty:
        return no_data(ax, "No deal left a stage in this period")
    outcomes = [o for o in _OUTCOME_COLORS if o in set(data["outcome"])]
    height = 0.8 / len(outcomes)
    for k, outcome in enumerate(outcomes):
        d = data[data["outcome"] == outcome].set_index("stage").reindex(stages)
        y = np.arange(len(stages))[::-1] + (len(outcomes) / 2 - k - 0.5) * height
        ax.barh(y, d["median_days"].fillna(0).to_numpy(), height=height * 0.9, color=_OUTCOME_COLORS[outcome],
                label=f"{outcome} (median)")
        ax.scatter(d["p90_days"].to_numpy(), y, marker="|", s=120, color="#222222",
                   label="90th percentile" if k == 0 else None, zorder=3)
    ax.set_yticks(np.arange(len(stages))[::-1])
    ax.set_yticklabels([stage_label(s) for s in stages])
    ax.set_xlabel("days in the stage (deals that left it in the period)")
    ax.set_title("Time in deal stage: median by outcome, 90th percentile ticked")
    # beside the axes: inside (lower right) it hid the longest 90th-percentile ticks
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(axis="y", visible=False)
    return ax


def plot_rep_performance(reps: pd.DataFrame, *, max_rows: int = 40, confidence: float = 0.95, axes=None):
    """Quota attainment (left; revenue won share when there are no quotas) and win rate with its interval
    (right) per owner — per team when there are more than ``max_rows`` owners. Grey: too few deals to read.

    ``reps``: :func:`revops_lib.metrics.reps.rep_performance` (``owner, team, attainment, revenue_won, win_rate,
    ci_low, ci_high, small_sample``).
    """
    owners = reps[(reps["owner"] != "all")]
    if len(owners) > max_rows or owners.empty:
        owners = reps[(reps["owner"] == "all") & (reps["team"] != "all")].assign(owner=lambda d: d["team"])
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 0.32 * max(len(owners), 4) + 1.5), sharey=True)
    if owners.empty:
        for ax in axes:
            no_data(ax, "No deal closed in this period")
        return axes
    owners = owners.iloc[::-1]
    y = np.arange(len(owners))
    team_ids = {t: i for i, t in enumerate(dict.fromkeys(owners["team"]))}
    colors = [PALETTE[team_ids[t] % len(PALETTE)] for t in owners["team"]]
    has_quota = owners["attainment"].notna().any()
    left = owners["attainment"] if has_quota else owners["revenue_won"] / max(owners["revenue_won"].sum(), 1e-9)
    ax = axes[0]
    ax.barh(y, left.fillna(0).to_numpy(), color=colors, height=0.65)
    if has_quota:
        ax.axvline(1.0, color="#333333", lw=1, ls="--")
        ax.set_title("Quota attainment (revenue won / quota)")
    else:
        ax.set_title("Share of revenue won (no quotas in targets)")
    pct_axis(ax.xaxis)
    ax.set_yticks(y)
    ax.set_yticklabels(owners["owner"].astype(str).tolist())
    ax.grid(axis="y", visible=False)
    if len(team_ids) > 1:
        from matplotlib.patches import Patch
        from matplotlib.transforms import offset_copy

        # under the tick labels (teams top to bottom, as the bars): inside the axes it covered the longest bars
        below = offset_copy(ax.transAxes, fig=ax.figure, y=-20, units="points")
        ax.legend(handles=[Patch(color=PALETTE[i % len(PALETTE)], label=str(t)) for t, i in team_ids.items()][::-1],
                  frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=below,
                  ncol=min(len(team_ids), 3))
    ax = axes[1]
    small = owners["small_sample"].astype(bool).to_numpy()
    rate = owners["win_rate"].to_numpy(dtype=float)
    lo = np.clip(rate - owners["ci_low"].to_numpy(dtype=float), 0, None)
    hi = np.clip(owners["ci_high"].to_numpy(dtype=float) - rate, 0, None)
    for mask, color in ((~small, PALETTE[0]), (small, "#b0b0b0")):
        if mask.any():
            ax.errorbar(rate[mask], y[mask], xerr=[lo[mask], hi[mask]], fmt="o", color=color, ecolor=color,
                        capsize=2, ms=4)
    ax.set_xlim(0, 1)
    pct_axis(ax.xaxis)
    ax.set_title(f"Win rate with its {fmt_pct(confidence, 0)} interval (grey: too few deals)")
    ax.grid(axis="y", visible=False)
    return axes
