"""Charts of the revops_scorecard report: bullet charts against target, inline sparklines."""

from __future__ import annotations

import math

import matplotlib.ticker as mticker
import pandas as pd

from revops_lib.present.charts.base import PALETTE, ax_or_new
from revops_lib.present.format import fmt_value

__all__ = ['plot_kpi_bullets', 'sparkline_svg', 'STATUS_COLORS']


STATUS_COLORS = {"on track": "#3B9C6A", "at risk": "#D4A72C", "off track": "#C0392B",
                  "not started": "#7F8C8D", "no data": "#7F8C8D", "no target": "#7F8C8D"}


def plot_kpi_bullets(card: pd.DataFrame, *, function: str, currency: str = "USD", ax=None):
    """Bullet chart: each KPI with a target as % of target (bar) against 100 % (line), coloured by status.

    ``card``: :func:`revops_lib.metrics.scorecard.scorecard` output.
    """
    
    rows = card[(card.function == function) & card.pct_of_target.notna()]
    ax = ax_or_new(ax, figsize=(9, 0.45 * max(len(rows), 2) + 1))
    if rows.empty:
        ax.text(0.5, 0.5, "No target for these KPIs in this period", ha="center", va="center",
                transform=ax.transAxes, color="#777")
        ax.set_axis_off()
        return ax
    rows = rows.iloc[::-1]
    y = range(len(rows))
    ax.barh(list(y), [1.3] * len(rows), color="#eef0f3", height=0.75)
    ax.barh(list(y), rows.pct_of_target.clip(upper=1.3), color=[STATUS_COLORS.get(s, "#7F8C8D") for s in rows.status],
            height=0.38)
    ax.axvline(1.0, color="#222", lw=1.5)
    for i, r in enumerate(rows.itertuples(index=False)):  # in a column of their own, clear of the 100 % line
        ax.text(1.33, i, f"{fmt_value(r.value, r.unit, currency)} of {fmt_value(r.target, r.unit, currency)}",
                va="center", fontsize=8, parse_math=False)
    ax.set_yticks(list(y))
    ax.set_yticklabels(rows.label)
    ax.set_xlim(0, 1.65)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0, 1.25])
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set_xlabel("% of target (line: 100 %)")
    ax.grid(axis="y", visible=False)
    ax.set_title("Against target — green on track, amber at risk, red off track")
    return ax


def sparkline_svg(values, *, width: int = 120, height: int = 26, label: str = "") -> str:
    """A tiny inline SVG line of ``values`` (oldest first), the last one marked with a dot.

    For a table cell: scaled to its own minimum and maximum, gaps (NaN) left as gaps, ``label`` as
    its tooltip and accessible name. Empty string when nothing is finite.
    """
    from revops_lib.present.text import esc, safe_html

    vals = [float(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else math.nan
            for v in values]
    finite = [v for v in vals if not math.isnan(v)]
    if not finite:
        return safe_html("")
    lo, hi = min(finite), max(finite)
    pad = 3.0
    n = len(vals)

    def xy(i, v):
        x = pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5)
        y = height / 2 if hi == lo else pad + (height - 2 * pad) * (hi - v) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    segments, cur = [], []
    for i, v in enumerate(vals):
        if math.isnan(v):
            if cur:
                segments.append(cur)
            cur = []
        else:
            cur.append(xy(i, v))
    if cur:
        segments.append(cur)
    parts = []
    for seg in segments:
        if len(seg) > 1:
            parts.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{PALETTE[0]}" stroke-width="1.5" '
                         f'stroke-linejoin="round"/>')
        else:
            x, y = seg[0].split(",")
            parts.append(f'<circle cx="{x}" cy="{y}" r="1.5" fill="{PALETTE[0]}"/>')
    if not math.isnan(vals[-1]):
        x, y = xy(n - 1, vals[-1]).split(",")
        parts.append(f'<circle cx="{x}" cy="{y}" r="2.8" fill="{PALETTE[1]}"/>')
    tip = esc(label)
    return safe_html(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                     f'viewBox="0 0 {width} {height}" role="img" aria-label="{tip}"><title>{tip}</title>'
                     f'{"".join(parts)}</svg>')
