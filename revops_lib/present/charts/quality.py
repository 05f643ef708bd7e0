"""Charts of the data_quality report."""

from __future__ import annotations

import matplotlib.ticker as mticker
import pandas as pd
import seaborn as sns

from revops_lib.present.charts.base import PALETTE, ax_or_new
from revops_lib.present.format import fmt_int

__all__ = ['plot_table_coverage', 'plot_monthly_rows']


def plot_table_coverage(overview: pd.DataFrame, *, period=None, ax=None):
    """Horizontal bars from each table's first to last date, with the report period shaded.

    ``overview`` has columns ``table``, ``first``, ``last`` (see
    :func:`revops_lib.metrics.quality.table_overview`).
    """
    data = overview.dropna(subset=["first", "last"]).iloc[::-1]
    ax = ax_or_new(ax, figsize=(9, 0.35 * max(len(data), 3) + 1))
    first = pd.to_datetime(data["first"])
    last = pd.to_datetime(data["last"])
    ax.barh(data["table"], (last - first).dt.total_seconds() / 86400, left=first, color=PALETTE[0], height=0.55)
    if period is not None:
        ax.axvspan(period.start_naive, period.end_naive, color=PALETTE[1], alpha=0.35)
    ax.set_xlabel("")
    ax.set_title("Date coverage per table" + (f" (shaded: {period})" if period is not None else ""))
    ax.xaxis_date()
    return ax


def plot_monthly_rows(monthly: pd.DataFrame, *, ax=None):
    """Rows per month for a few event tables (lines); ``monthly``: month, table, rows."""
    ax = ax_or_new(ax)
    data = monthly.copy()
    data["month"] = pd.to_datetime(data["month"])
    sns.lineplot(data=data, x="month", y="rows", hue="table", marker="o", markersize=3, ax=ax)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_int(v)))
    ax.yaxis.set_minor_formatter(mticker.FuncFormatter(lambda v, _: fmt_int(v) if f"{v:.0f}"[0] in "25" else ""))
    ax.set_xlabel("")
    ax.set_ylabel("rows per month (log)")
    ax.set_title("Volume per month — a sudden drop usually means a broken sync")
    # beside the axes: inside, the place with the fewest points still crossed a line on some data
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax
