"""The ``revops_scorecard`` report: what it shows, computed once by :func:`analyze`.

:func:`build` is the notebook's one setup call (parameters in, a :class:`Scorecard` out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from revops_lib.metrics.deal_history import prepare
from revops_lib.metrics.kpis import KPIS
from revops_lib.metrics.pipeline import undated_open_deals
from revops_lib.metrics.scorecard import (
    PUBLISHED_COLUMNS,
    big_moves,
    kpi_history,
    pacing,
    pacing_from_history,
    scorecard,
)
from revops_lib.periods import Period, parse_period, period_of, resolve_as_of
from revops_lib.present.charts import scorecard as charts
from revops_lib.present.context import context
from revops_lib.present.format import fmt_change, fmt_money, fmt_pct, fmt_points, fmt_pval, fmt_value
from revops_lib.present.labels import kpi_label, label
from revops_lib.present.publish import publish
from revops_lib.present.section import Part, Section, sliced_why
from revops_lib.present.tables import style_table
from revops_lib.present.text import md
from revops_lib.sources import open_source

FOOTNOTES = [(k.label + f" (`{k.key}`)", k.definition) for k in KPIS] + [
    ("Three 12-month retentions", "they answer different questions and differ: logo retention, trailing 12 m "
     "(scorecard) = customers paying 12 months ago still paying now, whatever happened between; cohort logo "
     "retention at M12 (heatmap, weighted average) = customers of a cohort paying in their 12th month after the "
     "first; survival at 12 months (Kaplan–Meier) = customers who never stopped paying for 12 months (a gap ends "
     "survival, a return does not restore it)."),
    ("Target, % of target", "targets rows for the period label and KPI key (company level); % of target = value / "
     "target; blank without a target or with a zero target."),
    ("Change", "value − prior-period value, in the KPI's unit (percentage points for rates)."),
    ("Pacing", "actual to date vs the target pro-rated by elapsed days; weekly run-rate needed = "
     "(target − actual to date) / weeks left."),
    ("Same period last year", "the KPI over the period shifted 12 months (months, quarters) or 52 weeks (weeks), as "
     "far into it as this period is at the cut-off."),
    ("Year to date (YTD)", "the KPI from the start of the (fiscal) year to the cut-off: counts and money summed, rates "
     "and averages recomputed over the whole span; blank for stocks measured at one instant (open pipeline, "
     "coverage, trailing-12-month retention)."),
    ("YTD target", "the targets of the year's periods up to this one (the current one pro-rated by its elapsed "
     "days): summed for counts and money (blank unless each has one), their days-weighted mean for rates and "
     "averages."),
]


FUNCTION_TITLES = {"marketing": "Marketing", "sales": "Sales", "customer_success": "Customer success",
                   "revenue": "Revenue efficiency"}


@dataclass
class Scorecard(Section):
    """Everything the scorecard report shows (see :func:`analyze`)."""

    report = "revops_scorecard"
    FINDINGS_ANCHOR = "What-needs-attention"
    FOOTNOTES = FOOTNOTES
    PARTS = (
        Part("pacing", "pacing against targets", ("targets",)),
        Part("marketing", "the marketing KPIs"),
        Part("sales", "the sales KPIs"),
        Part("customer_success", "the customer-success KPIs"),
        Part("revenue", "the revenue-efficiency KPIs"),
    )

    @classmethod
    def plan(cls, src) -> dict[str, str]:
        """A function's part needs the tables of at least one of its KPIs; pacing needs ``targets`` too."""
        out = {}
        for f in FUNCTION_TITLES:
            needs = {tuple(k.tables) for k in KPIS if k.function == f}
            if not any(all(src.has(t) for t in ts) for ts in needs):
                alts = sorted({tuple(t for t in ts if not src.has(t)) for ts in needs}, key=lambda ts: (len(ts), ts))
                alts = [a for a in alts if not any(set(b) < set(a) for b in alts)]
                many = len(alts) > 1 or len(alts[0]) > 1
                out[f] = ("tables " if many else "table ") + " or ".join(" and ".join(f"`{t}`" for t in a)
                                                                          for a in alts)
        if not src.has("targets"):
            out = {"pacing": "table `targets`", **out}
        elif len(out) == len(FUNCTION_TITLES):
            out = {"pacing": "the tables of a KPI", **out}
        return {k: sliced_why(src, why) for k, why in out.items()}

    period: Period
    as_of: pd.Timestamp
    card: pd.DataFrame
    history: pd.DataFrame
    pacing_views: list = field(default_factory=list)  # (title, pacing frame)
    notes: list = field(default_factory=list)
    currency: str = "USD"
    moves: pd.DataFrame | None = None  # big moves beyond noise (metrics.scorecard.big_moves)
    move_change: float = 0.25
    move_points: float = 0.05

    def published(self) -> pd.DataFrame:
        return self.card[PUBLISHED_COLUMNS]

    def kpi_label(self, key) -> str:
        """A KPI's words; a breakdown's name the column it splits by (the card's ``by``): "Revenue won by type —
        New business" and "Revenue won by product — Core" are two lists, each adding up to revenue won."""
        by = dict(zip(self.card["kpi"], self.card["by"])) if "by" in self.card else {}
        return kpi_label(key, by.get(key, ""))

    def attention(self):
        """What needs attention: off-track then at-risk KPIs, with the gap; then KPIs that moved beyond noise
        since the prior period, target or not (:func:`~revops_lib.metrics.scorecard.big_moves`)."""
        lines, name = [], self.kpi_label
        for status in ("off track", "at risk"):
            rows = self.card[self.card.status == status]
            if "share_of_goal" in rows:  # worst first: the smallest share of its goal reached
                rows = rows.sort_values("share_of_goal", kind="stable")
            for r in rows.itertuples(index=False):
                lines.append(f"- **{name(r.kpi)}** is *{status}*: {fmt_value(r.value, r.unit, self.currency)} "
                             f"vs target {fmt_value(r.target, r.unit, self.currency)}"
                             + (f" ({fmt_value(r.pct_of_target, 'rate')} of target)"
                                if not pd.isna(r.pct_of_target) else ""))
        for title, pv in self.pacing_views:
            behind = pv[pv.status.isin(["off track", "at risk"]) & pv.weekly_run_rate_needed.notna()]
            for r in behind.itertuples(index=False):
                goal = fmt_value(r.target, r.unit, self.currency)
                if r.weeks_left < 1:  # "per week for the remaining 0.1 weeks" overstates a last day's gap 7-fold
                    days = max(1, round(r.total_days - r.elapsed_days))
                    more = fmt_value(r.still_needed, r.unit, self.currency)
                    lines.append(f"- {title}: **{name(r.kpi)}** needs {more} more in the remaining {days} "
                                 f"day{'' if days == 1 else 's'} to reach {goal}.")
                    continue
                lines.append(f"- {title}: **{name(r.kpi)}** needs "
                             f"{fmt_value(r.weekly_run_rate_needed, r.unit, self.currency)} "
                             f"per week for the remaining {r.weeks_left:.1f} weeks to reach {goal}.")
        listed = set(self.card.kpi[self.card.status.isin(["off track", "at risk"])])
        moves = self.moves if self.moves is not None else self.card.iloc[0:0]
        for r in moves[~moves.kpi.isin(listed)].itertuples(index=False):
            in_points = pd.isna(r.relative_change)  # a rate judged in points; otherwise a relative move
            how = (fmt_change(r.change, r.unit, self.currency) if in_points
                   else fmt_pct(r.relative_change, 0, signed=True))
            why = ("" if pd.isna(r.p_value) else f", {fmt_pval(r.p_value)}")
            lines.append(f"- **{name(r.kpi)}** moved {how} ({fmt_value(r.prior_value, r.unit, self.currency)} → "
                         f"{fmt_value(r.value, r.unit, self.currency)}), beyond the ±"
                         + (fmt_points(self.move_points).lstrip("+") if in_points
                            else fmt_pct(self.move_change, 0))
                         + f" threshold{why}" + ("; it has no target." if pd.isna(r.target) else "."))
        if not lines:
            with_target = int(self.card.target.notna().sum())
            lines.append(f"- Every KPI with a target ({with_target}) is on track for {self.period}."
                         if with_target else "- No KPI has a target for this period: add rows to `targets`.")
        lines += [f"- {n}" for n in self.notes]
        return md("\n".join(lines))

    def function_table(self, function: str):
        """The KPIs of one function, leading first, formatted for reading, with each KPI's trend
        over the history periods (an inline sparkline; the dot is this period)."""
        if function in self.left_out:
            return self.left_out_note(function)
        rows = self.card[self.card.function == function]
        if rows.empty:
            return md("No KPI of this function: its tables are absent.")
        periods = list(dict.fromkeys(self.history["period"]))
        series = {k: g.set_index("period")["value"] for k, g in self.history.groupby("kpi", sort=False)}
        trend_col = f"trend, last {len(periods)} ({periods[0]} to {periods[-1]})" if periods else "trend"

        def trend(key, unit, label):
            vals = series.get(key, pd.Series(dtype=float)).reindex(periods)
            shown = [fmt_value(v, unit, self.currency) for v in vals]
            tip = f"{label}: {shown[0]} in {periods[0]} → {shown[-1]} in {periods[-1]}" if periods else label
            return charts.sparkline_svg(vals.to_numpy(dtype=float), label=tip)

        out = pd.DataFrame({
            "KPI": rows.kpi.map(self.kpi_label), "indicator": rows.indicator,
            "value": [fmt_value(v, u, self.currency) for v, u in zip(rows.value, rows.unit)],
            "target": [fmt_value(v, u, self.currency) for v, u in zip(rows.target, rows.unit)],
            "% of target": [fmt_value(v, "rate") for v in rows.pct_of_target],
            "prior": [fmt_value(v, u, self.currency) for v, u in zip(rows.prior_value, rows.unit)],
            "change": [fmt_change(v, u, self.currency) for v, u in zip(rows.change, rows.unit)],
            "last_year": [fmt_value(v, u, self.currency) for v, u in zip(rows.last_year_value, rows.unit)],
            "YTD": [fmt_value(v, u, self.currency) for v, u in zip(rows.ytd_value, rows.unit)],
            "YTD target": [fmt_value(v, u, self.currency) for v, u in zip(rows.ytd_target, rows.unit)],
            trend_col: [trend(k, u, lab) for k, u, lab in zip(rows.kpi, rows.unit, rows.kpi.map(self.kpi_label))],
            "status": rows.status,
        })
        colors = {"on track": "color: #1e6b3a", "at risk": "color: #b07d00; font-weight: bold",
                  "off track": "color: #a1281b; font-weight: bold"}
        return (style_table(out, html=[trend_col]).map(lambda s: colors.get(s, "color: #777"), subset=["status"])
                .set_properties(subset=[trend_col], **{"padding": "0 6px", "line-height": "0"})
                .set_properties(subset=["status"], **{"white-space": "nowrap"}))  # "no / target" on two lines

    def pacing_table(self, index: int = 0):
        """Pacing toward a period target (actual to date, pro-rated target, run-rate needed)."""
        if "pacing" in self.left_out:
            return self.left_out_note("pacing") if index == 0 else md("")
        if index >= len(self.pacing_views):
            return md("")  # a week and a quarter have one pacing view; a month two (the month, the quarter to date)
        title, pv = self.pacing_views[index]
        if pv.empty:
            return md(f"{title}: no KPI has a target for this period, so there is nothing to pace.")
        out = pd.DataFrame({
            "KPI": pv.kpi.map(self.kpi_label),
            "actual to date": [fmt_value(v, u, self.currency) for v, u in zip(pv.actual_to_date, pv.unit)],
            "pro-rated target": [fmt_value(v, u, self.currency) for v, u in zip(pv.prorated_target, pv.unit)],
            "period target": [fmt_value(v, u, self.currency) for v, u in zip(pv.target, pv.unit)],
            "still needed": [fmt_value(v, u, self.currency) for v, u in zip(pv.still_needed, pv.unit)],
            "needed per week": [fmt_value(v, u, self.currency) for v, u in zip(pv.weekly_run_rate_needed, pv.unit)],
            "status": pv.status,
        })
        left = float(pv.total_days.iloc[0] - pv.elapsed_days.iloc[0])
        if left <= 0:  # over: its pro-rated target is the target and nothing is still needed or paced
            out = out.drop(columns=["pro-rated target", "still needed", "needed per week"]).rename(
                columns={"actual to date": "actual", "period target": "target"})
            return style_table(out).set_caption("The period is over: each KPI against its full target.")
        styled = style_table(out)
        if 0 < left < 7:  # the weekly pace of a part week reads larger than what is needed: say what each is
            days = f"{left:.0f} day{'s' if round(left) != 1 else ''}" if left >= 1 else "less than a day"
            styled = styled.set_caption(f"Less than a week is left ({days}): still needed is what it must bring; "
                                        "needed per week is the pace a full week would need to bring it.")
        return styled

    def pacing_title(self, index: int = 0):
        if index >= len(self.pacing_views) or "pacing" in self.left_out:
            return md("")
        title, pv = self.pacing_views[index]
        days = f"{pv.elapsed_days.iloc[0]:.0f} of {pv.total_days.iloc[0]} days elapsed" if len(pv) else ""
        return md(f"**{title}** — {days}")

    def findings(self):
        """The page's verdict: what needs attention (:meth:`attention`)."""
        return self.attention()

    def headlines(self) -> list[tuple[str, str]]:
        c = self.card.set_index("kpi")
        out = [(label, fmt_value(c.loc[key, "value"], c.loc[key, "unit"], self.currency))
               for key, label in (("revenue_won", "Revenue won"), ("new_customers", "New customers"),
                                  ("leads", "Leads"))
               if key in c.index]
        out += [(status.capitalize(), f"{n:,}") for status, n in self.status_counts().items()]
        return out

    #: The KPIs of the index's executive summary (in this order, those the data allow).
    SUMMARY_KPIS = ("revenue_won", "new_customers", "win_rate", "pipeline_coverage", "open_pipeline", "leads",
                    "mqls", "nrr_12m", "cac", "csat")

    def summary(self) -> pd.DataFrame:
        """The executive summary's KPIs: value, target, change and status — the worst of the card's and the
        pacing views' — published as ``executive_summary.csv`` by :meth:`record_headlines`."""
        worst = {}
        for status in ("off track", "at risk"):
            for f in [self.card] + [pv for _, pv in self.pacing_views]:
                for k in f.kpi[f.status == status]:
                    worst.setdefault(k, status)
        c = self.card.set_index("kpi")
        rows = [{"kpi": k, "label": label(k), "unit": c.loc[k, "unit"], "value": c.loc[k, "value"],
                 "target": c.loc[k, "target"], "prior_value": c.loc[k, "prior_value"], "change": c.loc[k, "change"],
                 "last_year_value": c.loc[k, "last_year_value"], "ytd_value": c.loc[k, "ytd_value"],
                 "ytd_target": c.loc[k, "ytd_target"], "status": worst.get(k, c.loc[k, "status"])}
                for k in self.SUMMARY_KPIS if k in c.index and not pd.isna(c.loc[k, "value"])]
        return pd.DataFrame(rows, columns=["kpi", "label", "unit", "value", "target", "prior_value", "change",
                                           "last_year_value", "ytd_value", "ytd_target", "status"])

    def record_headlines(self) -> None:
        super().record_headlines()
        publish(self.summary(), "executive_summary")

    def status_counts(self) -> dict[str, int]:
        """KPIs off track and at risk on the page: in the card or in any pacing view (a KPI counts once, by its
        worst status), as "What needs attention" lists them."""
        worst = {}
        frames = [self.card] + [pv for _, pv in self.pacing_views]
        for status in ("off track", "at risk"):
            for f in frames:
                for k in f.kpi[f.status == status]:
                    worst.setdefault(k, status)
        return {status: sum(1 for v in worst.values() if v == status) for status in ("off track", "at risk")}

    def bullets(self, function: str):
        """The function's KPIs with a target as % of target (their numbers are in ``kpis.csv``)."""
        if function in self.left_out:
            return None
        rows = self.card[(self.card.function == function) & self.card.pct_of_target.notna()]
        if rows.empty:
            return md("No KPI of this function has a target for this period, so there is no bullet chart: the "
                      "table above compares each KPI with the prior period.")
        shown = self.card.assign(label=self.card["kpi"].map(self.kpi_label))  # the reader's words, as in the tables
        self.chart(shown, "kpis", charts.plot_kpi_bullets, published=True, function=function, currency=self.currency)

    def kpi_table(self, limit: int = 30):
        """Every KPI key and breakdown, formatted by its unit (money, percent, points for a rate's change);
        ``kpis.csv`` keeps the keys and raw values (rates as fractions, change = value − prior)."""
        data = self.published()
        money = self.currency
        shown = pd.DataFrame({
            "function": data.function, "indicator": data.indicator, "KPI": data.kpi.map(self.kpi_label),
            "value": [fmt_value(v, u, money) for v, u in zip(data.value, data.unit)],
            "target": [fmt_value(v, u, money) for v, u in zip(data.target, data.unit)],
            "% of target": [fmt_value(v, "rate") for v in data.pct_of_target],
            "prior": [fmt_value(v, u, money) for v, u in zip(data.prior_value, data.unit)],
            "change": [fmt_change(v, u, money) for v, u in zip(data.change, data.unit)],
            "last_year": [fmt_value(v, u, money) for v, u in zip(data.last_year_value, data.unit)],
            "YTD": [fmt_value(v, u, money) for v, u in zip(data.ytd_value, data.unit)],
            "YTD target": [fmt_value(v, u, money) for v, u in zip(data.ytd_target, data.unit)],
        })
        return self.table(data, "kpis", shown, limit=limit)


