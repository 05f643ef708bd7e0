"""The ``funnel_conversion`` report: what it shows, computed once by :func:`analyze`.

:func:`build` is the notebook's one setup call (parameters in, a :class:`FunnelReport` out); each
method of the report renders one part of the page and publishes the data behind it.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from revops_lib.metrics.channels import channel_economics, prepare_deals
from revops_lib.metrics.common import UNKNOWN, check_stages, pairs
from revops_lib.metrics.deal_history import closed_stages
from revops_lib.metrics.deals import (
    DEFAULT_DEAL_STAGES,
    deal_stage_conversion,
    sales_metrics,
)
from revops_lib.metrics.lead_funnel import (
    DEFAULT_STAGES,
    TOTAL,
    activity_counts_many,
    cohort_trend,
    compare_rates,
    funnel_tables,
    longer_period,
    same_age_as_of,
    source_differences,
    stage_conversion,
    time_to_convert,
)
from revops_lib.metrics.records import channel_economics_records, stage_conversion_records
from revops_lib.metrics.stage_time import stage_time_tables
from revops_lib.periods import Period, window
from revops_lib.present.charts import funnel as charts
from revops_lib.present.context import context
from revops_lib.present.format import (
    MISSING,
    fmt_days,
    fmt_interval,
    fmt_money,
    fmt_pct,
    fmt_points,
    fmt_pval,
    pair_label,
    stage_label,
)
from revops_lib.present.labels import label
from revops_lib.present.publish import publish
from revops_lib.present.section import Part, Section, needs_part
from revops_lib.present.sections.funnel_parts import FOOTNOTES as _MORE_FOOTNOTES
from revops_lib.present.sections.funnel_parts import ChannelAndStageParts
from revops_lib.present.tables import style_table
from revops_lib.present.text import md
from revops_lib.sources import open_source

FOOTNOTES = [
    ("Reached a stage", "a lead has reached stage i if it has a timestamp for stage i or for any later stage "
     "(stages skipped in the CRM count as passed, at the time of the next stage reached); "
     "timestamps at or after as of do not count."),
    ("Cohort funnel", "the cohort is the leads whose first stage (created_at) falls in the period; per adjacent "
     "pair of stages, entered = cohort leads that reached from_stage, converted = those that also reached "
     "to_stage by as of (within conversion_window_days of reaching from_stage when set); rate = converted / entered."),
    ("Interval", "ci_low, ci_high: Wilson score interval, 95% by default; rates with entered below min_sample "
     "(default 30) are flagged as too few to read."),
    ("Strict view", "funnel_mode strict: a lead counts in a stage only if it has a timestamp for that stage and "
     "for every earlier one, in order."),
    ("Comparing sources", "chi-square test of independence on converted vs not, across sources, per stage pair "
     "(p-value); changes vs the previous period: the same test on the two periods' counts."),
    ("Stage timing", "for leads that converted from from_stage to to_stage: days between the two stage times; "
     "median and 90th percentile (linear interpolation between order statistics)."),
    ("Cohort trend", "the same stage-to-stage rates for the last trend_cohorts cohorts (default 12), counting "
     "conversions within N days of reaching from_stage so young cohorts compare fairly with old ones; "
     "a cell is immature while its period "
     "is not over or more than 1% of its leads have had less than N days since reaching from_stage."),
    ("Activity counts", "leads that entered each stage during the period, whenever they were created."),
    ("Deal-stage funnel", "from opportunity_history, for opportunities created in the period: how many reached "
     "each configured deal stage (same reached rule, by stage order), and stage-to-stage rates."),
    ("Win rate", "won / (won + lost) over opportunities closed in the period (by count); the amount-weighted "
     "version is won amount / closed amount."),
    ("Average deal size", "mean amount of opportunities won in the period."),
    ("Sales cycle length", "median calendar days from the UTC date of created_at to close_date, over "
     "opportunities won in the period."),
    ("Records behind the numbers", "stage_conversion_records.csv, beside stage_conversion.csv: one row per lead "
     "of the cohort and stage pair whose from_stage it reached (lead_id, source, from_stage, to_stage, converted "
     "0/1, the times it reached both); per source and pair, rows = entered and Σ converted = converted, over "
     "every source the all row; per segment (its segment column, when the leads have one) and pair, the counts of "
     "stage_conversion_by_segment.csv. channel_economics_records.csv, beside "
     "channel_economics.csv: one row per deal created or won in the period (opportunity_id, account_id, "
     "attributed source and the link that gave it, created, pipeline_created, won, revenue_won, new_business_won, "
     "new_customer 0/1, starting_mrr); per source, their sums are the source's opportunities, pipeline created, "
     "revenue won and new customers. "
     "stuck_deals.csv lists its deals itself."),
    ("Pipeline velocity", "open opportunities at as of × win rate × average deal size / sales cycle length "
     "(revenue per day), with rate, size and length over the trailing lookback_periods quarters (default 4)."),
] + _MORE_FOOTNOTES


@dataclass
class FunnelReport(ChannelAndStageParts, Section):
    """Everything the ``funnel_conversion`` report shows, computed once by :func:`analyze`."""

    report = "funnel_conversion"
    FINDINGS_ANCHOR = "What-moved"
    FOOTNOTES = FOOTNOTES
    PARTS = (
        Part("headline", "the headline comparison", any_of=("leads", "opportunities")),
        Part("funnel", "the lead funnel", ("leads",)),
        Part("segments", "the funnel by segment", ("leads",), columns=("leads.segment",)),
        Part("trend", "the cohort trend", ("leads",)),
        Part("timing", "time to convert", ("leads",)),
        Part("channels", "channel economics", any_of=("leads", "opportunities")),
        Part("deals", "the deal-stage funnel", any_of=("opportunity_history", "opportunities")),
        Part("stage_time", "time in deal stage", ("opportunity_history",)),
        Part("sales", "the sales metrics", ("opportunities",)),
        Part("activity", "stage activity", ("leads",)),
    )

    period: Period
    as_of: pd.Timestamp
    previous: Period
    previous_as_of: pd.Timestamp
    stages: tuple[str, ...]
    deal_stages: tuple[str, ...]
    funnel_mode: str
    min_sample: int
    confidence: float
    currency: str
    conversion: pd.DataFrame
    timing: pd.DataFrame
    previous_conversion: pd.DataFrame
    changes: pd.DataFrame
    source_tests: pd.DataFrame
    segments: pd.DataFrame | None
    trend: pd.DataFrame
    distribution: pd.DataFrame
    activity: pd.DataFrame
    previous_activity: pd.DataFrame
    deals: pd.DataFrame | None
    sales: pd.DataFrame | None
    previous_sales: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)
    lookback_periods: int = 4
    channels: pd.DataFrame | None = None  # metrics.channels.channel_economics
    channel_records: pd.DataFrame | None = None  # metrics.records.channel_economics_records (None: no deals)
    stage_times: pd.DataFrame | None = None  # metrics.stage_time.time_in_stage
    stuck: pd.DataFrame | None = None  # metrics.stage_time.stuck_deals
    conversion_records: pd.DataFrame | None = None  # metrics.records.stage_conversion_records

    # -- numbers ----------------------------------------------------------

    @property
    def cohort_size(self) -> int:
        rows = self.conversion[self.conversion["source"] == TOTAL]
        return int(rows["entered"].iloc[0]) if len(rows) else 0

    @property
    def previous_cohort_size(self) -> int:
        rows = self.previous_conversion
        return int(rows["entered"].iloc[0]) if len(rows) else 0

    def _total(self, df: pd.DataFrame) -> pd.DataFrame:
        return df[df["source"] == TOTAL] if "source" in df.columns else df

    def _lead_to_last(self, df: pd.DataFrame) -> float:
        t = self._total(df)
        if t.empty or t["to_stage"].iloc[-1] != self.stages[-1]:
            return 0.0 if len(t) else math.nan
        return float(t["cumulative_rate"].iloc[-1])

    def _lead_to_last_source(self) -> tuple[str | None, float | None]:
        """Where Lead → last stage is read: ``(None, rate)`` from the period's own cohort (mature, or no trend
        to say otherwise); ``("", None)`` when no cohort is mature yet; else ``(cohort, rate)`` of the latest
        mature cohort of the trend, the product of its stage rates — never an unfinished window."""
        tr = self.trend
        if tr is None or tr.empty or "mature" not in tr:
            return None, self._lead_to_last(self.conversion)
        total = tr[tr["by"] == "all"] if "by" in tr.columns else tr
        chain = [(a, b) for a, b in pairs(self.stages)]
        complete = []
        for cohort, g in total.groupby("cohort", sort=False):
            g = g.set_index(["from_stage", "to_stage"])
            if all(pair in g.index for pair in chain) and bool(g["mature"].all()):
                complete.append((str(cohort), float(np.prod([g.loc[pair, "rate"] for pair in chain]))))
        if complete and complete[-1][0] == str(total["cohort"].iloc[-1]):
            return None, self._lead_to_last(self.conversion)
        return complete[-1] if complete else ("", None)

    def lead_to_last_headline(self) -> tuple[str, str]:
        """Lead → last stage from a finished cohort (:meth:`_lead_to_last_source`), the cohort named in the
        label when it is not the period's own: ``(label, formatted rate)``."""
        name = f"Lead → {stage_label(self.stages[-1])}"
        cohort, rate = self._lead_to_last_source()
        if cohort is None:
            return name, fmt_pct(rate, 2)
        if not cohort:
            return f"{name} (no mature cohort yet)", MISSING
        days = self.trend.attrs.get("window_days")
        within = f", each stage within {days:g} days" if days else ""
        return f"{name} ({cohort} cohort, the latest mature{within})", fmt_pct(rate, 2)

    def small_rows(self) -> pd.DataFrame:
        return self.conversion[self.conversion["entered"] < self.min_sample]

    # -- narrative -------------------------------------------------------------

    def small_sample_note(self) -> str:
        """One sentence (Markdown) when rates rest on fewer than ``min_sample`` leads, else ''."""
        small = self.small_rows()
        if small.empty:
            return ""
        longer = longer_period(self.period)
        hint = (f"run the report for {longer} (a longer period) to read them" if longer
                else "compare them over several quarters in the cohort trend instead")
        tot = small[small["source"] == TOTAL]
        if len(tot):
            pairs = ", ".join(pair_label(a, b) for a, b in zip(tot["from_stage"], tot["to_stage"]))
            return (f"⚠️ **Too few leads to read**: even the totals of {pairs} rest on fewer than "
                    f"{self.min_sample:,} leads in {self.period}, so their rates are mostly noise — {hint}.")
        n_rows = len(self.conversion[self.conversion["source"] != TOTAL])
        by_pair = small.groupby(["from_stage", "to_stage"], sort=False).size()
        worst = by_pair.sort_values(ascending=False, kind="stable").head(2)
        where = "; ".join(f"{pair_label(a, b)}: {k:,} source{'s' if k != 1 else ''}" for (a, b), k in worst.items())
        return (f"⚠️ **Small samples**: {len(small):,} of {n_rows:,} source × stage rates rest on fewer than "
                f"{self.min_sample:,} leads ({where}); they are greyed out and too few to read — {hint}.")

    def findings(self):
        """What moved and whether it is beyond noise, one sentence each (Markdown)."""
        b = []
        n, n0 = self.cohort_size, self.previous_cohort_size
        if not self.has_part("funnel"):
            return md("\n".join(f"- {x}" for x in self._sales_findings() + self.more_findings() + self.notes))
        if n == 0:
            b.append(f"**No leads** were created in {self.period} (before the cut-off): there is no cohort to "
                     f"read; pick another period.")
            return md("\n".join(f"- {x}" for x in b + self.notes))
        change = f" ({fmt_pct((n - n0) / n0, signed=True)} vs {self.previous})" if n0 else ""
        last, last0 = self._lead_to_last(self.conversion), self._lead_to_last(self.previous_conversion)
        if last or last0:
            reached = (f"; {fmt_pct(last, 2)} of them reached {stage_label(self.stages[-1])} by the cut-off "
                       f"({fmt_pct(last0, 2)} for {self.previous} at the same age)")
        else:
            reached = f"; none has reached {stage_label(self.stages[-1])} yet"
        cohort, rate = self._lead_to_last_source()
        if cohort:  # the period's own cohort is still converting: say what a finished one did
            days = self.trend.attrs.get("window_days")
            within = f" (each stage within {days:g} days of the one before)" if days else ""
            reached += (f" — the cohort is not mature yet; the latest mature one ({cohort}) reached "
                        f"{stage_label(self.stages[-1])} at {fmt_pct(rate, 2)}{within}")
            if days and round(rate * 100, 2) == 0:  # reads 0.00%, e.g. 14-day steps of weekly cohorts: too short
                reached += (f"; leads take longer than that to become {stage_label(self.stages[-1])}: read "
                            f"Lead → {stage_label(self.stages[-1])} in a month's or quarter's report")
        b.append(f"**{n:,} leads** were created in {self.period}{change}{reached}.")
        moved = self.changes[self.changes["beyond_noise"]]
        if len(moved):
            for r in moved.itertuples():
                verb = "rose" if r.change > 0 else "fell"
                b.append(f"**{pair_label(r.from_stage, r.to_stage)} {verb}** from {fmt_pct(r.prior_rate)} to "
                         f"{fmt_pct(r.rate)} ({fmt_pval(r.p_value)}): beyond noise.")
        elif len(self.changes):
            b.append(f"No stage-to-stage rate moved beyond noise vs {self.previous} at the same age "
                     f"(chi-square p ≥ 0.05 for every stage).")
        differ = self.source_tests[self.source_tests["differ"] & self.source_tests["highest"].notna()]
        for r in differ.head(2).itertuples():
            pair = self.conversion[self.conversion["from_stage"] == r.from_stage]
            hi, lo = pair[pair["source"] == r.highest], pair[pair["source"] == r.lowest]
            b.append(f"Sources differ in {pair_label(r.from_stage, r.to_stage)} ({fmt_pval(r.p_value)}): "
                     f"{label(r.highest)} converts best ({fmt_pct(hi['rate'].iloc[0])}), {label(r.lowest)} worst "
                     f"({fmt_pct(lo['rate'].iloc[0])}).")
        if len(self.source_tests) and not self.source_tests["differ"].any():
            b.append("No stage shows a difference between sources beyond noise (chi-square p ≥ 0.05).")
        age = self.as_of - self.period.start_naive
        if age.days < 120 and len(self.stages) > 2:
            b.append(f"Later-stage rates are not final: leads created in {self.period} had at most {age.days} days "
                     "to progress by the cut-off; the cohort trend compares cohorts at equal age.")
        note = self.small_sample_note()
        if note:
            b.append(note)
        return md("\n".join(f"- {x}" for x in b + self._sales_findings() + self.more_findings() + self.notes))

    def _sales_findings(self) -> list[str]:
        if self.sales is None or not len(self.sales):
            return []
        s = self.sales.iloc[0]
        if not s["closed"]:
            return [f"No deal closed in {self.period}: win rate, deal size and cycle are undefined."]
        return [f"Win rate {fmt_pct(s['win_rate'])} by count ({s['won']:,} won of {s['closed']:,} deals "
                f"closed in {self.period}) and {fmt_pct(s['win_rate_amount'])} by amount "
                f"({fmt_money(s['won_amount'], self.currency)} won of "
                f"{fmt_money(s['closed_amount'], self.currency)} closed)."]

    def headlines(self) -> list[tuple[str, str]]:
        """Headline numbers for ``reports/index.html``."""
        n, n0 = self.cohort_size, self.previous_cohort_size
        out = []
        if self.has_part("funnel"):
            out.append(("Leads", f"{n:,}" + (f" ({fmt_pct((n - n0) / n0, signed=True)})" if n0 else "")))
            t = self._total(self.conversion)
            if len(t):
                out.append((pair_label(t["from_stage"].iloc[0], t["to_stage"].iloc[0]), fmt_pct(t["rate"].iloc[0])))
            out.append(self.lead_to_last_headline())
        if self.sales is not None and len(self.sales):
            out.append(("Win rate", fmt_pct(self.sales["win_rate"].iloc[0])))
        return out

    # -- charts ---------------------------------------------------------------

    @needs_part("funnel")
    def funnel_chart(self) -> None:
        """The period's cohort reaching each stage (its numbers are the ``all`` rows of ``stage_conversion.csv``)."""
        self.chart(self.conversion, "stage_conversion", charts.plot_funnel, published=True)

    @needs_part("funnel")
    def source_chart(self) -> None:
        """Share of each source's cohort reaching each stage (published as ``funnel_by_source.csv``)."""
        cols = ["source", "from_stage", "to_stage", "entered", "converted", "cumulative_rate"]
        self.chart(self.conversion[cols], "funnel_by_source", charts.plot_funnel_by_source,
                   min_sample=self.min_sample)

    @needs_part("funnel")
    def rate_heatmap(self) -> None:
        """Stage-to-stage rates by source with their intervals (the numbers of ``stage_conversion.csv``)."""
        self.chart(self.conversion, "stage_conversion", charts.plot_rate_heatmap, published=True,
                   min_sample=self.min_sample)

    @needs_part("trend")
    def trend_chart(self) -> None:
        """Rates of the last cohorts (the numbers of ``cohort_trend.csv``)."""
        self.chart(self.trend, "cohort_trend", charts.plot_cohort_trend)

    @needs_part("timing")
    def time_to_convert_chart(self) -> None:
        """Share of the period's conversions done within N days (published as ``time_to_convert.csv``)."""
        self.chart(self.distribution, "time_to_convert", charts.plot_time_to_convert, timing=self.timing)

    @needs_part("deals")
    def deal_chart(self) -> None:
        """Deals created in the period reaching each deal stage (published as ``deal_funnel.csv``)."""
        if self.deals is None:
            return
        self.chart(self.deals, "deal_funnel", charts.plot_deal_funnel)

    # -- tables ---------------------------------------------------------------

    @needs_part("headline")
    def headline_table(self):
        """This period vs the previous one at the same age: cohort, stage rates and sales metrics."""
        rows = []
        if self.has_part("funnel"):
            rows += self._lead_headline_rows()
        rows += self._sales_headline_rows()
        df = pd.DataFrame(rows, columns=["Metric", str(self.period), f"{self.previous} (same age)", "Change",
                                         "Note"])
        return style_table(df)

    def _lead_headline_rows(self) -> list[tuple]:
        rows = []
        n, n0 = self.cohort_size, self.previous_cohort_size
        rows.append(("Leads created (cohort)", f"{n:,}", f"{n0:,}",
                     fmt_pct((n - n0) / n0, signed=True) if n0 else "—", ""))
        for r in self.changes.itertuples():
            pts = fmt_points(r.change)
            verdict = "—" if pd.isna(r.p_value) else ("beyond noise" if r.beyond_noise else "within noise")
            rows.append((pair_label(r.from_stage, r.to_stage), fmt_pct(r.rate), fmt_pct(r.prior_rate), pts,
                         f"{verdict} ({fmt_pval(r.p_value)})" if verdict != "—" else "—"))
        c, c0 = self._lead_to_last(self.conversion), self._lead_to_last(self.previous_conversion)
        rows.append((f"Lead → {stage_label(self.stages[-1])}", fmt_pct(c, 2), fmt_pct(c0, 2),
                     "—" if pd.isna(c) or pd.isna(c0) else fmt_points(c - c0, 2), ""))
        for st in self.stages[1:3]:
            a = self.activity.set_index("stage")["leads"].get(st)
            a0 = self.previous_activity.set_index("stage")["leads"].get(st)
            if a is not None:
                rows.append((f"Leads entering {stage_label(st)} in the period", f"{a:,}", f"{a0:,}",
                             fmt_pct((a - a0) / a0, signed=True) if a0 else "—", ""))
        return rows

    def _sales_headline_rows(self) -> list[tuple]:
        rows = []
        if self.sales is not None and self.previous_sales is not None:
            s, s0 = self.sales.iloc[0], self.previous_sales.iloc[0]
            money = lambda x: fmt_money(x, self.currency) or "—"  # noqa: E731
            rel = lambda a, b: "—" if pd.isna(a) or pd.isna(b) or not b else fmt_pct((a - b) / b, signed=True)  # noqa: E731
            pts = lambda a, b: "—" if pd.isna(a) or pd.isna(b) else fmt_points(a - b)  # noqa: E731
            rows += [
                ("Win rate (won / closed deals)", fmt_pct(s["win_rate"]), fmt_pct(s0["win_rate"]),
                 pts(s["win_rate"], s0["win_rate"]), f"of {s['closed']:,} closed deals"),
                ("Win rate by amount (won / closed amount)", fmt_pct(s["win_rate_amount"]),
                 fmt_pct(s0["win_rate_amount"]), pts(s["win_rate_amount"], s0["win_rate_amount"]),
                 f"of {money(s['closed_amount'])} closed"),
                ("Average deal size (won)", money(s["avg_deal_size"]), money(s0["avg_deal_size"]),
                 rel(s["avg_deal_size"], s0["avg_deal_size"]), ""),
                ("Sales cycle (median days, won)", fmt_days(s["sales_cycle_days"]), fmt_days(s0["sales_cycle_days"]),
                 rel(s["sales_cycle_days"], s0["sales_cycle_days"]), ""),
                ("Pipeline velocity (per day)", money(s["velocity_per_day"]), money(s0["velocity_per_day"]),
                 rel(s["velocity_per_day"], s0["velocity_per_day"]),
                 f"trailing {self.lookback_periods} quarters"),
            ]
        return rows

    def _display(self, df: pd.DataFrame, by: str) -> pd.DataFrame:
        out = pd.DataFrame({
            by.capitalize(): df[by],
            "Stage": [pair_label(a, b) for a, b in zip(df["from_stage"], df["to_stage"])],
            "Entered": df["entered"], "Converted": df["converted"],
            "Rate": [fmt_pct(x) for x in df["rate"]],
            f"{self.confidence:.0%} interval": _intervals(df),
            "Of cohort": [fmt_pct(x, 2) for x in df["cumulative_rate"]],
            "Note": ["too few to read" if s else "" for s in df["small_sample"]],
        })
        return out

    @needs_part("funnel")
    def conversion_table(self):
        """The cohort funnel by source (published as ``stage_conversion.csv``), and the link to the leads behind
        it (``stage_conversion_records.csv``)."""
        publish(self.conversion[["source", "from_stage", "to_stage", "entered", "converted", "rate", "ci_low",
                                 "ci_high"]], "stage_conversion")
        if self.conversion.empty:
            return md("No leads in this cohort.")
        disp = self._display(self.conversion, "source")
        styled = style_table(disp, {"Entered": "{:,}", "Converted": "{:,}"}).apply(
            lambda r: ["color: #9a9a9a" if r["Note"] else "" for _ in r], axis=1)
        if self.conversion_records is None:
            return styled
        return self.with_records(styled, self.conversion_records, "stage_conversion",
                                 "the cohort's leads behind each cell")

    @needs_part("segments")
    def segment_table(self):
        """The cohort funnel by segment (published as ``stage_conversion_by_segment.csv``), and the link to the
        leads behind it (the ``segment`` column of ``stage_conversion_records.csv``)."""
        if self.segments is None or self.segments.empty:
            return md("No segment data for this cohort.")
        publish(self.segments[["segment", "from_stage", "to_stage", "entered", "converted", "rate", "ci_low",
                               "ci_high"]], "stage_conversion_by_segment")
        disp = self._display(self.segments, "segment")
        styled = style_table(disp, {"Entered": "{:,}", "Converted": "{:,}"}).apply(
            lambda r: ["color: #9a9a9a" if r["Note"] else "" for _ in r], axis=1)
        if self.conversion_records is None or "segment" not in self.conversion_records.columns:
            return styled
        return self.link_records(styled, "stage_conversion", len(self.conversion_records),
                                 "the cohort's leads behind each cell, by their segment column")

    @needs_part("segments")
    def segment_test_table(self):
        """Chi-square test across segments per stage, as the test across sources (published as
        ``segment_tests.csv``)."""
        if self.segments is None or self.segments.empty:
            return md("No segment data for this cohort.")
        # without `unknown`: leads lacking a segment are mostly those that never became MQLs (see the docstring
        # of source_differences); the table above still shows them
        t = source_differences(self.segments, by="segment", min_sample=self.min_sample, exclude=[UNKNOWN])
        publish(t, "segment_tests")
        return self._test_table(t, "segments")

    @needs_part("funnel")
    def source_test_table(self):
        """Chi-square test across sources per stage (published as ``source_tests.csv``)."""
        t = self.source_tests
        publish(t, "source_tests")
        return self._test_table(t, "sources")

    def _test_table(self, t: pd.DataFrame, groups: str):
        """A :func:`source_differences` result as shown (``groups``: "sources" or "segments")."""
        if t.empty:
            return md(f"Not enough {groups} with leads to compare.")
        disp = pd.DataFrame({
            "Stage": [pair_label(a, b) for a, b in zip(t["from_stage"], t["to_stage"])],
            groups.capitalize(): t["groups"],
            "Chi-square": [f"{x:.1f}" if not pd.isna(x) else "—" for x in t["chi2"]],
            "p-value": [fmt_pval(p) for p in t["p_value"]],
            "Verdict": [f"{groups} differ" if d else ("no difference beyond noise" if not pd.isna(p) else "—")
                        for d, p in zip(t["differ"], t["p_value"])],
            f"Best / worst ({self.min_sample}+ leads)": [
                "—" if not isinstance(h, str) else f"{label(h)} (the only one)" if h == lo
                else f"{label(h)} / {label(lo)}" for h, lo in zip(t["highest"], t["lowest"])],
            "Note": ["approximate (expected count < 5)" if (not pd.isna(m) and m < 5) else ""
                     for m in t["min_expected"]],
        })
        return style_table(disp)

    @needs_part("trend")
    def trend_table(self):
        """Rates by cohort (published as ``cohort_trend.csv``); cells not yet mature are marked with *."""
        tr = self.trend
        publish(tr, "cohort_trend")
        if tr.empty:
            return md("No cohorts to show.")
        tr = tr.assign(stage=[pair_label(a, b) for a, b in zip(tr["from_stage"], tr["to_stage"])],
                       cell=[fmt_pct(r) + ("" if m else "*") for r, m in zip(tr["rate"], tr["mature"])])
        wide = tr.pivot(index="cohort", columns="stage", values="cell")
        wide = wide[[pair_label(a, b) for a, b in pairs(self.stages) if pair_label(a, b) in wide.columns]]
        wide = wide.reset_index().rename(columns={"cohort": "Cohort"})
        days = self.trend.attrs.get("window_days") or 0
        return style_table(wide.fillna("—")).set_caption(
            f"Conversion within {days:g} days of the previous stage. * not yet mature: the period is not over "
            "or more than 1% of the leads are still within those days.")

    @needs_part("timing")
    def timing_table(self):
        """Median and 90th-percentile days between stages (published as ``stage_timing.csv``)."""
        publish(self.timing, "stage_timing")
        t = self.timing[self.timing["source"] == TOTAL]
        if t.empty:
            return md("No conversions in this cohort yet.")
        disp = pd.DataFrame({
            "Stage": [pair_label(a, b) for a, b in zip(t["from_stage"], t["to_stage"])],
            "Leads converted": t["n"],
            "Median days": [fmt_days(x) for x in t["median_days"]],
            "90th percentile days": [fmt_days(x) for x in t["p90_days"]],
        })
        return style_table(disp, {"Leads converted": "{:,}"})

    @needs_part("deals")
    def deal_table(self):
        """Deal-stage funnel (published as ``deal_stage_conversion.csv``)."""
        if self.deals is None:
            return md("No `opportunity_history` table in this source: the deal-stage funnel is skipped.")
        publish(self.deals[["from_stage", "to_stage", "entered", "converted", "rate"]], "deal_stage_conversion")
        d = self.deals
        disp = pd.DataFrame({
            "Stage": [pair_label(a, b) for a, b in zip(d["from_stage"], d["to_stage"])],
            "Entered": d["entered"], "Converted": d["converted"], "Rate": [fmt_pct(x) for x in d["rate"]],
            f"{self.confidence:.0%} interval": _intervals(d),
            "Of deals created": [fmt_pct(x) for x in d["cumulative_rate"]],
        })
        return style_table(disp, {"Entered": "{:,}", "Converted": "{:,}"})

    @needs_part("deals")
    def deal_note(self):
        """One sentence on the deal cohort (Markdown)."""
        if self.deals is None:
            return md("No `opportunity_history` table in this source: the deal-stage funnel is skipped.")
        n = self.deals.attrs.get("deals", 0)
        last = self.deals.iloc[-1] if len(self.deals) else None
        text = f"{n:,} opportunities were created in {self.period}"
        if last is not None and n:
            text += (f"; {fmt_pct(last['cumulative_rate'])} of them reached {stage_label(last['to_stage'])} by the "
                     "cut-off (deals still open count as not yet converted).")
        else:
            text += "."
        if 0 < n < self.min_sample:
            longer = longer_period(self.period)
            text += (f" ⚠️ Fewer than {self.min_sample} deals: too few to read"
                     + (f" — run the report for {longer}." if longer else "."))
        if self.deals.attrs.get("basis") == "opportunities":
            text += (" Without `opportunity_history` each deal's furthest stage is its current one and a lost deal "
                     "counts at the first stage only, so the later stages' rates are lower bounds.")
        return md(text)

    @needs_part("sales")
    def sales_table(self):
        """Win rate (count and amount, denominators named), deal size, cycle and velocity.

        Published as ``sales_metrics.csv``.
        """
        if self.sales is None:
            return md("No `opportunities` table in this source: the sales metrics are skipped.")
        publish(self.sales, "sales_metrics")
        s = self.sales.iloc[0]
        money = lambda x: fmt_money(x, self.currency) or "—"  # noqa: E731
        rows = [
            ("Win rate by count", fmt_pct(s["win_rate"]),
             f"{s['won']:,} won / {s['closed']:,} deals closed in the period"),
            ("Win rate by amount", fmt_pct(s["win_rate_amount"]),
             f"{money(s['won_amount'])} won / {money(s['closed_amount'])} closed in the period"),
            ("Average deal size", money(s["avg_deal_size"]), f"mean amount of the {s['won']:,} deals won"),
            ("Sales cycle length", fmt_days(s["sales_cycle_days"]),
             "median days from creation date to close date, won deals"),
            ("Open opportunities at the cut-off", f"{s['open_opportunities']:,}",
             f"{money(s['open_amount'])} in total"),
            ("Pipeline velocity",
             money(s["velocity_per_day"]) + " per day" if not pd.isna(s["velocity_per_day"]) else "—",
             f"{s['open_opportunities']:,} open deals × {fmt_pct(s['velocity_win_rate'])} win rate × "
             f"{money(s['velocity_avg_deal_size'])} "
             f"÷ {fmt_days(s['velocity_cycle_days'])} (trailing {self.lookback_periods} quarters)"),
        ]
        return style_table(pd.DataFrame(rows, columns=["Metric", "Value", "How it is computed"]))

    @needs_part("activity")
    def activity_table(self):
        """Leads entering each stage in the period vs the previous one (published as ``activity_counts.csv``)."""
        publish(self.activity, "activity_counts")
        prev = self.previous_activity.set_index("stage")["leads"]
        disp = pd.DataFrame({
            "Stage": [stage_label(s) for s in self.activity["stage"]],
            f"Leads entering in {self.period}": self.activity["leads"],
            f"in {self.previous}": [prev.get(s, 0) for s in self.activity["stage"]],
        })
        cur, old = disp.iloc[:, 1], disp.iloc[:, 2]
        disp["Change"] = [fmt_pct((a - b) / b, signed=True) if b else "—" for a, b in zip(cur, old)]
        return style_table(disp, {disp.columns[1]: "{:,}", disp.columns[2]: "{:,}"})


