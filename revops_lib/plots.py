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
    "set_theme", "sanitize_figure", "install_figure_filter", "PALETTE", "fmt_money", "fmt_pct", "fmt_int", "fmt_days", "style_table", "plot_table_coverage", "plot_monthly_rows", "plot_funnel", "plot_funnel_by_source", "plot_rate_heatmap", "plot_cohort_trend", "plot_time_to_convert", "plot_deal_funnel", "plot_cohort_heatmap", "cohort_heatmap_table", "plot_retention_curves", "plot_survival", "plot_mrr_movements", "plot_arr_bridge", "plot_nrr_trend", "plot_kpi_bullets", "plot_kpi_sparklines", "sparkline_svg", "plot_forecast_convergence", "plot_bias_by_scope", "plot_forecast_vs_actual", "plot_coverage", "plot_pipeline_waterfall",
]

PALETTE = ["#2F5D8C", "#E07A2E", "#3B9C6A", "#C0392B", "#8E6BB8", "#7F8C8D", "#D4A72C", "#1ABC9C"]
CURRENCY = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def set_theme(*, dpi: int = 110) -> None:
    """The one seaborn theme of every report."""
    sns.set_theme(style="whitegrid", palette=PALETTE, font_scale=0.95,
                  rc={"figure.dpi": dpi, "savefig.dpi": dpi, "axes.titleweight": "bold",
                      "axes.titlelocation": "left", "figure.figsize": (9, 4.2),
                      "axes.spines.top": False, "axes.spines.right": False,
                      # text is text: a "$" in a label or an amount never starts math mode
                      "text.parse_math": False})


#: Longest tick or legend label drawn in a chart (longer ones end with "…"; the tables show them whole).
MAX_CHART_LABEL = 60


def _short_label(text: str) -> str:
    from revops_lib.text import hide_emails

    text = hide_emails(text)
    return text if len(text) <= MAX_CHART_LABEL else text[:MAX_CHART_LABEL - 1] + "…"


def sanitize_figure(fig) -> None:
    """What a chart may show: e-mail addresses hidden in every text, tick and legend labels cut to
    :data:`MAX_CHART_LABEL` characters. Called on every figure before it is drawn into a report."""
    from matplotlib.text import Text

    from revops_lib.text import hide_emails

    legend_texts = set()
    for ax in fig.get_axes():
        for axis in (ax.xaxis, ax.yaxis):  # tick labels are made at draw time by the axis formatter
            fmt = axis.get_major_formatter()
            if not getattr(fmt, "_revops_sanitized", False):
                ticks = fmt.format_ticks
                fmt.format_ticks = lambda values, f=ticks: [_short_label(str(x)) for x in f(values)]
                fmt._revops_sanitized = True
        legend = ax.get_legend()
        if legend is not None:
            legend_texts.update(legend.get_texts())
    for t in fig.findobj(Text):
        text = t.get_text()
        new = _short_label(text) if t in legend_texts else hide_emails(text)
        if new != text:
            t.set_text(new)


