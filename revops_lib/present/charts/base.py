"""The charts' common ground: one seaborn theme, a filter on what a chart may show, axis helpers.

Charts are ``plot_<thing>(data, *, ax=None) -> Axes``: frames and labels in, a matplotlib Axes out
(never a metric call, never ``plt.show()``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import seaborn as sns

from revops_lib.present.format import fmt_money, fmt_pct

__all__ = ["PALETTE", "MAX_CHART_LABEL", "set_theme", "sanitize_figure", "install_figure_filter", "ax_or_new",
           "no_data", "pct_axis", "money_axis"]


PALETTE = ["#2F5D8C", "#E07A2E", "#3B9C6A", "#C0392B", "#8E6BB8", "#7F8C8D", "#D4A72C", "#1ABC9C"]


def set_theme(*, dpi: int = 110) -> None:
    """The one seaborn theme of every report."""
    sns.set_theme(style="whitegrid", palette=PALETTE, font_scale=0.95,
                  rc={"figure.dpi": dpi, "savefig.dpi": dpi, "axes.titleweight": "bold",
                      "axes.titlelocation": "left", "figure.figsize": (9, 4.2),
                      "axes.spines.top": False, "axes.spines.right": False,
                      # text is text: a "$" in a label or an amount never starts math mode
                      "text.parse_math": False,
                      # one minus sign in charts, tables and prose: "-" (revops_lib.present.format)
                      "axes.unicode_minus": False})


#: Longest tick or legend label drawn in a chart (longer ones end with "…"; the tables show them whole).
MAX_CHART_LABEL = 60


def _short_label(text: str) -> str:
    """A tick or legend label as drawn: a key by its label (``organic_search`` → ``Organic search``), e-mail
    addresses hidden, cut to :data:`MAX_CHART_LABEL` characters."""
    from revops_lib.present.labels import is_key, label
    from revops_lib.present.text import hide_emails

    text = label(text) if is_key(text) else hide_emails(text)
    return text if len(text) <= MAX_CHART_LABEL else text[:MAX_CHART_LABEL - 1] + "…"


def sanitize_figure(fig) -> None:
    """What a chart may show: e-mail addresses hidden in every text; tick and legend labels that are keys
    shown by their label (:mod:`revops_lib.present.labels`) and cut to :data:`MAX_CHART_LABEL` characters.
    Called on every figure before it is drawn into a report."""
    from matplotlib.text import Text

    from revops_lib.present.text import hide_emails

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
    for legend in fig.legends:
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


def ax_or_new(ax, figsize=None):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def no_data(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def pct_axis(axis, decimals: int = 0):
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_pct(v, decimals)))


def money_axis(axis, currency: str = "USD"):
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: fmt_money(v, currency)))