def _intervals(df: pd.DataFrame) -> list[str]:
    return [fmt_interval(lo, hi) for lo, hi in zip(df["ci_low"], df["ci_high"])]


def analyze(source, *, period, as_of=None, stages: Sequence[str] = DEFAULT_STAGES,
            deal_stages: Sequence[str] = DEFAULT_DEAL_STAGES, funnel_mode: str = "reached",
            conversion_window_days: float | None = None, trend_cohorts: int = 12,
            trend_window_days: float | None = None, min_sample: int = 30, confidence: float = 0.95,
            lookback_periods: int = 4, currency: str = "USD", channel_map: dict | None = None,
            gross_margin: float = 0.8) -> FunnelReport:
    """Compute every part of the ``funnel_conversion`` report for one period.

    The previous period is measured at the same age (:func:`same_age_as_of`), so the comparison is
    fair for a young cohort. Absent optional tables (``opportunities``, ``opportunity_history``)
    leave their sections empty with a note. ``channel_map`` maps spend channels to lead sources
    (:func:`revops_lib.metrics.channels.channel_economics`); ``gross_margin`` enters the channels' payback.
    """
    src = open_source(source)
    p, cut = window(period, as_of, period_required=True)
    stages = check_stages(stages)
    deal_stages = check_stages(deal_stages, param="deal_stages")
    prev = p.previous()
    prev_cut = same_age_as_of(p, cut, prev)
    kw = dict(stages=stages, funnel_mode=funnel_mode, conversion_window_days=conversion_window_days,
              confidence=confidence, min_sample=min_sample)
    left_out = FunnelReport.plan(src)
    if not src.has("leads"):
        lead_parts = _without_leads()
    else:
        lead_parts = _lead_parts(src, p, cut, prev, prev_cut, kw, trend_cohorts=trend_cohorts,
                                 trend_window_days=trend_window_days, stages=stages, funnel_mode=funnel_mode,
                                 confidence=confidence, min_sample=min_sample)
    notes = []
    deals = None
    if src.has("opportunity_history") or src.has("opportunities"):
        deals = deal_stage_conversion(src, period=p, as_of=cut, stages=deal_stages, confidence=confidence)
    sales = prev_sales = None
    if src.has("opportunities"):
        sales = sales_metrics(src, period=p, as_of=cut, lookback_periods=lookback_periods)
        prev_sales = sales_metrics(src, period=prev, as_of=prev_cut, lookback_periods=lookback_periods)
    channels = channel_records = times = stuck = None
    if "channels" not in left_out:
        # the deals behind the table and its records, computed once (none without opportunities)
        with prepare_deals(src, period=p, as_of=cut) if src.has("opportunities") else nullcontext() as deals_in:
            channels = channel_economics(src, period=p, as_of=cut, channel_map=channel_map or None, stages=stages,
                                         gross_margin=gross_margin, deals=deals_in)
            if deals_in is not None:
                channel_records = channel_economics_records(src, period=p, as_of=cut, deals=deals_in)
    if "stage_time" not in left_out:
        won, lost = closed_stages(src) if src.has("opportunities") else (None, None)
        times, stuck = stage_time_tables(src, period=p, as_of=cut, stages=deal_stages, won_stages=won,
                                         lost_stages=lost)
    fr = FunnelReport(period=p, as_of=cut, previous=prev, previous_as_of=prev_cut, stages=stages,
                      deal_stages=deal_stages, funnel_mode=funnel_mode, min_sample=min_sample,
                      confidence=confidence, currency=currency, deals=deals, sales=sales, previous_sales=prev_sales,
                      notes=notes, lookback_periods=lookback_periods, channels=channels,
                      channel_records=channel_records, stage_times=times, stuck=stuck, **lead_parts)
    fr.left_out = left_out
    return fr