def install_figure_filter() -> None:
    """In a Jupyter kernel, pass every inline chart through :func:`sanitize_figure` before it is drawn."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    ip = get_ipython()
    if ip is None:
        return
    from matplotlib.figure import Figure

    fmt = ip.display_formatter.formatters["image/png"]
    try:
        original = fmt.lookup_by_type(Figure)
    except KeyError:
        return
    if getattr(original, "_revops_sanitized", False):
        return

    def png(fig, *args, **kwargs):
        sanitize_figure(fig)
        return original(fig, *args, **kwargs)

    png._revops_sanitized = True  # type: ignore[attr-defined]
    fmt.for_type(Figure, png)


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


#: Floats in the content a table's id is hashed from: 12 significant digits, as in published CSVs, so that the
#: last-digit noise of a float sum (which changes with the order a parallel engine adds in) never changes an id.
_ID_FLOATS = "%.12g"


def _format_key(fmt) -> str:
    """A display format as text for a table's id: a function by its name (its repr holds a memory address,
    which differs from run to run)."""
    import functools

    if isinstance(fmt, functools.partial):
        return f"partial({_format_key(fmt.func)}, {fmt.args!r}, {sorted(fmt.keywords.items())!r})"
    if callable(fmt):
        return f"{getattr(fmt, '__module__', '')}.{getattr(fmt, '__qualname__', type(fmt).__name__)}"
    return repr(fmt)


def style_table(df: pd.DataFrame, formats: dict | None = None, *, index: bool = False, html=()):
    """A pandas Styler for reports: no index, numbers right-aligned, text left-aligned, blanks as —.

    Every cell and header is HTML-escaped (values from data and parameters are never markup) and
    e-mail addresses are hidden (:mod:`revops_lib.text`); the columns named in ``html`` hold HTML the kit
    built itself from escaped parts (e.g. sparklines, :func:`sparkline_svg`) and are left as they are. The table's
    id comes from its content (no random ``T_xxxxx``) and cells carry no ids, so identical data give
    identical HTML.
    """
    import hashlib

    from markupsafe import Markup
    from pandas.io.formats.style import Styler

    from revops_lib.text import hide_emails

    def shown(v):
        return hide_emails(v) if isinstance(v, str) and not isinstance(v, Markup) else v

    raw_html = [c for c in df.columns if c in set(html)
                or (len(df) and df[c].map(lambda v: isinstance(v, Markup)).all())]
    data = df.copy()
    for c in data.columns:
        if c not in raw_html and (data[c].dtype == object or pd.api.types.is_string_dtype(data[c])):
            data[c] = data[c].map(shown)
    data.columns = [shown(c) for c in data.columns] if not isinstance(data.columns, pd.MultiIndex) else data.columns
    if index and data.index.dtype == object:
        data.index = data.index.map(shown)
    digest = hashlib.sha1(df.to_csv(index=index, float_format=_ID_FLOATS).encode("utf-8", "replace")
                          + repr(sorted((str(k), _format_key(v)) for k, v in (formats or {}).items())).encode()
                          ).hexdigest()[:10]
    styler = Styler(data, uuid=digest, cell_ids=False)
    if not index:
        styler = styler.hide(axis="index")
    fm = {shown(k): v for k, v in (formats or {}).items() if shown(k) in data.columns}
    styler = styler.format(fm, na_rep="—", escape="html")
    styler = styler.format_index(escape="html", axis=1)
    if index:
        styler = styler.format_index(escape="html", axis=0)
    keep = [shown(c) for c in raw_html]
    if keep:
        styler = styler.format(lambda v: v, subset=keep, escape=None)
    text_cols = [c for c in data.columns
                 if not pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c])]
    if text_cols:
        styler = styler.set_properties(subset=text_cols, **{"text-align": "left"})
        styler = styler.set_table_styles(
            [{"selector": f"th.col_heading.col{data.columns.get_loc(c)}", "props": [("text-align", "left")]}
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


# --- retention ---

def _pct_axis(axis, decimals: int = 0):
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_pct(v, decimals)))


def _money_axis(axis, currency: str = "USD"):
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_money(v, currency)))


def plot_cohort_heatmap(cohorts: pd.DataFrame, *, value: str = "retention", average: pd.DataFrame | None = None,
                        title: str | None = None, ax=None):
    """Cohort × age heatmap of ``retention``, ``nrr`` or ``grr`` (see :func:`revops_lib.retention.cohort_retention`).

    Rows are cohorts (oldest on top) plus the weighted-average row at the
    bottom; columns are ages in months; cells past the cut-off stay blank.
    Logo retention and GRR use a sequential scale from the lowest value to
    100 %; NRR a diverging scale centred on 100 % (green: the cohort pays more
    than in its first month).
    """
    if cohorts.empty:
        ax = _ax(ax)
        ax.text(0.5, 0.5, "No cohort yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    grid, norm, cmap = _cohort_grid(cohorts, value, average)
    n_rows, n_cols = grid.shape
    ax = _ax(ax, figsize=(max(8.0, 0.42 * n_cols + 2.5), max(4.0, 0.3 * n_rows + 1.4)))
    annot = grid.map(lambda v: "" if pd.isna(v) else f"{100 * v:.0f}")
    sns.heatmap(grid, ax=ax, cmap=cmap, norm=norm, annot=annot, fmt="",
                annot_kws={"fontsize": 6.5}, linewidths=0.4, linecolor="white",
                cbar_kws={"format": mticker.FuncFormatter(lambda v, _: fmt_pct(v, 0)), "shrink": 0.8,
                          "label": {"retention": "customers still paying", "nrr": "NRR",
                                    "grr": "GRR"}.get(value, value)})
    ax.grid(False)
    if "average" in grid.index:
        ax.axhline(n_rows - 1, color="#333333", linewidth=1.5)
    ax.set_xticks([i + 0.5 for i in range(n_cols)])
    ax.set_xticklabels([f"M{a}" for a in grid.columns], fontsize=7, rotation=0)
    ax.set_yticklabels(list(grid.index), fontsize=7, rotation=0)
    ax.set_xlabel("months since the cohort's first paid month (numbers in %)")
    ax.set_ylabel("cohort (first paid month)")
    ax.set_title(title or f"{value} by cohort and age")
    return ax


def _cohort_grid(cohorts: pd.DataFrame, value: str, average: pd.DataFrame | None):
    """Cohort × age grid of ``value`` (plus the ``average`` row) and its colour scale: ``(grid, norm, cmap)``.

    Logo retention and GRR: sequential, from the lowest value (rounded down to 10 %, at most 90 %)
    to 100 % (darkest). NRR: diverging, centred on 100 %.
    """
    import numpy as np
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
    import numpy as np
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
    shown.columns = pd.Index([f"M{a}" for a in grid.columns], name="cohort")
    shown.index.name = None
    styles = pd.DataFrame(css, index=shown.index, columns=shown.columns)
    from pandas.io.formats.style import Styler

    from revops_lib.text import esc

    content = f"{caption}|{value}|{grid.to_csv(float_format=_ID_FLOATS)}"
    uuid = __import__("hashlib").sha1(content.encode()).hexdigest()[:10]
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
    ax = _ax(ax)
    if average.empty:
        ax.text(0.5, 0.5, "No cohort yet", ha="center", va="center", transform=ax.transAxes)
        return ax
    a = average.sort_values("age")
    ax.plot(a["age"], a["nrr"], marker="o", markersize=3, color=PALETTE[2], label="NRR (revenue kept, with expansion)")
    ax.plot(a["age"], a["grr"], marker="o", markersize=3, color=PALETTE[1], label="GRR (revenue kept, no expansion)")
    ax.plot(a["age"], a["retention"], marker="o", markersize=3, color=PALETTE[0], label="logo retention (customers)")
    ax.axhline(1.0, color="#999999", linewidth=0.8, linestyle="--")
    _pct_axis(ax.yaxis)
    ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    ax.set_xlabel("months since first paid month")
    ax.set_ylabel("share of the cohorts' start")
    ax.set_title("Average cohort: how much of the starting customers and MRR remain")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_survival(survival: pd.DataFrame, *, by: str | None = None, ax=None):
    """Kaplan–Meier curves (``survival`` output) with their 95 % bands, one line per group."""
    ax = _ax(ax)
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
    _pct_axis(ax.yaxis)
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
    import numpy as np

    ax = _ax(ax, figsize=(9, 4.4))
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
    _money_axis(ax.yaxis, currency)
    ax.set_ylabel("MRR change per month")
    ax.set_title("MRR movements: gains above zero, losses below, net change as a line")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_arr_bridge(bridge: pd.DataFrame, *, currency: str = "USD", ax=None):
    """Waterfall from starting to ending ARR (``arr_bridge`` output)."""
    ax = _ax(ax, figsize=(9, 4.4))
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
        sign = "" if step in ("starting", "ending") else ("+" if v >= 0 else "−")
        ax.text(i, base + height, f"{sign}{fmt_money(abs(v), currency)}", ha="center", va="bottom", fontsize=8)
        top = max(top, base + height)
    ax.set_xticks(range(len(bridge)))
    ax.set_xticklabels(bridge["step"])
    ax.set_ylim(0, top * 1.12)
    _money_axis(ax.yaxis, currency)
    ax.set_ylabel("ARR (12 × MRR)")
    ax.set_title(f"ARR bridge {bridge['from_month'].iloc[0]} to {bridge['to_month'].iloc[-1]}: "
                 "where the growth came from")
    return ax


def plot_nrr_trend(trailing: pd.DataFrame, *, ax=None):
    """Trailing-12-month NRR, GRR and logo retention by month (``trailing_retention`` output)."""
    ax = _ax(ax)
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
    _pct_axis(ax.yaxis)
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    ax.set_ylabel("vs the same customers 12 months earlier")
    ax.set_title("Trailing-12-month retention: above 100% NRR, expansion outgrows churn")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


# --- scorecard ---------------------------------------------------------------

_STATUS_COLORS = {"on track": "#3B9C6A", "at risk": "#D4A72C", "off track": "#C0392B",
                  "not started": "#7F8C8D", "no data": "#7F8C8D", "no target": "#7F8C8D"}


def plot_kpi_bullets(card: pd.DataFrame, *, function: str, currency: str = "USD", ax=None):
    """Bullet chart: each KPI with a target as % of target (bar) against 100 % (line), coloured by status.

    ``card``: :func:`revops_lib.scorecard.scorecard` output.
    """
    from revops_lib.scorecard import fmt_value

    rows = card[(card.function == function) & card.pct_of_target.notna()]
    ax = _ax(ax, figsize=(9, 0.45 * max(len(rows), 2) + 1))
    if rows.empty:
        ax.text(0.5, 0.5, "No target for these KPIs in this period", ha="center", va="center",
                transform=ax.transAxes, color="#777")
        ax.set_axis_off()
        return ax
    rows = rows.iloc[::-1]
    y = range(len(rows))
    ax.barh(list(y), [1.3] * len(rows), color="#eef0f3", height=0.75)
    ax.barh(list(y), rows.pct_of_target.clip(upper=1.3), color=[_STATUS_COLORS.get(s, "#7F8C8D") for s in rows.status],
            height=0.38)
    ax.axvline(1.0, color="#222", lw=1.5)
    for i, r in enumerate(rows.itertuples(index=False)):
        ax.text(min(r.pct_of_target, 1.3) + 0.01, i,
                f"{fmt_value(r.value, r.unit, currency)} / {fmt_value(r.target, r.unit, currency)}",
                va="center", fontsize=8)
    ax.set_yticks(list(y))
    ax.set_yticklabels(rows.label)
    ax.set_xlim(0, 1.55)
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
    from revops_lib.text import esc, safe_html

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


def plot_kpi_sparklines(history: pd.DataFrame, card: pd.DataFrame, *, function: str, currency: str = "USD",
                        ncols: int = 4, ax=None):
    """Small multiples: each KPI of a function over the last periods (the report period last, highlighted)."""
    from revops_lib.scorecard import fmt_value

    keys = [k for k in card.loc[card.function == function, "kpi"] if ":" not in k]
    units = dict(zip(card.kpi, card.unit))
    labels = dict(zip(card.kpi, card.label))
    if not keys:
        ax = _ax(ax)
        ax.set_axis_off()
        return ax
    nrows = math.ceil(len(keys) / ncols)
    # fixed spacing for the two-line titles and the tick labels, rather than tight_layout (a whole
    # extra layout pass): the report's image is cropped to its content anyway
    height = 1.55 * nrows + 0.35
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, height), squeeze=False,
                             gridspec_kw=dict(left=0.07, right=0.99, bottom=0.1 / nrows, top=1 - 0.75 / height,
                                              wspace=0.42, hspace=0.75))
    n_periods = history.period.nunique()
    for a, key in zip(axes.flat, keys):
        h = history[history.kpi == key]
        a.set_xlim(-0.5, max(n_periods, len(h)) - 0.5)  # every KPI on the same period axis, gaps included
        a.plot(range(len(h)), h.value.to_numpy(dtype=float), color=PALETTE[0], lw=1.6)
        if len(h):
            a.plot([len(h) - 1], [h.value.to_numpy(dtype=float)[-1]], "o", color=PALETTE[1], ms=5)
        last = h.value.iloc[-1] if len(h) else float("nan")
        a.set_title(f"{labels[key]}\n{fmt_value(last, units[key], currency)}", fontsize=8.5, loc="left")
        a.set_xticks([])
        a.tick_params(axis="y", labelsize=7)
        a.yaxis.set_major_locator(mticker.MaxNLocator(3))
        if units[key] == "rate":
            span = float(h.value.max() - h.value.min()) if len(h) else 1.0
            a.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0 if span >= 0.05 else 1))
        elif units[key] == "currency":
            a.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_money(v, currency, decimals=0)))
        else:
            a.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 10 else f"{v:,.1f}"))
        a.grid(axis="x", visible=False)
    for a in list(axes.flat)[len(keys):]:
        a.set_axis_off()
    periods = history.period.unique()
    fig.suptitle(f"Last {len(periods)} periods ({periods[0]} to {periods[-1]}; dot: this period)",
                 fontsize=9, x=0.01, y=1 - 0.1 / height, ha="left", va="top")
    return axes[0, 0]


# --- forecast ---
# Charts of the forecast_accuracy report (revops_lib.forecast).


def _money_axis(axis, currency: str = "USD") -> None:
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_money(v, currency)))


_CATEGORY_COLORS = {"commit": PALETTE[0], "best_case": PALETTE[1], "baseline": PALETTE[5]}


def _category_palette(categories) -> dict:
    extra = iter(c for c in PALETTE if c not in _CATEGORY_COLORS.values())
    return {c: _CATEGORY_COLORS.get(c) or next(extra, "#555555") for c in categories}


def plot_forecast_convergence(by_week: pd.DataFrame, *, kind: str | None = None, level: float = 0.9, ax=None):
    """Median accuracy by week of the period, one line per forecast category.

    ``by_week``: ``kind, category, week_of_period, n, median_accuracy`` (see
    :func:`revops_lib.forecast.accuracy_by_week`); ``kind`` picks month,
    quarter or week forecasts (default: the first present).
    """
    ax = _ax(ax)
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

    ``summary``: ``scope, category, bias`` (see :func:`revops_lib.forecast.bias_by_scope`).
    """
    data = summary[(summary["category"] == category) & summary["bias"].notna()].copy()
    data = data.sort_values("bias")
    ax = _ax(ax, figsize=(9, 0.5 * max(len(data), 2) + 1.4))
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
    :func:`revops_lib.forecast.forecast_vs_actual`).
    """
    ax = _ax(ax)
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
                label=f"{cat} ({call} call)", lw=1.8)
    ax.set_xticks(range(len(periods)), periods, rotation=45 if len(periods) > 8 else 0, ha="right" if len(periods) > 8 else "center")
    _money_axis(ax.yaxis, currency)
    ax.set_xlabel("")
    ax.set_ylabel("won amount")
    ax.set_title(f"Forecast vs actual: the call made in each period's {call} week against what was won")
    ax.legend(frameon=False, fontsize=8, ncol=min(len(cats) + 1, 4))
    return ax


def plot_coverage(coverage: pd.DataFrame, *, ax=None):
    """Pipeline coverage per period (bars, labelled with the share of target won when complete).

    ``coverage``: ``period, coverage, attainment, complete`` (see :func:`revops_lib.forecast.coverage`).
    """
    ax = _ax(ax)
    data = coverage.reset_index(drop=True)
    colors = [PALETTE[0] if c else PALETTE[1] for c in data["complete"]]
    vals = data["coverage"].fillna(0.0)
    ax.bar(range(len(data)), vals, color=colors, width=0.65)
    for i, r in data.iterrows():
        if pd.isna(r["coverage"]):
            ax.text(i, 0, "no target", ha="center", va="bottom", fontsize=8, color="#666666")
            continue
        label = f"{r['coverage']:.1f}x"
        if r["complete"] and not pd.isna(r["attainment"]):
            label += f"\n{fmt_pct(r['attainment'], 0)} won"
        ax.text(i, r["coverage"], label, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(data)), data["period"])
    ax.set_ylim(0, (vals.max() or 1) * 1.3)
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:.1f}x"))
    ax.set_ylabel("open pipeline / target")
    ax.set_title("Coverage at the start of each period (orange: the next period, at the cut-off)")
    return ax


def plot_pipeline_waterfall(waterfall: pd.DataFrame, *, currency: str = "USD", period: str = "", ax=None):
    """The pipeline waterfall: starting, what came in and went out, ending.

    ``waterfall``: ``step, amount`` (see :func:`revops_lib.forecast.pipeline_waterfall`).
    """
    ax = _ax(ax)
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
            txt = ("+" if sign[s] > 0 else "−") + txt
        ax.text(i, b + h + top * 0.01, txt, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(steps)), [s.replace("_", "\n") for s in steps])
    ax.set_ylim(0, top * 1.12)
    _money_axis(ax.yaxis, currency)
    ax.set_ylabel("open pipeline due in the period")
    ax.set_title(f"Pipeline waterfall{' ' + period if period else ''}: from the start of the period to the cut-off "
                 "(green: won)")
    return ax
