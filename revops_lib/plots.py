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


# --- funnel ---
# Charts of the funnel_conversion report (data: the frames of revops_lib.funnel).

__all__ += ["plot_funnel", "plot_funnel_by_source", "plot_rate_heatmap", "plot_cohort_trend",
            "plot_time_to_convert", "plot_deal_funnel"]


def _stage_names(df):
    from revops_lib.funnel import stage_label

    stages = list(df["from_stage"].iloc[:1]) + list(df["to_stage"])
    return stages, [stage_label(s) for s in stages]


def _no_data(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _funnel_bars(ax, labels, counts, noun):
    y = range(len(counts))[::-1]
    top = max(counts) if counts and max(counts) > 0 else 1
    ax.barh(list(y), counts, color=PALETTE[0], height=0.62)
    for i, (yy, n) in enumerate(zip(y, counts)):
        share = f"{n / counts[0]:.1%} of {noun}" if counts[0] else ""
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

    ``conversion``: :func:`revops_lib.funnel.stage_conversion` (``[by], from_stage, to_stage, entered,
    converted``); ``group`` picks the rows (default ``all``).
    """
    ax = _ax(ax, figsize=(9, 3.4))
    rows = conversion[conversion[by] == group] if by in conversion.columns else conversion
    if rows.empty:
        return _no_data(ax, "No leads in this cohort")
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
    ax = _ax(ax, figsize=(9, 4.6))
    data = conversion[conversion[by] != "all"] if by in conversion.columns else conversion
    if data.empty:
        return _no_data(ax, "No leads in this cohort")
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
                ls="-" if k < len(PALETTE) else "--", label=f"{src} ({fmt_int(sizes[src])})")
    if len(total):
        ys = [1.0] + list(total["cumulative_rate"])
        xs = [0] + [pos[s] for s in total["to_stage"]]
        ax.plot([x for x, y in zip(xs, ys) if y > 0], [y for y in ys if y > 0], color="black", lw=2.6,
                alpha=0.35, label="all sources", zorder=0)
    ax.set_yscale("log")
    ax.set_ylim(max(lowest * 0.6, 1e-4), 1.3)
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_pct(v, 0 if v >= 0.01 else 2)))
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels)
    ax.set_ylabel("share of the source's leads (log scale)")
    ax.set_title("Funnel by source — share of each source's new leads reaching each stage")
    title = "source (leads)"
    if small:
        title += f"\nnot shown, < {min_sample} leads:\n" + ", ".join(small)
    ax.legend(title=title, frameon=False, fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


def plot_rate_heatmap(conversion: pd.DataFrame, *, min_sample: int = 30, by: str = "source", ax=None):
    """Stage-to-stage rate per source and stage, annotated with ± the interval's half-width.

    Cells with fewer than ``min_sample`` leads entering are grey and show their count instead.
    """
    import numpy as np

    from revops_lib.funnel import pair_label

    data = conversion.copy()
    if data.empty:
        return _no_data(_ax(ax), "No leads in this cohort")
    data["stage"] = [pair_label(a, b) for a, b in zip(data["from_stage"], data["to_stage"])]
    cols = list(dict.fromkeys(data["stage"]))
    rows = list(dict.fromkeys(data[by]))
    ax = _ax(ax, figsize=(9, 0.42 * len(rows) + 1.6))
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
    from revops_lib.funnel import pair_label

    ax = _ax(ax, figsize=(9, 4.4))
    if trend.empty:
        return _no_data(ax, "No cohorts to show")
    cohorts = list(dict.fromkeys(trend["cohort"]))
    x_of = {c: i for i, c in enumerate(cohorts)}
    pairs = list(dict.fromkeys(zip(trend["from_stage"], trend["to_stage"])))
    for k, (a, b) in enumerate(pairs):
        d = trend[(trend["from_stage"] == a) & (trend["to_stage"] == b)]
        x = [x_of[c] for c in d["cohort"]]
        color = PALETTE[k % len(PALETTE)]
        ax.fill_between(x, d["ci_low"], d["ci_high"], color=color, alpha=0.15, lw=0)
        ax.plot(x, d["rate"], color=color, lw=1.8, label=pair_label(a, b))
        mature = d["mature"].to_numpy()
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
    ax.set_title(f"Stage-to-stage conversion{within}, by cohort — hollow: not yet mature")
    ax.set_ylabel("rate (band: interval)")
    ax.set_xlabel("cohort (period the leads were created)")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


def plot_time_to_convert(distribution: pd.DataFrame, *, timing: pd.DataFrame | None = None, ax=None):
    """Share of converted leads that converted within N days, per stage pair (cumulative curves).

    ``distribution``: :func:`revops_lib.funnel.time_to_convert`; ``timing`` (optional,
    :func:`revops_lib.funnel.stage_timing`) adds the median of each pair as a dot.
    """
    from revops_lib.funnel import pair_label

    ax = _ax(ax, figsize=(9, 4.0))
    data = distribution.dropna(subset=["share"])
    if data.empty:
        return _no_data(ax, "No conversions in this cohort yet")
    pairs = list(dict.fromkeys(zip(data["from_stage"], data["to_stage"])))
    for k, (a, b) in enumerate(pairs):
        d = data[(data["from_stage"] == a) & (data["to_stage"] == b)]
        n = int(d["leads"].max())
        color = PALETTE[k % len(PALETTE)]
        ax.step(d["days"], d["share"], where="post", color=color, lw=1.8,
                label=f"{pair_label(a, b)} ({fmt_int(n)} leads)")
        if timing is not None and len(timing):
            t = timing[(timing["from_stage"] == a) & (timing["to_stage"] == b)]
            if "source" in t.columns:
                t = t[t["source"] == "all"]
            if len(t) and not pd.isna(t["median_days"].iloc[0]):
                ax.plot([t["median_days"].iloc[0]], [0.5], marker="o", color=color, ms=5)
    ax.axhline(0.5, color="#999", lw=0.8, ls=":")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, int(data["days"].max()))
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_pct(v, 0)))
    ax.set_xlabel("days after reaching the previous stage")
    ax.set_ylabel("share of converted leads")
    ax.set_title("Time to convert — share of the conversions done within N days (dot: median)")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return ax


def plot_deal_funnel(deals: pd.DataFrame, *, ax=None):
    """Opportunities created in the period reaching each deal stage (bars, with stage-to-stage rates)."""
    ax = _ax(ax, figsize=(9, 3.2))
    if deals is None or deals.empty or int(deals["entered"].iloc[0]) == 0:
        return _no_data(ax, "No opportunities created in this period")
    _, labels = _stage_names(deals)
    counts = [int(deals["entered"].iloc[0])] + [int(x) for x in deals["converted"]]
    _funnel_bars(ax, labels, counts, "deals")
    period = deals.attrs.get("period", "")
    ax.set_title(f"Deal-stage funnel of the opportunities created in {period}".strip())
    ax.set_xlabel("opportunities")
    return ax