def _without_leads() -> dict:
    """The lead parts of the report when there is no ``leads`` table (left out; empty frames)."""
    conv = pd.DataFrame({c: pd.Series(dtype="object") for c in
                         ["source", "from_stage", "to_stage", "entered", "converted", "rate", "ci_low", "ci_high",
                          "cumulative_rate", "small_sample"]})
    empty = pd.DataFrame()
    return dict(conversion=conv, timing=empty, previous_conversion=conv.drop(columns="source"), changes=empty,
                source_tests=empty, segments=None, trend=empty, distribution=empty,
                activity=pd.DataFrame({"stage": [], "leads": []}),
                previous_activity=pd.DataFrame({"stage": [], "leads": []}))


def _lead_parts(src, p, cut, prev, prev_cut, kw, *, trend_cohorts, trend_window_days, stages, funnel_mode,
                confidence, min_sample) -> dict:
    """Every lead part of the report (the ``leads`` table is present)."""
    ft = funnel_tables(src, period=p, as_of=cut, by="source", **kw)
    prev_conv = stage_conversion(src, period=prev, as_of=prev_cut, by=None, **kw)
    segments = None
    by_segment = "segment" in src.raw("leads").columns
    if by_segment:
        segments = stage_conversion(src, period=p, as_of=cut, by="segment", include_total=False, **kw)
    changes = compare_rates(ft.conversion, prev_conv.assign(source=TOTAL), by="source")
    tests = source_differences(ft.conversion, min_sample=min_sample)
    trend = cohort_trend(src, period=p, as_of=cut, cohorts=trend_cohorts,
                         window_days=trend_window_days or None, stages=stages, funnel_mode=funnel_mode,
                         confidence=confidence, min_sample=min_sample)
    dist = time_to_convert(src, period=p, as_of=cut, stages=stages, funnel_mode=funnel_mode)
    both = activity_counts_many(src, [(p, cut), (prev, prev_cut)], stages=stages, funnel_mode=funnel_mode)
    activity, prev_activity = (both[both["period"] == q.label].drop(columns="period").reset_index(drop=True)
                               for q in (p, prev))
    # the leads behind the table by source and by segment: one file, with a column for each
    records = stage_conversion_records(src, period=p, as_of=cut, stages=stages, by="source", funnel_mode=funnel_mode,
                                       conversion_window_days=kw["conversion_window_days"],
                                       also=["segment"] if by_segment else [])
    return dict(conversion=ft.conversion, timing=ft.timing, previous_conversion=prev_conv, changes=changes,
                conversion_records=records,
                source_tests=tests, segments=segments, trend=trend, distribution=dist, activity=activity,
                previous_activity=prev_activity)


