"""Segments side by side, as the reports show them: win rate by segment (forecast report), trailing NRR, GRR and
logo retention by segment (retention report) and the chi-square test under each (:mod:`revops_lib.metrics.segments`).
"""

from __future__ import annotations

import math

import pandas as pd

from revops_lib.metrics.segments import ALL, NONE
from revops_lib.present.format import fmt_int, fmt_interval, fmt_pct, fmt_pval
from revops_lib.present.labels import label
from revops_lib.present.publish import publish
from revops_lib.present.tables import style_table
from revops_lib.present.text import md

FOOTNOTES = [
    ("Win rate by segment", "won / (won + lost) of the deals closed in the period, per opportunities.segment, with "
                            "its Wilson interval; a chi-square test of segment × (won, lost) says whether the "
                            "segments differ beyond noise."),
    ("Retention by segment", "trailing-12-month NRR, GRR and logo retention at the last complete month per customer "
                             "segment (the segment of the customer's earliest subscription): the segments add up to "
                             "the total; logo retention has a Wilson interval and a chi-square test of segment × "
                             "(retained, not retained)."),
]


def test_sentence(test: dict, what: str, groups: str = "segments") -> str:
    """One sentence on the chi-square test of ``what`` across the ``groups``."""
    p = test.get("p_value", math.nan)
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return f"Too few {groups} with data to test whether their {what} differ."
    verdict = (f"the {groups} differ in {what} beyond noise" if p < 0.05
               else f"no difference in {what} between {groups} beyond noise")
    weak = " (approximate: an expected count is below 5)" if test.get("min_expected", 10) < 5 else ""
    return f"Chi-square test across {groups}: {verdict} ({fmt_pval(p)}, {test.get('dof', 0)} df){weak}."


def _name(v) -> str:
    return "All" if v == ALL else ("No segment" if v == NONE else label(v))


def win_rate_table(df: pd.DataFrame | None, *, by: str = "segment", confidence: float = 0.95):
    """Publish ``win_rate_by_segment.csv`` and show it with its test."""
    if df is None or df.empty:
        return md("No deal closed in the period: no win rate by segment.")
    publish(df, "win_rate_by_segment")
    total = (df[by] == ALL).to_numpy()
    small = df["small_sample"].to_numpy()
    shown = pd.DataFrame({
        by.replace("_", " ").capitalize(): [_name(v) for v in df[by]],
        "Closed": df["closed"].map(fmt_int), "Won": df["won"].map(fmt_int), "Lost": df["lost"].map(fmt_int),
        "Win rate": df["win_rate"].map(fmt_pct),
        f"{confidence:.0%} interval": [fmt_interval(lo, hi) for lo, hi in zip(df["ci_low"], df["ci_high"])],
        "Note": ["too few to read" if s else "" for s in small],
    })
    styled = style_table(shown).apply(
        lambda row: ["font-weight: bold" if total[row.name] else ("color: #9a9a9a" if small[row.name] else "")
                     for _ in row], axis=1)
    return _with_sentence(styled, test_sentence(df.attrs.get("test", {}), "win rate"))


def retention_table(df: pd.DataFrame | None, *, by: str = "segment", confidence: float = 0.95, money=str):
    """Publish ``retention_by_segment.csv`` and show it with its test."""
    if df is None or df.empty:
        return md("No customer base twelve months back: no retention by segment.")
    publish(df, "retention_by_segment")
    total = (df[by] == ALL).to_numpy()
    shown = pd.DataFrame({
        by.replace("_", " ").capitalize(): [_name(v) for v in df[by]],
        "Month": df["month"], "Base customers": df["base_customers"].map(fmt_int),
        "Retained": df["retained_customers"].map(fmt_int), "Logo retention": df["logo_retention"].map(fmt_pct),
        f"{confidence:.0%} interval": [fmt_interval(lo, hi) for lo, hi in zip(df["ci_low"], df["ci_high"])],
        "Base MRR": df["base_mrr"].map(money), "MRR now": df["mrr"].map(money),
        "NRR": df["nrr"].map(fmt_pct), "GRR": df["grr"].map(fmt_pct),
    })
    styled = style_table(shown).apply(lambda row: ["font-weight: bold" if total[row.name] else "" for _ in row],
                                      axis=1)
    return _with_sentence(styled, test_sentence(df.attrs.get("test", {}), "logo retention"))


class _WithSentence:
    """A table and one sentence under it (escaped)."""

    def __init__(self, styler, sentence: str):
        self.styler, self.sentence = styler, sentence

    def __repr__(self) -> str:
        return f"<table and: {self.sentence}>"

    def _repr_html_(self) -> str:
        from markupsafe import escape

        return self.styler.to_html() + f'<p class="revops-note">{escape(self.sentence)}</p>'


def _with_sentence(styler, sentence: str) -> _WithSentence:
    return _WithSentence(styler, sentence)