def analyze(source, *, period, as_of=None, currency: str = "USD", history_periods: int = 12,
            on_track: float = 0.95, at_risk: float = 0.85, attention_change: float = 0.25,
            attention_points: float = 0.05) -> Scorecard:
    """Compute the scorecard report: KPIs, 12-period history, pacing views (cadence-aware).

    Weekly runs add the pacing of the month containing the week; monthly runs the
    quarter to date; quarterly runs the quarter itself.
    """
    src = open_source(source)
    p = parse_period(period)
    cut = resolve_as_of(p, as_of)
    last_instant = min(cut, p.end_naive) - pd.Timedelta(microseconds=1)
    # the pacing view's period to date (the month of a week, the quarter of a month) in the same query
    to_date = (period_of(last_instant, "month") if p.kind == "week" else
               period_of(last_instant, "quarter", fiscal_year_start_month=p.fiscal_year_start_month)
               if p.kind == "month" else None)
    also = [(to_date, min(cut, p.end_naive))] if to_date is not None else []
    # every deal's state through time, built once for coverage and the undated deals (both point in time)
    deals = prepare(src, scopes=False, stage_mask=False) if src.has("opportunities") else None  # no stage rates here
    try:
        both = kpi_history(src, period=p, as_of=cut, periods=history_periods, comparisons=True, also=also,
                           deals=deals)
        n_undated, amt = undated_open_deals(deals, at=min(cut, p.end_naive)) if deals is not None else (0, 0.0)
    finally:
        if deals is not None:
            deals.release()
    hist = both[both["period"].isin(both.attrs["periods"])].reset_index(drop=True)  # the sparklines' periods
    notes = list(both.attrs.get("notes", []))
    if deals is not None:
        if n_undated:
            notes.append(f"{n_undated:,} open deal{'s' if n_undated != 1 else ''} ({fmt_money(amt, currency)}) "
                         "without an expected close date: in open pipeline, left out of next-period coverage.")
    card = scorecard(src, period=p, as_of=cut, history=both, on_track=on_track, at_risk=at_risk)
    views = []
    if p.kind == "week":
        views.append((f"Month {to_date} to date", pacing_from_history(
            src, both, period=to_date, as_of=min(cut, p.end_naive), on_track=on_track, at_risk=at_risk)))
    elif p.kind == "month":
        views.append((f"Month {p}", pacing(src, period=p, as_of=cut, card=card, on_track=on_track, at_risk=at_risk)))
        views.append((f"Quarter {to_date} to date", pacing_from_history(
            src, both, period=to_date, as_of=min(cut, p.end_naive), on_track=on_track, at_risk=at_risk)))
    else:
        views.append((f"Quarter {p}", pacing(src, period=p, as_of=cut, card=card, on_track=on_track, at_risk=at_risk)))
    sc = Scorecard(period=p, as_of=cut, card=card, history=hist, pacing_views=views, notes=notes,
                   currency=currency, moves=big_moves(card, change=attention_change, points=attention_points),
                   move_change=attention_change, move_points=attention_points)
    sc.left_out = Scorecard.plan(src)
    return sc


def build(*, period: str = "", source: str = "../data/demo", as_of: str = "", currency: str = "USD",
          fiscal_year_start_month: int = 1, privacy: str = "names", labels: dict | None = None,
          slices: dict | None = None, output_dir: str = "", preset: str = "", history_periods: int = 12,
          on_track: float = 0.95, at_risk: float = 0.85, attention_change: float = 0.25,
          attention_points: float = 0.05) -> Scorecard:
    """The report from the notebook's parameters."""
    ctx = context(period=period, as_of=as_of, source=source, currency=currency,
                  fiscal_year_start_month=fiscal_year_start_month, output_dir=output_dir, privacy=privacy,
                  labels=labels, preset=preset, slices=slices)
    sc = analyze(ctx.source, period=ctx.period, as_of=ctx.as_of, currency=currency, history_periods=history_periods,
                 on_track=on_track, at_risk=at_risk, attention_change=attention_change,
                 attention_points=attention_points)
    sc.record_headlines()
    return sc