def build(*, period: str = "", source: str = "../data/demo", as_of: str = "", currency: str = "USD",
          fiscal_year_start_month: int = 1, privacy: str = "names", labels: dict | None = None,
          slices: dict | None = None, output_dir: str = "", preset: str = "",
          stages: Sequence[str] = DEFAULT_STAGES, deal_stages: Sequence[str] = DEFAULT_DEAL_STAGES,
          funnel_mode: str = "reached", conversion_window_days: float = 0, trend_cohorts: int = 12,
          trend_window_days: float = 0, min_sample: int = 30, confidence: float = 0.95,
          lookback_periods: int = 4, channel_map: dict | None = None, gross_margin: float = 0.8) -> FunnelReport:
    """The report from the notebook's parameters (0 for a window means "none" / "the default")."""
    ctx = context(period=period, as_of=as_of, source=source, currency=currency,
                  fiscal_year_start_month=fiscal_year_start_month, output_dir=output_dir, privacy=privacy,
                  labels=labels, preset=preset, slices=slices)
    fr = analyze(ctx.source, period=ctx.period, as_of=ctx.as_of, stages=stages, deal_stages=deal_stages,
                 funnel_mode=funnel_mode, conversion_window_days=conversion_window_days or None,
                 trend_cohorts=trend_cohorts, trend_window_days=trend_window_days or None,
                 min_sample=min_sample, confidence=confidence, lookback_periods=lookback_periods,
                 currency=currency, channel_map=channel_map, gross_margin=gross_margin)
    fr.record_headlines()
    return fr
