"""Charts for the reports: ``plot_<thing>(data, *, ax=None) -> Axes``.

One seaborn theme, set here (:func:`set_theme`); no ``plt.show()``. Number
formatters (:func:`fmt_money`, :func:`fmt_pct`, :func:`fmt_int`) keep tables and
axes readable.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import pandas as pd
import seaborn as sns

__all__ = [
    "set_theme", "PALETTE", "fmt_money", "fmt_pct", "fmt_int", "fmt_days", "style_table",
    "plot_table_coverage", "plot_monthly_rows",
]

PALETTE = ["#2F5D8C", "#E07A2E", "#3B9C6A", "#C0392B", "#8E6BB8", "#7F8C8D", "#D4A72C", "#1ABC9C"]
CURRENCY = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def set_theme(*, dpi: int = 110) -> None:
    """The one seaborn theme of every report."""
    sns.set_theme(style="whitegrid", palette=PALETTE, font_scale=0.95,
                  rc={"figure.dpi": dpi, "savefig.dpi": dpi, "axes.titleweight": "bold",
                      "axes.titlelocation": "left", "figure.figsize": (9, 4.2),
                      "axes.spines.top": False, "axes.spines.right": False})


def fmt_money(x, currency: str = "USD", *, decimals: int | None = None) -> str:
    """``1234567 -> '$1.23M'``, ``12000 -> '$12.0k'``, ``950 -> '$950'``; blank for missing values."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    sym = CURRENCY.get(currency, f"{currency} ")
    sign = "-" if x < 0 else ""
    a = abs(float(x))
    for limit, suffix, default in ((1e9, "B", 2), (1e6, "M", 2), (1e3, "k", 1)):
        if a >= limit:
            return f"{sign}{sym}{a / limit:.{default if decimals is None else decimals}f}{suffix}"
    return f"{sign}{sym}{a:,.{0 if decimals is None else decimals}f}"


def fmt_pct(x, decimals: int = 1) -> str:
    """``0.1234 -> '12.3%'``; blank for missing values."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{100 * float(x):.{decimals}f}%"


def fmt_int(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{int(round(float(x))):,}"


def fmt_days(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{float(x):,.1f} d"


def style_table(df: pd.DataFrame, formats: dict | None = None, *, index: bool = False):
    """A pandas Styler for reports: no index, numbers right-aligned, text left-aligned, blanks as —."""
    styler = df.style
    if not index:
        styler = styler.hide(axis="index")
    fm = {k: v for k, v in (formats or {}).items() if k in df.columns}
    styler = styler.format(fm, na_rep="—")
    text_cols = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])]
    if text_cols:
        styler = styler.set_properties(subset=text_cols, **{"text-align": "left"})
        styler = styler.set_table_styles(
            [{"selector": f"th.col_heading.col{df.columns.get_loc(c)}", "props": [("text-align", "left")]}
             for c in text_cols], overwrite=False)
    return styler


def _ax(ax, figsize=None):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_table_coverage(overview: pd.DataFrame, *, period=None, ax=None):
    """Horizontal bars from each table's first to last date, with the report period shaded.

    ``overview`` has columns ``table``, ``first``, ``last`` (see
    :func:`revops_lib.quality.table_overview`).
    """
    data = overview.dropna(subset=["first", "last"]).iloc[::-1]
    ax = _ax(ax, figsize=(9, 0.35 * max(len(data), 3) + 1))
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
    ax = _ax(ax)
    data = monthly.copy()
    data["month"] = pd.to_datetime(data["month"])
    sns.lineplot(data=data, x="month", y="rows", hue="table", marker="o", markersize=3, ax=ax)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_int(v)))
    ax.yaxis.set_minor_formatter(mticker.FuncFormatter(lambda v, _: fmt_int(v) if f"{v:.0f}"[0] in "25" else ""))
    ax.set_xlabel("")
    ax.set_ylabel("rows per month (log)")
    ax.set_title("Volume per month — a sudden drop usually means a broken sync")
    ax.legend(frameon=False, fontsize=8, ncol=2)
    return ax
